/* syslog_sink.c - a stand-in for the syslog daemon, for tests/watch.sh.
 *
 * CI machines and containers run no syslog daemon, so there is no /dev/log
 * and syslog(3) drops what `hemoscan --watch --syslog` sends. This helper
 * binds a Unix datagram socket at PATH (the test uses /dev/log, only when
 * it does not exist) and appends every datagram it receives, as one line,
 * to OUT, until SECONDS have passed or it receives a message containing
 * "studies read" (the watcher's summary line, the last thing a run sends).
 * It removes PATH when it exits. Test-only code, never installed.
 *
 *   syslog_sink PATH OUT SECONDS */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: syslog_sink PATH OUT SECONDS\n");
        return 2;
    }
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (strlen(argv[1]) >= sizeof addr.sun_path) {
        fprintf(stderr, "syslog_sink: %s: path too long\n", argv[1]);
        return 2;
    }
    strcpy(addr.sun_path, argv[1]);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fprintf(stderr, "syslog_sink: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    FILE *out = fopen(argv[2], "a");
    if (out == NULL) {
        fprintf(stderr, "syslog_sink: %s: %s\n", argv[2], strerror(errno));
        unlink(argv[1]);
        return 1;
    }
    time_t end = time(NULL) + atoi(argv[3]);
    int done = 0;
    while (!done && time(NULL) < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            continue;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        fprintf(out, "%s\n", buf);
        fflush(out);
        done = strstr(buf, "studies read") != NULL;
    }
    fclose(out);
    close(fd);
    unlink(argv[1]);
    return done ? 0 : 1;
}
