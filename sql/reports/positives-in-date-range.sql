-- positives-in-date-range.sql - the studies whose current verdict is
-- hemorrhage, with a study date in a range: the list to re-read or to
-- sample for an audit.
--
--   sqlite3 -readonly -header -column audit.db \
--       ".param set :from 20260101" ".param set :to 20261231" \
--       ".read sql/reports/positives-in-date-range.sql"
--
-- :from and :to are study dates as DICOM writes them, YYYYMMDD, both ends
-- included; leave one out for an open end, both for every date. Type them
-- without dashes or quotes: the shell would compute 2026-01-01 as 2024,
-- which this report refuses with an error instead of answering wrongly.
-- Only current verdicts count: a positive superseded by a later reading is
-- not listed (study-history.sql shows it). A study without a valid study
-- date is listed only when neither end is given.
--
-- Columns: study_uid, accession, patient_id, study_date, probability,
-- threshold, confidence_label, key_slice_instance, key_slice_path,
-- model_sha256, read_at (UTC).

-- Prints nothing unless :from or :to is not a date; then stops with an
-- error that says so (json_extract's message carries the text).
SELECT json_extract('{}', ':from and :to are study dates YYYYMMDD, e.g. .param set :from 20260101')
WHERE (:from IS NOT NULL AND (length(CAST(:from AS TEXT)) <> 8
                              OR CAST(:from AS TEXT) GLOB '*[^0-9]*'))
   OR (:to IS NOT NULL AND (length(CAST(:to AS TEXT)) <> 8
                            OR CAST(:to AS TEXT) GLOB '*[^0-9]*'));

SELECT study_uid,
       accession,
       patient_id,
       study_date,
       round(probability, 4) AS probability,
       round(threshold, 4) AS threshold,
       confidence_label,
       key_slice_instance,
       key_slice_path,
       model_sha256,
       read_at
FROM current_verdicts
WHERE verdict = 'hemorrhage'
  AND (:from IS NULL OR study_date >= CAST(:from AS TEXT))
  AND (:to IS NULL OR study_date <= CAST(:to AS TEXT))
ORDER BY study_date, study_uid;
