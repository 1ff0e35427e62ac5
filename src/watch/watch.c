/* watch.c - the drop folder (see watch.h): listing and grouping by study,
 * stability, idempotent moves and the watcher's lock.
 *
 * Built this way on purpose:
 *   - The listing (a walk with hs_dirwalk, dirwalk.h) is a plain array
 *     sorted by path, so the next pass of --follow finds a file's earlier
 *     header verdict by binary search and reads only what is new or
 *     changed (the key is path, device, inode, size, mtime and ctime: any
 *     rewrite changes one of them).
 *   - Moves never lose a file. A rename is atomic. A copy (across file
 *     systems) goes to a hidden ".NAME.hemoscan-part" beside the target,
 *     is fsynced, then renamed into place, and the source is unlinked only
 *     after that; every state an interruption can leave (part file, both
 *     copies, only the target) is recognised and finished by calling
 *     hs_watch_move again. The part file's name is fixed, so a retry
 *     overwrites a stale one instead of leaving it behind.
 *   - Each header the listing reads is read with the crash note armed
 *     with its file (crash_note.h): a header that kills the process is
 *     named for the next run, which can then leave it unread.
 *   - The lock is flock(2), which the kernel drops when the process dies:
 *     a watcher killed with SIGKILL leaves no stale lock to clean up. The
 *     drop folder's own descriptor is locked too (flock works on
 *     directories, and needs no write permission), so two watchers with
 *     different databases still cannot share a drop folder. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hemoscan/crash_note.h"
#include "hemoscan/dicom.h"
#include "hemoscan/dirwalk.h"
#include "hemoscan/fileio.h"
#include "hemoscan/grow.h"
#include "hemoscan/path.h"

static double time_of(struct timespec ts)
{
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int hs_watch_is_temp_name(const char *name)
{
    static const char *const endings[] = {".tmp", ".part", ".partial", "~"};
    if (name == NULL || name[0] == '.' || name[0] == '\0')
        return 1;
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof endings / sizeof endings[0]; i++) {
        size_t k = strlen(endings[i]);
        if (n >= k && strcmp(name + n - k, endings[i]) == 0)
            return 1;
    }
    return 0;
}

int hs_watch_is_stable(double newest, double now, double stable_age_s)
{
    return now - newest >= stable_age_s;
}

/* ---- listing ------------------------------------------------------------------- */

typedef struct {
    hs_watch_listing *out;
    int cap;
    size_t root_len; /* of the drop folder's path, trailing slashes left out */
    const char *const *exclude;
    int n_exclude;
    dev_t *ex_dev;
    ino_t *ex_ino;
} list_state;

static hs_watch_file *add_file(list_state *w, const char *path)
{
    hs_watch_listing *l = w->out;
    if (hs_grow((void **)&l->files, &w->cap, l->n_files + 1, sizeof *l->files) != 0)
        return NULL;
    hs_watch_file *f = &l->files[l->n_files];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (f->path == NULL)
        return NULL;
    f->rel = f->path + w->root_len + (path[w->root_len] == '/');
    l->n_files++;
    return f;
}

/* Deepest folder the listing enters below the drop folder: storescp and
 * PACS exports nest a few levels; a deeper tree is reported, not walked. */
#define MAX_DEPTH 64

static int watch_excluded(const list_state *w, const struct stat *st)
{
    for (int i = 0; i < w->n_exclude; i++)
        if (w->ex_dev[i] == st->st_dev && w->ex_ino[i] == st->st_ino)
            return 1;
    return 0;
}

/* The newest modification or status-change time of the folders between
 * the drop folder (left out) and e: walked up through e's parents. */
static double folders_newest(const hs_dirwalk_entry *e)
{
    double newest = 0.0;
    for (const hs_dirwalk_entry *p = e->parent; p != NULL && p->depth > 0; p = p->parent) {
        double t = time_of(p->st->st_mtim), c = time_of(p->st->st_ctim);
        if (t > newest)
            newest = t;
        if (c > newest)
            newest = c;
    }
    return newest;
}

/* The listing's visit (dirwalk.h). The drop folder failing to open is the
 * only error; a subfolder that cannot be opened, or an entry that cannot
 * be examined, becomes an error entry; so do a path that does not fit
 * HS_PATH_MAX (named by its first HS_PATH_MAX - 1 bytes) and a folder
 * deeper than MAX_DEPTH, which the walk does not enter: nothing below the
 * drop folder goes unread without a word. An entry gone meanwhile has
 * nothing to list. Excluded folders are not entered. Everything that is
 * not a folder is a file of the listing; a non-regular one is loose at
 * once. */
static hs_status list_visit(void *ctx, hs_dirwalk_entry *e, hs_error *err)
{
    list_state *w = ctx;
    hs_watch_file *f;
    switch (e->kind) {
    case HS_DIRWALK_DIR_ERROR:
        if (e->depth == 0)
            return hs_fail(err, HS_ERR_IO, "%s: cannot open the drop folder: %s", e->path,
                           strerror(e->error));
        f = add_file(w, e->path);
        if (f == NULL)
            return hs_fail(err, HS_ERR_NOMEM, "out of memory listing %s", e->path);
        f->kind = HS_WATCH_ERROR;
        snprintf(f->reason, sizeof f->reason, "cannot open folder: %s", strerror(e->error));
        return HS_OK;
    case HS_DIRWALK_STAT_ERROR:
        if (e->error == ENOENT)
            return HS_OK;
        f = add_file(w, e->path);
        if (f == NULL)
            return hs_fail(err, HS_ERR_NOMEM, "out of memory listing %s", e->path);
        f->kind = HS_WATCH_ERROR;
        if (e->path_cut)
            snprintf(f->reason, sizeof f->reason, "a path longer than %d bytes (cut here): "
                     "not read", HS_PATH_MAX - 1);
        else
            snprintf(f->reason, sizeof f->reason, "cannot examine: %s", strerror(e->error));
        return HS_OK;
    case HS_DIRWALK_DIR:
        e->prune = watch_excluded(w, e->st);
        if (!e->prune && e->depth > MAX_DEPTH) {
            /* not entered by the walk: say so, rather than never see it */
            f = add_file(w, e->path);
            if (f == NULL)
                return hs_fail(err, HS_ERR_NOMEM, "out of memory listing %s", e->path);
            f->kind = HS_WATCH_ERROR;
            snprintf(f->reason, sizeof f->reason, "a folder more than %d folders below the drop "
                     "folder: not entered, its files not read", MAX_DEPTH);
        }
        return HS_OK;
    case HS_DIRWALK_FILE:
        break;
    }
    f = add_file(w, e->path);
    if (f == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory listing %s", e->path);
    const struct stat *sb = e->st;
    f->dev = (long long)sb->st_dev;
    f->ino = (long long)sb->st_ino;
    f->size = (long long)sb->st_size;
    f->mtime = time_of(sb->st_mtim);
    f->ctime = time_of(sb->st_ctim);
    f->newest = hs_watch_file_changed(f);
    double dir_newest = folders_newest(e);
    if (dir_newest > f->newest)
        f->newest = dir_newest;
    if (!S_ISREG(sb->st_mode)) {
        f->kind = HS_WATCH_LOOSE;
        snprintf(f->verdict, sizeof f->verdict, "not_regular");
        snprintf(f->reason, sizeof f->reason, "not a regular file (%s)",
                 S_ISLNK(sb->st_mode) ? "a symbolic link" : "a device, socket or pipe");
    }
    return HS_OK;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const hs_watch_file *)a)->path, ((const hs_watch_file *)b)->path);
}

static const hs_watch_file *find_previous(const hs_watch_listing *prev, const hs_watch_file *f)
{
    if (prev == NULL || prev->n_files == 0)
        return NULL;
    const hs_watch_file *p = bsearch(f, prev->files, (size_t)prev->n_files, sizeof *f, by_path);
    if (p == NULL || p->kind == HS_WATCH_ERROR || p->dev != f->dev || p->ino != f->ino ||
        p->size != f->size || p->mtime != f->mtime || p->ctime != f->ctime)
        return NULL;
    return p;
}

/* The header verdict of a regular file: study file, loose or error. */
static void classify(hs_watch_file *f, hs_dicom_header *h)
{
    hs_dicom_verdict v;
    char reason[256] = "";
    hs_error err = {0};
    if (hs_dicom_read_header(f->path, h, &v, reason, &err) != HS_OK) {
        f->kind = HS_WATCH_ERROR;
        snprintf(f->reason, sizeof f->reason, "%.255s", err.msg);
        return;
    }
    if (h->study_uid[0] != '\0') {
        f->kind = HS_WATCH_STUDY_FILE;
        snprintf(f->study_uid, sizeof f->study_uid, "%s", h->study_uid);
        snprintf(f->verdict, sizeof f->verdict, "%s", hs_dicom_verdict_name(v));
        return;
    }
    f->kind = HS_WATCH_LOOSE;
    if (v == HS_DICOM_OK) {
        snprintf(f->verdict, sizeof f->verdict, "no_study_uid");
        snprintf(f->reason, sizeof f->reason, "a CT image without StudyInstanceUID");
    } else {
        snprintf(f->verdict, sizeof f->verdict, "%s", hs_dicom_verdict_name(v));
        snprintf(f->reason, sizeof f->reason, "%s", reason[0] ? reason : "not a CT image");
    }
}

static int by_study_then_path(const void *a, const void *b)
{
    const hs_watch_file *x = *(const hs_watch_file *const *)a;
    const hs_watch_file *y = *(const hs_watch_file *const *)b;
    int c = strcmp(x->study_uid, y->study_uid);
    return c != 0 ? c : strcmp(x->path, y->path);
}

/* The studies, loose files and errors of a sorted file array. */
static hs_status watch_group(hs_watch_listing *l, hs_error *err)
{
    int n = l->n_files;
    const hs_watch_file **idx = malloc((size_t)(n > 0 ? n : 1) * sizeof *idx);
    l->loose = malloc((size_t)(n > 0 ? n : 1) * sizeof *l->loose);
    l->errors = malloc((size_t)(n > 0 ? n : 1) * sizeof *l->errors);
    if (idx == NULL || l->loose == NULL || l->errors == NULL) {
        free(idx);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory grouping the drop folder");
    }
    int n_study_files = 0;
    for (int i = 0; i < n; i++) {
        if (l->files[i].kind == HS_WATCH_STUDY_FILE)
            idx[n_study_files++] = &l->files[i];
        else if (l->files[i].kind == HS_WATCH_LOOSE)
            l->loose[l->n_loose++] = i;
        else
            l->errors[l->n_errors++] = i;
    }
    if (n_study_files > 1)
        qsort(idx, (size_t)n_study_files, sizeof *idx, by_study_then_path);
    int n_studies = 0;
    for (int i = 0; i < n_study_files; i++)
        if (i == 0 || strcmp(idx[i]->study_uid, idx[i - 1]->study_uid) != 0)
            n_studies++;
    l->studies = calloc((size_t)(n_studies > 0 ? n_studies : 1), sizeof *l->studies);
    if (l->studies == NULL) {
        free(idx);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory grouping the drop folder");
    }
    hs_status st = HS_OK;
    for (int i = 0; i < n_study_files && st == HS_OK;) {
        int j = i;
        while (j < n_study_files && strcmp(idx[j]->study_uid, idx[i]->study_uid) == 0)
            j++;
        hs_watch_study *s = &l->studies[l->n_studies++];
        snprintf(s->study_uid, sizeof s->study_uid, "%s", idx[i]->study_uid);
        s->n = j - i;
        s->file = malloc((size_t)s->n * sizeof *s->file);
        if (s->file == NULL) {
            st = hs_fail(err, HS_ERR_NOMEM, "out of memory grouping the drop folder");
            break;
        }
        for (int k = i; k < j; k++) {
            const hs_watch_file *f = idx[k];
            s->file[k - i] = (int)(f - l->files);
            if (k == i || f->newest > s->newest)
                s->newest = f->newest;
        }
        i = j;
    }
    free(idx);
    return st;
}

double hs_watch_file_changed(const hs_watch_file *f)
{
    return f->mtime > f->ctime ? f->mtime : f->ctime;
}

hs_status hs_watch_list(const char *drop, const char *const *exclude, int n_exclude,
                        const hs_watch_listing *previous, hs_watch_skip_fn skip, void *skip_ctx,
                        hs_watch_listing *out, hs_error *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (drop == NULL || out == NULL || (n_exclude > 0 && exclude == NULL) || n_exclude < 0)
        return hs_fail(err, HS_ERR_ARG, "hs_watch_list: NULL argument");
    size_t root_len = strlen(drop);
    while (root_len > 1 && drop[root_len - 1] == '/')
        root_len--;
    if (root_len == 0 || root_len >= HS_PATH_MAX)
        return hs_fail(err, HS_ERR_ARG, "%s: not a usable drop folder path", drop);
    list_state w = {out, 0, root_len, exclude, n_exclude, NULL, NULL};
    w.ex_dev = calloc((size_t)(n_exclude > 0 ? n_exclude : 1), sizeof *w.ex_dev);
    w.ex_ino = calloc((size_t)(n_exclude > 0 ? n_exclude : 1), sizeof *w.ex_ino);
    char *buf = malloc(HS_PATH_MAX);
    hs_dicom_header *h = malloc(sizeof *h);
    hs_status st = HS_OK;
    if (w.ex_dev == NULL || w.ex_ino == NULL || buf == NULL || h == NULL)
        st = hs_fail(err, HS_ERR_NOMEM, "out of memory listing %s", drop);
    for (int i = 0; st == HS_OK && i < n_exclude; i++) {
        struct stat sb;
        if (exclude[i] != NULL && stat(exclude[i], &sb) == 0) {
            w.ex_dev[i] = sb.st_dev;
            w.ex_ino[i] = sb.st_ino;
        }
    }
    if (st == HS_OK) {
        /* The walk:
         *   - symbolic links are not followed (a link is a loose file);
         *   - names still being written are left out;
         *   - folders more than 64 levels down are not entered;
         *   - unsorted, as the listing sorts itself. */
        const hs_dirwalk_options walk_opt = {.max_depth = MAX_DEPTH, .skip_name = hs_watch_is_temp_name};
        memcpy(buf, drop, root_len);
        buf[root_len] = '\0';
        st = hs_dirwalk(buf, &walk_opt, list_visit, &w, err);
    }
    if (st == HS_OK && out->n_files > 1)
        qsort(out->files, (size_t)out->n_files, sizeof *out->files, by_path);
    for (int i = 0; st == HS_OK && i < out->n_files; i++) {
        hs_watch_file *f = &out->files[i];
        if (f->kind != HS_WATCH_STUDY_FILE || f->verdict[0] != '\0')
            continue; /* errors and non-regular files are classified already */
        const hs_watch_file *p = find_previous(previous, f);
        if (p != NULL) {
            f->kind = p->kind;
            memcpy(f->study_uid, p->study_uid, sizeof f->study_uid);
            memcpy(f->verdict, p->verdict, sizeof f->verdict);
            memcpy(f->reason, p->reason, sizeof f->reason);
        } else {
            hs_crash_note_arm_file(f->path, f->size, hs_watch_file_changed(f));
            if (skip != NULL && skip(skip_ctx, f, f->reason, sizeof f->reason)) {
                f->kind = HS_WATCH_LOOSE;
                snprintf(f->verdict, sizeof f->verdict, "crashed_reader");
            } else {
                classify(f, h);
                out->headers_read++;
            }
            hs_crash_note_disarm();
        }
    }
    if (st == HS_OK)
        st = watch_group(out, err);
    free(w.ex_dev);
    free(w.ex_ino);
    free(buf);
    free(h);
    return st;
}

void hs_watch_listing_free(hs_watch_listing *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < l->n_files; i++)
        free(l->files[i].path);
    for (int i = 0; i < l->n_studies; i++)
        free(l->studies[i].file);
    free(l->files);
    free(l->studies);
    free(l->loose);
    free(l->errors);
    memset(l, 0, sizeof *l);
}

int hs_watch_unchanged(const hs_watch_listing *l, const hs_watch_study *s)
{
    for (int i = 0; i < s->n; i++) {
        const hs_watch_file *f = &l->files[s->file[i]];
        struct stat sb;
        if (lstat(f->path, &sb) != 0 || (long long)sb.st_ino != f->ino ||
            (long long)sb.st_dev != f->dev || (long long)sb.st_size != f->size ||
            time_of(sb.st_mtim) != f->mtime || time_of(sb.st_ctim) != f->ctime)
            return 0;
    }
    return 1;
}

/* ---- moving files ---------------------------------------------------------------- */

/* fsync of the folder holding path (best effort: not every file system
 * can sync a folder). */
static void sync_parent(const char *path)
{
    char dir[HS_PATH_MAX];
    if (hs_path_printf(dir, sizeof dir, NULL, "%s", path) != HS_OK)
        return; /* a path that long was never usable: nothing to sync */
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* 1 when the two files have the same bytes, 0 when not, -1 on a read error. */
static int same_content(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa != NULL && fb != NULL ? 1 : -1;
    static const size_t chunk = 65536;
    unsigned char *x = same == 1 ? malloc(2 * chunk) : NULL;
    if (same == 1 && x == NULL)
        same = -1;
    while (same == 1) {
        size_t na = fread(x, 1, chunk, fa), nb = fread(x + chunk, 1, chunk, fb);
        if (na != nb || memcmp(x, x + chunk, na) != 0)
            same = 0;
        else if (na < chunk)
            break;
    }
    if (same == 1 && (ferror(fa) || ferror(fb)))
        same = -1;
    free(x);
    if (fa != NULL)
        fclose(fa);
    if (fb != NULL)
        fclose(fb);
    return same;
}

/* Copies src into tmp (created or truncated), fsyncs it, keeps times and
 * mode. */
static hs_status copy_file(const char *src, const char *tmp, hs_error *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return hs_fail(err, HS_ERR_IO, "%s: cannot read: %s", src, strerror(errno));
    struct stat sb;
    if (fstat(in, &sb) != 0) {
        int e = errno;
        close(in);
        return hs_fail(err, HS_ERR_IO, "%s: cannot examine: %s", src, strerror(e));
    }
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return hs_fail(err, HS_ERR_IO, "%s: cannot create: %s", tmp, strerror(e));
    }
    static const size_t chunk = 1 << 16;
    char *buf = malloc(chunk);
    hs_status st = buf == NULL ? hs_fail(err, HS_ERR_NOMEM, "out of memory copying %s", src) : HS_OK;
    while (st == HS_OK) {
        ssize_t n = read(in, buf, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = hs_fail(err, HS_ERR_IO, "%s: cannot read: %s", src, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        for (ssize_t done = 0; done < n && st == HS_OK;) {
            ssize_t k = write(out, buf + done, (size_t)(n - done));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                st = hs_fail(err, HS_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
            else
                done += k;
        }
    }
    free(buf);
    if (st == HS_OK) {
        struct timespec times[2] = {sb.st_atim, sb.st_mtim};
        (void)fchmod(out, sb.st_mode & 07777);
        (void)futimens(out, times);
        if (fsync(out) != 0)
            st = hs_fail(err, HS_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    }
    if (close(out) != 0 && st == HS_OK)
        st = hs_fail(err, HS_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    close(in);
    if (st != HS_OK)
        unlink(tmp);
    return st;
}

/* The folder part of path into dir (cap bytes); 0, or -1 when it has none. */
static int dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL || (size_t)(slash - path) + 1 > cap)
        return -1;
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

/* The move itself, a rename or a copy (hs_watch_move checks the
 * arguments, then clears a stale part file). */
static hs_status move_or_copy(const char *src, const char *dst, int force_copy, hs_error *err)
{
    struct stat ss, ds;
    int have_src = lstat(src, &ss) == 0;
    int src_errno = errno;
    int have_dst = lstat(dst, &ds) == 0;
    if (!have_src && src_errno != ENOENT)
        return hs_fail(err, HS_ERR_IO, "%s: cannot examine: %s", src, strerror(src_errno));
    if (!have_src && have_dst)
        return HS_OK; /* moved already */
    if (!have_src)
        return hs_fail(err, HS_ERR_IO, "%s: not found, and not at %s either", src, dst);
    if (have_dst) {
        /* An interrupted copy reached dst before src was unlinked. */
        int same = same_content(src, dst);
        if (same != 1)
            return hs_fail(err, HS_ERR_IO, "%s: %s exists already %s; both kept", src, dst,
                           same == 0 ? "with other content" : "and cannot be compared");
        if (unlink(src) != 0)
            return hs_fail(err, HS_ERR_IO, "%s: cannot remove after copying: %s", src,
                           strerror(errno));
        sync_parent(src);
        return HS_OK;
    }
    char dir[HS_PATH_MAX], part[HS_PATH_MAX];
    if (dir_of(dst, dir, sizeof dir) != 0)
        return hs_fail(err, HS_ERR_ARG, "%s: the target needs a folder", dst);
    if (hs_make_dirs(dir, 0750, err) != HS_OK)
        return HS_ERR_IO;
    if (!force_copy) {
        if (rename(src, dst) == 0) {
            sync_parent(dst);
            sync_parent(src);
            return HS_OK;
        }
        if (errno != EXDEV)
            return hs_fail(err, HS_ERR_IO, "%s: cannot move to %s: %s", src, dst, strerror(errno));
    }
    const char *base = strrchr(dst, '/') + 1;
    if (hs_path_printf(part, sizeof part, err, "%s/.%s.hemoscan-part", dir, base) != HS_OK)
        return HS_ERR_ARG;
    hs_status st = copy_file(src, part, err);
    if (st != HS_OK)
        return st;
    if (rename(part, dst) != 0) {
        int e = errno;
        unlink(part);
        return hs_fail(err, HS_ERR_IO, "%s: cannot rename to %s: %s", part, dst, strerror(e));
    }
    sync_parent(dst);
    if (unlink(src) != 0)
        return hs_fail(err, HS_ERR_IO, "%s: copied to %s but cannot remove it: %s", src, dst,
                       strerror(errno));
    sync_parent(src);
    return HS_OK;
}

hs_status hs_watch_move(const char *src, const char *dst, int force_copy, hs_error *err)
{
    if (src == NULL || dst == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_watch_move: NULL argument");
    hs_status st = move_or_copy(src, dst, force_copy, err);
    if (st == HS_OK) {
        /* A copy killed earlier may have left its part file while this
         * attempt renamed: it is not the file, and must not stay. */
        char dir[HS_PATH_MAX], part[HS_PATH_MAX];
        const char *slash = strrchr(dst, '/');
        if (slash != NULL && dir_of(dst, dir, sizeof dir) == 0 &&
            hs_path_printf(part, sizeof part, NULL, "%s/.%s.hemoscan-part", dir, slash + 1) == HS_OK)
            unlink(part);
    }
    return st;
}

hs_status hs_watch_remove(const char *path, hs_error *err)
{
    if (path == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_watch_remove: NULL argument");
    if (unlink(path) != 0 && errno != ENOENT)
        return hs_fail(err, HS_ERR_IO, "%s: cannot delete: %s", path, strerror(errno));
    sync_parent(path);
    return HS_OK;
}

hs_status hs_watch_dest_path(const char *root, const char *rel, char *out, size_t cap,
                             hs_error *err)
{
    if (root == NULL || rel == NULL || out == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_watch_dest_path: NULL argument");
    size_t rl = strlen(root);
    while (rl > 1 && root[rl - 1] == '/')
        rl--;
    for (int k = 0; k < 100000; k++) {
        hs_status st = k == 0 ? hs_path_printf(out, cap, err, "%.*s/%s", (int)rl, root, rel)
                              : hs_path_printf(out, cap, err, "%.*s/%s.%d", (int)rl, root, rel, k);
        if (st != HS_OK)
            return st;
        struct stat sb;
        if (lstat(out, &sb) != 0 && errno == ENOENT)
            return HS_OK;
    }
    return hs_fail(err, HS_ERR_IO, "%s/%s: too many files of that name", root, rel);
}

void hs_watch_prune_dirs(const char *drop, const char *path)
{
    size_t root = strlen(drop);
    while (root > 1 && drop[root - 1] == '/')
        root--;
    char dir[HS_PATH_MAX];
    if (strncmp(path, drop, root) != 0 || path[root] != '/' ||
        dir_of(path, dir, sizeof dir) != 0)
        return;
    while (strlen(dir) > root) {
        if (rmdir(dir) != 0)
            return;
        char *slash = strrchr(dir, '/');
        if (slash == NULL)
            return;
        *slash = '\0';
    }
}

/* ---- the lock ---------------------------------------------------------------------- */

hs_status hs_watch_lock_take(const char *lock_path, const char *drop, hs_watch_lock *lock,
                             int *busy, hs_error *err)
{
    if (busy != NULL)
        *busy = 0;
    if (lock == NULL || lock_path == NULL || drop == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_watch_lock_take: NULL argument");
    lock->fd = lock->dir_fd = -1;
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return hs_fail(err, HS_ERR_IO, "%s: cannot create the lock file: %s", lock_path,
                       strerror(errno));
    int dir_fd = open(drop, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        int e = errno;
        close(fd);
        return hs_fail(err, HS_ERR_IO, "%s: cannot open the drop folder: %s", drop, strerror(e));
    }
    int held_by_other = flock(fd, LOCK_EX | LOCK_NB) != 0;
    int e = errno;
    if (!held_by_other && flock(dir_fd, LOCK_EX | LOCK_NB) != 0) {
        e = errno;
        if (e == EWOULDBLOCK) {
            close(fd);
            close(dir_fd);
            if (busy != NULL)
                *busy = 1;
            return hs_fail(err, HS_ERR_IO, "another hemoscan --watch is processing %s (with "
                           "another database); not starting a second one", drop);
        }
    }
    if (held_by_other) {
        char text[1024] = "";
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        text[n > 0 ? n : 0] = '\0';
        close(fd);
        close(dir_fd);
        if (e != EWOULDBLOCK)
            return hs_fail(err, HS_ERR_IO, "%s: cannot lock: %s", lock_path, strerror(e));
        if (busy != NULL)
            *busy = 1;
        long pid = 0;
        char since[64] = "?", dir[700] = "?";
        for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            if (strncmp(line, "pid ", 4) == 0)
                pid = strtol(line + 4, NULL, 10);
            else if (strncmp(line, "since ", 6) == 0)
                snprintf(since, sizeof since, "%s", line + 6);
            else if (strncmp(line, "drop ", 5) == 0)
                snprintf(dir, sizeof dir, "%s", line + 5);
        }
        return hs_fail(err, HS_ERR_IO, "another hemoscan --watch (pid %ld) is processing %s "
                       "since %s (lock %s); not starting a second one", pid, dir, since, lock_path);
    }
    char text[1024], since[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    int n = snprintf(text, sizeof text, "pid %ld\nsince %s\ndrop %s\n", (long)getpid(), since, drop);
    if (n > 0 && (size_t)n >= sizeof text)
        n = (int)sizeof text - 1;
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        /* The lock holds without its note; the second run just says less. */
    }
    lock->fd = fd;
    lock->dir_fd = dir_fd;
    return HS_OK;
}

void hs_watch_lock_release(hs_watch_lock *lock)
{
    if (lock == NULL)
        return;
    if (lock->fd >= 0) {
        if (ftruncate(lock->fd, 0) != 0) {
            /* a stale note in an unlocked file is harmless */
        }
        close(lock->fd);
    }
    if (lock->dir_fd >= 0)
        close(lock->dir_fd);
    lock->fd = lock->dir_fd = -1;
}
