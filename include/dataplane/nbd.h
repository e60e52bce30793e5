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

#include "dataplane/aio.h"
#include "dataplane/authz.h"
#include "dataplane/error.h"
#include "dataplane/socket.h"
#include "dataplane/tls-creds.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

#define NBD_DEFAULT_PORT 10809
#define NBD_DEFAULT_MAX_CONNECTIONS 100
#define NBD_DEFAULT_HANDSHAKE_MAX_SECONDS 10
#define NBD_DEFAULT_IDLE_MAX_SECONDS 0
#define NBD_DEFAULT_MAX_BUFFER_SIZE (512 * (uint64_t)1024 * 1024)

typedef struct NbdServerOptions {
    /* Bounds the connections at any time, handshaking ones included (0: no
     * limit); a connection over the limit is closed at once. */
    int max_connections;
    /* Bounds the option haggling of one connection (0: no limit); a client
     * that has not entered transmission by then is disconnected.  The TLS
     * handshake counts. */
    int handshake_max_seconds;
    /*
     * TLS (NULL: none).  With tls_creds (endpoint=server), TLS is required
     * of every client: NBD_OPT_STARTTLS first; every other option before it
     * is answered NBD_REP_ERR_TLS_REQD, and NBD_OPT_EXPORT_NAME closes the
     * connection.  With tls_authz, the client's identity (certificate DN or
     * PSK username) must pass it.  The server takes a reference on
     * tls_creds; tls_authz must stay valid while the server runs (the
     * caller registers as the objects' user).
     */
    TlsCreds *tls_creds;
    Authz *tls_authz;
    /* A connection in transmission that moves no byte either way for this
     * long, with no request in flight, is closed (0: never; the default,
     * since an idle guest disk is silent for hours). */
    int idle_max_seconds;
    /* Bounds the bytes that request and reply buffers hold over every
     * connection (0: no limit): past it, connections stop reading requests
     * until memory is freed, except that one holding nothing may always
     * take one request.  Each connection has its own bounds besides. */
    uint64_t max_buffer_size;
    /* x-poll-sockets: the sockets of connections that may read get a poll
     * function, so their IOThread's adaptive polling covers them (off by
     * default: docs/nbd.md has the measurements). */
    bool poll_sockets;
} NbdServerOptions;

/* The defaults (qemu-storage-daemon's, and off or generous for
 * dataplaned's own), for callers that set only some. */
#define NBD_SERVER_OPTIONS_DEFAULT                                             \
    ((NbdServerOptions){                                                       \
        .max_connections = NBD_DEFAULT_MAX_CONNECTIONS,                        \
        .handshake_max_seconds = NBD_DEFAULT_HANDSHAKE_MAX_SECONDS,            \
        .idle_max_seconds = NBD_DEFAULT_IDLE_MAX_SECONDS,                      \
        .max_buffer_size = NBD_DEFAULT_MAX_BUFFER_SIZE,                        \
    })

/*
 * Starts listening on addr (copied) with the rules of every listener
 * (dataplane/socket.h: a live unix socket is refused, a stale one
 * replaced, the file created with mode 0600 or addr->mode and removed at
 * stop only if it is still ours; accept() at the fd limit backs off).
 * TCP connections get keepalive probes.  opts NULL means
 * NBD_SERVER_OPTIONS_DEFAULT.  Fails if the server is already running, an
 * option is negative, the TLS credentials are not for endpoint=server (or
 * tls_authz comes without them), or the address cannot be listened on.
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

/*
 * nbd_export_add with the options that came later.
 *  - allocation_depth offers the qemu:allocation-depth meta context
 *    (qemu-nbd -A): where in the node's backing chain each extent is
 *    allocated.
 *  - ctxs/n_ctxs (n_ctxs 0: the node's context) make a multi-threaded
 *    export (QEMU 10.1's `iothread` list): the connections are spread over
 *    the n_ctxs contexts (each referenced while the export lives): a new
 *    connection goes to the one with the fewest of this export's
 *    connections, ties going round robin.  The node stays in its home
 *    context; each connection submits from its own context and its requests
 *    complete there (multiqueue: see block.h).  Connections do not follow
 *    node moves.  Multi-conn is advertised (as for every export): a flush
 *    on one connection covers the writes completed on all of them.  Drained
 *    sections of the node must then begin and end in the main loop.
 */
typedef struct NbdExportConfig {
    const char *id;
    const char *node_name;
    const char *name;        /* NULL: the node name */
    const char *description; /* NULL: none */
    bool writable;
    bool allocation_depth;
    AioContext *const *ctxs;
    unsigned n_ctxs;
} NbdExportConfig;
bool nbd_export_add_config(const NbdExportConfig *cfg, Error **errp);

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
    /* A multi-threaded export: how many of them run in each of its
     * contexts (in NbdExportConfig.ctxs order); n_contexts 0 otherwise. */
    unsigned n_contexts;
    const unsigned *context_connections;
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
