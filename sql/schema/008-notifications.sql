-- 008-notifications.sql - schema version 8 of the hemoscan audit database:
-- honest words for negative verdicts, and a record of every --on-positive
-- command (issue 20, cases 7 and 8).
--
-- Negative verdicts. A verdict's confidence is a margin from the threshold
-- (hemoscan-db(5)), and its label named that margin low, moderate or high
-- on both sides. On a negative it read as reassurance: a 20 mm subdural
-- that scored 0.13 against a threshold of 0.40 was stored as
-- "no_hemorrhage, confidence_label moderate". From this version on a
-- no_hemorrhage verdict (of the study, or of one series) is recorded with
-- confidence_label 'low', whatever its margin: a score below the threshold
-- does not rule out a bleed. The margin itself stays in confidence, and
-- probability and threshold say what was measured. A trigger refuses any
-- other label on a new row; rows recorded before stay exactly as they were
-- (verdicts are never changed).
--
-- Why a trigger and not a NULL label: the CHECKs of version 1 tie a NULL
-- label to not_assessable, and lifting them means rebuilding the verdicts
-- table (SQLite cannot drop a CHECK) with its eight triggers, four indexes,
-- two views and the foreign keys that point at it, inside the upgrade's
-- transaction with foreign keys on. 'low' is true of every negative, keeps
-- every reader of the column working, and takes one trigger.
--
-- Notifications. hemoscan --on-positive CMD runs CMD for each positive
-- study after its verdict is recorded; each run is one row here, written
-- when the command has ended, whatever the outcome. A failed command never
-- changes the verdict; this row is how an auditor sees that nobody was
-- told.
--
-- Applied by src/store/audit.c inside one transaction, which then sets
-- PRAGMA user_version = 8. Once released it never changes.

CREATE TRIGGER verdicts_negative_label_low BEFORE INSERT ON verdicts
WHEN NEW.verdict = 'no_hemorrhage' AND NEW.confidence_label IS NOT 'low'
BEGIN
    SELECT RAISE(ABORT, 'a no_hemorrhage verdict is recorded with confidence_label ''low''');
END;

CREATE TRIGGER series_negative_label_low BEFORE INSERT ON series
WHEN NEW.verdict = 'no_hemorrhage' AND NEW.confidence_label IS NOT 'low'
BEGIN
    SELECT RAISE(ABORT, 'a no_hemorrhage series is recorded with confidence_label ''low''');
END;

-- audit.c inserts a series, then writes its verdict with an UPDATE after
-- its slices; rows of earlier versions are left as they are.
CREATE TRIGGER series_negative_label_low_update BEFORE UPDATE OF verdict, confidence_label ON series
WHEN NEW.verdict = 'no_hemorrhage' AND NEW.confidence_label IS NOT 'low'
     AND (NEW.verdict IS NOT OLD.verdict OR NEW.confidence_label IS NOT OLD.confidence_label)
BEGIN
    SELECT RAISE(ABORT, 'a no_hemorrhage series is recorded with confidence_label ''low''');
END;

CREATE TABLE notifications (
    -- One run of the --on-positive command for a positive verdict.
    notification_id INTEGER PRIMARY KEY,
    verdict_id      INTEGER NOT NULL REFERENCES verdicts (verdict_id),
    command         TEXT NOT NULL CHECK (length(command) > 0),  -- as given, run by /bin/sh -c
    started_at      TEXT NOT NULL
                    CHECK (started_at IS strftime('%Y-%m-%dT%H:%M:%fZ', started_at)),
    finished_at     TEXT NOT NULL
                    CHECK (finished_at IS strftime('%Y-%m-%dT%H:%M:%fZ', finished_at)),
    outcome         TEXT NOT NULL
                    CHECK (outcome IN ('ok', 'exit_status', 'signal', 'timeout', 'not_started')),
                    -- ok: exit status 0; exit_status: another exit status (127: the
                    -- shell found no such program); signal: killed by a signal it
                    -- was not sent by hemoscan; timeout: still running at the time
                    -- limit, killed; not_started: hemoscan could not start the shell
    exit_status     INTEGER CHECK (exit_status IS NULL OR exit_status BETWEEN 0 AND 255),
    signal          INTEGER CHECK (signal IS NULL OR signal > 0),
    timeout_s       REAL NOT NULL CHECK (timeout_s > 0),  -- the time limit it ran under
    message         TEXT,     -- what went wrong, one line; NULL when ok
    CHECK (finished_at >= started_at),
    CHECK ((outcome IN ('ok', 'exit_status')) = (exit_status IS NOT NULL)),
    CHECK ((outcome = 'ok') = (exit_status IS 0)),
    CHECK ((outcome = 'signal') = (signal IS NOT NULL)),
    CHECK ((outcome = 'ok') = (message IS NULL))
);
CREATE INDEX notifications_by_verdict ON notifications (verdict_id);

CREATE TRIGGER notifications_of_positives BEFORE INSERT ON notifications
WHEN (SELECT verdict FROM verdicts WHERE verdict_id = NEW.verdict_id) IS NOT 'hemorrhage'
BEGIN
    SELECT RAISE(ABORT, 'a notification belongs to a hemorrhage verdict');
END;

CREATE TRIGGER notifications_never_changed BEFORE UPDATE ON notifications
BEGIN
    SELECT RAISE(ABORT, 'a recorded notification is never changed');
END;

CREATE TRIGGER notifications_never_deleted BEFORE DELETE ON notifications
BEGIN
    SELECT RAISE(ABORT, 'a recorded notification is never deleted');
END;
