/*
 * Listening unix sockets with the listener rules of
 * include/dataplane/socket.h: a live socket is refused, a stale one
 * replaced, the file created with an explicit mode, and removed only
 * while it is still ours.  The listener (io/listener.c) uses these.
 *
 * Thread-safety: any thread; no shared state.
 */
#ifndef DATAPLANE_IO_UNIX_SOCKET_H
#define DATAPLANE_IO_UNIX_SOCKET_H

#include <stdbool.h>
#include <sys/types.h>

#include "dataplane/error.h"

/* Which file a listener created: removed at the end only if unchanged. */
typedef struct UnixSocketFile {
    char *path;
    dev_t dev;
    ino_t ino;
} UnixSocketFile;

/*
 * Binds and listens on path, non-blocking and close-on-exec, the file with
 * exactly the permission bits mode (whatever the umask).  A socket file
 * that nobody listens on is removed first; a live one ("'<path>' is in use
 * by another process") or any other kind of file is an error.  On success
 * returns the fd and fills *file (free it with unix_socket_file_remove());
 * on failure returns -1 with *errp set and leaves the path as it was.
 */
int unix_socket_listen(const char *path, int mode, UnixSocketFile *file,
                       Error **errp);

/*
 * Removes file->path if it is still the socket file that
 * unix_socket_listen() created (same device and inode), and frees
 * file->path.  Returns whether it removed it.
 */
bool unix_socket_file_remove(UnixSocketFile *file);

#endif /* DATAPLANE_IO_UNIX_SOCKET_H */
