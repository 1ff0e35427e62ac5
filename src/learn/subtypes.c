/* subtypes.c - the labels file of subtypes and per-subtype sensitivity
 * (see subtypes.h).
 *
 * A module of its own rather than part of metrics.c: metrics.c computes
 * figures from scores and labels alone, while this one has to tie rows of
 * a CSV to the files of a data set. Rows are looked up per file (a file
 * column suffix, then an id); the id lookup goes through a sorted index,
 * since the RSNA labels file has thousands of rows and a data set as many
 * files. The CSV reader takes the plain form such files have (commas,
 * optional double quotes around a field, CRLF or LF); a line is read
 * whole, whatever its length. */
#include "hemoscan/subtypes.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const subtype_names[HS_SUBTYPES] = {"epidural", "intraparenchymal", "intraventricular",
                                                        "subarachnoid", "subdural"};

const char *hs_subtype_name(int i)
{
    return i >= 0 && i < HS_SUBTYPES ? subtype_names[i] : NULL;
}

/* The fields of line split in place (quotes removed); returns how many,
 * at most max. */
static int split_csv(char *line, char **field, int max)
{
    int n = 0;
    char *p = line;
    line[strcspn(line, "\r\n")] = '\0';
    while (n < max) {
        char *out = p;
        field[n++] = p;
        if (*p == '"') {
            /* a quoted field: "" is a quote, the closing quote ends it */
            char *in = p + 1;
            while (*in != '\0' && !(in[0] == '"' && in[1] != '"')) {
                if (in[0] == '"')
                    in++;
                *out++ = *in++;
            }
            if (*in == '"')
                in++;
            p = in;
        } else {
            while (*p != '\0' && *p != ',')
                p++;
            out = p;
        }
        char *next = strchr(p, ',');
        *out = '\0';
        if (next == NULL)
            break;
        p = next + 1;
    }
    return n;
}

/* name of path without folder and extension into buf. */
static void base_name(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash != NULL ? slash + 1 : path;
    const char *dot = strrchr(name, '.');
    int stem = dot != NULL && dot != name ? (int)(dot - name) : (int)strlen(name);
    snprintf(buf, len, "%.*s", stem, name);
}

/* 1 when path ends with rel at a folder boundary. */
static int path_ends_with(const char *path, const char *rel)
{
    size_t lp = strlen(path), lr = strlen(rel);
    if (lr == 0 || lr > lp || strcmp(path + lp - lr, rel) != 0)
        return 0;
    return lp == lr || path[lp - lr - 1] == '/';
}

typedef struct {
    char *file; /* the file column, or NULL */
    char *id;   /* the id column, or NULL */
    signed char value[HS_SUBTYPES];
} label_row;

typedef struct {
    label_row *row;
    int n, cap;
    int file_col, id_col, col[HS_SUBTYPES];
} label_table;

static void table_free(label_table *t)
{
    for (int i = 0; i < t->n; i++) {
        free(t->row[i].file);
        free(t->row[i].id);
    }
    free(t->row);
}

/* The header's columns into t; HS_ERR_FORMAT when it lacks what is needed. */
static hs_status read_header(char *line, const char *csv_path, label_table *t, hs_error *err)
{
    char *field[64];
    int n = split_csv(line, field, 64);
    t->file_col = t->id_col = -1;
    int any = 0;
    for (int s = 0; s < HS_SUBTYPES; s++)
        t->col[s] = -1;
    for (int i = 0; i < n; i++) {
        if (strcmp(field[i], "file") == 0)
            t->file_col = i;
        else if (strcmp(field[i], "sop_instance_uid") == 0 || (strcmp(field[i], "id") == 0 && t->id_col < 0))
            t->id_col = i;
        for (int s = 0; s < HS_SUBTYPES; s++)
            if (strcmp(field[i], subtype_names[s]) == 0) {
                t->col[s] = i;
                any = 1;
            }
    }
    if (t->file_col < 0 && t->id_col < 0)
        return hs_fail(err, HS_ERR_FORMAT, "%s:1: no id column in the header (expected file, sop_instance_uid or id)",
                       csv_path);
    if (!any)
        return hs_fail(err, HS_ERR_FORMAT,
                       "%s:1: no subtype column in the header (expected any of epidural, intraparenchymal, "
                       "intraventricular, subarachnoid, subdural)",
                       csv_path);
    return HS_OK;
}

/* One data line into a new row of t. */
static hs_status read_row(char *line, const char *csv_path, int lineno, label_table *t, hs_error *err)
{
    char *field[64];
    int n = split_csv(line, field, 64);
    if (n == 1 && field[0][0] == '\0')
        return HS_OK; /* an empty line */
    if (t->n == t->cap) {
        int cap = t->cap > 0 ? 2 * t->cap : 256;
        label_row *grown = realloc(t->row, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", csv_path);
        t->row = grown;
        t->cap = cap;
    }
    label_row *r = &t->row[t->n];
    memset(r, 0, sizeof *r);
    for (int s = 0; s < HS_SUBTYPES; s++) {
        const char *v = t->col[s] >= 0 && t->col[s] < n ? field[t->col[s]] : "";
        if (strcmp(v, "1") == 0 || strcmp(v, "1.0") == 0)
            r->value[s] = 1;
        else if (strcmp(v, "0") == 0 || strcmp(v, "0.0") == 0)
            r->value[s] = 0;
        else if (v[0] == '\0')
            r->value[s] = -1;
        else
            return hs_fail(err, HS_ERR_FORMAT, "%s:%d: %s is '%s', expected 1, 0 or nothing", csv_path, lineno,
                           subtype_names[s], v);
    }
    if (t->file_col >= 0 && t->file_col < n && field[t->file_col][0] != '\0')
        r->file = strdup(field[t->file_col]);
    if (t->id_col >= 0 && t->id_col < n && field[t->id_col][0] != '\0')
        r->id = strdup(field[t->id_col]);
    if ((t->file_col >= 0 && t->file_col < n && field[t->file_col][0] != '\0' && r->file == NULL) ||
        (t->id_col >= 0 && t->id_col < n && field[t->id_col][0] != '\0' && r->id == NULL)) {
        free(r->file);
        free(r->id);
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", csv_path);
    }
    t->n++;
    return HS_OK;
}

static hs_status read_table(const char *csv_path, label_table *t, hs_error *err)
{
    FILE *f = fopen(csv_path, "r");
    if (f == NULL)
        return hs_fail(err, HS_ERR_IO, "%s: cannot open: %s", csv_path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    hs_status st = HS_OK;
    while (st == HS_OK && getline(&line, &cap, f) != -1) {
        lineno++;
        st = lineno == 1 ? read_header(line, csv_path, t, err) : read_row(line, csv_path, lineno, t, err);
    }
    if (st == HS_OK && lineno == 0)
        st = hs_fail(err, HS_ERR_FORMAT, "%s: empty, expected a header line", csv_path);
    if (st == HS_OK && ferror(f))
        st = hs_fail(err, HS_ERR_IO, "%s: read error", csv_path);
    free(line);
    fclose(f);
    return st;
}

static int cmp_row_id(const void *a, const void *b)
{
    const label_row *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

/* The row for path: one whose file column path ends with, else one whose
 * id is the file's base name (by_id sorted, n_ids long); NULL if none. */
static const label_row *find_row(const label_table *t, label_row **by_id, int n_ids, const char *path)
{
    for (int i = 0; i < t->n; i++)
        if (t->row[i].file != NULL && path_ends_with(path, t->row[i].file))
            return &t->row[i];
    char name[256];
    base_name(path, name, sizeof name);
    label_row key = {NULL, name, {0}};
    const label_row *pkey = &key;
    label_row **hit = n_ids > 0 ? bsearch(&pkey, by_id, (size_t)n_ids, sizeof *by_id, cmp_row_id) : NULL;
    return hit != NULL ? *hit : NULL;
}

hs_status hs_subtypes_load(const char *csv_path, const hs_dataset *ds, hs_subtype_labels *out, hs_error *err)
{
    memset(out, 0, sizeof *out);
    label_table t = {0};
    hs_status st = read_table(csv_path, &t, err);
    label_row **by_id = st == HS_OK ? malloc((size_t)(t.n > 0 ? t.n : 1) * sizeof *by_id) : NULL;
    out->value = st == HS_OK ? malloc((size_t)(ds->n > 0 ? ds->n : 1) * HS_SUBTYPES) : NULL;
    if (st == HS_OK && (by_id == NULL || out->value == NULL))
        st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", csv_path);
    if (st == HS_OK) {
        int n_ids = 0;
        for (int i = 0; i < t.n; i++)
            if (t.row[i].id != NULL)
                by_id[n_ids++] = &t.row[i];
        qsort(by_id, (size_t)n_ids, sizeof *by_id, cmp_row_id);
        out->n_files = ds->n;
        for (int s = 0; s < HS_SUBTYPES; s++)
            out->column[s] = t.col[s] >= 0;
        for (int i = 0; i < ds->n; i++) {
            const label_row *r = find_row(&t, by_id, n_ids, ds->path[i]);
            out->matched += r != NULL;
            for (int s = 0; s < HS_SUBTYPES; s++)
                out->value[(size_t)i * HS_SUBTYPES + s] = r != NULL ? r->value[s] : -1;
        }
    }
    free(by_id);
    table_free(&t);
    if (st != HS_OK)
        hs_subtypes_free(out);
    return st;
}

void hs_subtypes_free(hs_subtype_labels *l)
{
    free(l->value);
    memset(l, 0, sizeof *l);
}

void hs_subtype_sensitivity(const hs_subtype_labels *l, const int *source, const int *label, const int *flagged,
                            int n, int positive_class, hs_subtype_stat out[HS_SUBTYPES])
{
    for (int s = 0; s < HS_SUBTYPES; s++) {
        out[s] = (hs_subtype_stat){l->column[s], 0, 0, NAN};
        for (int i = 0; i < n; i++) {
            if (label[i] != positive_class || source[i] < 0 || source[i] >= l->n_files ||
                l->value[(size_t)source[i] * HS_SUBTYPES + s] != 1)
                continue;
            out[s].n++;
            out[s].found += flagged[i] != 0;
        }
        if (out[s].n > 0)
            out[s].sensitivity = (double)out[s].found / out[s].n;
    }
}
