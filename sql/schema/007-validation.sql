-- 007-validation.sql - schema version 7 of the hemoscan audit database:
-- validation runs (hemoscan --validate), which read a site's labelled
-- studies before go-live and must never change what stands as a study's
-- verdict.
--
-- A validation run reads studies exactly as a production run does and is
-- recorded the same way (readings, series, slices, verdicts), so that its
-- figures rest on the same evidence as any verdict. What differs:
--
--   * runs.purpose says which kind of run it is: 'production' (every run
--     before this version, --study and --watch) or 'validation'. It is set
--     when the run is recorded and never changes.
--   * verdicts.purpose repeats the purpose of the verdict's run (a partial
--     unique index needs it in this table; a trigger keeps the two equal).
--     A validation verdict neither supersedes nor is superseded: the
--     "one current verdict per study" index and the current_verdicts view
--     count production verdicts only, and the watcher's "already read"
--     question (audit.c) asks about production verdicts only. Reading a
--     study in validation therefore leaves its current verdict, and the
--     watcher's decision to read it again, exactly as they were.
--   * validation_labels keeps every label the site gave, row by row as
--     written in its label files: a study label linked to the validation
--     verdict of the study it matched (NULL when no study matched), or a
--     slice label with the SOPInstanceUID it names. With the view
--     validation_results an auditor recomputes sensitivity, specificity
--     and the confusion matrix with plain SQL (hemoscan-db(5) shows how).
--
-- Applied by src/store/audit.c inside one transaction, which then sets
-- PRAGMA user_version = 7. Once released it never changes.

ALTER TABLE runs ADD COLUMN purpose TEXT NOT NULL DEFAULT 'production'
    CHECK (purpose IN ('production', 'validation'));
ALTER TABLE verdicts ADD COLUMN purpose TEXT NOT NULL DEFAULT 'production'
    CHECK (purpose IN ('production', 'validation'));

CREATE TRIGGER runs_purpose_never_changes BEFORE UPDATE OF purpose ON runs
WHEN NEW.purpose IS NOT OLD.purpose
BEGIN
    SELECT RAISE(ABORT, 'a run''s purpose never changes');
END;

CREATE TRIGGER verdicts_purpose_never_changes BEFORE UPDATE OF purpose ON verdicts
WHEN NEW.purpose IS NOT OLD.purpose
BEGIN
    SELECT RAISE(ABORT, 'a recorded verdict is never changed; only superseded_by is set, once');
END;

CREATE TRIGGER verdicts_purpose_is_runs BEFORE INSERT ON verdicts
WHEN NEW.purpose IS NOT (SELECT u.purpose FROM readings AS r JOIN runs AS u ON u.run_id = r.run_id
                         WHERE r.reading_id = NEW.reading_id)
BEGIN
    SELECT RAISE(ABORT, 'verdicts.purpose must be the purpose of the verdict''s run');
END;

-- superseded_by points at a verdict that does not exist yet when it is
-- set (audit.c numbers the new verdict first), so the new verdict is
-- checked when it arrives.
CREATE TRIGGER verdicts_validation_supersedes_nothing BEFORE INSERT ON verdicts
WHEN NEW.purpose = 'validation'
     AND EXISTS (SELECT 1 FROM verdicts WHERE superseded_by = NEW.verdict_id)
BEGIN
    SELECT RAISE(ABORT, 'a validation verdict never supersedes a verdict');
END;

CREATE TRIGGER verdicts_validation_never_superseded BEFORE UPDATE OF superseded_by ON verdicts
WHEN OLD.purpose = 'validation' AND NEW.superseded_by IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'a validation verdict is never superseded');
END;

-- At most one current production verdict per study.
DROP INDEX verdicts_current;
CREATE UNIQUE INDEX verdicts_current ON verdicts (study_id)
    WHERE superseded_by IS NULL AND purpose = 'production';

-- The verdict that stands for each study: as in version 1, production
-- verdicts only.
DROP VIEW current_verdicts;
CREATE VIEW current_verdicts AS
SELECT v.verdict_id,
       s.study_id,
       s.study_uid,
       s.accession,
       s.patient_id,
       s.study_date,
       v.verdict,
       v.probability,
       v.threshold,
       v.confidence,
       v.confidence_label,
       v.reason,
       v.key_slice_id,
       v.key_slice_instance,
       k.sop_instance_uid AS key_slice_sop_instance_uid,
       k.file_path AS key_slice_path,
       d.series_uid AS decisive_series_uid,
       d.description AS decisive_series_description,
       v.model_sha256,
       r.reading_id,
       r.run_id,
       r.study_dir,
       r.instances_sha256,
       r.finished_at AS read_at,
       v.recorded_at
FROM verdicts AS v
JOIN studies AS s ON s.study_id = v.study_id
JOIN readings AS r ON r.reading_id = v.reading_id
LEFT JOIN slices AS k ON k.slice_id = v.key_slice_id
LEFT JOIN series AS d ON d.series_id = v.decisive_series_id
WHERE v.superseded_by IS NULL AND v.purpose = 'production';

CREATE TABLE validation_labels (
    -- One row of a label file given to a validation run, as written.
    validation_label_id INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL REFERENCES runs (run_id),  -- a validation run
    labels_file      TEXT NOT NULL,   -- the file as given (--labels or --slice-labels)
    line             INTEGER NOT NULL CHECK (line >= 1),
    study_key        TEXT             -- a study label: the study column as written (a
                     CHECK (length(study_key) > 0),  -- StudyInstanceUID or a folder name)
    sop_instance_uid TEXT             -- a slice label: the SOPInstanceUID it names
                     CHECK (length(sop_instance_uid) > 0),
    label            INTEGER NOT NULL CHECK (label IN (0, 1)),  -- 1 hemorrhage, 0 normal
    subtypes         TEXT,            -- study label: the subtypes given, ';'-separated, in
                                      -- hemoscan's spelling; NULL when none were given
    verdict_id       INTEGER REFERENCES verdicts (verdict_id),
                                      -- study label: the run's verdict of the study it
                                      -- matched; NULL when no study matched, or it could
                                      -- not be read
    recorded_at      TEXT NOT NULL
                     CHECK (recorded_at IS strftime('%Y-%m-%dT%H:%M:%fZ', recorded_at)),
    UNIQUE (run_id, labels_file, line),
    CHECK ((study_key IS NULL) <> (sop_instance_uid IS NULL)),
    CHECK (study_key IS NOT NULL OR (subtypes IS NULL AND verdict_id IS NULL))
);
CREATE INDEX validation_labels_by_verdict ON validation_labels (verdict_id) WHERE verdict_id IS NOT NULL;

CREATE TRIGGER validation_labels_of_validation_runs BEFORE INSERT ON validation_labels
WHEN (SELECT purpose FROM runs WHERE run_id = NEW.run_id) IS NOT 'validation'
     OR (NEW.verdict_id IS NOT NULL
         AND (SELECT r.run_id FROM verdicts AS v JOIN readings AS r ON r.reading_id = v.reading_id
              WHERE v.verdict_id = NEW.verdict_id) IS NOT NEW.run_id)
BEGIN
    SELECT RAISE(ABORT, 'validation labels belong to a validation run and to a verdict of that run');
END;

CREATE TRIGGER validation_labels_never_changed BEFORE UPDATE ON validation_labels
BEGIN
    SELECT RAISE(ABORT, 'validation labels are never changed');
END;

-- Each study label of a validation run next to the verdict the run gave
-- the study it matched (verdict NULL: no study matched the label).
CREATE VIEW validation_results AS
SELECT l.run_id,
       l.validation_label_id,
       l.labels_file,
       l.line,
       l.study_key,
       l.label,
       l.subtypes,
       v.verdict_id,
       s.study_uid,
       r.study_dir,
       v.verdict,
       v.probability,
       v.threshold,
       v.reason,
       k.sop_instance_uid AS key_slice_sop_instance_uid,
       k.file_path AS key_slice_path,
       v.model_sha256
FROM validation_labels AS l
LEFT JOIN verdicts AS v ON v.verdict_id = l.verdict_id
LEFT JOIN readings AS r ON r.reading_id = v.reading_id
LEFT JOIN studies AS s ON s.study_id = v.study_id
LEFT JOIN slices AS k ON k.slice_id = v.key_slice_id
WHERE l.study_key IS NOT NULL;
