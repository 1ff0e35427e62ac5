/* dataset.c - scanning class folders, groups, merging source folders, and
 * seeded grouped splits (see dataset.h).
 *
 * A scan only lists names: whether a file is a PNG or a DICOM slice
 * matters to the loader (train.c), not here, except that a file without
 * an extension counts only when its bytes say DICOM (the "DICM" magic),
 * so notes and stray files in a class folder are not taken for images.
 * Merging sources renumbers groups and prefixes ids with the source, so
 * equal names in two folders never meet in one group.
 *
 * Splitting works on groups, never on files: a group is dealt as a whole,
 * labelled by its most common class. Dealing the biggest groups first and
 * always to the fold that is shortest of that class keeps the folds within
 * a group's size of balanced, which is as good as grouping allows. */
#include "hemoscan/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hemoscan/checksum.h"
#include "hemoscan/fileio.h"
#include "hemoscan/grow.h"
#include "hemoscan/rng.h"

/* The extension of name (from its last dot, the dot included), or "" when
 * it has none. */
static const char *extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot != NULL && dot != name ? dot : "";
}

/* 1 when the file at path has DICOM Part 10's "DICM" at byte 128. */
static int has_dicm_preamble(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    char magic[4] = {0};
    int ok = fseek(f, 128, SEEK_SET) == 0 && fread(magic, 1, sizeof magic, f) == sizeof magic &&
             memcmp(magic, "DICM", sizeof magic) == 0;
    fclose(f);
    return ok;
}

/* Which files of a class folder are images (see dataset.h): .png, .dcm
 * and .dicom in any case, and files without an extension that carry the
 * DICM preamble. */
static int is_image_file(const char *full, const char *name)
{
    const char *ext = extension(name);
    if (strcasecmp(ext, ".png") == 0 || strcasecmp(ext, ".dcm") == 0 || strcasecmp(ext, ".dicom") == 0)
        return 1;
    return ext[0] == '\0' && has_dicm_preamble(full);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the entries of dir that pass keep(); *count set. */
static hs_status list_dir(const char *dir, int want_dirs, char ***names, int *count,
                          hs_error *err)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return hs_fail(err, HS_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    int cap = 0;
    struct dirent *e;
    hs_status st = HS_OK;
    for (e = readdir(d); e != NULL; e = readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *full = malloc(len);
        if (full == NULL) {
            st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        snprintf(full, len, "%s/%s", dir, e->d_name);
        int keep = want_dirs ? hs_path_is_dir(full) : (!hs_path_is_dir(full) && is_image_file(full, e->d_name));
        free(full);
        if (!keep)
            continue;
        if (hs_grow((void **)names, &cap, *count + 1, sizeof **names) != 0) {
            st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        (*names)[*count] = strdup(e->d_name);
        if ((*names)[*count] == NULL) {
            st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        (*count)++;
    }
    closedir(d);
    if (st != HS_OK) {
        for (int i = 0; i < *count; i++)
            free((*names)[i]);
        free(*names);
        *names = NULL;
        *count = 0;
        return st;
    }
    if (*count > 0)
        qsort(*names, (size_t)*count, sizeof **names, cmp_str);
    return HS_OK;
}

static void free_names(char **names, int count)
{
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

void hs_dataset_free(hs_dataset *ds)
{
    for (int i = 0; i < ds->n; i++) {
        free(ds->path[i]);
        free(ds->id[i]);
    }
    free(ds->path);
    free(ds->id);
    free(ds->label);
    free(ds->group);
    free(ds->source);
    memset(ds, 0, sizeof *ds);
}

static hs_status add_file(hs_dataset *ds, int *cap, const char *dir, const char *cls,
                          const char *file, int label, hs_error *err)
{
    /* Four parallel arrays of one capacity: each grows from the same
     * capacity to the same new one, which is kept only when all four grew
     * (an array that did grow is merely larger than *cap says). */
    int c_path = *cap, c_id = *cap, c_label = *cap, c_group = *cap;
    if (hs_grow((void **)&ds->path, &c_path, ds->n + 1, sizeof *ds->path) != 0 ||
        hs_grow((void **)&ds->id, &c_id, ds->n + 1, sizeof *ds->id) != 0 ||
        hs_grow((void **)&ds->label, &c_label, ds->n + 1, sizeof *ds->label) != 0 ||
        hs_grow((void **)&ds->group, &c_group, ds->n + 1, sizeof *ds->group) != 0)
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", dir);
    *cap = c_path;
    size_t len = strlen(dir) + strlen(cls) + strlen(file) + 3;
    char *full = malloc(len);
    char *id = strdup(file);
    if (full == NULL || id == NULL) {
        free(full);
        free(id);
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", dir);
    }
    snprintf(full, len, "%s/%s/%s", dir, cls, file);
    id[strlen(id) - strlen(extension(id))] = '\0'; /* drop ".png", ".dcm"... */
    ds->path[ds->n] = full;
    ds->id[ds->n] = id;
    ds->label[ds->n] = label;
    ds->group[ds->n] = ds->n;
    ds->n++;
    return HS_OK;
}

static hs_status scan_with(const char *dir, hs_dataset *ds, hs_error *err)
{
    int cap = 0;
    for (int c = 0; c < ds->n_classes; c++) {
        size_t len = strlen(dir) + strlen(ds->class_name[c]) + 2;
        char *sub = malloc(len);
        if (sub == NULL)
            return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", dir);
        snprintf(sub, len, "%s/%s", dir, ds->class_name[c]);
        char **files;
        int count;
        hs_status st = list_dir(sub, 0, &files, &count, err);
        if (st == HS_OK && count == 0)
            st = hs_fail(err, HS_ERR_FORMAT, "%s: no .png or DICOM images in this class folder", sub);
        free(sub);
        if (st != HS_OK)
            return st;
        for (int i = 0; i < count && st == HS_OK; i++)
            st = add_file(ds, &cap, dir, ds->class_name[c], files[i], c, err);
        free_names(files, count);
        if (st != HS_OK)
            return st;
    }
    return HS_OK;
}

hs_status hs_dataset_scan_classes(const char *dir, int n_classes,
                                  const char (*names)[HS_MODEL_NAME_LEN],
                                  hs_dataset *ds, hs_error *err)
{
    memset(ds, 0, sizeof *ds);
    char **sub;
    int count;
    hs_status st = list_dir(dir, 1, &sub, &count, err);
    if (st != HS_OK)
        return st;
    for (int i = 0; i < count && st == HS_OK; i++) {
        int known = 0;
        for (int c = 0; c < n_classes; c++)
            known |= strcmp(sub[i], names[c]) == 0;
        if (!known)
            st = hs_fail(err, HS_ERR_FORMAT, "%s/%s: class folder not among the model's classes", dir, sub[i]);
    }
    free_names(sub, count);
    if (st != HS_OK)
        return st;
    ds->n_classes = n_classes;
    memcpy(ds->class_name, names, (size_t)n_classes * sizeof *names);
    st = scan_with(dir, ds, err);
    if (st != HS_OK)
        hs_dataset_free(ds);
    return st;
}

hs_status hs_dataset_scan(const char *dir, hs_dataset *ds, hs_error *err)
{
    memset(ds, 0, sizeof *ds);
    char **sub;
    int count;
    hs_status st = list_dir(dir, 1, &sub, &count, err);
    if (st != HS_OK)
        return st;
    if (count < 2 || count > HS_MODEL_MAX_CLASSES) {
        free_names(sub, count);
        return hs_fail(err, HS_ERR_FORMAT, "%s: found %d class folders, expected 2 to %d (one folder of .png or DICOM images per class)",
                       dir, count, HS_MODEL_MAX_CLASSES);
    }
    for (int i = 0; i < count; i++) {
        if (strlen(sub[i]) >= HS_MODEL_NAME_LEN) {
            st = hs_fail(err, HS_ERR_FORMAT, "%s/%s: class name longer than %d characters", dir, sub[i],
                         HS_MODEL_NAME_LEN - 1);
            free_names(sub, count);
            return st;
        }
    }
    /* normal before hemorrhage, so hemorrhage is the positive class 1. */
    if (count == 2 && strcmp(sub[0], "hemorrhage") == 0 && strcmp(sub[1], "normal") == 0) {
        char *t = sub[0];
        sub[0] = sub[1];
        sub[1] = t;
    }
    ds->n_classes = count;
    for (int i = 0; i < count; i++)
        snprintf(ds->class_name[i], HS_MODEL_NAME_LEN, "%s", sub[i]);
    free_names(sub, count);
    st = scan_with(dir, ds, err);
    if (st != HS_OK)
        hs_dataset_free(ds);
    return st;
}

hs_status hs_dataset_load_groups(hs_dataset *ds, const char *csv_path, hs_error *err)
{
    FILE *f = fopen(csv_path, "r");
    if (f == NULL)
        return hs_fail(err, HS_ERR_IO, "%s: cannot open: %s", csv_path, strerror(errno));
    /* Group names map to the group number of the first file seen in them. */
    char line[512];
    int lineno = 0;
    char (*names)[128] = calloc((size_t)ds->n, sizeof *names);
    int *first = calloc((size_t)ds->n, sizeof *first);
    int n_names = 0;
    hs_status st = HS_OK;
    if (names == NULL || first == NULL)
        st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", csv_path);
    while (st == HS_OK && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        char *comma = strchr(line, ',');
        if (line[0] == '\0')
            continue;
        if (comma == NULL) {
            st = hs_fail(err, HS_ERR_FORMAT, "%s:%d: expected \"id,group\"", csv_path, lineno);
            break;
        }
        *comma = '\0';
        const char *id = line, *group = comma + 1;
        if (lineno == 1 && strcmp(id, "id") == 0)
            continue;
        int file = -1;
        for (int i = 0; i < ds->n && file < 0; i++)
            if (strcmp(ds->id[i], id) == 0)
                file = i;
        if (file < 0)
            continue; /* a groups file may describe a larger collection */
        int g = -1;
        for (int i = 0; i < n_names && g < 0; i++)
            if (strcmp(names[i], group) == 0)
                g = i;
        if (g < 0) {
            if (n_names == ds->n || strlen(group) >= sizeof names[0]) {
                st = hs_fail(err, HS_ERR_FORMAT, "%s:%d: bad group name", csv_path, lineno);
                break;
            }
            g = n_names++;
            snprintf(names[g], sizeof names[g], "%s", group);
            first[g] = ds->group[file];
        }
        /* Merge: every file currently in this file's group joins group g. */
        int old = ds->group[file];
        for (int i = 0; i < ds->n; i++)
            if (ds->group[i] == old)
                ds->group[i] = first[g];
    }
    fclose(f);
    free(names);
    free(first);
    return st;
}

typedef struct {
    int id;    /* group number */
    int size;  /* files */
    int label; /* most common class */
    uint64_t tie; /* random tie-breaker */
} group_info;

static int cmp_group(const void *a, const void *b)
{
    const group_info *x = a, *y = b;
    if (x->size != y->size)
        return y->size - x->size;
    return (x->tie > y->tie) - (x->tie < y->tie);
}

/* Groups of ds with their sizes and majority classes, biggest first, ties
 * in seeded random order. */
static group_info *collect_groups(const hs_dataset *ds, uint64_t seed, int *n_groups)
{
    group_info *g = calloc((size_t)ds->n, sizeof *g);
    int *counts = calloc((size_t)ds->n_classes, sizeof *counts);
    if (g == NULL || counts == NULL) {
        free(g);
        free(counts);
        return NULL;
    }
    hs_rng rng;
    hs_rng_seed(&rng, seed);
    int n = 0;
    for (int i = 0; i < ds->n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = ds->group[j] == ds->group[i];
        if (seen)
            continue;
        memset(counts, 0, (size_t)ds->n_classes * sizeof *counts);
        for (int j = i; j < ds->n; j++)
            if (ds->group[j] == ds->group[i])
                counts[ds->label[j]]++;
        int best = 0, size = 0;
        for (int c = 0; c < ds->n_classes; c++) {
            size += counts[c];
            if (counts[c] > counts[best])
                best = c;
        }
        g[n++] = (group_info){ds->group[i], size, best, 0};
    }
    for (int i = 0; i < n; i++)
        g[i].tie = hs_rng_u64(&rng);
    qsort(g, (size_t)n, sizeof *g, cmp_group);
    free(counts);
    *n_groups = n;
    return g;
}

hs_status hs_dataset_folds(const hs_dataset *ds, int k, uint64_t seed, int *fold, hs_error *err)
{
    if (k < 2 || k > ds->n)
        return hs_fail(err, HS_ERR_ARG, "cross-validation needs 2 to %d folds, got %d", ds->n, k);
    int n_groups;
    group_info *g = collect_groups(ds, seed, &n_groups);
    if (g != NULL && n_groups < k) {
        /* a fold without a group would be empty: nothing to test on */
        free(g);
        return hs_fail(err, HS_ERR_ARG, "%d folds need at least %d groups of files; these %d files are in %d",
                       k, k, ds->n, n_groups);
    }
    int *load = calloc((size_t)k * ds->n_classes, sizeof *load);
    int *total = calloc((size_t)k, sizeof *total);
    if (g == NULL || load == NULL || total == NULL) {
        free(g);
        free(load);
        free(total);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for %d folds", k);
    }
    for (int i = 0; i < n_groups; i++) {
        int best = 0;
        for (int f = 1; f < k; f++) {
            int a = load[f * ds->n_classes + g[i].label], b = load[best * ds->n_classes + g[i].label];
            if (a < b || (a == b && total[f] < total[best]))
                best = f;
        }
        load[best * ds->n_classes + g[i].label] += g[i].size;
        total[best] += g[i].size;
        for (int j = 0; j < ds->n; j++)
            if (ds->group[j] == g[i].id)
                fold[j] = best;
    }
    free(g);
    free(load);
    free(total);
    return HS_OK;
}

hs_status hs_dataset_split(const hs_dataset *ds, double val_fraction, uint64_t seed,
                           unsigned char *is_val, hs_error *err)
{
    if (!(val_fraction > 0.0 && val_fraction < 1.0))
        return hs_fail(err, HS_ERR_ARG, "--val-split %g: expected a fraction between 0 and 1", val_fraction);
    int n_groups;
    group_info *g = collect_groups(ds, seed, &n_groups);
    int *want = calloc((size_t)ds->n_classes, sizeof *want);
    int *have = calloc((size_t)ds->n_classes, sizeof *have);
    if (g == NULL || want == NULL || have == NULL) {
        free(g);
        free(want);
        free(have);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for a split");
    }
    for (int i = 0; i < ds->n; i++)
        want[ds->label[i]]++;
    for (int c = 0; c < ds->n_classes; c++)
        want[c] = (int)(want[c] * val_fraction + 0.5);
    memset(is_val, 0, (size_t)ds->n);
    /* Smallest groups last, so they top up each class to its quota. */
    for (int i = 0; i < n_groups; i++) {
        int c = g[i].label;
        if (have[c] + g[i].size > want[c])
            continue;
        have[c] += g[i].size;
        for (int j = 0; j < ds->n; j++)
            if (ds->group[j] == g[i].id)
                is_val[j] = 1;
    }
    hs_status st = HS_OK;
    for (int c = 0; c < ds->n_classes; c++) {
        int in_class = 0, in_val = 0;
        for (int j = 0; j < ds->n; j++) {
            in_class += ds->label[j] == c;
            in_val += ds->label[j] == c && is_val[j];
        }
        if (in_val == 0 || in_val == in_class)
            st = hs_fail(err, HS_ERR_ARG,
                         "class '%s' has %d images: too few to split %g of them off for validation",
                         ds->class_name[c], in_class, val_fraction);
    }
    free(g);
    free(want);
    free(have);
    return st;
}

hs_status hs_dataset_select(const hs_dataset *ds, const unsigned char *pick, int want,
                            hs_dataset *out, hs_error *err)
{
    memset(out, 0, sizeof *out);
    out->n_classes = ds->n_classes;
    memcpy(out->class_name, ds->class_name, sizeof out->class_name);
    int n = 0;
    for (int i = 0; i < ds->n; i++)
        n += pick[i] == want;
    out->path = calloc((size_t)n + 1, sizeof *out->path);
    out->id = calloc((size_t)n + 1, sizeof *out->id);
    out->label = calloc((size_t)n + 1, sizeof *out->label);
    out->group = calloc((size_t)n + 1, sizeof *out->group);
    out->n_sources = ds->n_sources;
    if (ds->source != NULL)
        out->source = calloc((size_t)n + 1, sizeof *out->source);
    if (out->path == NULL || out->id == NULL || out->label == NULL || out->group == NULL ||
        (ds->source != NULL && out->source == NULL)) {
        hs_dataset_free(out);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory selecting %d files", n);
    }
    for (int i = 0; i < ds->n; i++) {
        if (pick[i] != want)
            continue;
        out->path[out->n] = strdup(ds->path[i]);
        out->id[out->n] = strdup(ds->id[i]);
        out->label[out->n] = ds->label[i];
        out->group[out->n] = ds->group[i];
        if (ds->source != NULL)
            out->source[out->n] = ds->source[i];
        out->n++;
        if (out->path[out->n - 1] == NULL || out->id[out->n - 1] == NULL) {
            hs_dataset_free(out);
            return hs_fail(err, HS_ERR_NOMEM, "out of memory selecting %d files", n);
        }
    }
    return HS_OK;
}

/* "S:id" (S = source + 1) into a new string; NULL when out of memory. */
static char *source_id(int source, const char *id)
{
    size_t len = strlen(id) + 16;
    char *out = malloc(len);
    if (out != NULL)
        snprintf(out, len, "%d:%s", source + 1, id);
    return out;
}

/* The class of ds named name, or -1. */
static int class_index(const hs_dataset *ds, const char *name)
{
    for (int c = 0; c < ds->n_classes; c++)
        if (strcmp(ds->class_name[c], name) == 0)
            return c;
    return -1;
}

/* "a, b, c": the class names of ds into buf. */
static void class_list(const hs_dataset *ds, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int c = 0; c < ds->n_classes && used < len; c++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", c > 0 ? ", " : "", ds->class_name[c]);
}

/* into's file arrays grown to hold n files (each kept only when all grew,
 * as in add_file); -1 when out of memory. */
static int grow_files(hs_dataset *into, int n)
{
    char **path = realloc(into->path, (size_t)n * sizeof *path);
    if (path != NULL)
        into->path = path;
    char **id = realloc(into->id, (size_t)n * sizeof *id);
    if (id != NULL)
        into->id = id;
    int *label = realloc(into->label, (size_t)n * sizeof *label);
    if (label != NULL)
        into->label = label;
    int *group = realloc(into->group, (size_t)n * sizeof *group);
    if (group != NULL)
        into->group = group;
    int *source = realloc(into->source, (size_t)n * sizeof *source);
    if (source != NULL)
        into->source = source;
    return path != NULL && id != NULL && label != NULL && group != NULL && source != NULL ? 0 : -1;
}

hs_status hs_dataset_merge(hs_dataset *into, hs_dataset *more, hs_error *err)
{
    int same = into->n_classes == more->n_classes;
    for (int c = 0; c < more->n_classes && same; c++)
        same = class_index(into, more->class_name[c]) >= 0;
    if (!same) {
        char a[HS_MODEL_MAX_CLASSES * HS_MODEL_NAME_LEN], b[sizeof a];
        class_list(into, a, sizeof a);
        class_list(more, b, sizeof b);
        return hs_fail(err, HS_ERR_ARG, "the sources have different class folders: (%s) and (%s)", a, b);
    }
    int had_source = into->source != NULL;
    int first = into->n_sources > 0 ? into->n_sources : 1; /* more's source number, 0-based */
    int total = into->n + more->n;
    /* The ids of both, with their sources, made before anything changes. */
    char **ids = calloc((size_t)(total > 0 ? total : 1), sizeof *ids);
    int ok = ids != NULL && grow_files(into, total > 0 ? total : 1) == 0;
    for (int i = 0; ok && i < total; i++) {
        int mine = i < into->n;
        int src = mine ? (had_source ? into->source[i] : 0) : first;
        const char *id = mine ? into->id[i] : more->id[i - into->n];
        /* a file already merged keeps its "S:" id */
        ids[i] = mine && had_source ? strdup(id) : source_id(src, id);
        ok = ids[i] != NULL;
    }
    if (!ok) {
        for (int i = 0; ids != NULL && i < total; i++)
            free(ids[i]);
        free(ids);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory merging %d files", total);
    }
    for (int i = 0; i < into->n; i++) {
        free(into->id[i]);
        into->id[i] = ids[i];
        if (!had_source)
            into->source[i] = 0;
    }
    for (int i = 0; i < more->n; i++) {
        int j = into->n + i;
        into->path[j] = more->path[i];
        into->id[j] = ids[j];
        free(more->id[i]);
        into->label[j] = class_index(into, more->class_name[more->label[i]]);
        into->group[j] = into->n + more->group[i];
        into->source[j] = first;
    }
    free(ids);
    into->n = total;
    into->n_sources = first + 1;
    free(more->path);
    free(more->id);
    free(more->label);
    free(more->group);
    free(more->source);
    memset(more, 0, sizeof *more);
    return HS_OK;
}

hs_status hs_dataset_checksum(const hs_dataset *ds, char hex[65], hs_error *err)
{
    hs_sha256_ctx *ctx = hs_sha256_begin();
    if (ctx == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for a checksum");
    for (int i = 0; i < ds->n; i++) {
        char file_hex[65];
        hs_status st = hs_sha256_file(ds->path[i], file_hex, err);
        if (st != HS_OK) {
            unsigned char dummy[HS_SHA256_LEN];
            hs_sha256_end(ctx, dummy);
            return st;
        }
        const char *slash = strrchr(ds->path[i], '/');
        const char *file = slash != NULL ? slash + 1 : ds->path[i];
        char line[HS_MODEL_NAME_LEN + 512];
        int len;
        if (ds->source != NULL) /* several sources: the line says which */
            len = snprintf(line, sizeof line, "%d:%s/%s %s\n", ds->source[i] + 1, ds->class_name[ds->label[i]],
                           file, file_hex);
        else
            len = snprintf(line, sizeof line, "%s/%s %s\n", ds->class_name[ds->label[i]], file, file_hex);
        if (len >= (int)sizeof line)
            len = (int)sizeof line - 1;
        hs_sha256_update(ctx, line, (size_t)len);
    }
    unsigned char digest[HS_SHA256_LEN];
    hs_sha256_end(ctx, digest);
    hs_sha256_hex(digest, hex);
    return HS_OK;
}
