-- 009-identity.sql - schema version 9 of the hemoscan audit database:
-- what each reading saw, instance by instance, so that a reading that saw
-- less never replaces one that saw more.
--
-- Built this way on purpose:
--   * reading_instances lists every accepted instance of a reading (every
--     slice of every series of its scan, read or not): its SOPInstanceUID
--     (the file's path when it has none), frame, the file it came from, and
--     that file's size, SHA-256 and whether it is a lossy copy. It is what
--     a reading saw. readings.instances_sha256 is computed over the same
--     (UID, frame, SHA-256) lines from this version on, so a corrected copy
--     sent again with the same UIDs is a new set of instances, read again.
--   * A new production verdict supersedes the study's current one only
--     when it read at least what the current one read: every instance of
--     the series the current one read, in a series it read too, each in
--     a copy no worse (lossless where the current one read lossless).
--     A reading that found more files but chose another series to read
--     did not look at the first one's evidence. Otherwise the new verdict
--     is recorded and outranked: outranked_by names the current verdict, which stands,
--     and outranked_reason says what was missing. One exception, so that no
--     positive is ever lost: a hemorrhage verdict supersedes a current
--     verdict that is not hemorrhage even when it saw less (the study rule
--     is "hemorrhage when any series read says so").
--     A current verdict recorded before this version has no instances
--     listed; a new verdict supersedes it as before.
--   * An outranked verdict is not current (index verdicts_current, view
--     current_verdicts) but it is a reading of those instances: the
--     watcher's "read already" question finds it, so the same partial
--     delivery is not read again at every pass. A later verdict that
--     supersedes the current one supersedes the outranked ones too.
--   * The files of the instances are where a later reading of the study
--     looks for them (with the watcher's done folder): a study whose second
--     part arrives in another folder is read again with the first part.
--
-- Applied by src/store/audit.c inside one transaction, which then sets
-- PRAGMA user_version = 9. Once released it never changes.

CREATE TABLE reading_instances (
    -- Every accepted instance (slice) a reading's scan found, read or not.
    reading_id       INTEGER NOT NULL REFERENCES readings (reading_id),
    instance_key     TEXT NOT NULL CHECK (length(instance_key) > 0),
                                      -- SOPInstanceUID as hemoscan keys it; the
                                      -- file's path when the file has none
    frame_number     INTEGER NOT NULL CHECK (frame_number >= 0),
                                      -- 1-based frame of a multi-frame file; 0 otherwise
    file_path        TEXT NOT NULL,   -- where it was read from
    file_size        INTEGER NOT NULL CHECK (file_size >= 0),
    file_sha256      TEXT NOT NULL CHECK (length(file_sha256) = 64
                                          AND file_sha256 NOT GLOB '*[^0-9a-f]*'),
    lossy            INTEGER NOT NULL CHECK (lossy IN (0, 1)),
                                      -- LossyImageCompression 01 or a lossy encoding
    series_read      INTEGER NOT NULL CHECK (series_read IN (0, 1)),
                                      -- 1 when its series was read (scored); 0 for a
                                      -- series the reading did not choose
    PRIMARY KEY (reading_id, instance_key, frame_number)
) WITHOUT ROWID;

CREATE INDEX reading_instances_by_path ON reading_instances (file_path);

ALTER TABLE verdicts ADD COLUMN outranked_by INTEGER REFERENCES verdicts (verdict_id)
    CHECK (outranked_by IS NULL OR outranked_by < verdict_id);
                                      -- the current verdict that saw more and stands;
                                      -- NULL for a verdict that took its place
ALTER TABLE verdicts ADD COLUMN outranked_reason TEXT
    CHECK ((outranked_reason IS NULL) = (outranked_by IS NULL));

CREATE TRIGGER verdicts_outranked_never_changes BEFORE UPDATE OF outranked_by, outranked_reason
ON verdicts
WHEN NEW.outranked_by IS NOT OLD.outranked_by OR NEW.outranked_reason IS NOT OLD.outranked_reason
BEGIN
    SELECT RAISE(ABORT, 'a recorded verdict is never changed; only superseded_by is set, once');
END;

CREATE TRIGGER verdicts_outranked_by_current BEFORE INSERT ON verdicts
WHEN NEW.outranked_by IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM verdicts WHERE verdict_id = NEW.outranked_by
                     AND study_id = NEW.study_id AND superseded_by IS NULL
                     AND outranked_by IS NULL AND purpose = 'production')
BEGIN
    SELECT RAISE(ABORT, 'a verdict is outranked only by the current verdict of its study');
END;

-- At most one current production verdict per study; outranked ones are
-- not current.
DROP INDEX verdicts_current;
CREATE UNIQUE INDEX verdicts_current ON verdicts (study_id)
    WHERE superseded_by IS NULL AND outranked_by IS NULL AND purpose = 'production';

-- The verdict that stands for each study: as in version 7, without the
-- outranked ones.
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
WHERE v.superseded_by IS NULL AND v.outranked_by IS NULL AND v.purpose = 'production';

CREATE TABLE watch_future_files (
    -- A drop-folder file (or a folder above it) whose change time was in
    -- the future when the watcher first saw it: a clock set wrong, or a
    -- file server's clock ahead. Its change time cannot say when it last
    -- changed, so the watcher counts it as changed when first seen (and
    -- says so once), rather than wait until that time comes.
    file_path       TEXT NOT NULL,
    size_bytes      INTEGER NOT NULL CHECK (size_bytes >= 0),
    changed_unix    REAL NOT NULL,   -- the newest change time it showed, Unix seconds
    first_seen_unix REAL NOT NULL,   -- when a watcher first saw it so
    first_seen_at   TEXT NOT NULL
                    CHECK (first_seen_at IS strftime('%Y-%m-%dT%H:%M:%fZ', first_seen_at)),
    run_id          INTEGER NOT NULL REFERENCES runs (run_id),
    PRIMARY KEY (file_path, size_bytes, changed_unix)
);
