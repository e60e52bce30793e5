/*
 * Listening unix sockets for the daemon's own endpoints (the monitor).
 * Any thread; no shared state.
 */
#ifndef DATAPLANE_DAEMON_UNIX_SOCKET_H
#define DATAPLANE_DAEMON_UNIX_SOCKET_H

#include <sys/types.h>

#include "dataplane/error.h"

/*
 * Binds and listens on path, non-blocking and close-on-exec, with the file
 * created with the given mode (set on the socket before bind, so there is
 * no window with wider permissions).  A stale socket file that nobody
 * listens on is removed first; a live socket or a non-socket file is an
 * error.  Returns the fd, or -1 with *errp set.
 */
int unix_socket_listen(const char *path, mode_t mode, Error **errp);

#endif /* DATAPLANE_DAEMON_UNIX_SOCKET_H */
