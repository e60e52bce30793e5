/*
 * Block layer internals shared by block/ and its drivers.  Not installed.
 *
 * A request (BdrvRequest) is created by the generic layer (block/io.c),
 * which checks it, counts it in the node's in_flight and hands it to the
 * driver's op.  The driver finishes it exactly once with
 * bdrv_request_complete() from the context the request runs in, never
 * inside the op itself: a driver that knows the answer at once uses
 * bdrv_request_complete_later(), which defers it to a later iteration of
 * that context.
 *
 * Multiqueue: a request belongs to the context that submitted it
 * (req->ctx, see bdrv_request_ctx in io.c) and its callback runs there.
 * A driver with .multiqueue set runs requests in req->ctx, whichever
 * context that is, concurrently with other contexts' requests on the same
 * node: its shared state must be thread-safe, and everything a request
 * waits on must be registered in req->ctx.  A driver without it sees only
 * requests that run in the node's home context (bs->ctx): the generic
 * layer forwards the others there (aio_defer) and hands their completion
 * back.  bdrv_request_run_ctx(req) says where a request runs.
 */
#ifndef DATAPLANE_BLOCK_INT_H
#define DATAPLANE_BLOCK_INT_H

#include <stddef.h>
#include <sys/queue.h>

#include "dataplane/block.h"

#ifndef container_of
#define container_of(ptr, type, member)                                        \
    ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

typedef enum BdrvRequestType {
    BDRV_REQUEST_READ,
    BDRV_REQUEST_WRITE,
    BDRV_REQUEST_FLUSH,
    BDRV_REQUEST_DISCARD,
    BDRV_REQUEST_ZEROES,
    BDRV_REQUEST_STATUS,
} BdrvRequestType;

typedef struct BdrvRequest BdrvRequest;
struct BdrvRequest {
    BlockDriverState *bs;
    BdrvRequestType type;
    int64_t offset;
    int64_t bytes;  /* qiov->size for reads and writes */
    IOVector *qiov; /* reads and writes only */
    int flags;      /* BDRV_REQ_* */

    /* Results, for block status.  depth: where in the backing chain the
     * range is allocated (1: this node, 2: its backing, ...; 0: nowhere);
     * -1 until the driver says, then derived from BDRV_BLOCK_HOLE. */
    int64_t pnum;
    unsigned status;
    int depth;

    /* The caller's callback (status_cb / depth_cb for
     * BDRV_REQUEST_STATUS). */
    BlockCompletionFunc *cb;
    BlockStatusFunc *status_cb;
    BlockStatusDepthFunc *depth_cb;
    void *opaque;

    bool fua_pending;  /* a write whose FUA is emulated by a flush next */
    bool forwarded;    /* runs in the home context, completes in ctx */
    int ret;           /* for the deferred completion */
    AioContext *ctx;   /* the submitter's: the callback runs there */
    AioDeferred defer; /* hand-offs between contexts, deferred completion */

    /* The driver's scratch space for this request. */
    void *drv_state;
    STAILQ_ENTRY(BdrvRequest) drv_next;
};

/* Option value types, checked before a driver's open runs. */
typedef enum BlockOptType {
    BLOCK_OPT_STRING,
    BLOCK_OPT_BOOL, /* input_parse_bool(): on/off, yes/no, true/false, y/n */
    BLOCK_OPT_SIZE, /* input_parse_size(): bytes, k/M/G/T/P/E suffixes */
} BlockOptType;

typedef struct BlockOptDesc {
    /* A "*" fragment stands for a list index: "server.*.host". */
    const char *name;
    BlockOptType type;
    /* For strings: the accepted values (NULL-terminated), or NULL: any. */
    const char *const *choices;
} BlockOptDesc;

typedef struct BlockDriver {
    const char *format_name;
    size_t instance_size;
    /* Requests may run in any context at once (see the header comment);
     * false: they are forwarded to the node's home context. */
    bool multiqueue;
    /* Driver-specific option keys, ended by { NULL }.  driver, node-name
     * and read-only are common to every driver; `file` and the dotted
     * file.* keys are accepted when has_file_child is set. */
    const BlockOptDesc *options;
    bool has_file_child;
    bool file_child_required;
    /* Writes past the end extend the node (a regular file): a format
     * driver above may then make it growable. */
    bool can_grow;
    /* Takes a `backing` child: the option backing=<node>|null, or what
     * the driver's open leaves in bs->backing_file / backing_format. */
    bool supports_backing;
    /* BDRV_REQ_* write flags the driver handles itself; the generic layer
     * emulates the others (FUA with a flush). */
    int supported_write_flags;
    int supported_zero_flags;

    /*
     * Opens bs->opaque (zeroed, instance_size bytes) from the validated
     * options; must set bs->total_bytes.  Runs in the main loop with the
     * node's context acquired, bs->file already open.  0 or -errno with
     * *errp set.
     */
    int (*bdrv_open)(BlockDriverState *bs, GHashTable *opts, Error **errp);
    /*
     * Optional, for drivers whose open waits on the network (rbd): the
     * waiting part, run after bdrv_open succeeded.  bdrv_open_async() runs
     * it on a threadlet (holding no lock: it may touch only bs->opaque and
     * set bs->total_bytes; the node is in no list, no request can reach
     * it); bdrv_open() runs it inline.  0 or -errno with *errp set; on
     * failure it releases what it took itself, and bdrv_close follows.
     */
    int (*bdrv_open_blocking)(BlockDriverState *bs, Error **errp);
    /* Releases what bdrv_open took; nothing is in flight.  Main loop,
     * node's context acquired.  A driver whose release waits on the
     * network hands it to a threadlet inside bdrv_background_begin/end. */
    void (*bdrv_close)(BlockDriverState *bs);

    /* The request ops: finish req with bdrv_request_complete[_later]. */
    void (*bdrv_aio_preadv)(BlockDriverState *bs, BdrvRequest *req);
    void (*bdrv_aio_pwritev)(BlockDriverState *bs, BdrvRequest *req);
    void (*bdrv_aio_flush)(BlockDriverState *bs, BdrvRequest *req);
    void (*bdrv_aio_pdiscard)(BlockDriverState *bs, BdrvRequest *req);
    void (*bdrv_aio_pwrite_zeroes)(BlockDriverState *bs, BdrvRequest *req);
    /* Sets req->pnum, req->status and (optionally) req->depth, counted
     * through the backing chain.  NULL: all data. */
    void (*bdrv_aio_block_status)(BlockDriverState *bs, BdrvRequest *req);

    /* Appends BdrvSnapshotInfo copies to list.  NULL: none. */
    void (*bdrv_snapshot_list)(BlockDriverState *bs, GPtrArray *list);

    /* Moves (DESIGN.md rule 4): nothing is in flight when these run. */
    void (*bdrv_detach_aio_context)(BlockDriverState *bs);
    void (*bdrv_attach_aio_context)(BlockDriverState *bs, AioContext *ctx);
    /* Drained sections of the node (throttle lets its queue go). */
    void (*bdrv_drained_begin)(BlockDriverState *bs);
    void (*bdrv_drained_end)(BlockDriverState *bs);

    /*
     * block_resize: makes the node `size` bytes long.  Called by
     * bdrv_truncate() in the main loop, with the node's graph drained and
     * its context acquired, after the generic checks (writable, size >= 0,
     * smaller than now only if supports_shrink).  0 or -errno with *errp
     * set; on success bdrv_truncate() records the size (a filter that
     * resizes its child may have done so through bdrv_size_changed()).
     * NULL: the node cannot be resized.
     */
    int (*bdrv_truncate)(BlockDriverState *bs, int64_t size, Error **errp);
    /* bdrv_truncate may make the node smaller (and drop the data past the
     * new end).  Filters that pass the resize on to their child say true
     * and let the child's driver decide. */
    bool supports_shrink;
    /* bdrv_truncate may wait on the network: bdrv_truncate_async() runs it
     * on a threadlet, with the node drained and no lock held (it may touch
     * only the driver's own state and must not set bs->total_bytes). */
    bool truncate_blocks;
    /*
     * bs->file changed size.  A node whose size follows its child's (raw
     * without size=, throttle) calls bdrv_size_changed() with its new
     * size.  Same calling context as bdrv_truncate.  NULL: the node's size
     * does not depend on its child's.
     */
    void (*bdrv_child_resized)(BlockDriverState *bs);
} BlockDriver;

/* detect-zeroes=off|on|unmap: writes of zero buffers become write-zeroes
 * (with BDRV_REQ_MAY_UNMAP for unmap). */
enum {
    BDRV_DETECT_ZEROES_OFF,
    BDRV_DETECT_ZEROES_ON,
    BDRV_DETECT_ZEROES_UNMAP,
};

#define BDRV_IN_FLIGHT_STRIPES 8
/* 64 bytes: two stripes' counts are always on different cache lines,
 * whatever the node's alignment. */
typedef struct BdrvInFlightStripe {
    unsigned count; /* atomic */
    char pad[60];
} BdrvInFlightStripe;

typedef struct BlockUser {
    const BlockUserOps *ops;
    void *opaque;
} BlockUser;

struct BlockDriverState {
    char *node_name;
    const BlockDriver *drv;
    void *opaque; /* the driver's state */
    int refcnt;   /* atomic */

    /* Written only in the main loop, with the node drained. */
    AioContext *ctx;
    BlockDriverState *file;    /* the `file` child, holding a reference */
    BlockDriverState *backing; /* the `backing` child, holding a reference */
    GPtrArray *parents;        /* nodes whose `file` or `backing` this is (no
                                  references) */
    /* What the driver's open found for a backing file (the header's name,
     * as written, and format, or NULL); the generic open resolves it. */
    char *backing_file;
    char *backing_format;
    bool read_only;
    bool force_share; /* force-share=on: other processes may write */
    /* A parent format (qcow2) writes past the end: writes may extend the
     * node, reads past the end return zeroes.  Set by the parent's open. */
    bool growable;
    bool no_flush;       /* cache.no-flush=on: flushes succeed at once */
    int detect_zeroes;   /* BDRV_DETECT_ZEROES_* */
    int64_t total_bytes; /* grows with writes past the end if growable */
    /* Registered users (BlockUser), main loop or node's context. */
    GArray *users;

    /* Requests of every context, from submission to their callback (see
     * request_finish): what drain waits on.  Striped by the request's
     * context (aio_context_get_index), one cache line each, so that
     * IOThreads submitting to one node do not bounce a shared line twice
     * per request; a stripe is only ever shared by contexts whose indexes
     * collide.  Read as a sum (bdrv_in_flight_sum). */
    BdrvInFlightStripe in_flight[BDRV_IN_FLIGHT_STRIPES];
    /* Node's home context (or main loop with it held). */
    int quiesce_counter;
    bool resizing; /* main loop: a bdrv_truncate_async() is running */

    TAILQ_ENTRY(BlockDriverState) all_next; /* main loop */
};

/* block/io.c */
/* In the context the request runs in (bdrv_request_run_ctx). */
void bdrv_request_complete(BdrvRequest *req, int ret);
void bdrv_request_complete_later(BdrvRequest *req, int ret);
/* Where the driver runs req: req->ctx for a multiqueue driver, the node's
 * home context for a forwarded request. */
static inline AioContext *bdrv_request_run_ctx(BdrvRequest *req)
{
    return req->forwarded ? req->bs->ctx : req->ctx;
}
/* The node's requests in flight, all stripes (seq_cst loads). */
unsigned bdrv_in_flight_sum(BlockDriverState *bs);
/* Wakes every thread waiting in a drain (block/drain.c). */
void bdrv_drain_kick(void);
extern unsigned bdrv_drain_waiters; /* atomic */

/*
 * The threading contract of I/O submission (block.h), checked by every
 * bdrv_aio_* entry point: aborts, naming the node, unless the calling
 * thread runs bs's AioContext or holds it.  The one place that says who may
 * submit, so that a wider rule (multiqueue) changes only this.
 */
void bdrv_assert_can_submit(BlockDriverState *bs);

/* block/options.c */
const char *bdrv_opt_get(GHashTable *opts, const char *key);
bool bdrv_opt_get_bool(GHashTable *opts, const char *key, bool def);
int64_t bdrv_opt_get_size(GHashTable *opts, const char *key, int64_t def);
/* Checks every key of opts against drv's table; the first problem named. */
bool bdrv_opts_validate(const BlockDriver *drv, GHashTable *opts, Error **errp);
/* The file.* keys of opts with the prefix removed (a new table), or NULL
 * if there are none. */
GHashTable *bdrv_opts_extract_child(GHashTable *opts, const char *child);

/* block/drain.c: calls every registered user's resize hook. */
void bdrv_users_resized(BlockDriverState *bs);

/*
 * block/resize.c: records that bs is now size bytes long; if that is a
 * change, tells bs's users (BlockUserOps.resize) and the parents whose
 * size follows it (bdrv_child_resized).  Main loop, graph drained, context
 * acquired.
 */
void bdrv_size_changed(BlockDriverState *bs, int64_t size);

/*
 * block/block.c: counts work that outlives a node's API call (an
 * asynchronous open, a close finished on a threadlet), so that
 * bdrv_wait_background() can wait for it.  Main loop thread.
 */
void bdrv_background_begin(void);
void bdrv_background_end(void);

/* block/block.c: aborts with a message unless in the main loop thread. */
void bdrv_assert_main_loop(const char *fn);
/* block/block.c: the component of the graph connected to bs (bs first). */
GPtrArray *bdrv_graph_component(BlockDriverState *bs);
const BlockDriver *bdrv_find_driver(const char *name);

/* block/file-posix.c */
const char *bdrv_file_get_filename(BlockDriverState *bs);

/* block/rbd.c: rbd requests completed so far through ctx's completion
 * queue (every rbd node's requests that ran in ctx).  ctx's thread, or
 * with ctx held. */
uint64_t bdrv_rbd_context_completions(AioContext *ctx);

/* block/io.c: the largest offset a growable node may be written at. */
#define BDRV_MAX_LENGTH (INT64_C(1) << 56)

/* Drivers. */
extern const BlockDriver bdrv_file;
extern const BlockDriver bdrv_raw;
extern const BlockDriver bdrv_null_co;
extern const BlockDriver bdrv_memory;
extern const BlockDriver bdrv_throttle;
extern const BlockDriver bdrv_qcow2;
extern const BlockDriver bdrv_rbd;

#endif /* DATAPLANE_BLOCK_INT_H */
