/* The daemon's pid file; see pidfile.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "pidfile.h"

/* A stale pid file holds a pid and a newline: anything longer is not one. */
#define PIDFILE_MAX_STALE 32

static char *pidfile_path;
static int pidfile_fd = -1;
static struct stat pidfile_st; /* to recognise it at exit */

/* Whether fd (a regular file) holds nothing but a pid. */
static bool looks_like_pidfile(int fd)
{
    char buf[PIDFILE_MAX_STALE + 1];
    ssize_t n = pread(fd, buf, sizeof(buf), 0);

    if (n < 0 || n > PIDFILE_MAX_STALE) {
        return false;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (!g_ascii_isdigit(buf[i]) && buf[i] != '\n') {
            return false;
        }
    }
    return true;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/*
 * Opens path: a new file (created), or a stale pid file.  O_NOFOLLOW: a
 * link planted at the path never leads our truncate elsewhere; O_NONBLOCK:
 * a FIFO planted there does not block the open.
 */
static int pidfile_open(const char *path, bool *created, Error **errp)
{
    const int common = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    struct stat st, now;
    int fd;

    fd = open(path, O_RDWR | O_CREAT | O_EXCL | common, 0644);
    *created = fd >= 0;
    if (fd < 0 && errno == EEXIST) {
        fd = open(path, O_RDWR | common);
    }
    if (fd < 0) {
        if (errno == ELOOP) {
            error_setg(errp, "--pidfile: '%s' is a symbolic link", path);
        } else {
            error_setg_errno(errp, errno, "--pidfile: cannot open '%s'", path);
        }
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        error_setg(errp, "--pidfile: '%s' is not a regular file", path);
        goto refuse;
    }
    if (fcntl(fd, F_SETLK, &lock) < 0) {
        error_setg(errp,
                   "--pidfile: '%s' is locked: another instance is running",
                   path);
        goto refuse;
    }
    /* Locked: now check that the path still names this file (an instance
     * exiting in between may have removed it). */
    if (stat(path, &now) < 0 || !same_file(&st, &now)) {
        error_setg(errp, "--pidfile: '%s' was replaced while opening it", path);
        goto refuse;
    }
    if (!*created && !looks_like_pidfile(fd)) {
        error_setg(errp,
                   "--pidfile: '%s' exists and is not a pid file; "
                   "not overwriting it",
                   path);
        goto refuse;
    }
    pidfile_st = st;
    return fd;

refuse:
    if (*created) {
        unlink(path); /* ours: we made it a moment ago */
    }
    close(fd); /* drops the lock if we took it */
    return -1;
}

bool pidfile_write(const char *path, Error **errp)
{
    char buf[32];
    bool created;
    int fd = pidfile_open(path, &created, errp);
    int len;

    if (fd < 0) {
        return false;
    }
    len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, len, 0) != len) {
        error_setg_errno(errp, errno, "--pidfile: cannot write '%s'", path);
        if (created) {
            unlink(path);
        }
        close(fd);
        return false;
    }
    pidfile_fd = fd;
    pidfile_path = g_strdup(path);
    return true;
}

void pidfile_remove(void)
{
    struct stat now;

    if (!pidfile_path) {
        return;
    }
    /* Still locked by us, so no other instance has taken it over; but it
     * may have been moved or replaced by hand: remove only ours. */
    if (lstat(pidfile_path, &now) == 0 && same_file(&pidfile_st, &now)) {
        unlink(pidfile_path);
    }
    close(pidfile_fd);
    g_clear_pointer(&pidfile_path, g_free);
    pidfile_fd = -1;
}
