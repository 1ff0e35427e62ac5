/* validation.c - label files and study-level figures of a validation run
 * (validation.h; hemoscan --validate).
 *
 * The label file is read whole (hs_file_read_all, with a size cap) and cut
 * into lines here rather than with a CSV library: the format is three
 * columns, and a message that names the file, the line and what was
 * expected matters more to a site preparing its list than generality.
 * Keys are indexed by a sorted array of row numbers, which finds a key in
 * O(log n) and finds a duplicated key while sorting.
 *
 * The figures count verdicts as the program gave them (flagged or not)
 * rather than re-applying the threshold to the probability, so they
 * describe exactly what a reader would have been shown; the AUC comes
 * from metrics.c. */
#include "hemoscan/validation.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hemoscan/fileio.h"
#include "hemoscan/grow.h"
#include "hemoscan/metrics.h"

/* A label file larger than this is not a list of studies or slices. */
#define LABELS_MAX_BYTES (64u << 20)
/* The most fields a row may have (study, label, subtypes). */
#define MAX_FIELDS 3

/* the common abbreviations, same order */
static const char *const subtype_short[HS_SUBTYPES] = {"edh", "iph", "ivh", "sah", "sdh"};

void hs_subtypes_text(unsigned subtypes, char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';
    size_t used = 0;
    for (int i = 0; i < HS_SUBTYPES; i++) {
        if (!(subtypes & (1u << i)))
            continue;
        int w = snprintf(buf + used, len - used, "%s%s", used > 0 ? ";" : "", hs_subtype_name(i));
        if (w < 0 || (size_t)w >= len - used)
            return; /* cut */
        used += (size_t)w;
    }
}

/* 1, 0, or -1 when s is not a label. */
static int parse_label(const char *s)
{
    static const char *const yes[] = {"1", "hemorrhage", "yes"}, *const no[] = {"0", "normal", "no"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return 1;
        if (strcasecmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Splits line (modified in place) into at most MAX_FIELDS + 1 fields at
 * commas outside double quotes, unquoting and trimming each. Returns the
 * number of fields, or -1 for an unterminated quote. */
static int split_fields(char *line, char **field)
{
    int n = 0;
    char *out = line, *p = line;
    field[n++] = out;
    int quoted = 0;
    for (; *p != '\0'; p++) {
        if (quoted && *p == '"' && p[1] == '"') {
            *out++ = '"';
            p++;
        } else if (*p == '"') {
            quoted = !quoted;
        } else if (*p == ',' && !quoted) {
            *out++ = '\0';
            if (n == MAX_FIELDS + 1)
                return n; /* too many: the caller says so */
            field[n++] = out;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
    if (quoted)
        return -1;
    for (int i = 0; i < n; i++)
        field[i] = trim(field[i]);
    return n;
}

/* The subtype set of a "a;b|c" field; -1 (with the bad name in err) when a
 * name is unknown. */
static long parse_subtypes(char *s, const char *name, int line, hs_error *err)
{
    unsigned set = 0;
    for (char *save = NULL, *tok = strtok_r(s, ";|", &save); tok != NULL;
         tok = strtok_r(NULL, ";|", &save)) {
        tok = trim(tok);
        if (tok[0] == '\0')
            continue;
        int found = -1;
        for (int i = 0; i < HS_SUBTYPES && found < 0; i++)
            if (strcasecmp(tok, hs_subtype_name(i)) == 0 || strcasecmp(tok, subtype_short[i]) == 0)
                found = i;
        if (found < 0) {
            hs_fail(err, HS_ERR_FORMAT, "%s:%d: unknown subtype \"%s\" (expected epidural, "
                    "intraparenchymal, intraventricular, subarachnoid or subdural)", name, line, tok);
            return -1;
        }
        set |= 1u << found;
    }
    return (long)set;
}

static const hs_label_file *sort_file; /* qsort has no context argument */

static int cmp_key(const void *a, const void *b)
{
    int ia = *(const int *)a, ib = *(const int *)b;
    int c = strcmp(sort_file->row[ia].key, sort_file->row[ib].key);
    return c != 0 ? c : (ia > ib) - (ia < ib);
}

/* Sorts the index and refuses a key given twice. */
static hs_status index_keys(hs_label_file *f, const char *name, hs_error *err)
{
    f->sorted = malloc((size_t)(f->n > 0 ? f->n : 1) * sizeof *f->sorted);
    if (f->sorted == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", name);
    for (int i = 0; i < f->n; i++)
        f->sorted[i] = i;
    sort_file = f;
    qsort(f->sorted, (size_t)f->n, sizeof *f->sorted, cmp_key);
    sort_file = NULL;
    for (int i = 1; i < f->n; i++) {
        const hs_label_row *a = &f->row[f->sorted[i - 1]], *b = &f->row[f->sorted[i]];
        if (strcmp(a->key, b->key) == 0)
            return hs_fail(err, HS_ERR_FORMAT, "%s:%d: \"%s\" is labelled again (first on line %d)",
                           name, b->line, b->key, a->line);
    }
    return HS_OK;
}

/* One line's row, appended to out. The first line with content may be a
 * header: one whose label field is not a label is skipped. */
static hs_status parse_row(char *line, int lineno, int first, const char *name, int slice_labels,
                           hs_label_file *out, int *cap, hs_error *err)
{
    char *field[MAX_FIELDS + 1];
    int nf = split_fields(line, field);
    int max = slice_labels ? 2 : 3;
    const char *expect = slice_labels ? "sop_instance_uid,label" : "study,label[,subtypes]";
    if (nf < 0)
        return hs_fail(err, HS_ERR_FORMAT, "%s:%d: a quote is not closed", name, lineno);
    int label = nf >= 2 ? parse_label(field[1]) : -1;
    if (label < 0 && first)
        return HS_OK; /* a header line */
    if (nf < 2 || nf > max)
        return hs_fail(err, HS_ERR_FORMAT, "%s:%d: expected \"%s\", found %d field%s", name, lineno,
                       expect, nf, nf == 1 ? "" : "s");
    if (label < 0)
        return hs_fail(err, HS_ERR_FORMAT, "%s:%d: label \"%s\": expected 1 or 0, hemorrhage or "
                       "normal, yes or no", name, lineno, field[1]);
    if (field[0][0] == '\0')
        return hs_fail(err, HS_ERR_FORMAT, "%s:%d: the %s is empty", name, lineno,
                       slice_labels ? "SOP instance UID" : "study");
    long subtypes = nf == 3 ? parse_subtypes(field[2], name, lineno, err) : 0;
    if (subtypes < 0)
        return HS_ERR_FORMAT;
    if (subtypes != 0 && label == 0)
        return hs_fail(err, HS_ERR_FORMAT, "%s:%d: a normal study with hemorrhage subtypes", name,
                       lineno);
    char *key = strdup(field[0]);
    if (key == NULL || hs_grow((void **)&out->row, cap, out->n + 1, sizeof *out->row) != 0) {
        free(key);
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", name);
    }
    out->row[out->n++] = (hs_label_row){key, label, (unsigned)subtypes, lineno};
    return HS_OK;
}

hs_status hs_labels_parse(const char *text, size_t len, const char *name, int slice_labels,
                          hs_label_file *out, hs_error *err)
{
    if (out == NULL || (text == NULL && len > 0) || name == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_labels_parse: NULL argument");
    memset(out, 0, sizeof *out);
    /* a UTF-8 byte order mark, as spreadsheets write it */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        text += 3;
        len -= 3;
    }
    hs_status st = HS_OK;
    int cap = 0, lineno = 0, seen_content = 0;
    size_t at = 0;
    while (st == HS_OK && at < len) {
        size_t end = at;
        while (end < len && text[end] != '\n')
            end++;
        lineno++;
        char *line = strndup(text + at, end - at);
        at = end + 1;
        if (line == NULL) {
            st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", name);
            break;
        }
        line[strcspn(line, "\r")] = '\0';
        char *t = trim(line);
        if (t[0] != '\0' && t[0] != '#') {
            st = parse_row(t, lineno, !seen_content, name, slice_labels, out, &cap, err);
            seen_content = 1;
        }
        free(line);
    }
    if (st == HS_OK)
        st = index_keys(out, name, err);
    if (st != HS_OK)
        hs_labels_free(out);
    return st;
}

hs_status hs_labels_read(const char *path, int slice_labels, hs_label_file *out, hs_error *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (path == NULL || out == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_labels_read: NULL argument");
    unsigned char *data = NULL;
    size_t len = 0;
    hs_status st = hs_file_read_all(path, LABELS_MAX_BYTES, &data, &len, err);
    if (st != HS_OK)
        return st;
    st = hs_labels_parse((const char *)data, len, path, slice_labels, out, err);
    free(data);
    return st;
}

int hs_labels_find(const hs_label_file *f, const char *key)
{
    if (f == NULL || key == NULL || key[0] == '\0')
        return -1;
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(key, f->row[f->sorted[mid]].key);
        if (c == 0)
            return f->sorted[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -1;
}

void hs_labels_free(hs_label_file *f)
{
    if (f == NULL)
        return;
    for (int i = 0; i < f->n; i++)
        free(f->row[i].key);
    free(f->row);
    free(f->sorted);
    memset(f, 0, sizeof *f);
}

static double ratio(int num, int den)
{
    return den > 0 ? (double)num / den : NAN;
}

/* The AUC and its CI over the assessable cases (NaN without both classes). */
static hs_status study_auc(const hs_validation_case *c, int n, hs_validation_report *r, hs_error *err)
{
    r->auc = r->auc_lo = r->auc_hi = NAN;
    float *score = malloc((size_t)(n > 0 ? n : 1) * sizeof *score);
    int *label = malloc((size_t)(n > 0 ? n : 1) * sizeof *label);
    int m = 0;
    hs_status st = HS_OK;
    if (score == NULL || label == NULL)
        st = hs_fail(err, HS_ERR_NOMEM, "out of memory computing the AUC");
    for (int i = 0; st == HS_OK && i < n; i++) {
        if (!c[i].assessable)
            continue;
        score[m] = (float)c[i].probability;
        label[m++] = c[i].label;
    }
    if (st == HS_OK && m > 0) {
        hs_binary_metrics bm;
        /* the threshold only sets bm's counts, which are not used: the
         * verdicts give them */
        st = hs_binary_metrics_compute(score, label, m, 0.5, &bm, err);
        if (st == HS_OK) {
            r->auc = bm.auc;
            r->auc_lo = bm.auc_lo;
            r->auc_hi = bm.auc_hi;
        }
    }
    free(score);
    free(label);
    return st;
}

hs_status hs_validation_compute(const hs_validation_case *cases, int n, hs_validation_report *r,
                                hs_error *err)
{
    if (r == NULL || (cases == NULL && n > 0) || n < 0)
        return hs_fail(err, HS_ERR_ARG, "hs_validation_compute: NULL argument");
    memset(r, 0, sizeof *r);
    for (int i = 0; i < n; i++) {
        const hs_validation_case *c = &cases[i];
        if (c->label != 0 && c->label != 1)
            return hs_fail(err, HS_ERR_ARG, "validation case %d: label %d is not 0 or 1", i, c->label);
        if (c->flagged && !c->assessable)
            return hs_fail(err, HS_ERR_ARG, "validation case %d: flagged but not assessable", i);
        if (c->assessable && !(c->probability >= 0 && c->probability <= 1))
            return hs_fail(err, HS_ERR_ARG, "validation case %d: probability %g not in [0, 1]", i,
                           c->probability);
        r->n++;
        if (c->label) {
            r->positives++;
            r->na_positives += !c->assessable;
            r->tp += c->assessable && c->flagged;
            r->fn += c->assessable && !c->flagged;
        } else {
            r->negatives++;
            r->na_negatives += !c->assessable;
            r->fp += c->assessable && c->flagged;
            r->tn += c->assessable && !c->flagged;
        }
        for (int s = 0; c->label && s < HS_SUBTYPES; s++) {
            if (c->subtypes & (1u << s)) {
                r->subtype_positives[s]++;
                r->subtype_found[s] += c->flagged;
            }
        }
    }
    r->sensitivity = ratio(r->tp, r->positives);
    r->specificity = ratio(r->tn, r->negatives);
    r->sensitivity_assessable = ratio(r->tp, r->tp + r->fn);
    r->specificity_assessable = ratio(r->tn, r->tn + r->fp);
    for (int s = 0; s < HS_SUBTYPES; s++)
        r->subtype_sensitivity[s] = ratio(r->subtype_found[s], r->subtype_positives[s]);
    return study_auc(cases, n, r, err);
}
