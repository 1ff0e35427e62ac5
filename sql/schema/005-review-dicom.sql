-- 005-review-dicom.sql - schema version 5 of the hemoscan audit database:
-- the review's key image as a DICOM Secondary Capture (--review-dicom).
--
-- The capture is written together with the review TIFF and recorded in
-- the TIFF's row, by the same INSERT: a row names both files or the TIFF
-- alone (every row before this version, and reviews without
-- --review-dicom), never a capture without its TIFF. The UIDs are the ones
-- PACS shows once the file is sent with storescu: the source study, a
-- series and an instance of the capture's own. The slice it shows and
-- refers to (SourceImageSequence) is the row's key_slice_id.
ALTER TABLE review_files ADD COLUMN dicom_path TEXT CHECK (dicom_path IS NULL OR length(dicom_path) > 0);
ALTER TABLE review_files ADD COLUMN dicom_sha256 TEXT
    CHECK (dicom_sha256 IS NULL OR (length(dicom_sha256) = 64 AND dicom_sha256 NOT GLOB '*[^0-9a-f]*'));
ALTER TABLE review_files ADD COLUMN dicom_bytes INTEGER CHECK (dicom_bytes IS NULL OR dicom_bytes > 0);
ALTER TABLE review_files ADD COLUMN dicom_study_uid TEXT;
ALTER TABLE review_files ADD COLUMN dicom_series_uid TEXT;
-- all six present or all six NULL
ALTER TABLE review_files ADD COLUMN dicom_sop_uid TEXT
    CHECK ((dicom_sop_uid IS NULL) = (dicom_path IS NULL) AND (dicom_sop_uid IS NULL) = (dicom_sha256 IS NULL)
           AND (dicom_sop_uid IS NULL) = (dicom_bytes IS NULL) AND (dicom_sop_uid IS NULL) = (dicom_study_uid IS NULL)
           AND (dicom_sop_uid IS NULL) = (dicom_series_uid IS NULL));
CREATE UNIQUE INDEX review_files_dicom_sop ON review_files (dicom_sop_uid) WHERE dicom_sop_uid IS NOT NULL;
