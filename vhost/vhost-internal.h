/*
 * vhost-user-blk export internals shared by export.c (the export table,
 * listening, node hooks), conn.c (a front-end connection: socket, message
 * framing, replies, close), messages.c (what each request does), queue.c
 * (a virtqueue served from an AioContext) and blk-request.c (virtio-blk
 * requests through the block layer).  Not installed.
 *
 * A connection's life, in order:
 *   export.c    accept, attach in the node's context       (main loop,
 *                                                            ctx acquired)
 *   conn.c      messages, replies                         (node's ctx)
 *   queue.c     rings started by SET_VRING_KICK, requests  (node's ctx,
 *                                                            or q->ctx)
 *   conn.c      close: stop rings, wait for in-flight I/O, unmap, close
 *               fds                                       (node's ctx)
 *   export.c    release: unlink, free, accept again       (main loop BH)
 *
 * Ownership (who may touch what):
 *   - The export table, each export's refcount, listening socket and
 *     deleted flag: main loop thread only.
 *   - VhostBlkExport.conn and .quiesce_depth: changed by the main loop with
 *     the node's AioContext acquired, read by the node's hooks (which run
 *     with it acquired) and by the connection in that context.
 *   - VhostConn and its queues: the node's AioContext only, from attach
 *     until the release BH is scheduled; the main loop touches them only
 *     with the context acquired (the export's hooks, deletion).
 *   - Each VhostBlkQueue is served in q->ctx.  Without an iothread list
 *     that is the connection's context, the queue follows the connection
 *     when the node moves, and the connection touches the queue directly.
 *     Queues share nothing mutable with each other: the memory map is
 *     changed only while every queue is idle (no request in flight, not
 *     processing), and lookups use a per-queue hint.
 *
 * Queues on IOThreads of their own (an export with an iothread list,
 * q->own_ctx): queue i lives in ctxs[i % n_ctxs] for the export's life and
 * stays there when the node moves (only the connection moves).  The
 * connection never holds a queue's context (an IOThread may hold one
 * context only); instead a started queue is handed back and forth:
 *   - handed over (vhost_queue_hand_over, conn's context): the connection
 *     has set up the rings, the fds and the inflight region, then defers
 *     (aio_defer, FIFO per context, which publishes those writes) the
 *     start to q->ctx.  From then on q->ctx owns the running state:
 *     vring, in_flight, bh, kick handler, stats, resubmission, broken.
 *   - recalled (vhost_queue_recall, conn's context): a second deferral
 *     makes q->ctx stop taking requests and remove its kick handler; once
 *     nothing is in flight it publishes the used ring, deletes its BH and
 *     sets q->returned under conn->hand_lock, scheduling the connection's
 *     resume_bh under that lock.  The connection reads q->returned under
 *     the lock: after it has seen it, q->ctx touches the queue no more
 *     and the connection owns all of it again.
 *   A message that changes a running queue (SET_VRING_KICK/CALL/ERR/
 *   ENABLE, GET_VRING_BASE) or the memory map (SET_MEM_TABLE, ADD_MEM_REG,
 *   REM_MEM_REG, RESET_OWNER: every queue) waits, deferred, until the
 *   queues concerned are back; it runs, and they are handed over again if
 *   they still run.  A close recalls every queue and finishes when all are
 *   back.  Read by the queue's context while handed over, and written by
 *   the connection only while no queue is: conn->features, conn->mem (so
 *   the memory map changes only while every queue is idle and not
 *   processing), the fds of the queue.  conn->writethrough is atomic (a
 *   SET_CONFIG does not wait).
 *   - q->quiesced is written by the node's hooks holding q->ctx (they run
 *     with the node's context held, in the main loop: only it may hold a
 *     second context; so drained sections of such a node begin and end
 *     in the main loop, or in a thread running no context, as for a
 *     multi-threaded NBD export) and read by q->ctx.  A drained section
 *     thus stops every queue in every context before the drain waits for
 *     their requests, which complete in their own threads.
 *   - conn->resume_bh is deleted and recreated when the node (and so the
 *     connection) moves, under conn->hand_lock, which the queues' contexts
 *     take to schedule it.
 */
#ifndef DATAPLANE_VHOST_INTERNAL_H
#define DATAPLANE_VHOST_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "dataplane/aio.h"
#include "dataplane/block.h"
#include "dataplane/event-notifier.h"
#include "dataplane/iov.h"
#include "dataplane/socket.h"
#include "dataplane/vhost-user-blk.h"
#include "vhost/inflight.h"
#include "vhost/memory.h"
#include "vhost/protocol.h"
#include "vhost/virtqueue.h"
#include "util/thread.h"

typedef struct VhostBlkExport VhostBlkExport;
typedef struct VhostConn VhostConn;
typedef struct VhostBlkQueue VhostBlkQueue;
typedef struct VhostBlkRequest VhostBlkRequest;

/* ---- tuning and advertised limits --------------------------------------- */

/* Data segments per request (config seg_max), and so descriptors per chain
 * (header and status besides) and I/O vector entries per request (a
 * descriptor may cross into an adjacent region: twice the descriptors). */
#define VHOST_BLK_SEG_MAX 126
#define VHOST_BLK_MAX_DESCS (VHOST_BLK_SEG_MAX + 2)
#define VHOST_BLK_MAX_IOV (2 * VHOST_BLK_MAX_DESCS)
/* DISCARD and WRITE_ZEROES: ranges per request and sectors per range. */
#define VHOST_BLK_MAX_DISCARD_SEG 16
#define VHOST_BLK_MAX_DISCARD_SECTORS (UINT32_C(1) << 22)
#define VHOST_BLK_MAX_WRITE_ZEROES_SEG 16
#define VHOST_BLK_MAX_WRITE_ZEROES_SECTORS (UINT32_C(1) << 22)
/* Requests one queue takes from its ring per call before it lets the loop
 * run something else (the rest continues from a BH). */
#define VHOST_BLK_POP_BUDGET 128
/* Messages handled per wake-up of the socket. */
#define VHOST_CONN_MSG_BUDGET 32

/* ---- an export (export.c) ----------------------------------------------- */

struct VhostBlkExport {
    char *id;
    char *address; /* for messages and the info */
    BlockDriverState *bs;
    bool writable;
    unsigned num_queues;
    unsigned blk_size;
    char serial[VIRTIO_BLK_ID_BYTES]; /* GET_ID: the export id, padded */
    /* An iothread list (n_ctxs > 0): queue i runs in ctxs[i % n_ctxs]
     * (each referenced while the export lives).  Constant. */
    AioContext **ctxs;
    unsigned n_ctxs;

    /* Main loop only. */
    SocketListener *listener; /* NULL once deleted */
    bool deleted;             /* out of the table, waiting for its connection */
    unsigned refcnt;          /* the table's + the connection's */
    TAILQ_ENTRY(VhostBlkExport) next;

    /* Under the node's AioContext (see the header comment). */
    VhostConn *conn;
    int quiesce_depth;
};

/* Node's context.  The connection has closed and freed everything it
 * held in the context: the main loop unlinks and frees it.  The caller
 * must not touch conn after this. */
void vhost_export_conn_closed(VhostConn *conn);

/* ---- a virtqueue (queue.c) ---------------------------------------------- */

typedef struct VhostBlkQueueStats {
    uint64_t requests;      /* chains taken (resubmissions included) */
    uint64_t kicks;         /* kick eventfd handler runs */
    uint64_t polls;         /* io_poll calls that found work */
    uint64_t signals;       /* call eventfd writes */
    uint64_t batches;       /* signal decisions (one per completion batch) */
    uint64_t in_own_thread; /* chains taken in the thread of q->ctx */
} VhostBlkQueueStats;

struct VhostBlkQueue {
    VhostConn *conn;
    unsigned index;
    AioContext *ctx; /* where this queue's handlers live */
    bool own_ctx;    /* an iothread list put it there: handed over */

    /* Hand-over (own_ctx; the header comment has the rules). */
    bool handed;    /* conn: handed to ctx and not seen back yet */
    bool recall;    /* conn: asked ctx to give it back */
    bool rehand;    /* conn: recalled for a message, runs again after it */
    bool returned;  /* under conn->hand_lock: ctx gave it back */
    bool offlining; /* ctx: takes nothing, gives back when idle */
    bool quiesced;  /* hooks, holding ctx: the node is drained */
    AioDeferred online_d, offline_d;

    /* What the front-end said (messages.c). */
    unsigned num; /* 0: not set */
    uint64_t desc_uaddr, avail_uaddr, used_uaddr;
    bool addr_set;
    uint16_t base;      /* SET_VRING_BASE */
    EventNotifier kick; /* fd -1: none */
    int call_fd;        /* -1: none */
    int err_fd;         /* -1: none */
    bool enabled;       /* SET_VRING_ENABLE */

    /* Running state. */
    bool started;  /* rings translated, kick handler installed */
    bool stopping; /* GET_VRING_BASE waits for the in-flight requests */
    bool broken;   /* the driver broke the ring: no more taken from it */
    bool handlers; /* kick handler and BH exist in ctx */
    bool polled;   /* the context busy-polls the ring: kicks stay off */
    VhostVring vring;
    unsigned hint; /* memory lookup hint */
    VhostInflightQueue inflight;
    uint16_t *resubmit; /* in-flight heads of a previous life, in order */
    unsigned n_resubmit, resubmit_pos;
    unsigned in_flight;  /* requests taken and not yet returned */
    bool signal_pending; /* returned since the last signal decision */
    AioBH *bh;           /* signal the batch, continue taking */
    VhostBlkRequest *free_reqs;
    VhostBlkQueueStats stats;
};

/* Main loop, for tests: the context and counters of queue index of export
 * id's connection; false if there is none. */
bool vhost_export_queue_stats(const char *id, unsigned index, AioContext **ctx,
                              VhostBlkQueueStats *stats);

/* Node's context.  Fresh state for queue index (no rings, no fds). */
void vhost_queue_init(VhostBlkQueue *q, VhostConn *conn, unsigned index);
/*
 * Starts the rings (SET_VRING_KICK with everything set): translates the
 * addresses, recovers inflight state, installs the kick handler.  Returns
 * NULL or why it could not.
 */
const char *vhost_queue_start(VhostBlkQueue *q);
/*
 * Stops taking requests and removes the kick handler; requests in flight
 * still complete into the used ring.  The caller waits for in_flight == 0
 * before vhost_queue_reset().
 */
void vhost_queue_stop(VhostBlkQueue *q);
/* After stop and with nothing in flight: closes the fds, frees requests,
 * back to the state of vhost_queue_init(). */
void vhost_queue_reset(VhostBlkQueue *q);
/* SET_VRING_KICK: takes fd as the kick eventfd (a running ring switches
 * its handler over to it). */
void vhost_queue_set_kick_fd(VhostBlkQueue *q, int fd);
/* Re-translates the ring addresses after the memory map changed (the
 * queue is idle); marks the queue broken if they no longer translate. */
void vhost_queue_remap(VhostBlkQueue *q);
/* Whether the queue may take requests now. */
bool vhost_queue_runnable(VhostBlkQueue *q);
/* Schedules a look at the ring (after a pause, a drained section, an
 * enable). */
void vhost_queue_kick_soon(VhostBlkQueue *q);
/* Moves: remove the handlers from q->ctx / install them in new_ctx. */
void vhost_queue_detach(VhostBlkQueue *q);
void vhost_queue_attach(VhostBlkQueue *q, AioContext *new_ctx);
/* Returns a finished request: status byte, used ring, signal batching. */
void vhost_queue_complete(VhostBlkRequest *req, uint8_t status, uint32_t len);
/* own_ctx, conn's context: runs the started queue in q->ctx. */
void vhost_queue_hand_over(VhostBlkQueue *q);
/* own_ctx, conn's context: asks q->ctx to give the queue back (once);
 * true when it is back (or never was handed over).  Until then it takes
 * no new requests; the connection's resume_bh runs when it is back. */
bool vhost_queue_recall(VhostBlkQueue *q);
/* own_ctx, hooks (node's context held; main loop): takes q->ctx and stops
 * or resumes taking requests. */
void vhost_queue_quiesce(VhostBlkQueue *q, bool quiesced);

/* ---- virtio-blk requests (blk-request.c) -------------------------------- */

struct VhostBlkRequest {
    VhostBlkQueue *q;
    VringElem elem;
    uint8_t *status;   /* the status byte, in guest memory */
    uint32_t in_bytes; /* writable bytes, status included */
    IOVector qiov;     /* over iov[], for the block layer */
    unsigned pending;  /* block requests not yet completed */
    int ret;           /* the first error of those */
    uint32_t done_len; /* the used length to report */
    VhostBlkRequest *next_free;
    struct iovec iov[VHOST_BLK_MAX_IOV];
};

/*
 * Starts a request whose chain is in req->elem and req->iov.  Returns
 * false if the chain cannot be a virtio-blk request at all (no byte to put
 * a status in): the caller breaks the queue.  Otherwise the request ends in
 * vhost_queue_complete(), possibly before this returns.
 */
bool vhost_blk_request_start(VhostBlkRequest *req);

/* The virtio-blk features this export offers. */
uint64_t vhost_blk_device_features(const VhostBlkExport *exp);
/* Fills the config space (VHOST_USER_MAX_CONFIG_SIZE bytes; the fields
 * past VirtioBlkConfig are zero). */
void vhost_blk_get_config(const VhostConn *conn, uint8_t *cfg);

/* ---- a connection (conn.c, messages.c) ---------------------------------- */

typedef enum VhostConnPhase {
    VHOST_CONN_RUNNING,  /* node's context */
    VHOST_CONN_CLOSING,  /* node's context, waiting for in-flight I/O */
    VHOST_CONN_RELEASED, /* release BH scheduled: main loop owns it */
} VhostConnPhase;

struct VhostConn {
    VhostBlkExport *exp;
    int fd;
    unsigned id; /* for log lines */
    AioContext *ctx;
    VhostConnPhase phase;
    bool dead;     /* closing: no more messages, rings stopped */
    bool quiesced; /* the node is in a drained section */

    /* Reading a message. */
    uint8_t rbuf[VHOST_USER_HDR_SIZE + VHOST_USER_PAYLOAD_MAX];
    size_t rlen; /* bytes of rbuf filled */
    VhostUserHeader hdr;
    int fds[VHOST_USER_MAX_FDS]; /* received with it */
    unsigned nfds;
    bool deferred; /* the message waits for queues to go idle */
    bool read_enabled;

    /* Writing a reply. */
    uint8_t wbuf[VHOST_USER_HDR_SIZE + VHOST_USER_PAYLOAD_MAX];
    size_t wlen, wsent;
    int wfd; /* an fd to send with the reply, -1 if none */
    bool write_enabled;

    /* Negotiated. */
    uint64_t features;
    uint64_t protocol_features;
    bool owner;
    bool writethrough; /* the guest cleared wce */
    int backend_fd;    /* SET_BACKEND_REQ_FD, -1 if none */

    VhostMemMap mem;

    /* The inflight area: ours (GET_INFLIGHT_FD) or the front-end's
     * (SET_INFLIGHT_FD); NULL if none. */
    uint8_t *inflight_base;
    size_t inflight_map_len;
    void *inflight_map;
    int inflight_fd; /* kept for GET_INFLIGHT_FD replies; -1 if none */
    uint16_t inflight_queues;
    uint16_t inflight_queue_size;

    VhostBlkQueue *queues;
    unsigned nqueues;

    AioBH *resume_bh; /* a deferred message may proceed */
    /* Queues in other contexts: resume_bh (for scheduling it) and their
     * returned flags. */
    DpMutex hand_lock;
};

/* Main loop, ctx acquired: a new connection on fd starts in ctx. */
VhostConn *vhost_conn_new(VhostBlkExport *exp, int fd, unsigned id,
                          AioContext *ctx);
/* Context: a hard close (EOF, protocol error, export deleted). */
void vhost_conn_close(VhostConn *conn, const char *why);
/* Context: the connection finishes closing once nothing is in flight.
 * The last thing a top-level callback does (conn may be freed after). */
void vhost_conn_maybe_finish(VhostConn *conn);
/* Context: a queue went idle or was stopped: a deferred message may go on. */
void vhost_conn_queue_idle(VhostConn *conn);
/* Any thread holding conn->hand_lock: schedules resume_bh (if any). */
void vhost_conn_wake_locked(VhostConn *conn);
/* Hooks (ctx acquired). */
void vhost_conn_quiesce(VhostConn *conn);
void vhost_conn_resume(VhostConn *conn);
void vhost_conn_detach(VhostConn *conn);
/* The config space changed (the node's size): a CONFIG_CHANGE message on
 * the backend channel, if the front-end set one up with CONFIG. */
void vhost_conn_config_changed(VhostConn *conn);
void vhost_conn_attach(VhostConn *conn, AioContext *new_ctx);
/* Context.  Logs with the connection's export and id. */
void vhost_conn_log(VhostConn *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * messages.c.  Handles the message in conn->rbuf/hdr/fds (well-formed per
 * vhost_user_check_message).  Returns false if it must wait for queues to
 * go idle (nothing was done; call again later), true when handled: then
 * *err is NULL or what failed, and a reply was queued if one is due.
 * Consumed fds are set to -1 in conn->fds.
 */
bool vhost_msg_handle(VhostConn *conn, const char **err);
/* Queues a reply (conn.c); fd (or -1) goes with it. */
void vhost_conn_reply(VhostConn *conn, const uint8_t *buf, size_t len, int fd);
/* The inflight area of queue index, or NULL. */
VhostInflightRegion *vhost_conn_inflight_region(VhostConn *conn,
                                                unsigned index);
/* Releases the inflight area. */
void vhost_conn_inflight_free(VhostConn *conn);

#endif /* DATAPLANE_VHOST_INTERNAL_H */
