/* Listening unix sockets; see unix-socket.h. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "io/unix-socket.h"

static bool fill_addr(struct sockaddr_un *addr, const char *path, Error **errp)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    if (!*path) {
        error_setg(errp, "The unix socket path must not be empty");
        return false;
    }
    if (strlen(path) >= sizeof(addr->sun_path)) {
        error_setg(errp, "Socket path '%s' is too long (at most %zu bytes)",
                   path, sizeof(addr->sun_path) - 1);
        return false;
    }
    memcpy(addr->sun_path, path, strlen(path) + 1);
    return true;
}

/*
 * Whether something accepts connections on the socket at addr: a
 * non-blocking connect succeeds, or fails with EAGAIN because the backlog
 * is full (a live daemon at its fd limit is still live).  ECONNREFUSED
 * means nobody listens: the file is stale.  Anything else is an error.
 */
static int probe_live(const struct sockaddr_un *addr, bool *live)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int ret, err;

    if (fd < 0) {
        return -errno;
    }
    ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
    err = ret < 0 ? errno : 0;
    close(fd);
    if (ret == 0 || err == EAGAIN || err == EINPROGRESS) {
        *live = true;
        return 0;
    }
    if (err == ECONNREFUSED || err == ENOENT) {
        *live = false;
        return 0;
    }
    return -err;
}

/* Removes path if it is a socket that nobody is listening on. */
static bool remove_stale(const char *path, const struct sockaddr_un *addr,
                         Error **errp)
{
    struct stat st;
    bool live = false;
    int ret;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT) {
            return true; /* nothing there */
        }
        error_setg_errno(errp, errno, "Cannot check '%s'", path);
        return false;
    }
    if (!S_ISSOCK(st.st_mode)) {
        error_setg(errp, "'%s' exists and is not a socket", path);
        return false;
    }
    ret = probe_live(addr, &live);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Cannot check whether '%s' is in use",
                         path);
        return false;
    }
    if (live) {
        error_setg(errp, "'%s' is in use by another process", path);
        return false;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        error_setg_errno(errp, errno, "Cannot remove stale socket '%s'", path);
        return false;
    }
    return true;
}

int unix_socket_listen(const char *path, int mode, UnixSocketFile *file,
                       Error **errp)
{
    struct sockaddr_un addr;
    struct stat st;
    int fd;

    if (!fill_addr(&addr, path, errp) || !remove_stale(path, &addr, errp)) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Cannot create socket");
        return -1;
    }
    /* Linux creates the file with the socket inode's mode less the umask,
     * so it is never wider than mode, only narrower... */
    if (fchmod(fd, mode) < 0) {
        error_setg_errno(errp, errno, "Cannot set mode of socket '%s'", path);
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        error_setg_errno(errp, errno, "Cannot bind socket '%s'", path);
        goto fail;
    }
    /* ...and then exactly mode, whatever the umask took away.  The file is
     * ours from here on: remember which one it is. */
    if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) ||
        chmod(path, mode) < 0) {
        error_setg_errno(errp, errno, "Cannot set mode of socket '%s'", path);
        goto fail_unlink;
    }
    if (listen(fd, SOMAXCONN) < 0) {
        error_setg_errno(errp, errno, "Cannot listen on socket '%s'", path);
        goto fail_unlink;
    }
    file->path = g_strdup(path);
    file->dev = st.st_dev;
    file->ino = st.st_ino;
    return fd;

fail_unlink:
    unlink(path);
fail:
    close(fd);
    return -1;
}

bool unix_socket_file_remove(UnixSocketFile *file)
{
    struct stat st;
    bool ours;

    if (!file->path) {
        return false;
    }
    ours = lstat(file->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
           st.st_dev == file->dev && st.st_ino == file->ino;
    if (ours) {
        unlink(file->path);
    }
    g_clear_pointer(&file->path, g_free);
    return ours;
}
