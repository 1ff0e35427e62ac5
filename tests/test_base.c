/* test_base.c - CUnit suite for the small base helpers, registered by
 * hs_register_base_tests(): the clock (clock.h), the string builder
 * (strbuf.h), array growth (grow.h) and the checked path join (path.h).
 *
 * Each test pins one part of a header's contract, refusals included (a limit
 * reached, an overflow, a path that does not fit): the callers cannot easily
 * provoke those. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "hemoscan/clock.h"
#include "hemoscan/grow.h"
#include "hemoscan/path.h"
#include "hemoscan/strbuf.h"
#include "test_util.h"

int hs_register_base_tests(void);

/* ---- clock --------------------------------------------------------------- */

static void test_clock_now(void)
{
    time_t before = time(NULL);
    double now = hs_clock_now();
    time_t after = time(NULL);
    /* time() truncates, so now lies in [before, after + 1). */
    CU_ASSERT(now >= (double)before);
    CU_ASSERT(now < (double)after + 1.0);
}

static void test_clock_monotonic(void)
{
    double first = hs_clock_monotonic(), last = first;
    int backwards = 0;
    for (int i = 0; i < 100000; i++) {
        double t = hs_clock_monotonic();
        backwards += t < last;
        last = t;
    }
    CU_ASSERT_EQUAL(backwards, 0);
    /* It measures time: a 20 ms sleep shows as at least 20 ms. */
    double a = hs_clock_monotonic();
    struct timespec nap = {0, 20 * 1000 * 1000};
    while (nanosleep(&nap, &nap) != 0 && errno == EINTR) {
    }
    double b = hs_clock_monotonic();
    CU_ASSERT(b - a >= 0.019);
    CU_ASSERT(b - a < 10.0);
}

/* ---- string builder ------------------------------------------------------ */

static void test_strbuf_builds(void)
{
    hs_strbuf b;
    hs_strbuf_init(&b, HS_STRBUF_NO_LIMIT);
    CU_ASSERT_PTR_NULL(b.p);
    CU_ASSERT_EQUAL(b.len, 0);
    hs_strbuf_puts(&b, "layers ");
    hs_strbuf_printf(&b, "%d %s", 3, "conv");
    hs_strbuf_append(&b, "\n+tail", 1);
    CU_ASSERT_EQUAL(b.status, HS_OK);
    CU_ASSERT_STRING_EQUAL(b.p, "layers 3 conv\n");
    CU_ASSERT_EQUAL(b.len, strlen("layers 3 conv\n"));
    /* An empty format and an empty append change nothing. */
    hs_strbuf_printf(&b, "%s", "");
    hs_strbuf_append(&b, NULL, 0);
    CU_ASSERT_EQUAL(b.len, strlen("layers 3 conv\n"));
    /* Far past the first allocation, in one printf and in many appends. */
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    hs_strbuf_printf(&b, "[%s]", big);
    for (int i = 0; i < 1000; i++)
        hs_strbuf_printf(&b, "%03d", i);
    CU_ASSERT_EQUAL_FATAL(b.status, HS_OK);
    size_t want = strlen("layers 3 conv\n") + 2 + 2999 + 3000;
    CU_ASSERT_EQUAL(b.len, want);
    CU_ASSERT_EQUAL(strlen(b.p), want);
    CU_ASSERT(b.cap > b.len);
    CU_ASSERT(b.p[strlen("layers 3 conv\n")] == '[' && b.p[strlen("layers 3 conv\n") + 3000] == ']');
    CU_ASSERT(memcmp(b.p + want - 6, "998999", 6) == 0);

    size_t len = 0;
    char *text = hs_strbuf_take(&b, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL(len, want);
    CU_ASSERT(strncmp(text, "layers 3 conv\n[x", 16) == 0);
    free(text);
    /* Taking empties the buffer. */
    CU_ASSERT_PTR_NULL(b.p);
    CU_ASSERT_EQUAL(b.len, 0);
    /* An empty buffer gives "", not NULL. */
    text = hs_strbuf_take(&b, &len);
    CU_ASSERT(text != NULL && text[0] == '\0' && len == 0);
    free(text);
    hs_strbuf_free(&b);
}

static void test_strbuf_limit(void)
{
    hs_strbuf b;
    hs_strbuf_init(&b, 10);
    hs_strbuf_puts(&b, "12345");
    hs_strbuf_printf(&b, "%d", 678);
    CU_ASSERT_EQUAL(b.status, HS_OK);
    /* 8 bytes so far: "901" would make 11, one past the limit. It fits in
     * the allocated room, so only the limit can refuse it. */
    CU_ASSERT(b.cap > 11);
    hs_strbuf_printf(&b, "%d", 901);
    CU_ASSERT_EQUAL(b.status, HS_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(b.p, "12345678");
    CU_ASSERT_EQUAL(b.len, 8);
    /* Sticky: even what would fit is refused now, and the reason stays. */
    hs_strbuf_puts(&b, "9");
    hs_strbuf_fail_nomem(&b);
    CU_ASSERT_EQUAL(b.status, HS_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(b.p, "12345678");
    size_t len = 99;
    CU_ASSERT_PTR_NULL(hs_strbuf_take(&b, &len));
    CU_ASSERT_EQUAL(len, 0);
    /* Taking cleared the failure and kept the limit: exactly 10 fit. */
    CU_ASSERT_EQUAL(b.status, HS_OK);
    hs_strbuf_append(&b, "0123456789", 10);
    CU_ASSERT_EQUAL(b.status, HS_OK);
    hs_strbuf_append(&b, "x", 1);
    CU_ASSERT_EQUAL(b.status, HS_ERR_ARG);
    CU_ASSERT_EQUAL(b.len, 10);
    hs_strbuf_free(&b);

    /* A first append past the limit leaves the buffer empty; a printf
     * past it is refused before anything is allocated for it. */
    hs_strbuf_init(&b, 4);
    hs_strbuf_printf(&b, "%s", "hello");
    CU_ASSERT_EQUAL(b.status, HS_ERR_ARG);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_PTR_NULL(b.p);
    hs_strbuf_free(&b);
    CU_ASSERT_EQUAL(b.status, HS_OK);
    CU_ASSERT_EQUAL(b.max, 4);

    /* The caller's own failure is reported the same way. */
    hs_strbuf_init(&b, HS_STRBUF_NO_LIMIT);
    hs_strbuf_puts(&b, "<svg>");
    hs_strbuf_fail_nomem(&b);
    hs_strbuf_puts(&b, "</svg>");
    CU_ASSERT_EQUAL(b.status, HS_ERR_NOMEM);
    CU_ASSERT_STRING_EQUAL(b.p, "<svg>");
    hs_strbuf_free(&b);
    CU_ASSERT_PTR_NULL(b.p);

    /* A limit past HS_STRBUF_NO_LIMIT is taken as no limit. */
    hs_strbuf_init(&b, SIZE_MAX);
    CU_ASSERT_EQUAL(b.max, HS_STRBUF_NO_LIMIT);
    hs_strbuf_free(&b);
}

/* ---- growth -------------------------------------------------------------- */

static void test_grow_doubles(void)
{
    int *v = NULL, cap = 0;
    CU_ASSERT_EQUAL_FATAL(hs_grow((void **)&v, &cap, 1, sizeof *v), 0);
    CU_ASSERT_EQUAL(cap, HS_GROW_FIRST);
    for (int i = 0; i < cap; i++)
        v[i] = i;
    int *before = v;
    CU_ASSERT_EQUAL(hs_grow((void **)&v, &cap, HS_GROW_FIRST, sizeof *v), 0);
    CU_ASSERT(v == before && cap == HS_GROW_FIRST); /* fits: untouched */
    CU_ASSERT_EQUAL_FATAL(hs_grow((void **)&v, &cap, HS_GROW_FIRST + 1, sizeof *v), 0);
    CU_ASSERT_EQUAL(cap, 2 * HS_GROW_FIRST);
    CU_ASSERT_EQUAL_FATAL(hs_grow((void **)&v, &cap, 5 * HS_GROW_FIRST, sizeof *v), 0);
    CU_ASSERT_EQUAL(cap, 8 * HS_GROW_FIRST); /* doubled until it holds need */
    int kept = 1;
    for (int i = 0; i < HS_GROW_FIRST; i++)
        kept &= v[i] == i;
    CU_ASSERT(kept);
    v[cap - 1] = 7; /* valgrind: the whole capacity is there */
    free(v);
}

static void test_grow_refuses(void)
{
    char *p = NULL;
    int cap = 0;
    CU_ASSERT_EQUAL(hs_grow((void **)&p, &cap, -1, 1), -1);
    CU_ASSERT_EQUAL(hs_grow((void **)&p, &cap, 1, 0), -1);
    /* Bytes past SIZE_MAX: refused before any allocation. */
    CU_ASSERT_EQUAL(hs_grow((void **)&p, &cap, 2, SIZE_MAX / 8), -1);
    CU_ASSERT(p == NULL && cap == 0);

    CU_ASSERT_EQUAL_FATAL(hs_grow((void **)&p, &cap, 3, 1), 0);
    memcpy(p, "ok", 3);
    char *before = p;
    /* The count + 1 of a full INT_MAX array wraps negative: refused. */
    int n = INT_MAX;
    CU_ASSERT_EQUAL(hs_grow((void **)&p, &cap, (int)((unsigned)n + 1u), 1), -1);
    /* Doubling past INT_MAX gives need itself, whose bytes still must
     * fit size_t: with 2^40-byte elements they do not. */
    int big_cap = INT_MAX / 2 + 2;
    char *none = NULL;
    CU_ASSERT_EQUAL(hs_grow((void **)&none, &big_cap, INT_MAX, (size_t)1 << 40), -1);
    CU_ASSERT(none == NULL && big_cap == INT_MAX / 2 + 2);
    /* A refusal changes nothing. */
    CU_ASSERT(p == before && cap == HS_GROW_FIRST && strcmp(p, "ok") == 0);
    free(p);
}

/* ---- paths --------------------------------------------------------------- */

static void test_path_join(void)
{
    char out[16];
    hs_error err = {HS_OK, ""};
    CU_ASSERT_EQUAL(hs_path_join(out, sizeof out, "dir", "leaf", &err), HS_OK);
    CU_ASSERT_STRING_EQUAL(out, "dir/leaf");
    /* No respelling: a trailing slash stays, as snprintf("%s/%s") had it. */
    CU_ASSERT_EQUAL(hs_path_join(out, sizeof out, "dir/", "leaf", &err), HS_OK);
    CU_ASSERT_STRING_EQUAL(out, "dir//leaf");
    CU_ASSERT_EQUAL(hs_path_join(out, sizeof out, "/", "etc", NULL), HS_OK);
    CU_ASSERT_STRING_EQUAL(out, "//etc");
    /* Exactly full (15 bytes and the 0) fits; one byte more does not. */
    CU_ASSERT_EQUAL(hs_path_join(out, sizeof out, "0123456789", "abcd", &err), HS_OK);
    CU_ASSERT_STRING_EQUAL(out, "0123456789/abcd");
    CU_ASSERT_EQUAL(hs_path_join(out, sizeof out, "0123456789", "abcde", &err), HS_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(out, ""); /* never a cut path */
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "16 bytes"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "0123456789/abcd"));
    CU_ASSERT_EQUAL(hs_path_join(out, sizeof out, NULL, "x", &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_path_join(out, sizeof out, "x", NULL, NULL), HS_ERR_ARG);

    /* A folder over 4 kB: refused with the start of the path in the
     * message, so the user sees which one. */
    char *dir = malloc(HS_PATH_MAX + 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    strcpy(dir, "/data/drop-");
    memset(dir + 11, 'x', HS_PATH_MAX + 50);
    dir[HS_PATH_MAX + 61] = '\0';
    char path[HS_PATH_MAX];
    CU_ASSERT_EQUAL(hs_path_join(path, sizeof path, dir, "index.csv", &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(err.code, HS_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(path, "");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/data/drop-xxx"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "too long"));
    free(dir);
}

static void test_path_printf(void)
{
    char out[24];
    hs_error err = {HS_OK, ""};
    CU_ASSERT_EQUAL(hs_path_printf(out, sizeof out, &err, "%s/.%s.%ld.tmp", "d", "f", 42L), HS_OK);
    CU_ASSERT_STRING_EQUAL(out, "d/.f.42.tmp");
    CU_ASSERT_EQUAL(hs_path_printf(out, sizeof out, &err, "%s/%s", "a-long-folder", "a-long-name"),
                    HS_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "25 bytes"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "a-long-folder/"));
    /* The one path buffer size is the kernel's: no usable path is longer. */
    CU_ASSERT_EQUAL(HS_PATH_MAX, PATH_MAX);
}

int hs_register_base_tests(void)
{
    static const hs_test_case tests[] = {
        {"clock: wall clock agrees with time()", test_clock_now},
        {"clock: monotonic never goes back, measures a sleep", test_clock_monotonic},
        {"strbuf: appends, formats, grows, takes", test_strbuf_builds},
        {"strbuf: limit and failures are sticky, all or nothing", test_strbuf_limit},
        {"grow: doubles from HS_GROW_FIRST, keeps elements", test_grow_doubles},
        {"grow: refuses overflow and bad sizes, changing nothing", test_grow_refuses},
        {"path: join, no respelling, refuses and names a long path", test_path_join},
        {"path: printf form, HS_PATH_MAX is PATH_MAX", test_path_printf},
    };
    return hs_test_add_suite("base", NULL, NULL, tests, sizeof tests / sizeof tests[0]);
}
