/* fileio.c - whole-file reads, atomic whole-file writes and the C numeric
 * locale (see fileio.h).
 *
 * The atomic write follows the one order that survives a crash at any
 * point: the temporary file is created next to the target with mkstemp
 * (unique, never an existing file, 0600), given its final mode, filled,
 * fflush-ed and fsync-ed, and only then renamed over the target; a rename
 * within one directory replaces the name in one step. The directory is
 * fsync-ed last so that the new name itself is on disk. Every step names
 * the target first and the temporary file where it matters, because the
 * temporary name is what a user finds left over if cleanup fails too.
 *
 * The reader uses open/read rather than stdio so that EINTR and short
 * reads are handled in one place, and sizes its buffer from fstat so that a
 * regular file is read in one pass; a file that is not regular or grows
 * while it is read just takes more rounds. */
#include "hemoscan/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hemoscan/path.h"

/* ---- atomic write ------------------------------------------------------------ */

/* A crash after rename() must not lose the new name, so the directory entry
 * is flushed too. Best effort: some file systems cannot fsync a directory,
 * and by now the file itself is complete and in place either way. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (slash == NULL)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (dir == NULL)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Fills the open temporary file tmp (fd) and closes it; path is the
 * target, for messages. fd is closed on every path. */
static hs_status fill_temp(const char *path, const char *tmp, int fd, unsigned mode, hs_file_writer write,
                           void *ctx, hs_error *err)
{
    /* mkstemp creates 0600; the caller decides who may read the file. */
    if (fchmod(fd, (mode_t)mode) != 0) {
        hs_status st = hs_fail(err, HS_ERR_IO, "%s: cannot set the mode of %s: %s", path, tmp, strerror(errno));
        close(fd);
        return st;
    }
    FILE *f = fdopen(fd, "wb");
    if (f == NULL) {
        hs_status st = hs_fail(err, HS_ERR_IO, "%s: cannot open %s for writing: %s", path, tmp, strerror(errno));
        close(fd);
        return st;
    }
    hs_status st = HS_OK;
    errno = 0;
    int e = write(f, ctx);
    if (e == 0 && fflush(f) != 0)
        e = errno != 0 ? errno : EIO;
    if (e != 0)
        st = hs_fail(err, HS_ERR_IO, "%s: cannot write %s: %s", path, tmp, strerror(e));
    if (st == HS_OK && fsync(fileno(f)) != 0)
        st = hs_fail(err, HS_ERR_IO, "%s: cannot flush %s to disk: %s", path, tmp, strerror(errno));
    if (fclose(f) != 0 && st == HS_OK)
        st = hs_fail(err, HS_ERR_IO, "%s: cannot close %s: %s", path, tmp, strerror(errno));
    return st;
}

hs_status hs_file_write_atomic_with(const char *path, unsigned mode, hs_file_writer write, void *ctx,
                                    hs_error *err)
{
    if (path == NULL || path[0] == '\0' || write == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_file_write_atomic: no file name or no content given");
    static const char suffix[] = ".tmp.XXXXXX";
    size_t path_len = strlen(path);
    char *tmp = malloc(path_len + sizeof suffix);
    if (tmp == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory for the temporary file name", path);
    memcpy(tmp, path, path_len);
    memcpy(tmp + path_len, suffix, sizeof suffix);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        hs_status st = hs_fail(err, HS_ERR_IO, "%s: cannot create a temporary file next to it: %s", path,
                               strerror(errno));
        free(tmp);
        return st;
    }
    hs_status st = fill_temp(path, tmp, fd, mode, write, ctx, err);
    if (st == HS_OK && rename(tmp, path) != 0)
        st = hs_fail(err, HS_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    if (st == HS_OK)
        sync_parent_dir(path);
    else
        unlink(tmp);
    free(tmp);
    return st;
}

typedef struct {
    const void *data;
    size_t len;
} memory_content;

static int write_memory(FILE *f, void *ctx)
{
    const memory_content *m = ctx;
    if (m->len > 0 && fwrite(m->data, 1, m->len, f) != m->len)
        return errno != 0 ? errno : EIO;
    return 0;
}

hs_status hs_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode, hs_error *err)
{
    if (data == NULL && len > 0)
        return hs_fail(err, HS_ERR_ARG, "%s: no data given for %zu bytes", path != NULL ? path : "(no file)", len);
    memory_content m = {data, len};
    return hs_file_write_atomic_with(path, mode, write_memory, &m, err);
}

/* ---- whole-file read ------------------------------------------------------------- */

hs_status hs_file_read_all(const char *path, size_t max_len, unsigned char **data, size_t *len, hs_error *err)
{
    if (data == NULL || len == NULL)
        return hs_fail(err, HS_ERR_ARG, "%s: no place for the file's content", path != NULL ? path : "(no file)");
    *data = NULL;
    *len = 0;
    if (path == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_file_read_all: no file name given");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hs_fail(err, HS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return hs_fail(err, HS_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    /* Room for one byte more than the content: end of file then shows in
     * one pass for a regular file, and the byte holds the terminating 0
     * (the loop reads only while there is room, so it is always there).
     * Filling max_len + 1 bytes is the proof of a file too large. */
    size_t limit = max_len < SIZE_MAX ? max_len + 1 : SIZE_MAX;
    size_t cap = 65536;
    if (S_ISREG(sb.st_mode) && sb.st_size >= 0 && (uint64_t)sb.st_size < SIZE_MAX / 2)
        cap = (size_t)sb.st_size + 1;
    if (cap > limit)
        cap = limit;
    unsigned char *buf = malloc(cap);
    size_t got_len = 0;
    hs_status st = HS_OK;
    for (;;) {
        if (buf == NULL) {
            st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory for reading the file", path);
            break;
        }
        if (got_len == cap) {
            if (cap >= limit) {
                st = hs_fail(err, HS_ERR_FORMAT, "%s: the file is larger than %zu bytes", path, max_len);
                break;
            }
            size_t bigger_cap = cap < limit / 2 ? cap * 2 : limit;
            unsigned char *bigger = realloc(buf, bigger_cap);
            if (bigger == NULL)
                free(buf);
            buf = bigger;
            cap = bigger_cap;
            continue;
        }
        ssize_t got = read(fd, buf + got_len, cap - got_len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            st = hs_fail(err, HS_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
        if (got == 0)
            break;
        got_len += (size_t)got;
    }
    close(fd);
    if (st != HS_OK) {
        free(buf);
        return st;
    }
    buf[got_len] = 0;
    *data = buf;
    *len = got_len;
    return HS_OK;
}

/* ---- the C numeric locale ------------------------------------------------------------ */

int hs_c_locale_enter(hs_c_locale *loc)
{
    loc->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (loc->c == (locale_t)0)
        return 0;
    loc->old = uselocale(loc->c);
    return 1;
}

void hs_c_locale_leave(hs_c_locale *loc)
{
    uselocale(loc->old);
    freelocale(loc->c);
}

int hs_path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int hs_path_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

hs_status hs_make_dirs(const char *dir, unsigned mode, hs_error *err)
{
    char path[HS_PATH_MAX];
    size_t len = dir != NULL ? strlen(dir) : 0;
    if (len == 0 || len >= sizeof path)
        return hs_fail(err, HS_ERR_ARG, "cannot create folder '%.200s': empty or too long a path",
                       dir != NULL ? dir : "");
    memcpy(path, dir, len + 1);
    /* Each prefix ending before a '/', then the whole path. */
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, (mode_t)mode) != 0 && errno != EEXIST) {
            int e = errno;
            path[i] = saved;
            return hs_fail(err, HS_ERR_IO, "%s: cannot create folder: %s", dir, strerror(e));
        }
        if (!hs_path_is_dir(path)) {
            hs_status st = hs_fail(err, HS_ERR_IO, "%s: cannot create folder: %s is not a folder", dir, path);
            path[i] = saved;
            return st;
        }
        path[i] = saved;
    }
    return HS_OK;
}

void hs_safe_file_name(const char *uid, const char *fallback, char *out, size_t len)
{
    size_t i = 0;
    for (; uid[i] != '\0' && i + 1 < len; i++) {
        char c = uid[i];
        int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
                 c == '-';
        out[i] = ok ? c : '_';
    }
    out[i] = '\0';
    if (i == 0 || out[0] == '.')
        snprintf(out, len, "%s", fallback);
}
