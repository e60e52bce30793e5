/*
 * The NBD server: serves block nodes over the NBD protocol (fixed newstyle
 * handshake, structured replies, base:allocation block status), each export
 * from its node's AioContext.
 *
 * One server per process, as qemu-storage-daemon's nbd-server-start.  It
 * listens on a SocketAddress (unix, TCP over IPv4 and IPv6, or an inherited
 * fd; dataplane/socket.h); a connection
 * does its option haggling in the main loop, then moves to the AioContext
 * of the node it chose (an IOThread, typically) for the transmission
 * phase, and follows the node when the node moves.
 *
 * Threading: every function here is for the main loop thread (the thread
 * that called main_loop_init()), holding no AioContext; the server's lists
 * and counts are owned by that thread.  Connections living in IOThreads
 * reach them only by scheduling a BH in the main loop.
 */
#ifndef DATAPLANE_NBD_H
#define DATAPLANE_NBD_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/error.h"
#include "dataplane/socket.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

#define NBD_DEFAULT_PORT 10809
#define NBD_DEFAULT_MAX_CONNECTIONS 100
#define NBD_DEFAULT_HANDSHAKE_MAX_SECONDS 10

typedef struct NbdServerOptions {
    /* Bounds the connections at any time, handshaking ones included (0: no
     * limit); a connection over the limit is closed at once. */
    int max_connections;
    /* Bounds the option haggling of one connection (0: no limit); a client
     * that has not entered transmission by then is disconnected. */
    int handshake_max_seconds;
} NbdServerOptions;

/* The defaults (qemu-storage-daemon's), for callers that set only some. */
#define NBD_SERVER_OPTIONS_DEFAULT                                             \
    ((NbdServerOptions){                                                       \
        .max_connections = NBD_DEFAULT_MAX_CONNECTIONS,                        \
        .handshake_max_seconds = NBD_DEFAULT_HANDSHAKE_MAX_SECONDS,            \
    })

/*
 * Starts listening on addr (copied) with the rules of every listener
 * (dataplane/socket.h: a live unix socket is refused, a stale one
 * replaced, the file created with mode 0600 or addr->mode and removed at
 * stop only if it is still ours; accept() at the fd limit backs off).
 * opts NULL means NBD_SERVER_OPTIONS_DEFAULT.  Fails if the server is
 * already running, an option is negative, or the address cannot be
 * listened on.
 */
bool nbd_server_start(const SocketAddress *addr, const NbdServerOptions *opts,
                      Error **errp);

/*
 * Stops listening, deletes every export (hard: their connections are
 * dropped) and returns; connections finish closing in the background (the
 * main loop must keep running for that).  Fails if the server is not
 * running.
 */
bool nbd_server_stop(Error **errp);

bool nbd_server_is_running(void);
/* The TCP port listened on (useful with port 0), or -1. */
int nbd_server_get_port(void);
/* Connections open now, handshaking or transmitting. */
unsigned nbd_server_get_connection_count(void);

/*
 * Exports node node_name under the NBD export name `name` (NULL: the node
 * name), with an optional human-readable description (NULL: none).  id
 * names the export for nbd_export_del.  A writable export of a read-only
 * node is refused.  The export takes a reference on the node and registers
 * for its drained sections and AioContext moves.  The server must be
 * running.
 */
bool nbd_export_add(const char *id, const char *node_name, const char *name,
                    const char *description, bool writable, Error **errp);

typedef enum NbdExportDelMode {
    NBD_EXPORT_DEL_SAFE, /* fail if a client is connected */
    NBD_EXPORT_DEL_HARD, /* drop the export's connections */
} NbdExportDelMode;

/*
 * Removes export id: no new client can open it once this returns.  With
 * NBD_EXPORT_DEL_HARD, its connections are shut down; each finishes the
 * requests it has in flight, and the node is released after the last one
 * has closed.
 */
bool nbd_export_del(const char *id, NbdExportDelMode mode, Error **errp);

typedef struct NbdExportInfo {
    const char *id;
    const char *name;
    const char *description; /* NULL if none */
    const char *node_name;
    bool writable;
    unsigned connections; /* clients in the transmission phase */
} NbdExportInfo;

typedef void NbdExportFunc(const NbdExportInfo *info, void *opaque);

/* Calls fn for every export, in the order they were added.  fn must not add
 * or delete exports. */
void nbd_export_foreach(NbdExportFunc *fn, void *opaque);

/*
 * Called in the main loop thread when an export removed by nbd_export_del()
 * or nbd_server_stop() is gone for good: its last connection has closed and
 * it has released its node (so blockdev-del of the node can succeed).  That
 * may happen inside the removing call, if no client was connected.  One
 * handler per process (the daemon's BLOCK_EXPORT_DELETED event); fn NULL
 * removes it.  Main loop thread.
 */
typedef void NbdExportGoneFunc(const char *id, void *opaque);
void nbd_set_export_gone_handler(NbdExportGoneFunc *fn, void *opaque);

DP_API_END

#endif /* DATAPLANE_NBD_H */
