-- runs.sql - every run with what it did: how many studies it read, the
-- verdicts it made of each kind, the folders it could not read and the
-- files it skipped. A run with no finished_at is still running or died.
--
--   sqlite3 -readonly -header -column audit.db ".read sql/reports/runs.sql"
--
-- No parameters. Counts are of what the run itself recorded, whether a
-- later run superseded its verdicts or not.
--
-- Columns: run_id, started_at, finished_at (UTC), exit_status, host,
-- hemoscan_version, mode, model_sha256, model_name, studies, hemorrhage,
-- no_hemorrhage, not_assessable, failures, skipped_files, command.

SELECT ru.run_id,
       ru.started_at,
       ru.finished_at,
       ru.exit_status,
       ru.host,
       ru.hemoscan_version,
       ru.mode,
       ru.model_sha256,
       ru.model_name,
       (SELECT count(*) FROM readings AS r WHERE r.run_id = ru.run_id) AS studies,
       (SELECT count(*) FROM readings AS r JOIN verdicts AS v ON v.reading_id = r.reading_id
        WHERE r.run_id = ru.run_id AND v.verdict = 'hemorrhage') AS hemorrhage,
       (SELECT count(*) FROM readings AS r JOIN verdicts AS v ON v.reading_id = r.reading_id
        WHERE r.run_id = ru.run_id AND v.verdict = 'no_hemorrhage') AS no_hemorrhage,
       (SELECT count(*) FROM readings AS r JOIN verdicts AS v ON v.reading_id = r.reading_id
        WHERE r.run_id = ru.run_id AND v.verdict = 'not_assessable') AS not_assessable,
       (SELECT count(*) FROM failures AS f WHERE f.run_id = ru.run_id) AS failures,
       (SELECT count(*) FROM readings AS r JOIN skipped_files AS k ON k.reading_id = r.reading_id
        WHERE r.run_id = ru.run_id) AS skipped_files,
       ru.command
FROM runs AS ru
ORDER BY ru.run_id;
