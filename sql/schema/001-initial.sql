-- 001-initial.sql - schema version 1 of the hemoscan audit database.
--
-- What every reading of a head CT study produced, so that an auditor can
-- answer "which study, which series, which slices, which model, which
-- score, which verdict, what went wrong and why" with plain SQL in the
-- sqlite3 shell. hemoscan-db(5) documents every table and column.
--
-- Built this way on purpose:
--   * Nothing is overwritten. A study read again (a new run, a new model,
--     more instances arrived) gets a new reading and a new verdict; the
--     previous verdict is marked superseded_by the new one and kept.
--     Triggers refuse to change or delete a recorded verdict.
--   * The database checks what it stores: verdict names, probabilities in
--     [0, 1], booleans 0/1, SHA-256 checksums, ISO 8601 times, and that a
--     verdict's fields agree with each other. A reading that breaks a rule
--     is refused whole (hemoscan writes a study in one transaction).
--   * Times are UTC text, 'YYYY-MM-DDTHH:MM:SS.SSSZ' (what
--     strftime('%Y-%m-%dT%H:%M:%fZ', ...) writes): readable as they are,
--     sortable and comparable as text. Study dates stay DICOM dates,
--     'YYYYMMDD', which also compare correctly as text.
--   * The comments inside each CREATE statement are part of the stored
--     schema: `.schema verdicts` in the sqlite3 shell shows them.
--
-- Applied by src/audit.c inside one transaction, which then sets
-- PRAGMA user_version = 1 and the application_id. This file must not
-- contain transaction statements or PRAGMAs. Once released it never
-- changes: a later schema version is a new file (002-....sql).

CREATE TABLE runs (
    -- One execution of hemoscan that recorded into this database.
    run_id           INTEGER PRIMARY KEY,
    started_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                     CHECK (started_at IS strftime('%Y-%m-%dT%H:%M:%fZ', started_at)),
    finished_at      TEXT            -- NULL while running, or when the run died
                     CHECK (finished_at IS strftime('%Y-%m-%dT%H:%M:%fZ', finished_at)
                            AND finished_at >= started_at),
    host             TEXT NOT NULL,  -- gethostname() of the machine
    hemoscan_version TEXT NOT NULL,  -- the version of the program that wrote the run
    mode             TEXT,           -- 'study', 'watch', ...
    command          TEXT,           -- the options as typed, without the program path
    model_path       TEXT,           -- the model file as given
    model_sha256     TEXT            -- SHA-256 of that file (its identity), lower-case hex
                     CHECK (model_sha256 IS NULL OR (length(model_sha256) = 64
                            AND model_sha256 NOT GLOB '*[^0-9a-f]*')),
    model_name       TEXT,           -- a human name for the model
    exit_status      INTEGER         -- the process exit status; NULL while running
                     CHECK (exit_status IS NULL OR exit_status BETWEEN 0 AND 255),
    CHECK ((finished_at IS NULL) = (exit_status IS NULL))
);

CREATE TABLE models (
    -- Every model that made a verdict, identified by the SHA-256 of its file.
    model_sha256         TEXT PRIMARY KEY
                         CHECK (length(model_sha256) = 64 AND model_sha256 NOT GLOB '*[^0-9a-f]*'),
    threshold            REAL NOT NULL CHECK (threshold > 0 AND threshold < 1),
    members              INTEGER NOT NULL CHECK (members >= 1),  -- ensemble size
    trained_at           TEXT,     -- the model's provenance date, as written in the file
    trained_by_version   TEXT,     -- hemoscan version that trained it
    training_data_sha256 TEXT,     -- checksum of the training data, as written in the file
    seed                 TEXT,     -- training seed, decimal (may exceed SQLite's integers)
    epochs               INTEGER,
    note                 TEXT,     -- provenance note, e.g. the training command
    first_recorded_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                         CHECK (first_recorded_at IS strftime('%Y-%m-%dT%H:%M:%fZ', first_recorded_at))
);

CREATE TABLE model_classes (
    -- The class names of a model, in the order of its outputs.
    model_sha256 TEXT NOT NULL REFERENCES models (model_sha256),
    class_index  INTEGER NOT NULL CHECK (class_index >= 0),
    name         TEXT NOT NULL,
    PRIMARY KEY (model_sha256, class_index)
);

CREATE TABLE studies (
    -- One row per StudyInstanceUID ever read. The identifying fields are
    -- those of the latest reading; readings keeps each reading's own copy.
    study_id      INTEGER PRIMARY KEY,
    study_uid     TEXT UNIQUE,  -- NULL when the files carry none: such a study
                                -- gets a new row at every reading
    accession     TEXT,         -- AccessionNumber, NULL when absent
    patient_id    TEXT,         -- PatientID exactly as stored in the files
    study_date    TEXT          -- StudyDate 'YYYYMMDD'; NULL when absent or not 8 digits
                  CHECK (study_date IS NULL OR (length(study_date) = 8
                         AND study_date NOT GLOB '*[^0-9]*')),
    first_read_at TEXT NOT NULL
                  CHECK (first_read_at IS strftime('%Y-%m-%dT%H:%M:%fZ', first_read_at)),
    last_read_at  TEXT NOT NULL
                  CHECK (last_read_at IS strftime('%Y-%m-%dT%H:%M:%fZ', last_read_at))
);

CREATE TABLE readings (
    -- One reading of one study folder by one run: what the files said and
    -- when. Its verdict is in verdicts, its series in series.
    reading_id       INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL REFERENCES runs (run_id),
    study_id         INTEGER NOT NULL REFERENCES studies (study_id),
    study_dir        TEXT NOT NULL,  -- the folder that was read
    accession        TEXT,           -- as stored in the files at this reading
    patient_id       TEXT,
    study_date       TEXT,           -- as stored, not checked
    instances_sha256 TEXT            -- SHA-256 over the sorted SOPInstanceUIDs of every
                                     -- accepted slice: "the same set of instances"
                     CHECK (instances_sha256 IS NULL OR (length(instances_sha256) = 64
                            AND instances_sha256 NOT GLOB '*[^0-9a-f]*')),
    files            INTEGER NOT NULL CHECK (files >= 0),  -- regular files found
    note             TEXT,           -- study-level note, e.g. why no series is readable
    started_at       TEXT NOT NULL
                     CHECK (started_at IS strftime('%Y-%m-%dT%H:%M:%fZ', started_at)),
    finished_at      TEXT NOT NULL
                     CHECK (finished_at IS strftime('%Y-%m-%dT%H:%M:%fZ', finished_at)
                            AND finished_at >= started_at)
);

CREATE TABLE series (
    -- Every series of a reading's scan, chosen or not, with why.
    series_id            INTEGER PRIMARY KEY,
    reading_id           INTEGER NOT NULL REFERENCES readings (reading_id),
    series_index         INTEGER NOT NULL CHECK (series_index >= 0),  -- order by series UID
    series_uid           TEXT NOT NULL,  -- SeriesInstanceUID as written, valid or not
    description          TEXT,           -- SeriesDescription of the first slice
    chosen               INTEGER NOT NULL CHECK (chosen IN (0, 1)),
    why                  TEXT,           -- one sentence: chosen or not, and why
    slice_count          INTEGER NOT NULL CHECK (slice_count >= 0),  -- accepted slices
    slice_thickness_mm   REAL CHECK (slice_thickness_mm IS NULL OR slice_thickness_mm > 0),
    spacing_mm           REAL CHECK (spacing_mm IS NULL OR spacing_mm > 0),
                                     -- median distance between neighbours; NULL if unknown
    gantry_tilt_deg      REAL NOT NULL,
    missing_slices       INTEGER NOT NULL CHECK (missing_slices >= 0),  -- in gaps
    inconsistent_spacing INTEGER NOT NULL CHECK (inconsistent_spacing IN (0, 1)),
    sort_method          TEXT NOT NULL
                         CHECK (sort_method IN ('position', 'instance_number', 'file_name')),
    sort_note            TEXT,           -- why not sorted by position; NULL when it was
    contrast             INTEGER NOT NULL CHECK (contrast IN (0, 1)),
    -- The verdict of this series alone, when it was read (scored); all
    -- NULL for a series that was not read.
    read_rank            INTEGER CHECK (read_rank IS NULL OR read_rank >= 0),
                                     -- 0 for the series read first (the best), 1, ...
    verdict              TEXT CHECK (verdict IS NULL
                              OR verdict IN ('no_hemorrhage', 'hemorrhage', 'not_assessable')),
    probability          REAL CHECK (probability IS NULL OR probability BETWEEN 0 AND 1),
    confidence           REAL CHECK (confidence IS NULL OR confidence BETWEEN 0 AND 1),
    confidence_label     TEXT CHECK (confidence_label IS NULL
                              OR confidence_label IN ('low', 'moderate', 'high')),
    key_slice_id         INTEGER REFERENCES slices (slice_id),
    scored_slices        INTEGER CHECK (scored_slices IS NULL OR scored_slices >= 0),
    reason               TEXT,           -- why not assessable
    UNIQUE (reading_id, series_index),
    CHECK ((read_rank IS NULL) = (verdict IS NULL)),
    CHECK ((read_rank IS NULL) = (scored_slices IS NULL)),
    CHECK (verdict IS NULL OR (verdict = 'not_assessable') = (probability IS NULL)),
    CHECK (verdict IS NULL OR (verdict = 'not_assessable') = (reason IS NOT NULL))
);

CREATE TABLE slices (
    -- Every slice of a series that was read, feet to head, with its score
    -- or the reason it has none.
    slice_id         INTEGER PRIMARY KEY,
    series_id        INTEGER NOT NULL REFERENCES series (series_id),
    slice_index      INTEGER NOT NULL CHECK (slice_index >= 0),  -- 0 = nearest the feet
    position_mm      REAL,     -- along the slice normal; NULL unless sorted by position
    instance_number  INTEGER,  -- InstanceNumber; NULL when absent
    sop_instance_uid TEXT,     -- SOPInstanceUID; NULL when absent
    file_path        TEXT NOT NULL,
    probability      REAL CHECK (probability IS NULL OR probability BETWEEN 0 AND 1),
    error            TEXT,     -- why the slice was not scored
    UNIQUE (series_id, slice_index),
    CHECK ((probability IS NULL) <> (error IS NULL))
);

CREATE TABLE skipped_files (
    -- Every file of a reading's folder that was not used, and why.
    skipped_file_id INTEGER PRIMARY KEY,
    reading_id      INTEGER NOT NULL REFERENCES readings (reading_id),
    file_path       TEXT NOT NULL,
    verdict         TEXT NOT NULL     -- 'not_dicom', 'localizer', 'duplicate', ... (see hemoscan-db(5))
                    CHECK (length(verdict) > 0 AND verdict NOT GLOB '*[^a-z_]*'),
    reason          TEXT
);

CREATE TABLE verdicts (
    -- The study verdict of each reading. Kept forever: a later reading of
    -- the same study supersedes it (superseded_by) instead of replacing it.
    verdict_id         INTEGER PRIMARY KEY,
    reading_id         INTEGER NOT NULL UNIQUE REFERENCES readings (reading_id),
    study_id           INTEGER NOT NULL REFERENCES studies (study_id),  -- the reading's study
    verdict            TEXT NOT NULL
                       CHECK (verdict IN ('no_hemorrhage', 'hemorrhage', 'not_assessable')),
    probability        REAL CHECK (probability IS NULL OR probability BETWEEN 0 AND 1),
                                   -- study probability; NULL when not assessable
    threshold          REAL NOT NULL CHECK (threshold > 0 AND threshold < 1),
    confidence         REAL CHECK (confidence IS NULL OR confidence BETWEEN 0 AND 1),
                                   -- margin from the threshold, not a calibrated probability
    confidence_label   TEXT CHECK (confidence_label IS NULL
                            OR confidence_label IN ('low', 'moderate', 'high')),
    key_slice_id       INTEGER REFERENCES slices (slice_id),
    key_slice_instance INTEGER,    -- InstanceNumber of the key slice, NULL if it has none
    decisive_series_id INTEGER REFERENCES series (series_id),
                                   -- the series the verdict comes from; NULL if none was read
    scored_slices      INTEGER NOT NULL CHECK (scored_slices >= 0),  -- of the decisive series
    reason             TEXT,       -- why not assessable; NULL otherwise
    model_sha256       TEXT NOT NULL REFERENCES models (model_sha256),
    recorded_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                       CHECK (recorded_at IS strftime('%Y-%m-%dT%H:%M:%fZ', recorded_at)),
    superseded_by      INTEGER REFERENCES verdicts (verdict_id) DEFERRABLE INITIALLY DEFERRED,
                                   -- the newer verdict of the same study; NULL = current
    superseded_at      TEXT
                       CHECK (superseded_at IS strftime('%Y-%m-%dT%H:%M:%fZ', superseded_at)),
    CHECK ((superseded_by IS NULL) = (superseded_at IS NULL)),
    CHECK (superseded_by IS NULL OR superseded_by > verdict_id),
    CHECK ((verdict = 'not_assessable') = (probability IS NULL)),
    CHECK ((verdict = 'not_assessable') = (confidence IS NULL)),
    CHECK ((verdict = 'not_assessable') = (confidence_label IS NULL)),
    CHECK ((verdict = 'not_assessable') = (key_slice_id IS NULL)),
    CHECK ((verdict = 'not_assessable') = (reason IS NOT NULL)),
    CHECK (verdict <> 'hemorrhage' OR probability >= threshold),
    CHECK (verdict <> 'no_hemorrhage' OR probability < threshold)
);

CREATE TABLE failures (
    -- A study folder that could not be read at all (no reading was made).
    failure_id  INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs (run_id),
    study_dir   TEXT NOT NULL,
    study_uid   TEXT,          -- when it was known
    stage       TEXT NOT NULL, -- 'scan', 'model', ...
    message     TEXT NOT NULL, -- the error line
    recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                CHECK (recorded_at IS strftime('%Y-%m-%dT%H:%M:%fZ', recorded_at))
);

-- At most one current verdict per study, enforced by the database.
CREATE UNIQUE INDEX verdicts_current ON verdicts (study_id) WHERE superseded_by IS NULL;
CREATE INDEX verdicts_by_study ON verdicts (study_id, verdict_id);
CREATE INDEX verdicts_by_model ON verdicts (model_sha256, verdict);
CREATE INDEX studies_by_date ON studies (study_date);
CREATE INDEX readings_by_study ON readings (study_id);
CREATE INDEX readings_by_run ON readings (run_id);
CREATE INDEX skipped_files_by_reading ON skipped_files (reading_id);
CREATE INDEX failures_by_run ON failures (run_id);
CREATE INDEX failures_by_study_uid ON failures (study_uid);

-- verdicts.study_id repeats readings.study_id (the unique index above
-- needs it in this table); it must agree.
CREATE TRIGGER verdicts_study_is_readings BEFORE INSERT ON verdicts
WHEN NEW.study_id IS NOT (SELECT study_id FROM readings WHERE reading_id = NEW.reading_id)
BEGIN
    SELECT RAISE(ABORT, 'verdicts.study_id must be the study of the verdict''s reading');
END;

-- A recorded verdict is evidence: it is never deleted, and the only change
-- ever made to it is marking it superseded, once.
CREATE TRIGGER verdicts_never_deleted BEFORE DELETE ON verdicts
BEGIN
    SELECT RAISE(ABORT, 'verdicts are never deleted; a newer verdict supersedes an old one');
END;

CREATE TRIGGER verdicts_never_rewritten
BEFORE UPDATE OF verdict_id, reading_id, study_id, verdict, probability, threshold, confidence,
    confidence_label, key_slice_id, key_slice_instance, decisive_series_id, scored_slices,
    reason, model_sha256, recorded_at ON verdicts
BEGIN
    SELECT RAISE(ABORT, 'a recorded verdict is never changed; only superseded_by is set, once');
END;

CREATE TRIGGER verdicts_superseded_once BEFORE UPDATE OF superseded_by, superseded_at ON verdicts
WHEN OLD.superseded_by IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'a superseded verdict stays superseded by the same verdict');
END;

-- The verdict that stands for each study, with what an auditor usually
-- wants next to it.
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
WHERE v.superseded_by IS NULL;
