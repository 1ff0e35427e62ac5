/* dirwalk.h - walking a folder tree, depth first, with one visit callback
 * per entry: the study scan (series.c) and the drop folder listing
 * (watch.c) both walk with it.
 *
 * What it is for. Both walks read folders, build paths, stat entries,
 * keep out names and folders, and report what cannot be read. They differ
 * in every one of those details, and each difference is something a user
 * relies on, so the differences are options and the rest is written once:
 *
 *   option        study scan              drop folder listing
 *   follow_links  yes (stat)              no (lstat: a link is a file)
 *   once          yes (loop guard)        no
 *   sorted        yes (reproducible)      no (the listing sorts itself)
 *   max_depth     no limit (-1)           64
 *   skip names    starting with '.'       hs_watch_is_temp_name
 *   prune         -                       the done and quarantine folders
 *
 * The contract.
 *   - Entries are visited depth first: a folder (HS_DIRWALK_DIR) just
 *     before its contents. With sorted, each folder's names in strcmp
 *     order, else in readdir order. The root itself is not visited, except
 *     as HS_DIRWALK_DIR_ERROR (depth 0) when it cannot be opened.
 *   - "." and ".." are never visited; neither are names starting with '.'
 *     with skip_hidden, nor names for which skip_name returns nonzero.
 *     Left-out names are not even examined.
 *   - Every other entry is examined (stat with follow_links, else lstat)
 *     and visited once as HS_DIRWALK_DIR, HS_DIRWALK_FILE (anything else:
 *     st says what) or HS_DIRWALK_STAT_ERROR (error holds errno; st is
 *     NULL). An entry whose path would not fit HS_PATH_MAX is not
 *     examined: it is a STAT_ERROR with error ENAMETOOLONG, which is what
 *     the kernel would answer, and path_cut set; its path is then cut to
 *     HS_PATH_MAX - 1 bytes.
 *   - With once, an entry whose device and inode were seen already (the
 *     root included; files too, so a hard link counts once) is left out
 *     silently: following links cannot loop.
 *   - A folder is entered after its visit unless the visit set prune, or
 *     its depth is more than max_depth (max_depth < 0: no limit; 0: the
 *     root's entries only). A folder that cannot be opened is visited a
 *     second time, as HS_DIRWALK_DIR_ERROR with error set.
 *   - The visit returns HS_OK to go on. Anything else stops the walk at
 *     once and hs_dirwalk returns it, with err as the visit filled it.
 *   - hs_dirwalk itself fails only with HS_ERR_ARG (a NULL argument, a
 *     root too long for HS_PATH_MAX) and HS_ERR_NOMEM; what cannot be
 *     read is the visit's to judge, so "the root cannot be opened" is an
 *     error only when the visit makes it one.
 *
 * Limits. The entry, its path and its st are valid only during the visit
 * (copy what must outlive it); so are the parents reached through parent.
 * Paths are the root as given, then "/" and a name per level: a root
 * ending in '/' gives "root//name", as the callers always produced. A
 * folder's names are read in full before its entries are visited, so
 * open descriptors stay at one at a time whatever the depth, and an entry
 * added while the walk runs may or may not be seen. once keeps every
 * (device, inode) in a list searched linearly, which is fine for the
 * thousands of files of a study and not meant for millions. */
#ifndef HEMOSCAN_DIRWALK_H
#define HEMOSCAN_DIRWALK_H

#include <sys/stat.h>

#include "hemoscan/path.h"
#include "hemoscan/status.h"

typedef enum {
    HS_DIRWALK_FILE = 0,  /* an entry that is not a folder */
    HS_DIRWALK_DIR,       /* a folder, before it is entered */
    HS_DIRWALK_DIR_ERROR, /* a folder that cannot be opened (the root: depth 0) */
    HS_DIRWALK_STAT_ERROR /* an entry that cannot be examined */
} hs_dirwalk_kind;

typedef struct hs_dirwalk_entry hs_dirwalk_entry;
struct hs_dirwalk_entry {
    hs_dirwalk_kind kind;
    const char *path;               /* root/.../name */
    const char *name;               /* the last part of path; the root for the root */
    int depth;                      /* 0 the root, 1 its entries, ... */
    const struct stat *st;          /* what stat or lstat said; NULL for a STAT_ERROR */
    int error;                      /* errno of an error kind, else 0 */
    int path_cut;                   /* STAT_ERROR: the path did not fit HS_PATH_MAX */
    const hs_dirwalk_entry *parent; /* the folder holding it; NULL for the root */
    int prune;                      /* DIR: the visit sets it to keep the folder unentered */
};

typedef hs_status (*hs_dirwalk_visit)(void *ctx, hs_dirwalk_entry *e, hs_error *err);

typedef struct {
    int follow_links; /* stat, so a link is what it points to; else lstat */
    int once;         /* each device and inode at most once */
    int sorted;       /* each folder's names in strcmp order */
    int max_depth;    /* deepest folder entered; < 0: no limit */
    int skip_hidden;  /* leave out names starting with '.' */
    int (*skip_name)(const char *name); /* NULL, or nonzero to leave a name out */
} hs_dirwalk_options;

/* Walks the tree below the folder root (always followed, as opendir
 * does), calling visit(ctx, entry, err) for each entry as described
 * above. */
hs_status hs_dirwalk(const char *root, const hs_dirwalk_options *opt, hs_dirwalk_visit visit, void *ctx,
                     hs_error *err);

#endif
