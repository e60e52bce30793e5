/*
 * Small configuration files read whole, without blocking.  See
 * io/file-read.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/file-read.h"

bool io_read_small_file(const char *path, const char *what, size_t max,
                        bool required, char **data, size_t *len, Error **errp)
{
    struct stat st;
    size_t done = 0;
    char *buf;
    int fd;

    *data = NULL;
    *len = 0;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT && !required) {
            return true;
        }
        error_setg_errno(errp, errno, "Cannot read %s '%s'", what, path);
        return false;
    }
    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "Cannot read %s '%s'", what, path);
        close(fd);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        error_setg(errp, "%s '%s' is not a regular file", what, path);
        close(fd);
        return false;
    }
    if ((uint64_t)st.st_size > max) {
        error_setg(errp, "%s '%s' is too large (over %zu bytes)", what, path,
                   max);
        close(fd);
        return false;
    }
    /* One byte more than the size, to see a file that grew meanwhile. */
    buf = g_malloc(st.st_size + 2);
    for (;;) {
        ssize_t n = read(fd, buf + done, st.st_size + 1 - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "Cannot read %s '%s'", what, path);
            g_free(buf);
            close(fd);
            return false;
        }
        done += n;
        if (n == 0 || done > (size_t)st.st_size) {
            break;
        }
    }
    close(fd);
    if (done > (size_t)st.st_size) {
        error_setg(errp, "%s '%s' changed while being read", what, path);
        g_free(buf);
        return false;
    }
    if (done == 0) {
        error_setg(errp, "%s '%s' is empty", what, path);
        g_free(buf);
        return false;
    }
    buf[done] = '\0';
    *data = buf;
    *len = done;
    return true;
}
