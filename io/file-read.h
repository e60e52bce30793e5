/*
 * Reading a small configuration file (credentials, authorization lists)
 * whole, from an event loop thread, without blocking on anything but the
 * file's own read: the open is non-blocking (a FIFO cannot hang the loop),
 * and anything but a regular file of at most max bytes is refused.  Not
 * installed.  Any thread.
 */
#ifndef DATAPLANE_IO_FILE_READ_H
#define DATAPLANE_IO_FILE_READ_H

#include <stdbool.h>
#include <stddef.h>

#include "dataplane/error.h"

/*
 * Reads path into *data (g_malloc'd, NUL-terminated after *len bytes).
 * what names the file in errors ("TLS credentials file").  A missing file
 * is an error unless !required: then true with *data NULL.  An empty file
 * is an error.
 */
bool io_read_small_file(const char *path, const char *what, size_t max,
                        bool required, char **data, size_t *len, Error **errp);

#endif /* DATAPLANE_IO_FILE_READ_H */
