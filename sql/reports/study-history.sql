-- study-history.sql - everything that happened to one study: every
-- reading with its verdict, superseded or current, and every failure to
-- read it, oldest first.
--
--   sqlite3 -readonly -header -column audit.db \
--       ".param set :study_uid 1.2.840.113619.2.55.3.12345" \
--       ".read sql/reports/study-history.sql"
--   sqlite3 -readonly -header -column audit.db ".param set :accession A123" \
--       ".read sql/reports/study-history.sql"
--
-- :study_uid (the StudyInstanceUID) or :accession picks the study; one of
-- them is required. The shell reads a value that looks like a number as a
-- number: an accession with leading zeros must be quoted twice,
-- ".param set :accession \"'000123'\"". Failures are found by study UID
-- only (a folder that could not be read has no accession on record).
--
-- Columns: event ('reading' or 'failure'), at (UTC: when the reading
-- finished or the failure was recorded), run_id, reading_id, verdict_id,
-- study_dir, model_sha256, instances_sha256, verdict (the failed stage for
-- a failure), probability, threshold, key_slice_instance, detail (why not
-- assessable, or the error), status ('current', 'superseded by verdict N',
-- 'validation' for a reading of a validation run, which never stands for
-- the study, 'failed').

-- Prints nothing when a study is named; otherwise stops with an error.
SELECT json_extract('{}', 'name the study: .param set :study_uid UID (or :accession)')
WHERE :study_uid IS NULL AND :accession IS NULL;

SELECT 'reading' AS event,
       r.finished_at AS at,
       r.run_id AS run_id,
       r.reading_id AS reading_id,
       v.verdict_id AS verdict_id,
       r.study_dir,
       v.model_sha256,
       r.instances_sha256,
       v.verdict,
       round(v.probability, 4) AS probability,
       round(v.threshold, 4) AS threshold,
       v.key_slice_instance,
       v.reason AS detail,
       CASE WHEN v.purpose = 'validation' THEN 'validation'
            WHEN v.superseded_by IS NULL THEN 'current'
            ELSE 'superseded by verdict ' || v.superseded_by END AS status
FROM studies AS s
JOIN readings AS r ON r.study_id = s.study_id
JOIN verdicts AS v ON v.reading_id = r.reading_id
WHERE s.study_uid = CAST(:study_uid AS TEXT) OR s.accession = CAST(:accession AS TEXT)
UNION ALL
SELECT 'failure', f.recorded_at, f.run_id, NULL, NULL, f.study_dir, ru.model_sha256, NULL,
       f.stage, NULL, NULL, NULL, f.message, 'failed'
FROM failures AS f
JOIN runs AS ru ON ru.run_id = f.run_id
WHERE f.study_uid = CAST(:study_uid AS TEXT)
ORDER BY at, event, reading_id;
