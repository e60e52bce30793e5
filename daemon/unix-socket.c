/* Listening unix sockets; see unix-socket.h. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unix-socket.h"

static bool fill_addr(struct sockaddr_un *addr, const char *path, Error **errp)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(addr->sun_path)) {
        error_setg(errp, "Socket path '%s' is too long (at most %zu bytes)",
                   path, sizeof(addr->sun_path) - 1);
        return false;
    }
    strcpy(addr->sun_path, path);
    return true;
}

/* Removes path if it is a socket that nobody is listening on. */
static bool remove_stale(const char *path, const struct sockaddr_un *addr,
                         Error **errp)
{
    struct stat st;
    int fd;
    int ret;

    if (lstat(path, &st) < 0) {
        return true; /* nothing there */
    }
    if (!S_ISSOCK(st.st_mode)) {
        error_setg(errp, "'%s' exists and is not a socket", path);
        return false;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Cannot create socket");
        return false;
    }
    ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
    close(fd);
    if (ret == 0) {
        error_setg(errp, "'%s' is in use by another process", path);
        return false;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        error_setg_errno(errp, errno, "Cannot remove stale socket '%s'", path);
        return false;
    }
    return true;
}

int unix_socket_listen(const char *path, mode_t mode, Error **errp)
{
    struct sockaddr_un addr;
    int fd;

    if (!fill_addr(&addr, path, errp) || !remove_stale(path, &addr, errp)) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Cannot create socket");
        return -1;
    }
    /* Linux creates the file with the socket inode's mode (less umask). */
    if (fchmod(fd, mode) < 0) {
        error_setg_errno(errp, errno, "Cannot set mode of socket '%s'", path);
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        error_setg_errno(errp, errno, "Cannot bind socket '%s'", path);
        goto fail;
    }
    /* Make sure, whatever the kernel did with the mode above. */
    if (chmod(path, mode) < 0 || listen(fd, 64) < 0) {
        error_setg_errno(errp, errno, "Cannot listen on socket '%s'", path);
        unlink(path);
        goto fail;
    }
    return fd;

fail:
    close(fd);
    return -1;
}
