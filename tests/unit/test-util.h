/*
 * Helpers shared by unit tests of more than one module.
 *
 * Thread-safety: each helper says so.
 */
#ifndef DATAPLANE_TESTS_TEST_UTIL_H
#define DATAPLANE_TESTS_TEST_UTIL_H

#include <dirent.h>
#include <glib.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "dataplane/object.h"

/* The number of file descriptors this process has open, for leak checks.
 * Any thread; racy against threads that open or close fds meanwhile. */
static inline int count_open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    g_assert_nonnull(dir);
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] != '.') {
            n++;
        }
    }
    closedir(dir);
    return n - 1; /* the directory's own fd */
}

/* Whether fd would read without blocking, now.  Any thread. */
static inline bool fd_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};

    return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/* The int property name of obj; aborts on error.  The registry's owner
 * thread, as object_property_get_int(). */
static inline int64_t prop_get_int(Object *obj, const char *name)
{
    int64_t v = -1;

    g_assert_true(object_property_get_int(obj, name, &v, &error_abort));
    return v;
}

#endif /* DATAPLANE_TESTS_TEST_UTIL_H */
