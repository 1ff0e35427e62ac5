-- 006-watch-crashes.sql - schema version 6 of the hemoscan audit database:
-- the studies, and the files, in whose reading a watcher died of a fatal
-- signal.
--
-- hemoscan reports bad input and goes on, but a library it calls can still
-- crash or assert on a file no one has seen yet. A watcher that dies so
-- leaves a note beside the database (DB.watch-crash, see crash_note.h):
-- the study it had in hand, or the file whose header it was reading while
-- it listed the drop folder. The next run records it here before it reads
-- anything. While the study's files stay as they were (the same count, the
-- same newest change time) it is not read again: each run records it as
-- failed (stage 'crash' in failures) and, with --quarantine, quarantines
-- it. A file that crashed the listing becomes a loose file (verdict
-- 'crashed_reader') while its size and change time stay the same. What
-- changes is tried again. SIGKILL (kill -9, the OOM killer) cannot be
-- caught and leaves no row.
--
-- Applied by src/audit.c inside one transaction, which then sets
-- PRAGMA user_version = 6. Once released it never changes.

CREATE TABLE watch_crashes (
    watch_crash_id  INTEGER PRIMARY KEY,
    crashed_run_id  INTEGER NOT NULL REFERENCES runs (run_id),  -- the run that died
    recorded_by_run INTEGER NOT NULL REFERENCES runs (run_id),  -- the run that found its note
    study_uid       TEXT CHECK (length(study_uid) > 0),  -- the study in hand; NULL for a file
    file_path       TEXT CHECK (length(file_path) > 0),  -- the file whose header was being
                                      -- read; NULL for a study
    study_dir       TEXT NOT NULL,    -- the study's folder (as in failures.study_dir), or the file
    phase           TEXT NOT NULL     -- what the watcher was doing
                    CHECK (phase IN ('listing', 'scanning', 'reading', 'recording', 'reviewing',
                                     'moving', 'other')),
    signal          INTEGER NOT NULL CHECK (signal > 0),  -- the signal's number on the machine that died
    signal_name     TEXT NOT NULL,    -- 'SIGSEGV', 'SIGABRT' (a failed assert), 'SIGBUS', ...
    file_count      INTEGER NOT NULL CHECK (file_count > 0),  -- the study's files in the drop folder; 1
    file_bytes      INTEGER CHECK (file_bytes >= 0),          -- the file's size; NULL for a study
    files_changed_unix REAL NOT NULL, -- the newest change time, Unix seconds: of the study's files
                                      -- and their folders, or of the file itself; with the count or
                                      -- the size, what "unchanged" compares
    files_changed_at TEXT NOT NULL    -- the same time, readable
                    CHECK (files_changed_at IS strftime('%Y-%m-%dT%H:%M:%fZ', files_changed_at)),
    recorded_at     TEXT NOT NULL
                    CHECK (recorded_at IS strftime('%Y-%m-%dT%H:%M:%fZ', recorded_at)),
    CHECK ((study_uid IS NULL) <> (file_path IS NULL)),
    CHECK ((file_path IS NULL) = (file_bytes IS NULL)),
    CHECK (file_path IS NULL OR (file_count = 1 AND phase = 'listing'))
);
CREATE INDEX watch_crashes_by_study ON watch_crashes (study_uid) WHERE study_uid IS NOT NULL;
CREATE INDEX watch_crashes_by_file ON watch_crashes (file_path) WHERE file_path IS NOT NULL;
