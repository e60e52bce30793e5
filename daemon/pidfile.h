/*
 * The daemon's pid file (--pidfile).
 *
 * The path is created if absent (O_EXCL); a file already there is taken
 * over only if it is a stale pid file (a regular file holding at most a
 * number, that no running instance holds locked): anything else, a
 * symbolic link included (O_NOFOLLOW), is refused and left as it is.  The
 * file stays write-locked for the daemon's life, so a second instance with
 * the same path fails.  At exit it is removed only if the path still names
 * the file written.
 *
 * Thread-safety: main thread only; one pid file per process.
 */
#ifndef DATAPLANE_DAEMON_PIDFILE_H
#define DATAPLANE_DAEMON_PIDFILE_H

#include <stdbool.h>

#include "dataplane/error.h"

/* Writes our pid to path and keeps it locked.  Errors name the path. */
bool pidfile_write(const char *path, Error **errp);

/* Removes the pid file if the path still names it, and unlocks it. */
void pidfile_remove(void);

#endif /* DATAPLANE_DAEMON_PIDFILE_H */
