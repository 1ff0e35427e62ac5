-- verdict-changes-between-models.sql - studies that two models judged
-- differently: for every study read by more than one model, the latest
-- verdict of each model is compared with the latest verdict of every model
-- that read the study after it, and the pairs that differ are listed. The
-- question to ask before replacing a model.
--
--   sqlite3 -readonly -header -column audit.db \
--       ".read sql/reports/verdict-changes-between-models.sql"
--   sqlite3 -readonly -header -column audit.db \
--       ".param set :old_model 3f2a9c" ".param set :new_model b71e04" \
--       ".read sql/reports/verdict-changes-between-models.sql"
--
-- :old_model and :new_model (optional) keep the pairs whose earlier
-- verdict came from a model whose SHA-256 starts with :old_model, and
-- whose later one from a model starting with :new_model. Any production
-- verdict counts, superseded or not; a validation run's never do.
--
-- Columns: study_uid, accession, study_date, earlier_model,
-- earlier_verdict, earlier_probability, earlier_recorded_at, later_model,
-- later_verdict, later_probability, later_recorded_at (UTC).

WITH latest AS (
    -- the latest verdict of each model on each study (validation runs'
    -- verdicts left out: they never stand for a study)
    SELECT study_id, model_sha256, max(verdict_id) AS verdict_id
    FROM verdicts
    WHERE purpose = 'production'
    GROUP BY study_id, model_sha256
)
SELECT s.study_uid,
       s.accession,
       s.study_date,
       a.model_sha256 AS earlier_model,
       a.verdict AS earlier_verdict,
       round(a.probability, 4) AS earlier_probability,
       a.recorded_at AS earlier_recorded_at,
       b.model_sha256 AS later_model,
       b.verdict AS later_verdict,
       round(b.probability, 4) AS later_probability,
       b.recorded_at AS later_recorded_at
FROM latest AS la
JOIN latest AS lb ON lb.study_id = la.study_id AND lb.verdict_id > la.verdict_id
JOIN verdicts AS a ON a.verdict_id = la.verdict_id
JOIN verdicts AS b ON b.verdict_id = lb.verdict_id
JOIN studies AS s ON s.study_id = la.study_id
WHERE a.verdict <> b.verdict
  AND (:old_model IS NULL
       OR substr(a.model_sha256, 1, length(CAST(:old_model AS TEXT))) = CAST(:old_model AS TEXT))
  AND (:new_model IS NULL
       OR substr(b.model_sha256, 1, length(CAST(:new_model AS TEXT))) = CAST(:new_model AS TEXT))
ORDER BY s.study_date, s.study_uid, a.verdict_id, b.verdict_id;
