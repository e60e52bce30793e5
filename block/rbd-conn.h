/*
 * Cluster connections (rados_t) shared by the rbd nodes of a process.
 *
 * Nodes whose connection settings are identical (configuration file,
 * user, key, monitor addresses, auth methods, timeouts, cache) use one
 * rados_t: one set of monitor and OSD sessions and one set of librados
 * threads, however many images they open.  The connection is made by the
 * first node that needs it; a node that asks while it is being made waits
 * for that attempt and gets its result (so a wrong monitor address fails
 * every waiting node with the same sentence, after one timeout).  The last
 * node to let go shuts it down.
 *
 * Threading: rbd_conn_get() and rbd_conn_put() block (connecting, shutting
 * down): call them from a threadlet, not from an event loop.  Any thread;
 * the table is behind a mutex.  The rest: any thread.
 */
#ifndef DATAPLANE_BLOCK_RBD_CONN_H
#define DATAPLANE_BLOCK_RBD_CONN_H

#include <stdbool.h>
#include <rados/librados.h>

#include "dataplane/error.h"

/* What identifies a connection.  NULL strings: librados's default. */
typedef struct RbdConnParams {
    char *conf;           /* configuration file */
    char *user;           /* client id without "client." ("admin") */
    char *key;            /* base64 key, from key-secret */
    char *mon_host;       /* "host:port,..." from server.N.* */
    char *auth;           /* auth_client_required: "cephx;none" */
    char *mount_timeout;  /* client_mount_timeout, seconds */
    char *osd_op_timeout; /* rados_osd_op_timeout, seconds */
    char *mon_op_timeout; /* rados_mon_op_timeout, seconds */
    bool rbd_cache;       /* librbd's writeback cache (cache.direct=off) */
} RbdConnParams;

typedef struct RbdConn RbdConn;

void rbd_conn_params_clear(RbdConnParams *p);

/*
 * A connection with these parameters: an existing one (a reference more)
 * or a new one, connected before this returns.  NULL and a one-line *errp
 * naming what failed (the configuration file, an option, the monitors that
 * did not answer within client_mount_timeout, the authentication).
 */
RbdConn *rbd_conn_get(const RbdConnParams *p, Error **errp);
/* Drops a reference; the last one shuts the connection down. */
void rbd_conn_put(RbdConn *c);
rados_t rbd_conn_get_cluster(RbdConn *c);
/* The monitors, for messages: mon_host, or "the monitors of <conf>". */
const char *rbd_conn_describe(RbdConn *c);
/* Connections alive now (made and not yet shut down). */
unsigned rbd_conn_count(void);

#endif /* DATAPLANE_BLOCK_RBD_CONN_H */
