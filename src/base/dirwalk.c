/* dirwalk.c - one depth-first folder walk with a visit callback (see
 * dirwalk.h for the contract and the options).
 *
 * Built this way on purpose:
 *   - One path buffer of HS_PATH_MAX bytes for the whole walk: a level
 *     appends "/name" and cuts it off again, so a path costs no
 *     allocation, and a path the buffer cannot hold is exactly a path the
 *     kernel would refuse (ENAMETOOLONG), which is how it is reported.
 *   - A folder's names are read and the folder closed before any entry is
 *     visited. Sorting needs the whole list anyway, and it keeps one
 *     descriptor open at a time however deep the tree goes.
 *   - Each level's entry, and its struct stat, live on that level's stack
 *     frame, so a visit can look at every folder above it through parent
 *     (the drop folder listing takes the newest folder time from them)
 *     without the walk keeping anything else. Recursion depth is bounded
 *     by the path length: at most HS_PATH_MAX / 2 levels. */
#include "hemoscan/dirwalk.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hemoscan/grow.h"

typedef struct {
    dev_t dev;
    ino_t ino;
} file_id;

typedef struct {
    const hs_dirwalk_options *opt;
    hs_dirwalk_visit visit;
    void *ctx;
    hs_error *err;
    char *buf; /* HS_PATH_MAX bytes: the path of the entry at hand */
    file_id *seen;
    int n_seen, cap_seen;
} walker;

/* 1 if st's file was seen before, else records it and returns 0; -1 when
 * out of memory. */
static int seen_before(walker *w, const struct stat *st)
{
    for (int i = 0; i < w->n_seen; i++)
        if (w->seen[i].dev == st->st_dev && w->seen[i].ino == st->st_ino)
            return 1;
    if (hs_grow((void **)&w->seen, &w->cap_seen, w->n_seen + 1, sizeof *w->seen) != 0)
        return -1;
    w->seen[w->n_seen++] = (file_id){st->st_dev, st->st_ino};
    return 0;
}

static int left_out(const hs_dirwalk_options *opt, const char *name)
{
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 1;
    if (opt->skip_hidden && name[0] == '.')
        return 1;
    return opt->skip_name != NULL && opt->skip_name(name);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The names in the folder at w->buf that are not left out, sorted when
 * asked; *names NULL, *n -1 and *error errno's value when the folder
 * cannot be opened. */
static hs_status read_names(walker *w, char ***names, int *n, int *error)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(w->buf);
    if (d == NULL) {
        *n = -1;
        *error = errno;
        return HS_OK;
    }
    int cap = 0;
    hs_status st = HS_OK;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (left_out(w->opt, e->d_name))
            continue;
        if (hs_grow((void **)names, &cap, *n + 1, sizeof **names) != 0 ||
            ((*names)[*n] = strdup(e->d_name)) == NULL) {
            st = hs_fail(w->err, HS_ERR_NOMEM, "%s: out of memory listing the folder", w->buf);
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (st != HS_OK) {
        free_names(*names, *n);
        *names = NULL;
        *n = 0;
        return st;
    }
    if (w->opt->sorted && *n > 1)
        qsort(*names, (size_t)*n, sizeof **names, cmp_name);
    return HS_OK;
}

/* Visits the entries of dir, whose path (len bytes) is in w->buf. */
static hs_status walk_dir(walker *w, hs_dirwalk_entry *dir, size_t len)
{
    char **names;
    int n, error = 0;
    hs_status st = read_names(w, &names, &n, &error);
    if (st != HS_OK)
        return st;
    if (n < 0) {
        dir->kind = HS_DIRWALK_DIR_ERROR;
        dir->error = error;
        return w->visit(w->ctx, dir, w->err);
    }
    for (int i = 0; i < n && st == HS_OK; i++) {
        hs_dirwalk_entry e = {HS_DIRWALK_FILE, w->buf, names[i], dir->depth + 1, NULL, 0, 0, dir, 0};
        size_t k = strlen(names[i]);
        if (len + 1 + k >= HS_PATH_MAX) {
            /* Cannot be named: the kernel would say ENAMETOOLONG. The
             * path is cut to its first HS_PATH_MAX - 1 bytes (len itself
             * may be HS_PATH_MAX - 1, leaving no room for the '/'). */
            if (len + 1 < HS_PATH_MAX) {
                w->buf[len] = '/';
                memcpy(w->buf + len + 1, names[i], HS_PATH_MAX - 1 - (len + 1));
            }
            w->buf[HS_PATH_MAX - 1] = '\0';
            e.kind = HS_DIRWALK_STAT_ERROR;
            e.error = ENAMETOOLONG;
            e.path_cut = 1;
            st = w->visit(w->ctx, &e, w->err);
            w->buf[len] = '\0';
            continue;
        }
        w->buf[len] = '/';
        memcpy(w->buf + len + 1, names[i], k + 1);
        struct stat sb;
        if ((w->opt->follow_links ? stat(w->buf, &sb) : lstat(w->buf, &sb)) != 0) {
            e.kind = HS_DIRWALK_STAT_ERROR;
            e.error = errno;
            st = w->visit(w->ctx, &e, w->err);
        } else {
            int seen = w->opt->once ? seen_before(w, &sb) : 0;
            e.st = &sb;
            if (seen < 0) {
                st = hs_fail(w->err, HS_ERR_NOMEM, "%s: out of memory", w->buf);
            } else if (seen > 0) {
                /* met before: left out */
            } else if (S_ISDIR(sb.st_mode)) {
                e.kind = HS_DIRWALK_DIR;
                st = w->visit(w->ctx, &e, w->err);
                if (st == HS_OK && !e.prune && (w->opt->max_depth < 0 || e.depth <= w->opt->max_depth))
                    st = walk_dir(w, &e, len + 1 + k);
            } else {
                st = w->visit(w->ctx, &e, w->err);
            }
        }
        w->buf[len] = '\0';
    }
    free_names(names, n);
    return st;
}

hs_status hs_dirwalk(const char *root, const hs_dirwalk_options *opt, hs_dirwalk_visit visit, void *ctx,
                     hs_error *err)
{
    if (root == NULL || opt == NULL || visit == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_dirwalk: NULL argument");
    walker w = {opt, visit, ctx, err, malloc(HS_PATH_MAX), NULL, 0, 0};
    if (w.buf == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", root);
    if (hs_path_printf(w.buf, HS_PATH_MAX, err, "%s", root) != HS_OK) {
        free(w.buf);
        return HS_ERR_ARG; /* too long for a path buffer: err names it */
    }
    size_t len = strlen(w.buf);
    struct stat sb;
    hs_dirwalk_entry top = {HS_DIRWALK_DIR, w.buf, root, 0, &sb, 0, 0, NULL, 0};
    hs_status st;
    if (stat(w.buf, &sb) != 0) {
        top.kind = HS_DIRWALK_DIR_ERROR;
        top.st = NULL;
        top.error = errno;
        st = visit(ctx, &top, err);
    } else if (opt->once && seen_before(&w, &sb) < 0) {
        st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", root);
    } else {
        st = walk_dir(&w, &top, len);
    }
    free(w.seen);
    free(w.buf);
    return st;
}
