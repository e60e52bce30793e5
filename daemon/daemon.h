/*
 * What the command files share with the daemon's main program: shutdown
 * requests, the monitors' lifetime, and the functions that turn an option
 * table (from the command line or from QMP arguments) into running things,
 * so that both paths run the same code.
 *
 * Thread-safety: main loop thread only, unless a function says otherwise.
 */
#ifndef DATAPLANE_DAEMON_DAEMON_H
#define DATAPLANE_DAEMON_DAEMON_H

#include <stdbool.h>
#include <glib.h>
#include <jansson.h>

#include "dataplane/error.h"

/*
 * Asks the main loop to stop and the daemon to shut down; reason is the
 * SHUTDOWN event's ("host-qmp-quit", "host-signal").  The first request
 * wins.  Main loop thread.
 */
void daemon_request_shutdown(const char *reason);

/* --chardev socket,... and --monitor chardev=...: in cmdline order. */
bool daemon_chardev_add(GHashTable *opts, Error **errp);
bool daemon_monitor_add(GHashTable *opts, Error **errp);
/* Stops accepting monitor clients, then frees every monitor. */
void daemon_monitors_stop_listening(void);
void daemon_monitors_free(void);

/* ---- objects (qmp-objects.c) ------------------------------------------- */

/* Registers the object types the daemon offers beyond main_loop_init()'s
 * (throttle-group).  After main_loop_init(). */
void daemon_objects_init(void);
/* --object: as object-add. */
bool daemon_object_add(GHashTable *opts, Error **errp);
/* Destroys every object (IOThreads last of all the daemon's things). */
void daemon_objects_cleanup(void);

/* ---- block nodes (qmp-block.c) ------------------------------------------ */

typedef struct BlockDriverState BlockDriverState;
typedef struct IOThread IOThread;

/* --blockdev: as blockdev-add. */
bool daemon_blockdev_add(GHashTable *opts, Error **errp);
/*
 * Moves bs (and its connected graph) to iothread's context, or to the main
 * loop's for NULL, and updates which IOThreads are recorded as in use.
 */
bool daemon_node_set_iothread(BlockDriverState *bs, IOThread *iothread,
                              Error **errp);
/* Drains, flushes and closes every node the monitor owns. */
void daemon_blockdevs_cleanup(void);

/* ---- NBD (qmp-nbd.c) ----------------------------------------------------- */

/* --nbd-server and --export: as nbd-server-start and block-export-add. */
bool daemon_nbd_server_start(GHashTable *opts, Error **errp);
bool daemon_export_add(GHashTable *opts, Error **errp);
/* The id of an export of node_name, or NULL if none exports it. */
const char *daemon_export_using_node(const char *node_name);
/*
 * Stops the NBD server (its socket file is removed), drops every export
 * and waits, running the main loop, until their connections have closed.
 */
void daemon_exports_cleanup(void);

/* ---- the world (qmp-objects.c) ------------------------------------------ */

/* Between 'stop' and 'cont', commands that move nodes or destroy
 * IOThreads refuse (false and *errp naming what). */
bool daemon_check_running(const char *what, Error **errp);
/* Resumes the world if it is stopped (shutdown does this first). */
void daemon_resume(void);

#endif /* DATAPLANE_DAEMON_DAEMON_H */
