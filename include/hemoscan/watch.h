/* watch.h - the drop folder: list it, group its files by study, tell
 * complete studies from ones still arriving, move files without ever
 * losing one, and keep a second watcher out. The watcher's engine
 * (watcher.h, run by hemoscan --watch) strings these together with the
 * study reader (study.h) and the audit database (audit.h).
 *
 * Grouping. Every regular file below the drop folder (up to 64 folders
 * down; names starting with '.' and temporary names, see
 * hs_watch_is_temp_name, are not looked at; symbolic links are not
 * followed; a deeper folder, or a path over HS_PATH_MAX bytes, is an
 * error entry, reported) has its header read once (hs_dicom_read_header, no pixels). Files whose header names a
 * StudyInstanceUID are grouped by its whole key (dicom.h: UIDs that differ
 * only after byte 64 or after a NUL are two studies) across the whole tree, whatever
 * folder they are in and whatever their verdict (an MR or corrupt file of
 * a study belongs to the study: the study reader skips it with its
 * reason). Everything else is a loose file with a verdict name and a
 * reason. A file or folder that cannot be read at all is an error entry.
 *
 * Stability. A study (or a loose file) is complete when the newest
 * modification or status-change time of its files, and of the folders
 * that hold them below the drop folder, is at least the stable age in the
 * past. The status-change time matters: a file moved in with `mv` keeps
 * its old modification time; a folder moved in keeps its files' times
 * altogether, and only the folder's own times tell. The drop folder's own
 * times are left out: every arrival changes them, and one study's files
 * must not keep another waiting.
 *
 * Moves are idempotent, so a move interrupted at any instant (kill -9,
 * power cut) is finished by doing it again: see hs_watch_move. */
#ifndef HEMOSCAN_WATCH_H
#define HEMOSCAN_WATCH_H

#include <stddef.h>

#include "hemoscan/dicom.h"
#include "hemoscan/status.h"

typedef enum {
    HS_WATCH_STUDY_FILE = 0, /* has a StudyInstanceUID */
    HS_WATCH_LOOSE,          /* belongs to no study; verdict and reason say why */
    HS_WATCH_ERROR           /* could not be read; reason holds the message */
} hs_watch_kind;

typedef struct {
    char *path;      /* drop/relative path */
    const char *rel; /* the path relative to the drop folder (inside path) */
    long long dev, ino, size;
    double mtime, ctime; /* Unix seconds */
    double newest;       /* newest of mtime, ctime and the mtime and ctime of every
                            folder between the drop folder and the file */
    hs_watch_kind kind;
    char study_uid[HS_UID_KEY_MAX]; /* the StudyInstanceUID key (dicom.h): never cut */
    char verdict[32];  /* loose: hs_dicom_verdict_name, or "no_study_uid", "not_regular" */
    char reason[256];  /* loose: one sentence; error: the message */
} hs_watch_file;

typedef struct {
    char study_uid[HS_UID_KEY_MAX];
    int n;         /* files of the study */
    int *file;     /* indexes into hs_watch_listing.files, in path order */
    double newest; /* newest hs_watch_file.newest of its files */
} hs_watch_study;

typedef struct {
    int n_files;
    hs_watch_file *files; /* ordered by path (strcmp) */
    int n_studies;
    hs_watch_study *studies; /* ordered by study UID */
    int n_loose, n_errors;
    int *loose, *errors;     /* indexes into files, in path order */
    int headers_read;        /* headers read by this listing (not taken from previous) */
} hs_watch_listing;

/* 1 for names the watcher leaves alone because they are still being
 * written or belong to something else: names starting with '.', and names
 * ending in ".tmp", ".part", ".partial" or "~". */
int hs_watch_is_temp_name(const char *name);

/* Asked before a file's header is read: nonzero when it must not be read
 * (a watcher died reading it before, see crash_note.h); the file then
 * becomes a loose file with verdict "crashed_reader" and the reason the
 * function wrote into reason (cap bytes). */
typedef int (*hs_watch_skip_fn)(void *ctx, const hs_watch_file *f, char *reason, size_t cap);

/* The file's own newest change time: the larger of its mtime and ctime
 * (what identifies an unchanged file in watch_crashes). */
double hs_watch_file_changed(const hs_watch_file *f);

/* Lists drop recursively into out (zeroed first; free with
 * hs_watch_listing_free, also after a failure). Folders named in exclude
 * (n_exclude of them, e.g. the done and quarantine folders when they lie
 * inside drop) are not entered; they are compared by device and inode, so
 * any spelling of the path works. previous (may be NULL) is an earlier
 * listing of the same folder: a file with the same path, device, inode,
 * size, mtime and ctime keeps its header verdict without being read again
 * (errors are always retried). skip (may be NULL) is asked, with
 * skip_ctx, before any other file's header is read; while it is asked and
 * the header read, the crash note (crash_note.h) is armed with the file.
 * Returns HS_ERR_IO only when drop itself cannot be opened; unreadable subfolders and files become error entries.
 * HS_ERR_NOMEM, HS_ERR_ARG otherwise. */
hs_status hs_watch_list(const char *drop, const char *const *exclude, int n_exclude,
                        const hs_watch_listing *previous, hs_watch_skip_fn skip, void *skip_ctx,
                        hs_watch_listing *out, hs_error *err);
void hs_watch_listing_free(hs_watch_listing *l);

/* 1 when a study, or a file, with this newest change time is complete at
 * time now (Unix seconds): now - newest >= stable_age_s. */
int hs_watch_is_stable(double newest, double now, double stable_age_s);

/* 1 when every file of study s still has the size, mtime, ctime and inode
 * listed (nothing was added to or rewritten in the study while it was
 * being read), 0 otherwise. */
int hs_watch_unchanged(const hs_watch_listing *l, const hs_watch_study *s);

/* Moves src to dst, creating dst's folders (mode 0750). Idempotent, and
 * safe to repeat after an interruption at any point:
 *   - src present, dst absent: rename(2); across file systems (EXDEV, or
 *     force_copy) copy to dst's folder as ".NAME.hemoscan-part", fsync,
 *     keep the times and mode, rename to dst, fsync the folder, and only
 *     then unlink src;
 *   - src absent, dst present: done already;
 *   - both present: an interrupted copy that had reached dst; when the
 *     contents are equal src is removed, otherwise both are kept and the
 *     call fails (HS_ERR_IO, naming both);
 *   - neither present: HS_ERR_IO ("not found").
 * The folders involved are fsynced, so a finished move survives a power
 * cut. HS_ERR_IO with the file and errno's message on any failure; a
 * failed copy removes its partial file and leaves src as it was. */
hs_status hs_watch_move(const char *src, const char *dst, int force_copy, hs_error *err);

/* Removes path; a path that is already gone is fine (idempotent). */
hs_status hs_watch_remove(const char *path, hs_error *err);

/* Where a file with path rel (relative to the drop folder) goes under
 * root: root/rel, or when that exists, root/rel.1, root/rel.2, ... (an
 * earlier file of the same name is never overwritten). HS_ERR_ARG when
 * the result does not fit in cap bytes. */
hs_status hs_watch_dest_path(const char *root, const char *rel, char *out, size_t cap,
                             hs_error *err);

/* Removes the now-empty folders between path's folder and drop (drop
 * itself stays); stops at the first folder that is not empty. */
void hs_watch_prune_dirs(const char *drop, const char *path);

/* One watcher per drop folder and database: an flock(2) on lock_path
 * (created 0600; it then holds "pid N", the start time and the drop
 * folder) and a shared-nothing flock on the drop folder itself. When
 * another process holds either lock, *busy is set, HS_ERR_IO is returned
 * and the message names the other process from the lock file ("another
 * hemoscan --watch (pid N) is processing DIR since TIME"). The locks go
 * with the process, so a killed watcher never leaves a stale lock. */
typedef struct {
    int fd, dir_fd;
} hs_watch_lock;

hs_status hs_watch_lock_take(const char *lock_path, const char *drop, hs_watch_lock *lock,
                             int *busy, hs_error *err);
void hs_watch_lock_release(hs_watch_lock *lock);

#endif
