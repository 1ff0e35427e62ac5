/* test_base.c - CUnit suite for the small base helpers, registered by
 * hs_register_base_tests(): the clock (clock.h), the string builder
 * (strbuf.h), array growth (grow.h), the checked path join (path.h) and
 * the folder walk (dirwalk.h).
 *
 * Each test pins one part of a header's contract, refusals included (a
 * limit reached, an overflow, a path that does not fit, a folder that
 * cannot be opened): the callers cannot easily provoke those. The walk is
 * checked visit by visit against a small tree with every kind of entry
 * its two callers meet (hidden and temporary names, links to files and
 * folders, a dangling link, a hard link, a link loop). */
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
#include "hemoscan/dirwalk.h"
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

/* ---- folder walk --------------------------------------------------------- */

/* The walk's trees live in a private folder of the suite. */
static char tmp_dir[HS_PATH_MAX];

static int suite_init(void)
{
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "base");
}

static int suite_clean(void)
{
    return hs_test_tmpdir_remove(tmp_dir);
}

/* The visits of a walk as lines "KIND depth path-below-root [errno]". */
typedef struct {
    size_t root_len;
    char lines[64][160];
    int n;
    const char *prune;   /* a folder (below root) to prune */
    const char *remove;  /* a folder (below root) emptied of e.txt and removed when
                            visited, before it is opened */
    int stop_after;      /* > 0: the visit fails on this visit */
    int top_error;       /* status for a DIR_ERROR at depth 0 */
    int parents_ok;      /* every parent chain ends at the root, depths counting down */
} visits;

static hs_status record(void *ctx, hs_dirwalk_entry *e, hs_error *err)
{
    visits *v = ctx;
    static const char *const kind[] = {"FILE", "DIR", "DIR_ERROR", "STAT_ERROR"};
    const char *rel = strlen(e->path) > v->root_len ? e->path + v->root_len + 1 : ".";
    int d = e->depth;
    for (const hs_dirwalk_entry *p = e->parent; p != NULL; p = p->parent)
        v->parents_ok &= p->depth == --d && p->st != NULL;
    v->parents_ok &= d == 0;
    if (v->n < 64) {
        if (e->kind >= HS_DIRWALK_DIR_ERROR)
            snprintf(v->lines[v->n], sizeof v->lines[v->n], "%s %d %.100s %s", kind[e->kind], e->depth,
                     rel, strerror(e->error));
        else
            snprintf(v->lines[v->n], sizeof v->lines[v->n], "%s %d %.100s%s", kind[e->kind], e->depth, rel,
                     e->kind == HS_DIRWALK_FILE && S_ISLNK(e->st->st_mode) ? " (link)" : "");
        v->n++;
    }
    if (e->kind == HS_DIRWALK_DIR_ERROR && e->depth == 0 && v->top_error != HS_OK)
        return hs_fail(err, (hs_status)v->top_error, "%s: cannot open", e->path);
    if (e->kind == HS_DIRWALK_DIR && v->prune != NULL && strcmp(rel, v->prune) == 0)
        e->prune = 1;
    if (e->kind == HS_DIRWALK_DIR && v->remove != NULL && strcmp(rel, v->remove) == 0) {
        char inside[HS_PATH_MAX];
        hs_path_join(inside, sizeof inside, e->path, "e.txt", NULL);
        unlink(inside);
        CU_ASSERT(rmdir(e->path) == 0);
    }
    if (v->stop_after > 0 && v->n == v->stop_after)
        return hs_fail(err, HS_ERR_IO, "stopped at %s", rel);
    return HS_OK;
}

static int is_tmp(const char *name)
{
    size_t n = strlen(name);
    return name[0] == '.' || (n >= 4 && strcmp(name + n - 4, ".tmp") == 0);
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void put(const char *root, const char *rel, const char *text)
{
    char p[HS_PATH_MAX];
    CU_ASSERT_EQUAL_FATAL(hs_path_join(p, sizeof p, root, rel, NULL), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_test_write_file(p, text, strlen(text)), 0);
}

/* root/
 *   a.txt  .hidden  z.tmp  hard (hard link to a.txt)
 *   link_file -> a.txt   link_dir -> b   dangling -> nowhere
 *   b/  c.txt  loop -> ..
 *       d/  e.txt */
static void make_tree(char *root, size_t cap, const char *name)
{
    char p[HS_PATH_MAX], q[HS_PATH_MAX];
    CU_ASSERT_EQUAL_FATAL(hs_path_join(root, cap, tmp_dir, name, NULL), HS_OK);
    CU_ASSERT_EQUAL_FATAL(mkdir(root, 0755), 0);
    hs_path_join(p, sizeof p, root, "b", NULL);
    CU_ASSERT_EQUAL_FATAL(mkdir(p, 0755), 0);
    hs_path_join(p, sizeof p, root, "b/d", NULL);
    CU_ASSERT_EQUAL_FATAL(mkdir(p, 0755), 0);
    put(root, "a.txt", "a");
    put(root, ".hidden", "h");
    put(root, "z.tmp", "z");
    put(root, "b/c.txt", "c");
    put(root, "b/d/e.txt", "e");
    hs_path_join(p, sizeof p, root, "a.txt", NULL);
    hs_path_join(q, sizeof q, root, "hard", NULL);
    CU_ASSERT_EQUAL(link(p, q), 0);
    hs_path_join(q, sizeof q, root, "link_file", NULL);
    CU_ASSERT_EQUAL(symlink("a.txt", q), 0);
    hs_path_join(q, sizeof q, root, "link_dir", NULL);
    CU_ASSERT_EQUAL(symlink("b", q), 0);
    hs_path_join(q, sizeof q, root, "dangling", NULL);
    CU_ASSERT_EQUAL(symlink("nowhere", q), 0);
    hs_path_join(q, sizeof q, root, "b/loop", NULL);
    CU_ASSERT_EQUAL(symlink("..", q), 0);
}

/* The study scan's options: every file once, in order, links followed. */
static void test_walk_sorted_once(void)
{
    char root[HS_PATH_MAX];
    make_tree(root, sizeof root, "walk-once");
    visits v = {.root_len = strlen(root), .parents_ok = 1};
    hs_dirwalk_options opt = {.follow_links = 1, .once = 1, .sorted = 1, .max_depth = -1, .skip_hidden = 1};
    hs_error err = {HS_OK, ""};
    CU_ASSERT_EQUAL_FATAL(hs_dirwalk(root, &opt, record, &v, &err), HS_OK);
    static const char *const want[] = {
        "FILE 1 a.txt",
        "DIR 1 b",
        "FILE 2 b/c.txt",
        "DIR 2 b/d",
        "FILE 3 b/d/e.txt",
        /* b/loop is the root again, hard and link_file are a.txt, link_dir
         * is b: each seen before, so left out */
        "STAT_ERROR 1 dangling No such file or directory",
        "FILE 1 z.tmp",
    };
    int n = (int)(sizeof want / sizeof want[0]);
    CU_ASSERT_EQUAL(v.n, n);
    for (int i = 0; i < n && i < v.n; i++)
        CU_ASSERT_STRING_EQUAL(v.lines[i], want[i]);
    CU_ASSERT(v.parents_ok);

    /* The same root spelled with a trailing slash: paths keep it. */
    char slashed[HS_PATH_MAX];
    CU_ASSERT_EQUAL_FATAL(hs_path_printf(slashed, sizeof slashed, NULL, "%s/", root), HS_OK);
    visits w = {.root_len = strlen(slashed) - 1, .parents_ok = 1};
    CU_ASSERT_EQUAL(hs_dirwalk(slashed, &opt, record, &w, &err), HS_OK);
    CU_ASSERT(w.n == n && strcmp(w.lines[0], "FILE 1 /a.txt") == 0);
}

/* The drop folder's options: links are files, temporary names left out,
 * readdir order (so compared sorted), every entry once even when it is
 * the same file. */
static void test_walk_lstat(void)
{
    char root[HS_PATH_MAX];
    make_tree(root, sizeof root, "walk-lstat");
    visits v = {.root_len = strlen(root), .parents_ok = 1};
    hs_dirwalk_options opt = {.max_depth = 64, .skip_name = is_tmp};
    hs_error err = {HS_OK, ""};
    CU_ASSERT_EQUAL_FATAL(hs_dirwalk(root, &opt, record, &v, &err), HS_OK);
    static const char *const want[] = {
        "DIR 1 b",
        "DIR 2 b/d",
        "FILE 1 a.txt",
        "FILE 1 dangling (link)",
        "FILE 1 hard",
        "FILE 1 link_dir (link)",
        "FILE 1 link_file (link)",
        "FILE 2 b/c.txt",
        "FILE 2 b/loop (link)",
        "FILE 3 b/d/e.txt",
    };
    int n = (int)(sizeof want / sizeof want[0]);
    CU_ASSERT_EQUAL_FATAL(v.n, n);
    /* A folder comes before its contents, whatever the order. */
    int b = -1, c = -1;
    for (int i = 0; i < v.n; i++) {
        if (strcmp(v.lines[i], "DIR 1 b") == 0)
            b = i;
        if (strcmp(v.lines[i], "FILE 2 b/c.txt") == 0)
            c = i;
    }
    CU_ASSERT(b >= 0 && c > b);
    qsort(v.lines, (size_t)v.n, sizeof v.lines[0], cmp_line);
    for (int i = 0; i < n; i++)
        CU_ASSERT_STRING_EQUAL(v.lines[i], want[i]);
    CU_ASSERT(v.parents_ok);
}

static void test_walk_depth_and_prune(void)
{
    char root[HS_PATH_MAX];
    make_tree(root, sizeof root, "walk-depth");
    hs_error err = {HS_OK, ""};
    hs_dirwalk_options opt = {.sorted = 1, .skip_hidden = 1, .max_depth = 0};
    /* 0: the root's entries only (links not followed: 7 of them); b is
     * visited but not entered. */
    visits v = {.root_len = strlen(root), .parents_ok = 1};
    CU_ASSERT_EQUAL(hs_dirwalk(root, &opt, record, &v, &err), HS_OK);
    CU_ASSERT_EQUAL(v.n, 7);
    for (int i = 0; i < v.n; i++)
        CU_ASSERT(strncmp(v.lines[i], "FILE 1 ", 7) == 0 || strcmp(v.lines[i], "DIR 1 b") == 0);
    /* 1: b is entered, b/d is not. */
    opt.max_depth = 1;
    visits w = {.root_len = strlen(root), .parents_ok = 1};
    CU_ASSERT_EQUAL(hs_dirwalk(root, &opt, record, &w, &err), HS_OK);
    CU_ASSERT_EQUAL(w.n, 10);
    int saw_d = 0, saw_e = 0;
    for (int i = 0; i < w.n; i++) {
        saw_d += strcmp(w.lines[i], "DIR 2 b/d") == 0;
        saw_e += strstr(w.lines[i], "e.txt") != NULL;
    }
    CU_ASSERT(saw_d == 1 && saw_e == 0);
    /* No limit, but b pruned by the visit: nothing below it. */
    opt.max_depth = -1;
    visits x = {.root_len = strlen(root), .parents_ok = 1, .prune = "b"};
    CU_ASSERT_EQUAL(hs_dirwalk(root, &opt, record, &x, &err), HS_OK);
    CU_ASSERT_EQUAL(x.n, 7);
    for (int i = 0; i < x.n; i++)
        CU_ASSERT_PTR_NULL(strstr(x.lines[i], "b/"));
}

static void test_walk_errors(void)
{
    char root[HS_PATH_MAX], p[HS_PATH_MAX];
    make_tree(root, sizeof root, "walk-errors");
    hs_error err = {HS_OK, ""};
    hs_dirwalk_options opt = {.sorted = 1, .max_depth = -1, .skip_hidden = 1};

    /* A folder that cannot be opened: visited as DIR, then as DIR_ERROR,
     * and the walk goes on with the next entry. (Removed between the two,
     * which also works as root, where permissions would not stop it.) */
    visits v = {.root_len = strlen(root), .parents_ok = 1, .remove = "b/d"};
    CU_ASSERT_EQUAL(hs_dirwalk(root, &opt, record, &v, &err), HS_OK);
    int at = -1;
    for (int i = 0; i < v.n; i++)
        if (strcmp(v.lines[i], "DIR 2 b/d") == 0)
            at = i;
    CU_ASSERT_FATAL(at >= 0 && at + 2 < v.n);
    CU_ASSERT_STRING_EQUAL(v.lines[at + 1], "DIR_ERROR 2 b/d No such file or directory");
    CU_ASSERT_STRING_EQUAL(v.lines[at + 2], "FILE 2 b/loop (link)");

    /* Unreadable by permission, for a user the permission stops. */
    if (geteuid() != 0) {
        hs_path_join(p, sizeof p, root, "b", NULL);
        CU_ASSERT_EQUAL_FATAL(chmod(p, 0), 0);
        visits u = {.root_len = strlen(root), .parents_ok = 1};
        CU_ASSERT_EQUAL(hs_dirwalk(root, &opt, record, &u, &err), HS_OK);
        int found = 0;
        for (int i = 0; i < u.n; i++)
            found += strcmp(u.lines[i], "DIR_ERROR 1 b Permission denied") == 0;
        CU_ASSERT_EQUAL(found, 1);
        chmod(p, 0755);
    }

    /* The root: an error only when the visit makes it one. */
    hs_path_join(p, sizeof p, root, "no-such-folder", NULL);
    visits r = {.root_len = strlen(p), .parents_ok = 1};
    CU_ASSERT_EQUAL(hs_dirwalk(p, &opt, record, &r, &err), HS_OK);
    CU_ASSERT(r.n == 1 && strcmp(r.lines[0], "DIR_ERROR 0 . No such file or directory") == 0);
    visits r2 = {.root_len = strlen(p), .parents_ok = 1, .top_error = HS_ERR_IO};
    CU_ASSERT_EQUAL(hs_dirwalk(p, &opt, record, &r2, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no-such-folder: cannot open"));
    hs_path_join(p, sizeof p, root, "a.txt", NULL);
    visits r3 = {.root_len = strlen(p), .parents_ok = 1};
    CU_ASSERT_EQUAL(hs_dirwalk(p, &opt, record, &r3, &err), HS_OK);
    CU_ASSERT(r3.n == 1 && strcmp(r3.lines[0], "DIR_ERROR 0 . Not a directory") == 0);

    /* A visit that fails stops the walk at once, with its status. */
    visits s = {.root_len = strlen(root), .parents_ok = 1, .stop_after = 2};
    CU_ASSERT_EQUAL(hs_dirwalk(root, &opt, record, &s, &err), HS_ERR_IO);
    CU_ASSERT_EQUAL(s.n, 2);
    CU_ASSERT_STRING_EQUAL(err.msg, "stopped at b");

    CU_ASSERT_EQUAL(hs_dirwalk(NULL, &opt, record, &s, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_dirwalk(root, NULL, record, &s, &err), HS_ERR_ARG);
    /* A root too long for a path buffer: refused by name, nothing visited. */
    char *deep = malloc(HS_PATH_MAX + 10);
    CU_ASSERT_PTR_NOT_NULL_FATAL(deep);
    memset(deep, 'd', HS_PATH_MAX + 9);
    deep[HS_PATH_MAX + 9] = '\0';
    visits t = {.root_len = strlen(root), .parents_ok = 1};
    CU_ASSERT_EQUAL(hs_dirwalk(deep, &opt, record, &t, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(t.n, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "path of 4105 bytes is too long (at most 4095): dddd"));
    free(deep);
}

typedef struct {
    int n;          /* STAT_ERROR visits */
    size_t len;     /* of the cut path */
    int error;      /* its errno */
    int name_whole; /* its name is the whole 250-byte name */
} cut_seen;

static hs_status look_cut(void *ctx, hs_dirwalk_entry *e, hs_error *err)
{
    (void)err;
    cut_seen *c = ctx;
    if (e->kind == HS_DIRWALK_STAT_ERROR) {
        c->n++;
        c->len = e->path_cut ? strlen(e->path) : 0;
        c->error = e->error;
        c->name_whole = strlen(e->name) == 250 && e->st == NULL;
    }
    return HS_OK;
}

/* An entry whose path does not fit HS_PATH_MAX is reported as the kernel
 * would (ENAMETOOLONG), cut, and the walk goes on. The tree is built and
 * removed relative to descriptors, since no path reaches its bottom. */
static void test_walk_path_too_long(void)
{
    enum { LEVELS = 17 };
    char root[HS_PATH_MAX], name[251];
    memset(name, 'n', 250);
    name[250] = '\0';
    CU_ASSERT_EQUAL_FATAL(hs_path_join(root, sizeof root, tmp_dir, "walk-long", NULL), HS_OK);
    CU_ASSERT_EQUAL_FATAL(mkdir(root, 0755), 0);
    int fd[LEVELS + 1];
    fd[0] = open(root, O_RDONLY | O_DIRECTORY);
    CU_ASSERT_FATAL(fd[0] >= 0);
    for (int i = 0; i < LEVELS; i++) {
        CU_ASSERT_EQUAL_FATAL(mkdirat(fd[i], name, 0755), 0);
        fd[i + 1] = openat(fd[i], name, O_RDONLY | O_DIRECTORY);
        CU_ASSERT_FATAL(fd[i + 1] >= 0);
    }
    int f = openat(fd[LEVELS], "deep.dcm", O_WRONLY | O_CREAT, 0644);
    CU_ASSERT(f >= 0);
    if (f >= 0)
        close(f);

    visits v = {.root_len = strlen(root), .parents_ok = 1};
    hs_dirwalk_options opt = {.follow_links = 1, .once = 1, .sorted = 1, .max_depth = -1};
    hs_error err = {HS_OK, ""};
    CU_ASSERT_EQUAL(hs_dirwalk(root, &opt, record, &v, &err), HS_OK);
    /* Folders are entered while their path fits; the first that does not
     * is a STAT_ERROR and the walk ends there (nothing below it is seen). */
    size_t fits = (HS_PATH_MAX - 1 - strlen(root)) / 251; /* "/" + name per level */
    CU_ASSERT_EQUAL(v.n, (int)fits + 1);
    if (v.n >= 1) {
        const char *last = v.lines[v.n - 1];
        CU_ASSERT(strncmp(last, "STAT_ERROR", 10) == 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(last, strerror(ENAMETOOLONG)));
    }

    /* The cut path itself: HS_PATH_MAX - 1 bytes of root/name/name/...,
     * with the whole name beside it. */
    cut_seen cut = {0, 0, 0, 0};
    CU_ASSERT_EQUAL(hs_dirwalk(root, &opt, look_cut, &cut, &err), HS_OK);
    CU_ASSERT_EQUAL(cut.n, 1);
    CU_ASSERT_EQUAL(cut.len, HS_PATH_MAX - 1);
    CU_ASSERT(cut.error == ENAMETOOLONG && cut.name_whole);

    for (int i = LEVELS; i > 0; i--) {
        if (i == LEVELS)
            unlinkat(fd[i], "deep.dcm", 0);
        close(fd[i]);
        CU_ASSERT_EQUAL(unlinkat(fd[i - 1], name, AT_REMOVEDIR), 0);
    }
    close(fd[0]);
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
        {"dirwalk: sorted, links followed, each file once", test_walk_sorted_once},
        {"dirwalk: lstat, skipped names, every entry", test_walk_lstat},
        {"dirwalk: max depth and prune", test_walk_depth_and_prune},
        {"dirwalk: unreadable folders, root errors, visit stops", test_walk_errors},
        {"dirwalk: a path over HS_PATH_MAX is ENAMETOOLONG, cut", test_walk_path_too_long},
    };
    return hs_test_add_suite("base", suite_init, suite_clean, tests, sizeof tests / sizeof tests[0]);
}
