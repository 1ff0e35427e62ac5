-- verdicts-by-model.sql - how many verdicts of each kind every model made:
-- all of them, and those still current (not superseded by a later
-- reading; a validation run's verdicts are never current). A model is its file's SHA-256; its training date and threshold
-- come from the file.
--
--   sqlite3 -readonly -header -column audit.db ".read sql/reports/verdicts-by-model.sql"
--
-- No parameters. One row per model and verdict, models in the order they
-- were first used.
--
-- Columns: model_sha256, trained_at, threshold, verdict, verdicts,
-- current, first_recorded_at, last_recorded_at (UTC).

SELECT v.model_sha256,
       m.trained_at,
       round(m.threshold, 4) AS threshold,
       v.verdict,
       count(*) AS verdicts,
       sum(v.superseded_by IS NULL AND v.purpose = 'production') AS current,
       min(v.recorded_at) AS first_recorded_at,
       max(v.recorded_at) AS last_recorded_at
FROM verdicts AS v
JOIN models AS m ON m.model_sha256 = v.model_sha256
GROUP BY v.model_sha256, v.verdict
ORDER BY m.first_recorded_at, v.model_sha256, v.verdict;
