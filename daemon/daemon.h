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
#include <stdint.h>
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

/* ---- exports of every type (qmp-export.c) ------------------------------ */

/* What block-export-add takes for every type. */
typedef struct DaemonExportCommon {
    const char *id;
    const char *node_name;
    const char *iothread_id; /* NULL: the node stays where it is */
    /*
     * iothread given as a list (QEMU 10.1's multi-threaded export): the
     * node stays where it is and the type spreads its work (connections,
     * queues) over these IOThreads, in order.  NULL otherwise; then
     * n_iothreads is 0.
     */
    IOThread **iothreads;
    unsigned n_iothreads;
    bool writable;
    bool fixed_iothread;
} DaemonExportCommon;

/* --export: as block-export-add (dispatches on "type"). */
bool daemon_export_add(GHashTable *opts, Error **errp);
/* The id of an export (of any type) of node_name, or NULL if none. */
const char *daemon_export_using_node(const char *node_name);
/*
 * Drops every export (the NBD server stops, its socket file is removed;
 * each vhost-user-blk export's front-end is disconnected and its socket
 * removed) and waits, running the main loop, until their connections have
 * closed.
 */
void daemon_exports_cleanup(void);
/* For the type files: finds the node and moves it to c->iothread_id. */
bool daemon_export_prepare_node(const DaemonExportCommon *c, Error **errp);
/*
 * For the type files: the BLOCK_EXPORT_DELETED event (a gone handler); it
 * also releases the IOThreads of a multi-threaded export.
 */
void daemon_export_gone(const char *id, void *opaque);
/*
 * For the type files: after a successful add with c->n_iothreads > 0,
 * records the export as a user of each IOThread (they cannot be deleted
 * under it) until daemon_export_gone(c->id).
 */
void daemon_export_hold_iothreads(const DaemonExportCommon *c);
/* The IOThread ids of a multi-threaded export, NULL-terminated, as
 * block-export-add took them; NULL for any other export. */
const char *const *daemon_export_iothread_ids(const char *id);
/* Option table helpers shared by the command files. */
GHashTable *daemon_opts_copy(GHashTable *opts);
bool daemon_take_int(GHashTable *o, const char *key, int64_t min, int64_t max,
                     int64_t *out, Error **errp);
bool daemon_take_bool(GHashTable *o, const char *key, bool *out, Error **errp);
bool daemon_take_size(GHashTable *o, const char *key, uint64_t *out,
                      Error **errp);

/*
 * Each export type: add (the type's own keys are left in o, which it
 * must empty), exists, del, query (appends BlockExportInfo objects),
 * using_node, cleanup (drop all, hard) and the connections still open.
 */
/* ---- NBD (qmp-nbd.c) ----------------------------------------------------- */

/* --nbd-server: as nbd-server-start. */
bool daemon_nbd_server_start(GHashTable *opts, Error **errp);
bool daemon_nbd_export_add(GHashTable *o, const DaemonExportCommon *c,
                           Error **errp);
bool daemon_nbd_export_exists(const char *id);
bool daemon_nbd_export_del(const char *id, bool hard, Error **errp);
void daemon_nbd_export_query(json_t *list);
const char *daemon_nbd_export_using_node(const char *node_name);
void daemon_nbd_exports_cleanup(void);
unsigned daemon_nbd_connections(void);

/* ---- vhost-user-blk (qmp-vhost-user-blk.c) ------------------------------- */

bool daemon_vhost_user_blk_export_add(GHashTable *o,
                                      const DaemonExportCommon *c,
                                      Error **errp);
bool daemon_vhost_user_blk_export_exists(const char *id);
bool daemon_vhost_user_blk_export_del(const char *id, bool hard, Error **errp);
void daemon_vhost_user_blk_export_query(json_t *list);
const char *daemon_vhost_user_blk_export_using_node(const char *node_name);
void daemon_vhost_user_blk_exports_cleanup(void);
unsigned daemon_vhost_user_blk_connections(void);

/* ---- the world (qmp-objects.c) ------------------------------------------ */

/* Between 'stop' and 'cont', commands that move nodes or destroy
 * IOThreads refuse (false and *errp naming what). */
bool daemon_check_running(const char *what, Error **errp);
/* Resumes the world if it is stopped (shutdown does this first). */
void daemon_resume(void);

#endif /* DATAPLANE_DAEMON_DAEMON_H */
