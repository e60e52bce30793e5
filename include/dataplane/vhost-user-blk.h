/*
 * vhost-user-blk exports: a block node served to a virtual machine (or any
 * vhost-user front-end) as a virtio-blk device, straight from the guest's
 * shared memory, in the node's AioContext (an IOThread, typically).
 *
 * Each export listens on its own unix socket.  One front-end is served at
 * a time: while one is connected, further connections wait in the socket's
 * backlog; when it goes away (cleanly or killed), its requests in flight
 * complete, its mappings and file descriptors are released, and the next
 * one is accepted.  The connection lives in the node's AioContext and
 * follows the node when it moves (bdrv_set_aio_context).  Without
 * VhostUserBlkExportOptions.ctxs all of an export's virtqueues are served
 * there too; with them, virtqueue i is served in ctxs[i % n_ctxs] (QEMU's
 * multi-threaded export) and stays there when the node moves.  A drained
 * section of a node exported that way must begin and end in the main loop
 * (or a thread that runs no context): it stops the queues in their
 * contexts, which only the main loop may hold besides the node's.
 *
 * docs/vhost-user-blk.md has the QEMU command line, the threading and what
 * a front-end can and cannot do to the daemon.
 *
 * Threading: every function here is for the main loop thread (the thread
 * that called main_loop_init()), holding no AioContext.  The export table
 * is owned by that thread; connections in IOThreads reach it only through
 * BHs scheduled in the main loop.
 */
#ifndef DATAPLANE_VHOST_USER_BLK_H
#define DATAPLANE_VHOST_USER_BLK_H

#include <stdbool.h>

#include "dataplane/aio.h"
#include "dataplane/error.h"
#include "dataplane/socket.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

/* Queues of one export, at most (the protocol's 8-bit ring index). */
#define VHOST_USER_BLK_MAX_QUEUES 256

typedef struct VhostUserBlkExportOptions {
    const char *id;              /* the export's id, unique among exports */
    const char *node_name;       /* the node to serve */
    const SocketAddress *addr;   /* unix, or fd (a listening unix socket);
                                    inet is refused: the front-end passes
                                    file descriptors */
    bool writable;               /* false: VIRTIO_BLK_F_RO, writes refused */
    unsigned num_queues;         /* 1 .. VHOST_USER_BLK_MAX_QUEUES */
    unsigned logical_block_size; /* a power of two, 512 .. 65536 */
    /* n_ctxs 0: every virtqueue in the node's context.  Otherwise
     * virtqueue i runs in ctxs[i % n_ctxs] (each referenced while the
     * export lives; a context may be listed more than once). */
    AioContext *const *ctxs;
    unsigned n_ctxs;
} VhostUserBlkExportOptions;

/*
 * Creates the export and starts listening, with the rules of every
 * listener (dataplane/socket.h): a unix socket is created with mode 0600
 * unless addr says otherwise; a live socket at the path (another process
 * listens there) or a file that is not a socket is an error, a stale
 * socket is replaced; the file is removed with the export if it is still
 * ours.  While a front-end is connected the listener does not accept:
 * the next one waits in the backlog.  A
 * writable export of a read-only node is refused.  The export takes a
 * reference on the node and registers for its drained sections and
 * AioContext moves.
 */
bool vhost_user_blk_export_add(const VhostUserBlkExportOptions *opts,
                               Error **errp);

/*
 * Removes export id.  hard=false refuses while a front-end is connected;
 * hard=true disconnects it: its requests in flight complete, then its
 * memory is unmapped and the node released (after this returns, when
 * requests were in flight).  The socket file is removed at once, if it is
 * still the one we created.
 */
bool vhost_user_blk_export_del(const char *id, bool hard, Error **errp);

/* Whether an export (not yet deleted) has this id. */
bool vhost_user_blk_export_exists(const char *id);

typedef struct VhostUserBlkExportInfo {
    const char *id;
    const char *node_name;
    const char *address; /* "unix:/path", "fd:3" */
    bool writable;
    unsigned num_queues;
    unsigned logical_block_size;
    bool connected;      /* a front-end is connected */
    unsigned n_contexts; /* VhostUserBlkExportOptions.n_ctxs */
    /* n_contexts > 0: requests the connected front-end's queues took in
     * each of the contexts (in ctxs order), counted in that context's
     * thread; all zero without a front-end. */
    const uint64_t *context_requests;
} VhostUserBlkExportInfo;

typedef void VhostUserBlkExportFunc(const VhostUserBlkExportInfo *info,
                                    void *opaque);
/* Calls fn for every export, in the order they were added.  fn must not
 * add or delete exports. */
void vhost_user_blk_export_foreach(VhostUserBlkExportFunc *fn, void *opaque);

/* Front-end connections open now, including those of deleted exports that
 * are still finishing their requests. */
unsigned vhost_user_blk_get_connection_count(void);

/*
 * Called in the main loop thread when an export removed by
 * vhost_user_blk_export_del() is gone for good: its front-end has
 * disconnected and it has released its node.  May happen inside the
 * removing call.  One handler per process; fn NULL removes it.
 */
typedef void VhostUserBlkExportGoneFunc(const char *id, void *opaque);
void vhost_user_blk_set_export_gone_handler(VhostUserBlkExportGoneFunc *fn,
                                            void *opaque);

DP_API_END

#endif /* DATAPLANE_VHOST_USER_BLK_H */
