/* test_util.c - helpers the CUnit suites share (see test_util.h).
 *
 * Every suite works in its own mkdtemp directory, so suites never see each
 * other's files and a failed run leaves nothing in a shared place; the
 * removal is recursive because some tests build class folders inside it. */
#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "hemoscan/audit.h"

int hs_test_tmpdir_create(char *dir, size_t cap, const char *name)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    int n = snprintf(dir, cap, "%s/hemoscan-test-%s.XXXXXX", base, name);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

int hs_test_tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int rc = 0;
    char path[4400];
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        hs_test_path(path, sizeof path, dir, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (hs_test_tmpdir_remove(path) != 0)
                rc = -1;
        } else if (unlink(path) != 0) {
            rc = -1;
        }
    }
    closedir(d);
    return rmdir(dir) == 0 ? rc : -1;
}

void hs_test_path(char *out, size_t cap, const char *dir, const char *leaf)
{
    snprintf(out, cap, "%s/%s", dir, leaf);
}

int hs_test_has_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 1;
    int found = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (strstr(e->d_name, ".tmp.") != NULL)
            found = 1;
    }
    closedir(d);
    return found;
}

unsigned char *hs_test_read_file(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    /* cap bytes of room for content, plus one for the 0. */
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap + 1);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        unsigned char *bigger = realloc(buf, 2 * cap + 1);
        if (bigger == NULL)
            free(buf);
        buf = bigger;
        cap *= 2;
    }
    int failed = ferror(f);
    fclose(f);
    if (buf == NULL || failed) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

int hs_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t n = len > 0 ? fwrite(data, 1, len, f) : 0;
    return (fclose(f) == 0 && n == len) ? 0 : -1;
}

void hs_test_source_path(char *out, size_t cap, const char *rel)
{
    const char *src = getenv("HEMOSCAN_SRCDIR");
    snprintf(out, cap, "%s/%s", src != NULL && src[0] != '\0' ? src : ".", rel);
}

const char *hs_test_shared_data_dir(void)
{
    const char *dir = getenv("HEMOSCAN_SHARED_DATA");
    return dir != NULL && dir[0] != '\0' ? dir : "../shared/data";
}

int hs_test_add_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc clean,
                      const hs_test_case *cases, size_t n)
{
    CU_pSuite suite = CU_add_suite(name, init, clean);
    if (suite == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (CU_add_test(suite, cases[i].name, cases[i].fn) == NULL)
            return -1;
    return 0;
}

int hs_test_generate(const char *out, const char *opts)
{
    char gen[4096];
    const char *build = getenv("HEMOSCAN_BUILDDIR");
    snprintf(gen, sizeof gen, "%s/testdata/gen/hs-gen-ct", build != NULL && build[0] != '\0' ? build : ".");
    if (access(gen, X_OK) != 0) {
        printf("\n  skipped: no generator at %s (run make; set HEMOSCAN_BUILDDIR)\n", gen);
        return 1;
    }
    char cmd[16384];
    if ((size_t)snprintf(cmd, sizeof cmd, "'%s' --out '%s' --jobs 1 -q %s", gen, out, opts) >= sizeof cmd) {
        fprintf(stderr, "hs_test_generate: command too long\n");
        return -1;
    }
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        fprintf(stderr, "hs_test_generate: failed: %s\n", cmd);
        return -1;
    }
    return 0;
}

int hs_test_quick(void)
{
    const char *quick = getenv("HEMOSCAN_QUICK");
    return quick != NULL && quick[0] != '\0' && strcmp(quick, "0") != 0;
}

int hs_test_load_default_model(hs_model *model, const char *suite)
{
    const char *src = getenv("HEMOSCAN_SRCDIR");
    char path[4200];
    snprintf(path, sizeof path, "%s/models/default.hsm", src != NULL && src[0] != '\0' ? src : ".");
    hs_error err = {0};
    if (hs_model_load(model, path, &err) == HS_OK) {
        /* Quick runs (CI's valgrind step, where every network pass is
         * slow): the first member only; the checksum stays the file's. */
        if (hs_test_quick()) {
            for (int m = 1; m < model->n_members; m++)
                hs_net_free(&model->member[m]);
            model->n_members = 1;
        }
        return 1;
    }
    printf("\n  (%s suite: no default model: %s)\n", suite, err.msg);
    return 0;
}

int hs_test_generate_study(const char *parent, const char *name, const char *opts, char *dir, size_t cap)
{
    hs_test_path(dir, cap, parent, name);
    char all[4096];
    snprintf(all, sizeof all, "--size 128 --slices 16 --thickness 5 %s", opts);
    return hs_test_generate(dir, all);
}

int hs_test_audit_db_at_version(const char *path, int version)
{
    sqlite3 *db = NULL;
    unlink(path);
    if (version < 1 || version > hs_audit_schema_count || sqlite3_open(path, &db) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < version && rc == 0; i++)
        rc = sqlite3_exec(db, hs_audit_schema[i].sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    char pragmas[128];
    snprintf(pragmas, sizeof pragmas, "PRAGMA user_version = %d; PRAGMA application_id = %d", version,
             HS_AUDIT_APPLICATION_ID);
    if (rc == 0 && sqlite3_exec(db, pragmas, NULL, NULL, NULL) != SQLITE_OK)
        rc = -1;
    if (rc == 0 && sqlite3_exec(db, "INSERT INTO slices (series_id, slice_index, file_path, probability)"
                                    " VALUES (999, 0, '/old/IM0001.dcm', 0.5)",
                                NULL, NULL, NULL) != SQLITE_OK)
        rc = -1;
    sqlite3_close(db);
    return rc;
}
