-- 003-watch.sql - schema version 3 of the hemoscan audit database: what the
-- drop-folder watcher (hemoscan --watch) keeps besides the readings.
--
-- An in-place upgrade of version 1: three new tables, nothing changed in
-- the old ones. hemoscan-db(5) documents every column.
--
--   * watch_runs: one row per watch run, with the counts its summary line
--     printed, so that cron's mail and the database tell the same story.
--   * loose_files: files of the drop folder that belong to no study (not
--     DICOM, no StudyInstanceUID, DICOMDIR, ...), recorded once with the
--     reason (a file left in place is not recorded again every night).
--   * watch_files: every file the watcher moved to the done folder, deleted
--     or quarantined. Also the journal that makes those moves crash-safe:
--     a study's rows are committed as 'pending' before its first file
--     moves, and a watcher finishes every pending row before it looks at
--     the drop folder, so a study killed half-moved is never read again as
--     a smaller study.
--
-- Applied by src/audit.c inside one transaction, which then sets
-- PRAGMA user_version = 2. Once released it never changes.

CREATE TABLE watch_runs (
    -- What one `hemoscan --watch` run did: its settings and its counts.
    -- The counts are written when the run ends; a run killed before that
    -- keeps zeros here and NULL in runs.finished_at.
    run_id            INTEGER PRIMARY KEY REFERENCES runs (run_id),
    drop_dir          TEXT NOT NULL,  -- the drop folder as given
    done_dir          TEXT,           -- --done, NULL when not given
    quarantine_dir    TEXT,           -- --quarantine, NULL when not given
    disposal          TEXT NOT NULL   -- what happens to a study's files once read
                      CHECK (disposal IN ('leave', 'done', 'delete')),
    stable_age_s      REAL NOT NULL CHECK (stable_age_s >= 0),
    follow            INTEGER NOT NULL CHECK (follow IN (0, 1)),
    passes            INTEGER NOT NULL DEFAULT 0 CHECK (passes >= 0),
    studies_read      INTEGER NOT NULL DEFAULT 0 CHECK (studies_read >= 0),
    hemorrhage        INTEGER NOT NULL DEFAULT 0 CHECK (hemorrhage >= 0),
    no_hemorrhage     INTEGER NOT NULL DEFAULT 0 CHECK (no_hemorrhage >= 0),
    not_assessable    INTEGER NOT NULL DEFAULT 0 CHECK (not_assessable >= 0),
    already_read      INTEGER NOT NULL DEFAULT 0 CHECK (already_read >= 0),
                      -- studies found with the same instances and model as their current verdict
    waiting           INTEGER NOT NULL DEFAULT 0 CHECK (waiting >= 0),
                      -- studies not stable yet at the run's last pass
    failed            INTEGER NOT NULL DEFAULT 0 CHECK (failed >= 0),
                      -- studies and files that could not be processed (see failures)
    loose_files       INTEGER NOT NULL DEFAULT 0 CHECK (loose_files >= 0),
                      -- loose files recorded for the first time by this run
    files_done        INTEGER NOT NULL DEFAULT 0 CHECK (files_done >= 0),
    files_deleted     INTEGER NOT NULL DEFAULT 0 CHECK (files_deleted >= 0),
    files_quarantined INTEGER NOT NULL DEFAULT 0 CHECK (files_quarantined >= 0),
    CHECK (studies_read = hemorrhage + no_hemorrhage + not_assessable),
    CHECK ((disposal = 'done') = (done_dir IS NOT NULL))
);

CREATE TABLE loose_files (
    -- A file of the drop folder that belongs to no study, and why; one row
    -- per path, size and modification time (a changed file is new).
    loose_file_id INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs (run_id),  -- the run that found it
    file_path     TEXT NOT NULL,     -- where it was found
    size_bytes    INTEGER NOT NULL CHECK (size_bytes >= 0),
    modified_at   TEXT NOT NULL      -- its modification time
                  CHECK (modified_at IS strftime('%Y-%m-%dT%H:%M:%fZ', modified_at)),
    verdict       TEXT NOT NULL      -- 'not_dicom', 'no_study_uid', 'no_pixels', ... (see hemoscan-db(5))
                  CHECK (length(verdict) > 0 AND verdict NOT GLOB '*[^a-z_]*'),
    reason        TEXT,              -- one sentence
    recorded_at   TEXT NOT NULL
                  CHECK (recorded_at IS strftime('%Y-%m-%dT%H:%M:%fZ', recorded_at)),
    UNIQUE (file_path, size_bytes, modified_at)
);

CREATE TABLE watch_files (
    -- Every file the watcher moved, deleted or quarantined. A row is
    -- 'pending' from before the file is touched until it is where it
    -- should be, then 'finished'; rows are never deleted.
    watch_file_id INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs (run_id),  -- the run that planned it
    study_uid     TEXT,           -- the study it belongs to; NULL for a loose file
    action        TEXT NOT NULL CHECK (action IN ('done', 'delete', 'quarantine')),
    source_path   TEXT NOT NULL,  -- where it was in the drop folder
    dest_path     TEXT,           -- where it went; NULL when deleted
    reason        TEXT,           -- quarantine: why (also written beside the file)
    state         TEXT NOT NULL CHECK (state IN ('pending', 'finished')),
    planned_at    TEXT NOT NULL
                  CHECK (planned_at IS strftime('%Y-%m-%dT%H:%M:%fZ', planned_at)),
    finished_at   TEXT
                  CHECK (finished_at IS strftime('%Y-%m-%dT%H:%M:%fZ', finished_at)),
    finished_by_run INTEGER REFERENCES runs (run_id),  -- may be a later run than run_id
    CHECK ((action = 'delete') = (dest_path IS NULL)),
    CHECK ((state = 'finished') = (finished_at IS NOT NULL)),
    CHECK ((state = 'finished') = (finished_by_run IS NOT NULL))
);

CREATE INDEX watch_files_pending ON watch_files (watch_file_id) WHERE state = 'pending';
CREATE INDEX watch_files_by_study ON watch_files (study_uid, action);
CREATE INDEX loose_files_by_run ON loose_files (run_id);
