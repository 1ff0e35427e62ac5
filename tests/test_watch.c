/* test_watch.c - CUnit tests of the drop-folder module (watch.c), registered
 * by hs_register_watch_tests().
 *
 * A drop folder made here holds two generated studies (one split over two
 * folders, one with shuffled names), a text file, a dot file, temporary
 * names and a name with spaces and non-ASCII letters; the listing must
 * group exactly those, reuse headers it has seen, and skip excluded
 * folders. The moves are driven into every state an interruption can leave
 * behind (part file, both copies, only the target) and must finish each
 * without losing or doubling a file; the lock must refuse a second holder
 * and name the first. A child process armed with a crash note and killed
 * by SIGSEGV must leave a note that reads back field for field (the change
 * time exactly), one that is disarmed or dies of SIGKILL none, and a note
 * cut short must be refused; a child that dies while the listing looks at
 * a file must leave a note naming that file, and a file the listing is
 * told to skip must become a loose "crashed_reader" unread. Studies are 64 x 64 x 6 so the suite stays quick
 * under valgrind; without the generator those tests say they are skipped. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "hemoscan/crash_note.h"
#include "hemoscan/fileio.h"
#include "hemoscan/watch.h"
#include "test_util.h"

int hs_register_watch_tests(void);

static char tmp_dir[4096];

static int suite_init(void)
{
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "watch");
}

static int suite_clean(void)
{
    return hs_test_tmpdir_remove(tmp_dir);
}

#define PATH_CAP 4200

static void tmp_path(char *out, const char *name)
{
    hs_test_path(out, PATH_CAP, tmp_dir, name);
}

static int write_text(const char *path, const char *text)
{
    return hs_test_write_file(path, text, strlen(text));
}

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static char *read_text(const char *path)
{
    size_t n = 0;
    return (char *)hs_test_read_file(path, &n);
}

static void test_temp_names(void)
{
    CU_ASSERT(hs_watch_is_temp_name(".hidden"));
    CU_ASSERT(hs_watch_is_temp_name("IM1.dcm.tmp"));
    CU_ASSERT(hs_watch_is_temp_name("x.part"));
    CU_ASSERT(hs_watch_is_temp_name("x.partial"));
    CU_ASSERT(hs_watch_is_temp_name("backup~"));
    CU_ASSERT(hs_watch_is_temp_name(""));
    CU_ASSERT(!hs_watch_is_temp_name("IM0001.dcm"));
    CU_ASSERT(!hs_watch_is_temp_name("CT.1.2.840.113619.2.55"));
    CU_ASSERT(!hs_watch_is_temp_name("tmp"));
    CU_ASSERT(!hs_watch_is_temp_name("r\xc3\xb6ntgen bild"));
}

static void test_stable(void)
{
    CU_ASSERT(hs_watch_is_stable(100.0, 160.0, 60.0));
    CU_ASSERT(!hs_watch_is_stable(100.0, 159.9, 60.0));
    CU_ASSERT(hs_watch_is_stable(100.0, 100.0, 0.0));
    CU_ASSERT(!hs_watch_is_stable(200.0, 100.0, 0.0)); /* a file from the future waits */
}

/* The index of the file whose path ends in suffix, or -1. */
static int find(const hs_watch_listing *l, const char *suffix)
{
    size_t k = strlen(suffix);
    for (int i = 0; i < l->n_files; i++) {
        size_t n = strlen(l->files[i].path);
        if (n >= k && strcmp(l->files[i].path + n - k, suffix) == 0)
            return i;
    }
    return -1;
}

static void test_list_and_group(void)
{
    char drop[PATH_CAP], a[PATH_CAP], b[PATH_CAP], p[PATH_CAP], done[PATH_CAP];
    tmp_path(drop, "drop");
    snprintf(a, sizeof a, "%.3000s/study a", drop);
    snprintf(b, sizeof b, "%.3000s/deep/er/b", drop);
    int rc = hs_test_generate(a, "--size 64 --slices 6 --seed 21");
    if (rc == 1)
        return;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(hs_test_generate(b, "--size 64 --slices 6 --seed 22 --shuffle"), 0);
    /* a second series of study a, in another folder */
    snprintf(p, sizeof p, "%.3000s/more", drop);
    char opts[PATH_CAP + 200];
    {
        /* study a's UID, from the first listing below */
        hs_watch_listing l;
        hs_error err = {0};
        CU_ASSERT_EQUAL_FATAL(hs_watch_list(drop, NULL, 0, NULL, NULL, NULL, &l, &err), HS_OK);
        CU_ASSERT_EQUAL_FATAL(l.n_studies, 2);
        int ia = find(&l, "study a/IM0001.dcm");
        CU_ASSERT_FATAL(ia >= 0);
        snprintf(opts, sizeof opts, "--size 64 --slices 3 --seed 23 --series-number 5 --study-uid %s",
                 l.files[ia].study_uid);
        hs_watch_listing_free(&l);
    }
    CU_ASSERT_EQUAL_FATAL(hs_test_generate(p, opts), 0);
    snprintf(p, sizeof p, "%.3000s/notes r\xc3\xb6ntgen.txt", drop);
    CU_ASSERT_EQUAL(write_text(p, "not DICOM at all\n"), 0);
    snprintf(p, sizeof p, "%.3000s/.DS_Store", drop);
    CU_ASSERT_EQUAL(write_text(p, "hidden"), 0);
    snprintf(p, sizeof p, "%.3000s/IM9.dcm.part", drop);
    CU_ASSERT_EQUAL(write_text(p, "being written"), 0);
    snprintf(p, sizeof p, "%.3000s/link", drop);
    CU_ASSERT_EQUAL(symlink("/etc/hostname", p), 0);
    snprintf(done, sizeof done, "%.3000s/done", drop);
    CU_ASSERT_EQUAL(mkdir(done, 0755), 0);
    snprintf(p, sizeof p, "%.3000s/old.dcm", done);
    CU_ASSERT_EQUAL(write_text(p, "already done"), 0);

    hs_watch_listing l;
    hs_error err = {0};
    const char *exclude[1] = {done};
    CU_ASSERT_EQUAL_FATAL(hs_watch_list(drop, exclude, 1, NULL, NULL, NULL, &l, &err), HS_OK);
    /* 6 + 6 + 3 slices, the text file, the symbolic link; not the dot
     * file, the part file or the done folder */
    CU_ASSERT_EQUAL(l.n_files, 17);
    CU_ASSERT_EQUAL(l.headers_read, 16);
    CU_ASSERT_EQUAL(l.n_studies, 2);
    CU_ASSERT_EQUAL(l.n_loose, 2);
    CU_ASSERT_EQUAL(l.n_errors, 0);
    CU_ASSERT_EQUAL(find(&l, "old.dcm"), -1);
    CU_ASSERT_EQUAL(find(&l, ".part"), -1);
    int total = 0;
    for (int s = 0; s < l.n_studies; s++) {
        total += l.studies[s].n;
        if (s > 0)
            CU_ASSERT(strcmp(l.studies[s - 1].study_uid, l.studies[s].study_uid) < 0);
        for (int i = 1; i < l.studies[s].n; i++)
            CU_ASSERT(strcmp(l.files[l.studies[s].file[i - 1]].path,
                             l.files[l.studies[s].file[i]].path) < 0);
    }
    CU_ASSERT_EQUAL(total, 15);
    int ia = find(&l, "study a/IM0001.dcm"), im = find(&l, "more/IM0001.dcm");
    CU_ASSERT_FATAL(ia >= 0 && im >= 0);
    CU_ASSERT_STRING_EQUAL(l.files[ia].study_uid, l.files[im].study_uid);
    CU_ASSERT_STRING_EQUAL(l.files[ia].rel, "study a/IM0001.dcm");
    int it = find(&l, ".txt"), il = find(&l, "/link");
    CU_ASSERT_FATAL(it >= 0 && il >= 0);
    CU_ASSERT_EQUAL(l.files[it].kind, HS_WATCH_LOOSE);
    CU_ASSERT_STRING_EQUAL(l.files[it].verdict, "not_dicom");
    CU_ASSERT_EQUAL(l.files[il].kind, HS_WATCH_LOOSE);
    CU_ASSERT_STRING_EQUAL(l.files[il].verdict, "not_regular");
    for (int s = 0; s < l.n_studies; s++)
        CU_ASSERT(hs_watch_unchanged(&l, &l.studies[s]));

    /* The next listing reads only what changed. */
    hs_watch_listing next;
    CU_ASSERT_EQUAL_FATAL(hs_watch_list(drop, exclude, 1, &l, NULL, NULL, &next, &err), HS_OK);
    CU_ASSERT_EQUAL(next.headers_read, 0);
    CU_ASSERT_EQUAL(next.n_studies, 2);
    hs_watch_listing_free(&next);
    snprintf(p, sizeof p, "%.3000s/study a/IM0002.dcm", drop);
    FILE *app = fopen(p, "ab");
    CU_ASSERT_PTR_NOT_NULL_FATAL(app);
    fputc(0, app);
    fclose(app);
    int changed = 0;
    for (int s = 0; s < l.n_studies; s++)
        changed += !hs_watch_unchanged(&l, &l.studies[s]);
    CU_ASSERT_EQUAL(changed, 1);
    CU_ASSERT_EQUAL_FATAL(hs_watch_list(drop, exclude, 1, &l, NULL, NULL, &next, &err), HS_OK);
    CU_ASSERT_EQUAL(next.headers_read, 1);
    hs_watch_listing_free(&next);
    hs_watch_listing_free(&l);

    /* Without the exclusion the done folder's file is listed (loose). */
    CU_ASSERT_EQUAL_FATAL(hs_watch_list(drop, NULL, 0, NULL, NULL, NULL, &l, &err), HS_OK);
    CU_ASSERT(find(&l, "done/old.dcm") >= 0);
    hs_watch_listing_free(&l);

    snprintf(p, sizeof p, "%.3000s/nope", drop);
    CU_ASSERT_EQUAL(hs_watch_list(p, NULL, 0, NULL, NULL, NULL, &l, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "nope"));
    hs_watch_listing_free(&l);
}

static void test_move(void)
{
    char src[PATH_CAP], dst[PATH_CAP], part[PATH_CAP], d[PATH_CAP];
    hs_error err = {0};
    for (int copy = 0; copy <= 1; copy++) {
        snprintf(d, sizeof d, "%.3000s/mv%d", tmp_dir, copy);
        CU_ASSERT_EQUAL_FATAL(mkdir(d, 0755), 0);
        snprintf(src, sizeof src, "%.3000s/in/a b.dcm", d);
        snprintf(dst, sizeof dst, "%.3000s/out/x/a b.dcm", d);
        snprintf(part, sizeof part, "%.3000s/in", d);
        CU_ASSERT_EQUAL(mkdir(part, 0755), 0);
        CU_ASSERT_EQUAL(write_text(src, "payload"), 0);
        chmod(src, 0640);
        struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
        CU_ASSERT_EQUAL(utimensat(AT_FDCWD, src, old, 0), 0);
        CU_ASSERT_EQUAL(hs_watch_move(src, dst, copy, &err), HS_OK);
        CU_ASSERT(!exists(src));
        char *t = read_text(dst);
        CU_ASSERT(t != NULL && strcmp(t, "payload") == 0);
        free(t);
        struct stat sb;
        CU_ASSERT(stat(dst, &sb) == 0 && sb.st_mtime == 1000000000 && (sb.st_mode & 0777) == 0640);
        snprintf(part, sizeof part, "%.3000s/out/x/.a b.dcm.hemoscan-part", d);
        CU_ASSERT(!exists(part));
        /* again: done already */
        CU_ASSERT_EQUAL(hs_watch_move(src, dst, copy, &err), HS_OK);
        t = read_text(dst);
        CU_ASSERT(t != NULL && strcmp(t, "payload") == 0);
        free(t);
    }
    /* Interrupted copy, both present and equal: the source goes. */
    snprintf(src, sizeof src, "%.3000s/both-src", tmp_dir);
    snprintf(dst, sizeof dst, "%.3000s/both-dst", tmp_dir);
    CU_ASSERT_EQUAL(write_text(src, "same"), 0);
    CU_ASSERT_EQUAL(write_text(dst, "same"), 0);
    CU_ASSERT_EQUAL(hs_watch_move(src, dst, 0, &err), HS_OK);
    CU_ASSERT(!exists(src) && exists(dst));
    /* Both present and different: both kept, an error. */
    CU_ASSERT_EQUAL(write_text(src, "other"), 0);
    CU_ASSERT_EQUAL(hs_watch_move(src, dst, 0, &err), HS_ERR_IO);
    CU_ASSERT(exists(src) && exists(dst));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "both kept"));
    /* A stale part file from a killed copy is replaced, not left. */
    snprintf(src, sizeof src, "%.3000s/stale-src", tmp_dir);
    snprintf(dst, sizeof dst, "%.3000s/stale/dst", tmp_dir);
    snprintf(part, sizeof part, "%.3000s/stale/.dst.hemoscan-part", tmp_dir);
    snprintf(d, sizeof d, "%.3000s/stale", tmp_dir);
    CU_ASSERT_EQUAL(mkdir(d, 0755), 0);
    CU_ASSERT_EQUAL(write_text(src, "complete content"), 0);
    CU_ASSERT_EQUAL(write_text(part, "compl"), 0);
    CU_ASSERT_EQUAL(hs_watch_move(src, dst, 1, &err), HS_OK);
    CU_ASSERT(!exists(part) && !exists(src));
    char *t = read_text(dst);
    CU_ASSERT(t != NULL && strcmp(t, "complete content") == 0);
    free(t);
    /* A part file left by a killed copy goes when a later attempt renames. */
    snprintf(src, sizeof src, "%.3000s/stale-src2", tmp_dir);
    snprintf(dst, sizeof dst, "%.3000s/stale/dst2", tmp_dir);
    snprintf(part, sizeof part, "%.3000s/stale/.dst2.hemoscan-part", tmp_dir);
    CU_ASSERT_EQUAL(write_text(src, "whole"), 0);
    CU_ASSERT_EQUAL(write_text(part, "who"), 0);
    CU_ASSERT_EQUAL(hs_watch_move(src, dst, 0, &err), HS_OK);
    CU_ASSERT(!exists(part) && !exists(src) && exists(dst));
    /* Neither present: an error naming the file. */
    CU_ASSERT_EQUAL(hs_watch_move(src, "/nonexistent/x", 0, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "stale-src"));
    /* Removing twice is fine. */
    CU_ASSERT_EQUAL(hs_watch_remove(dst, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_watch_remove(dst, &err), HS_OK);
    CU_ASSERT(!exists(dst));
}

static void test_dest_and_prune(void)
{
    char root[PATH_CAP], out[PATH_CAP], p[PATH_CAP];
    hs_error err = {0};
    tmp_path(root, "dest");
    CU_ASSERT_EQUAL(hs_watch_dest_path(root, "s/IM1", out, sizeof out, &err), HS_OK);
    snprintf(p, sizeof p, "%.3000s/s/IM1", root);
    CU_ASSERT_STRING_EQUAL(out, p);
    snprintf(p, sizeof p, "%.3000s/s", root);
    CU_ASSERT_EQUAL(hs_make_dirs(p, 0755, &err), HS_OK);
    snprintf(p, sizeof p, "%.3000s/s/IM1", root);
    CU_ASSERT_EQUAL(write_text(p, "first"), 0);
    CU_ASSERT_EQUAL(hs_watch_dest_path(root, "s/IM1", out, sizeof out, &err), HS_OK);
    snprintf(p, sizeof p, "%.3000s/s/IM1.1", root);
    CU_ASSERT_STRING_EQUAL(out, p);
    char tiny[8];
    CU_ASSERT_EQUAL(hs_watch_dest_path(root, "s/IM1", tiny, sizeof tiny, &err), HS_ERR_ARG);

    /* prune: empty folders up to (not including) the drop folder */
    char drop[PATH_CAP];
    tmp_path(drop, "prune");
    snprintf(p, sizeof p, "%.3000s/a/b/c", drop);
    CU_ASSERT_EQUAL(hs_make_dirs(p, 0755, &err), HS_OK);
    snprintf(p, sizeof p, "%.3000s/a/keep", drop);
    CU_ASSERT_EQUAL(write_text(p, "x"), 0);
    snprintf(p, sizeof p, "%.3000s/a/b/c/gone.dcm", drop);
    hs_watch_prune_dirs(drop, p);
    snprintf(p, sizeof p, "%.3000s/a/b", drop);
    CU_ASSERT(!exists(p));
    snprintf(p, sizeof p, "%.3000s/a", drop);
    CU_ASSERT(exists(p));
    CU_ASSERT(exists(drop));
}

static void test_lock(void)
{
    char lock_path[PATH_CAP], drop[PATH_CAP];
    tmp_path(lock_path, "audit.db.watch-lock");
    tmp_path(drop, "lockdrop");
    CU_ASSERT_EQUAL(mkdir(drop, 0755), 0);
    hs_watch_lock lock;
    int busy = 1;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_watch_lock_take(lock_path, drop, &lock, &busy, &err), HS_OK);
    CU_ASSERT_EQUAL(busy, 0);
    char *note = read_text(lock_path);
    CU_ASSERT(note != NULL && strncmp(note, "pid ", 4) == 0 && strstr(note, drop) != NULL);
    free(note);
    /* A second holder, in a child process (flock is per open file, so the
     * child's own open conflicts). */
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        hs_watch_lock other;
        int b = 0;
        hs_error e = {0};
        hs_status st = hs_watch_lock_take(lock_path, drop, &other, &b, &e);
        char want[64];
        snprintf(want, sizeof want, "(pid %ld)", (long)getppid());
        _exit(st == HS_ERR_IO && b == 1 && strstr(e.msg, want) != NULL &&
                      strstr(e.msg, "another hemoscan --watch") != NULL
                  ? 0
                  : 1);
    }
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The drop folder alone is locked too (another database). */
    char other_lock[PATH_CAP];
    tmp_path(other_lock, "other.db.watch-lock");
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        hs_watch_lock other;
        int b = 0;
        hs_error e = {0};
        hs_status st = hs_watch_lock_take(other_lock, drop, &other, &b, &e);
        _exit(st == HS_ERR_IO && b == 1 && strstr(e.msg, drop) != NULL ? 0 : 1);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    hs_watch_lock_release(&lock);
    /* Released: taken again. */
    CU_ASSERT_EQUAL(hs_watch_lock_take(lock_path, drop, &lock, &busy, &err), HS_OK);
    hs_watch_lock_release(&lock);
    CU_ASSERT_EQUAL(hs_watch_lock_take(lock_path, "/nonexistent-drop", &lock, &busy, &err),
                    HS_ERR_IO);
    CU_ASSERT_EQUAL(busy, 0);
}

/* How die_with_note's child arms its note. */
enum { ARM_STUDY, ARM_THEN_DISARM, ARM_FILE };

/* A child that opens the note at path for run 7, arms it as told, then
 * dies of sig; returns the signal it died of, or -1. */
static int die_with_note(const char *path, int sig, int how)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core); /* no core file, also under valgrind */
        hs_error e = {0};
        if (hs_crash_note_open(path, 7, &e) != HS_OK)
            _exit(3);
        if (how == ARM_FILE) {
            hs_crash_note_arm_file("/drop/odd\nname.dcm", 1234567, 1796612811.25);
        } else {
            hs_crash_note_arm("1.2.3.4", 14, 1796612811.4898812, "/drop/study\tname");
            hs_crash_note_phase("recording");
        }
        if (how == ARM_THEN_DISARM)
            hs_crash_note_disarm();
        raise(sig);
        _exit(4);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status))
        return -1;
    return WTERMSIG(status);
}

static void test_crash_note(void)
{
    char path[PATH_CAP];
    tmp_path(path, "audit.db.watch-crash");
    CU_ASSERT_EQUAL_FATAL(die_with_note(path, SIGSEGV, ARM_STUDY), SIGSEGV);
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_crash_note_open(path, 8, &err), HS_OK);
    hs_crash_note note;
    int found = 0;
    CU_ASSERT_EQUAL(hs_crash_note_read(&note, &found, &err), HS_OK);
    CU_ASSERT_EQUAL(found, 1);
    CU_ASSERT_EQUAL(note.run_id, 7);
    CU_ASSERT_EQUAL(note.is_file, 0);
    CU_ASSERT_STRING_EQUAL(note.study_uid, "1.2.3.4");
    CU_ASSERT_EQUAL(note.n_files, 14);
    CU_ASSERT(note.newest == 1796612811.4898812); /* exactly: the database compares it */
    CU_ASSERT_STRING_EQUAL(note.label, "/drop/study\tname");
    CU_ASSERT_STRING_EQUAL(note.phase, "recording");
    CU_ASSERT_EQUAL(note.signal, SIGSEGV);
    CU_ASSERT_STRING_EQUAL(hs_crash_note_signal_name(note.signal), "SIGSEGV");
    CU_ASSERT_EQUAL(hs_crash_note_clear(&err), HS_OK);
    CU_ASSERT_EQUAL(hs_crash_note_read(&note, &found, &err), HS_OK);
    CU_ASSERT_EQUAL(found, 0);
    hs_crash_note_close();

    /* A file whose header was being read. */
    CU_ASSERT_EQUAL_FATAL(die_with_note(path, SIGBUS, ARM_FILE), SIGBUS);
    CU_ASSERT_EQUAL_FATAL(hs_crash_note_open(path, 8, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_crash_note_read(&note, &found, &err), HS_OK);
    CU_ASSERT(found == 1 && note.is_file == 1 && note.study_uid[0] == '\0' && note.n_files == 1);
    CU_ASSERT_EQUAL(note.bytes, 1234567);
    CU_ASSERT(note.newest == 1796612811.25);
    CU_ASSERT_STRING_EQUAL(note.label, "/drop/odd\nname.dcm");
    CU_ASSERT_STRING_EQUAL(note.phase, "listing");
    CU_ASSERT_STRING_EQUAL(hs_crash_note_signal_name(note.signal), "SIGBUS");
    CU_ASSERT_EQUAL(hs_crash_note_clear(&err), HS_OK);
    hs_crash_note_close();

    /* Disarmed (the study finished) or SIGKILL (not catchable): no note. */
    CU_ASSERT_EQUAL(die_with_note(path, SIGABRT, ARM_THEN_DISARM), SIGABRT);
    CU_ASSERT_EQUAL(die_with_note(path, SIGKILL, ARM_STUDY), SIGKILL);
    struct stat st;
    CU_ASSERT(stat(path, &st) == 0 && st.st_size == 0);

    /* A note cut short is refused, not half read. */
    CU_ASSERT_EQUAL_FATAL(die_with_note(path, SIGABRT, ARM_STUDY), SIGABRT);
    CU_ASSERT(stat(path, &st) == 0 && st.st_size > 20);
    CU_ASSERT_EQUAL(truncate(path, st.st_size - 3), 0);
    CU_ASSERT_EQUAL_FATAL(hs_crash_note_open(path, 8, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_crash_note_read(&note, &found, &err), HS_ERR_FORMAT);
    CU_ASSERT_EQUAL(found, 0);
    CU_ASSERT(strstr(err.msg, "not a complete note") != NULL);
    hs_crash_note_close();
}

/* Skip functions for the listing: one that dies while asked about a file
 * named "poison.dcm" (the note is armed by then), one that skips it. */
static int skip_dies(void *ctx, const hs_watch_file *f, char *reason, size_t cap)
{
    (void)ctx;
    (void)reason;
    (void)cap;
    if (strstr(f->path, "/poison.dcm") != NULL)
        raise(SIGSEGV);
    return 0;
}

static int skip_poison(void *ctx, const hs_watch_file *f, char *reason, size_t cap)
{
    ++*(int *)ctx;
    if (strstr(f->path, "/poison.dcm") == NULL)
        return 0;
    snprintf(reason, cap, "it crashed before");
    return 1;
}

/* The listing arms the crash note with each file whose header it reads,
 * and a file the skip function names becomes a loose "crashed_reader". */
static void test_listing_crash(void)
{
    char drop[PATH_CAP], poison[PATH_CAP], other[PATH_CAP], note_path[PATH_CAP];
    tmp_path(drop, "crashdrop");
    tmp_path(note_path, "crash.db.watch-crash");
    CU_ASSERT_EQUAL_FATAL(mkdir(drop, 0755), 0);
    snprintf(poison, sizeof poison, "%.3000s/poison.dcm", drop);
    snprintf(other, sizeof other, "%.3000s/a.txt", drop);
    CU_ASSERT_EQUAL_FATAL(write_text(poison, "not really DICOM"), 0);
    CU_ASSERT_EQUAL_FATAL(write_text(other, "text"), 0);
    struct stat sb;
    CU_ASSERT_FATAL(stat(poison, &sb) == 0);

    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        hs_error e = {0};
        hs_watch_listing l;
        if (hs_crash_note_open(note_path, 3, &e) != HS_OK)
            _exit(3);
        hs_watch_list(drop, NULL, 0, NULL, skip_dies, NULL, &l, &e);
        _exit(4);
    }
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_crash_note_open(note_path, 4, &err), HS_OK);
    hs_crash_note note;
    int found = 0;
    CU_ASSERT_EQUAL(hs_crash_note_read(&note, &found, &err), HS_OK);
    CU_ASSERT(found == 1 && note.is_file == 1 && note.run_id == 3);
    CU_ASSERT_STRING_EQUAL(note.label, poison);
    CU_ASSERT_EQUAL(note.bytes, 16);
    hs_crash_note_close();

    int asked = 0;
    hs_watch_listing l;
    CU_ASSERT_EQUAL_FATAL(hs_watch_list(drop, NULL, 0, NULL, skip_poison, &asked, &l, &err), HS_OK);
    CU_ASSERT_EQUAL(asked, 2);
    CU_ASSERT_EQUAL(l.headers_read, 1); /* a.txt's only */
    int ip = find(&l, "/poison.dcm");
    CU_ASSERT_FATAL(ip >= 0);
    CU_ASSERT_EQUAL(l.files[ip].kind, HS_WATCH_LOOSE);
    CU_ASSERT_STRING_EQUAL(l.files[ip].verdict, "crashed_reader");
    CU_ASSERT_STRING_EQUAL(l.files[ip].reason, "it crashed before");
    CU_ASSERT(hs_watch_file_changed(&l.files[ip]) == note.newest); /* what the note recorded */
    CU_ASSERT_EQUAL(l.n_loose, 2);
    hs_watch_listing_free(&l);
}

int hs_register_watch_tests(void)
{
    static const hs_test_case cases[] = {
        {"temporary and hidden names are left alone", test_temp_names},
        {"stable after the stable age", test_stable},
        {"list, group by study across folders, reuse headers", test_list_and_group},
        {"moves: rename, copy, every interrupted state", test_move},
        {"destination names never overwrite; empty folders pruned", test_dest_and_prune},
        {"one watcher: the lock names the holder", test_lock},
        {"a watcher dying of a fatal signal leaves a note of its study or file", test_crash_note},
        {"the listing arms the note per header; a crashed file is skipped", test_listing_crash},
    };
    return hs_test_add_suite("watch", suite_init, suite_clean, cases,
                             sizeof cases / sizeof cases[0]);
}
