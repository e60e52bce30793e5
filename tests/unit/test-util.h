/*
 * Helpers shared by unit tests of more than one module.
 *
 * Thread-safety: each helper says so.
 */
#ifndef DATAPLANE_TESTS_TEST_UTIL_H
#define DATAPLANE_TESTS_TEST_UTIL_H

#include <dirent.h>
#include <glib.h>

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

#endif /* DATAPLANE_TESTS_TEST_UTIL_H */
