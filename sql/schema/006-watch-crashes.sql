-- 006-watch-crashes.sql - schema version 6 of the hemoscan audit database:
-- the studies in whose reading a watcher died of a fatal signal.
--
-- hemoscan reports bad input and goes on, but a library it calls can still
-- crash or assert on a file no one has seen yet. A watcher that dies so
-- leaves a note beside the database (DB.watch-crash, see crash_note.h);
-- the next run records it here before it reads anything, and while the
-- study's files stay as they were (the same count, the same newest change
-- time) it is not read again: each run records it as failed (stage
-- 'crash' in failures) and, with --quarantine, quarantines it. A study
-- whose files change is tried again. SIGKILL (kill -9, the OOM killer)
-- cannot be caught and leaves no row.
--
-- Applied by src/audit.c inside one transaction, which then sets
-- PRAGMA user_version = 6. Once released it never changes.

CREATE TABLE watch_crashes (
    watch_crash_id  INTEGER PRIMARY KEY,
    crashed_run_id  INTEGER NOT NULL REFERENCES runs (run_id),  -- the run that died
    recorded_by_run INTEGER NOT NULL REFERENCES runs (run_id),  -- the run that found its note
    study_uid       TEXT NOT NULL CHECK (length(study_uid) > 0),
    study_dir       TEXT NOT NULL,    -- the study's folder, as in failures.study_dir
    phase           TEXT NOT NULL     -- what the watcher was doing with the study
                    CHECK (phase IN ('scanning', 'reading', 'recording', 'reviewing', 'moving', 'other')),
    signal          INTEGER NOT NULL CHECK (signal > 0),  -- the signal's number on the machine that died
    signal_name     TEXT NOT NULL,    -- 'SIGSEGV', 'SIGABRT' (a failed assert), 'SIGBUS', ...
    file_count      INTEGER NOT NULL CHECK (file_count > 0),  -- the study's files in the drop folder
    files_changed_unix REAL NOT NULL, -- the newest change time of those files and their
                                      -- folders, Unix seconds: with file_count, what "unchanged" compares
    files_changed_at TEXT NOT NULL    -- the same time, readable
                    CHECK (files_changed_at IS strftime('%Y-%m-%dT%H:%M:%fZ', files_changed_at)),
    recorded_at     TEXT NOT NULL
                    CHECK (recorded_at IS strftime('%Y-%m-%dT%H:%M:%fZ', recorded_at))
);
CREATE INDEX watch_crashes_by_study ON watch_crashes (study_uid);
