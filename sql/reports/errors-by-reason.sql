-- errors-by-reason.sql - everything that was not used or not read, counted
-- by reason: files skipped while scanning a study folder (by their verdict
-- name: not_dicom, localizer, duplicate, ...), study folders that could
-- not be read at all (failures, by stage), and slices of a series read
-- that could not be scored.
--
--   sqlite3 -readonly -header -column audit.db ".read sql/reports/errors-by-reason.sql"
--   sqlite3 -readonly -header -column audit.db ".param set :run 12" \
--       ".read sql/reports/errors-by-reason.sql"
--
-- :run (optional) keeps only that run (runs.run_id). A file skipped at
-- every reading of its study counts once per reading in occurrences and
-- once in files.
--
-- Columns: kind ('skipped_file', 'failure', 'unscored_slice'), name (the
-- skip verdict, the failed stage, or 'not_scored'), reason, occurrences,
-- files (distinct file or folder paths), last_seen (UTC).

SELECT 'skipped_file' AS kind,
       f.verdict AS name,
       coalesce(f.reason, '') AS reason,
       count(*) AS occurrences,
       count(DISTINCT f.file_path) AS files,
       max(r.finished_at) AS last_seen
FROM skipped_files AS f
JOIN readings AS r ON r.reading_id = f.reading_id
WHERE :run IS NULL OR r.run_id = :run
GROUP BY f.verdict, f.reason
UNION ALL
SELECT 'failure', f.stage, f.message, count(*), count(DISTINCT f.study_dir), max(f.recorded_at)
FROM failures AS f
WHERE :run IS NULL OR f.run_id = :run
GROUP BY f.stage, f.message
UNION ALL
SELECT 'unscored_slice', 'not_scored', sl.error, count(*), count(DISTINCT sl.file_path),
       max(r.finished_at)
FROM slices AS sl
JOIN series AS se ON se.series_id = sl.series_id
JOIN readings AS r ON r.reading_id = se.reading_id
WHERE sl.error IS NOT NULL AND (:run IS NULL OR r.run_id = :run)
GROUP BY sl.error
ORDER BY kind, occurrences DESC, name, reason;
