/* test_validation.c - CUnit suite for the validation run's library half
 * (validation.c): label files and the study-level figures, registered by
 * hs_register_validation_tests().
 *
 * Label files are given as text, so each case shows exactly what a site
 * might write (spreadsheet exports with a BOM and CRLF, quoted folder
 * names, headers, word labels, both subtype separators) and what must be
 * refused with a message naming the line. The figures are checked on a
 * small set of cases worked out by hand in the comments, including the
 * counting of not-assessable studies, and the AUC against metrics.c's own
 * function on the same scores (one definition of the AUC, not two). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "hemoscan/metrics.h"
#include "hemoscan/validation.h"
#include "test_util.h"

int hs_register_validation_tests(void);

static hs_status parse(const char *text, int slices, hs_label_file *f, hs_error *err)
{
    return hs_labels_parse(text, strlen(text), "labels.csv", slices, f, err);
}

static void test_parse_forms(void)
{
    const char *text = "\xef\xbb\xbfstudy,label,subtypes\r\n"
                       "1.2.3.4,1,intraparenchymal;subdural\r\n"
                       "\r\n"
                       "# a comment\n"
                       "  case02 , normal \n"
                       "\"folder, with comma\",Yes,SAH|ivh\n"
                       "case04,no,\n"
                       "case05,HEMORRHAGE\n"
                       "\"say \"\"hi\"\"\",0"; /* no newline at the end */
    hs_label_file f;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(parse(text, 0, &f, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(f.n, 6);
    CU_ASSERT_STRING_EQUAL(f.row[0].key, "1.2.3.4");
    CU_ASSERT_EQUAL(f.row[0].label, 1);
    CU_ASSERT_EQUAL(f.row[0].subtypes, (1u << 1) | (1u << 4));
    CU_ASSERT_EQUAL(f.row[0].line, 2);
    CU_ASSERT_STRING_EQUAL(f.row[1].key, "case02");
    CU_ASSERT_EQUAL(f.row[1].label, 0);
    CU_ASSERT_EQUAL(f.row[1].line, 5);
    CU_ASSERT_STRING_EQUAL(f.row[2].key, "folder, with comma");
    CU_ASSERT_EQUAL(f.row[2].subtypes, (1u << 2) | (1u << 3));
    CU_ASSERT_EQUAL(f.row[3].label, 0);
    CU_ASSERT_EQUAL(f.row[3].subtypes, 0u);
    CU_ASSERT_EQUAL(f.row[4].label, 1);
    CU_ASSERT_STRING_EQUAL(f.row[5].key, "say \"hi\"");
    CU_ASSERT_EQUAL(hs_labels_find(&f, "case05"), 4);
    CU_ASSERT_EQUAL(hs_labels_find(&f, "1.2.3.4"), 0);
    CU_ASSERT_EQUAL(hs_labels_find(&f, "folder, with comma"), 2);
    CU_ASSERT_EQUAL(hs_labels_find(&f, "case0"), -1);
    CU_ASSERT_EQUAL(hs_labels_find(&f, ""), -1);
    CU_ASSERT_EQUAL(hs_labels_find(&f, NULL), -1);
    char buf[80];
    hs_subtypes_text(f.row[0].subtypes, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "intraparenchymal;subdural");
    hs_subtypes_text(0, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "");
    hs_labels_free(&f);
    CU_ASSERT_EQUAL(f.n, 0);
    hs_labels_free(&f); /* twice is fine */

    /* no header, slice labels; an empty file is an empty list */
    CU_ASSERT_EQUAL_FATAL(parse("1.2.3.4.5,1\n1.2.3.4.6,0\n", 1, &f, &err), HS_OK);
    CU_ASSERT_EQUAL(f.n, 2);
    CU_ASSERT_EQUAL(hs_labels_find(&f, "1.2.3.4.6"), 1);
    hs_labels_free(&f);
    CU_ASSERT_EQUAL(parse("", 1, &f, &err), HS_OK);
    CU_ASSERT_EQUAL(f.n, 0);
    CU_ASSERT_EQUAL(hs_labels_find(&f, "x"), -1);
    hs_labels_free(&f);
}

static void test_parse_errors(void)
{
    static const struct {
        const char *text;
        int slices;
        const char *says;
    } cases[] = {
        {"study,label\na,1\nb,maybe\n", 0, "labels.csv:3: label \"maybe\""},
        {"a,1\nb\n", 0, "labels.csv:2: expected \"study,label[,subtypes]\", found 1 field"},
        {"a,1,iph,extra\n", 0, "labels.csv:1: expected"},
        {"a,1,iph\n", 1, "labels.csv:1: expected \"sop_instance_uid,label\", found 3"},
        {"a,1,brainstem\n", 0, "labels.csv:1: unknown subtype \"brainstem\""},
        {"a,0,subdural\n", 0, "labels.csv:1: a normal study with hemorrhage subtypes"},
        {"a,1\n\"b,0\n", 0, "labels.csv:2: a quote is not closed"},
        {"a,1\nb,0\na,0\n", 0, "labels.csv:3: \"a\" is labelled again (first on line 1)"},
        {"a,1\n,0\n", 0, "labels.csv:2: the study is empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hs_label_file f;
        hs_error err = {0};
        CU_ASSERT_EQUAL(parse(cases[i].text, cases[i].slices, &f, &err), HS_ERR_FORMAT);
        CU_ASSERT_EQUAL(f.n, 0);
        CU_ASSERT_PTR_NULL(f.row);
        if (strstr(err.msg, cases[i].says) == NULL)
            printf("\n  case %zu: \"%s\" does not say \"%s\"\n", i, err.msg, cases[i].says);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].says));
    }
    hs_label_file f;
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_labels_read("/nonexistent/labels.csv", 0, &f, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/labels.csv"));
}

/* Six positives and four negatives:
 *   positives: flagged 0.9 (iph), flagged 0.8 (iph+sdh), missed 0.2 (sdh),
 *              missed 0.3, not assessable (sah), flagged 0.6
 *   negatives: 0.1, 0.25, flagged 0.7 (a false alarm), not assessable
 * tp 3, fn 2, na_pos 1 -> sensitivity 3/6, assessable 3/5
 * tn 2, fp 1, na_neg 1 -> specificity 2/4, assessable 2/3
 * iph 2/2, sdh 1/2, sah 0/1, others undefined. */
static void test_compute(void)
{
    const unsigned iph = 1u << 1, sdh = 1u << 4, sah = 1u << 3;
    hs_validation_case c[] = {
        {1, iph, 1, 1, 0.9},      {1, iph | sdh, 1, 1, 0.8}, {1, sdh, 1, 0, 0.2},
        {1, 0, 1, 0, 0.3},        {1, sah, 0, 0, NAN},       {1, 0, 1, 1, 0.6},
        {0, 0, 1, 0, 0.1},        {0, 0, 1, 0, 0.25},        {0, 0, 1, 1, 0.7},
        {0, 0, 0, 0, NAN},
    };
    hs_validation_report r;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_validation_compute(c, 10, &r, &err), HS_OK);
    CU_ASSERT_EQUAL(r.n, 10);
    CU_ASSERT_EQUAL(r.positives, 6);
    CU_ASSERT_EQUAL(r.negatives, 4);
    CU_ASSERT_EQUAL(r.tp, 3);
    CU_ASSERT_EQUAL(r.fn, 2);
    CU_ASSERT_EQUAL(r.fp, 1);
    CU_ASSERT_EQUAL(r.tn, 2);
    CU_ASSERT_EQUAL(r.na_positives, 1);
    CU_ASSERT_EQUAL(r.na_negatives, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.sensitivity, 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.specificity, 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.sensitivity_assessable, 0.6, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.specificity_assessable, 2.0 / 3, 1e-12);
    CU_ASSERT_EQUAL(r.subtype_positives[1], 2);
    CU_ASSERT_EQUAL(r.subtype_found[1], 2);
    CU_ASSERT_DOUBLE_EQUAL(r.subtype_sensitivity[4], 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.subtype_sensitivity[3], 0.0, 1e-12);
    CU_ASSERT(isnan(r.subtype_sensitivity[0]));
    /* the AUC is metrics.c's over the eight assessable cases:
     * positives 0.9 0.8 0.2 0.3 0.6 vs negatives 0.1 0.25 0.7:
     * pairs won 3 + 3 + 1 + 2 + 2 = 11 of 15 */
    const float s[] = {0.9f, 0.8f, 0.2f, 0.3f, 0.6f, 0.1f, 0.25f, 0.7f};
    const int l[] = {1, 1, 1, 1, 1, 0, 0, 0};
    hs_binary_metrics m;
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, l, 8, 0.5, &m, &err), HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(r.auc, 11.0 / 15, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r.auc_lo, m.auc_lo, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.auc_hi, m.auc_hi, 1e-12);
    CU_ASSERT(r.auc_lo < r.auc && r.auc < r.auc_hi);

    /* nothing read: every figure undefined, no error */
    CU_ASSERT_EQUAL(hs_validation_compute(NULL, 0, &r, &err), HS_OK);
    CU_ASSERT_EQUAL(r.n, 0);
    CU_ASSERT(isnan(r.sensitivity) && isnan(r.specificity) && isnan(r.auc));
    /* only not-assessable positives: sensitivity 0, no AUC */
    hs_validation_case na[] = {{1, 0, 0, 0, NAN}, {1, 0, 0, 0, NAN}};
    CU_ASSERT_EQUAL(hs_validation_compute(na, 2, &r, &err), HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(r.sensitivity, 0.0, 1e-12);
    CU_ASSERT(isnan(r.sensitivity_assessable) && isnan(r.auc));

    /* refused inputs name the case */
    hs_validation_case bad[] = {{1, 0, 1, 1, 0.9}, {2, 0, 1, 0, 0.1}};
    CU_ASSERT_EQUAL(hs_validation_compute(bad, 2, &r, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "case 1"));
    bad[1] = (hs_validation_case){0, 0, 0, 1, NAN};
    CU_ASSERT_EQUAL(hs_validation_compute(bad, 2, &r, &err), HS_ERR_ARG);
    bad[1] = (hs_validation_case){0, 0, 1, 0, 1.5};
    CU_ASSERT_EQUAL(hs_validation_compute(bad, 2, &r, &err), HS_ERR_ARG);
}

int hs_register_validation_tests(void)
{
    static const hs_test_case cases[] = {
        {"label files: headers, quotes, BOM, CRLF, words, subtypes", test_parse_forms},
        {"label files: errors name the line", test_parse_errors},
        {"figures: counts, not assessable, subtypes, AUC from metrics.c", test_compute},
    };
    return hs_test_add_suite("validation", NULL, NULL, cases, sizeof cases / sizeof cases[0]);
}
