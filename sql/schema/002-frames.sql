-- 002-frames.sql - schema version 2 of the hemoscan audit database:
-- which frame of a multi-frame file (Enhanced CT) each slice is.
--
-- A multi-frame file holds many slices under one SOPInstanceUID and one
-- file_path, so those two no longer name a slice on their own. frame_number
-- is the frame, counted from 1 as DICOM counts frames (the first frame is
-- 1); NULL for a slice that is a single-frame file, which is every slice
-- recorded before this version.
ALTER TABLE slices ADD COLUMN frame_number INTEGER CHECK (frame_number IS NULL OR frame_number >= 1);
