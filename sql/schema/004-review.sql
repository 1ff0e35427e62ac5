-- 004-review.sql - schema version 4 of the hemoscan audit database: the
-- review pictures (--review DIR) that belong to each verdict.
--
-- (Numbered 003 on the review branch; the watcher's schema takes 003 on
-- its own branch, so this file becomes 004 when both are merged. Keep the
-- whole review schema in this one file.)
--
-- hemoscan writes the review file first (under a temporary name, linked
-- into place when complete) and records it here only after: a row always
-- points at a file that was complete when it was recorded. The row is
-- written in its own transaction right after the verdict's, so a crash
-- between the two leaves a file without a row (never a row without a
-- file), and a failed review never loses the verdict. A file moved or
-- deleted later is found by comparing sha256 with the file on disk.
CREATE TABLE review_files (
    review_file_id INTEGER PRIMARY KEY,
    verdict_id     INTEGER NOT NULL REFERENCES verdicts (verdict_id),
    path           TEXT NOT NULL CHECK (length(path) > 0),  -- as written (the --review folder + name)
    sha256         TEXT NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    pages          INTEGER NOT NULL CHECK (pages >= 1),        -- TIFF pages, contact sheet included
    slice_pages    INTEGER NOT NULL CHECK (slice_pages >= 0 AND slice_pages < pages),
    bytes          INTEGER NOT NULL CHECK (bytes > 0),
    key_slice_id   INTEGER REFERENCES slices (slice_id),      -- the slice of page 1, if any
    saliency       TEXT NOT NULL,                             -- e.g. 'grad-cam layer 8 (5x5)'
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                   CHECK (created_at IS strftime('%Y-%m-%dT%H:%M:%fZ', created_at))
);
CREATE INDEX review_files_verdict ON review_files (verdict_id);
CREATE UNIQUE INDEX review_files_path ON review_files (path);
