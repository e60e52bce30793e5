/*
 * Block layer internals shared by block/ and its drivers.  Not installed.
 *
 * A request (BdrvRequest) is created by the generic layer (block/io.c),
 * which checks it, counts it in the node's in_flight and hands it to the
 * driver's op.  The driver finishes it exactly once with
 * bdrv_request_complete() from the node's AioContext, never inside the op
 * itself: a driver that knows the answer at once uses
 * bdrv_request_complete_later(), which defers it to the node's completion
 * BH.
 */
#ifndef DATAPLANE_BLOCK_INT_H
#define DATAPLANE_BLOCK_INT_H

#include <sys/queue.h>

#include "dataplane/block.h"

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

    /* Results, for block status. */
    int64_t pnum;
    unsigned status;

    /* The caller's callback (status_cb for BDRV_REQUEST_STATUS). */
    BlockCompletionFunc *cb;
    BlockStatusFunc *status_cb;
    void *opaque;

    bool fua_pending; /* a write whose FUA is emulated by a flush next */
    int ret;          /* for the deferred completion */
    STAILQ_ENTRY(BdrvRequest) done_next;

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
    const char *name;
    BlockOptType type;
    /* For strings: the accepted values (NULL-terminated), or NULL: any. */
    const char *const *choices;
} BlockOptDesc;

typedef struct BlockDriver {
    const char *format_name;
    size_t instance_size;
    /* Driver-specific option keys, ended by { NULL }.  driver, node-name
     * and read-only are common to every driver; `file` and the dotted
     * file.* keys are accepted when has_file_child is set. */
    const BlockOptDesc *options;
    bool has_file_child;
    bool file_child_required;
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
    /* Releases what bdrv_open took; nothing is in flight. */
    void (*bdrv_close)(BlockDriverState *bs);

    /* The request ops: finish req with bdrv_request_complete[_later]. */
    void (*bdrv_aio_preadv)(BlockDriverState *bs, BdrvRequest *req);
    void (*bdrv_aio_pwritev)(BlockDriverState *bs, BdrvRequest *req);
    void (*bdrv_aio_flush)(BlockDriverState *bs, BdrvRequest *req);
    void (*bdrv_aio_pdiscard)(BlockDriverState *bs, BdrvRequest *req);
    void (*bdrv_aio_pwrite_zeroes)(BlockDriverState *bs, BdrvRequest *req);
    /* Sets req->pnum and req->status.  NULL: all data. */
    void (*bdrv_aio_block_status)(BlockDriverState *bs, BdrvRequest *req);

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
    BlockDriverState *file; /* the `file` child, holding a reference */
    GPtrArray *parents;     /* nodes whose `file` this is (no references) */
    bool read_only;
    bool no_flush;     /* cache.no-flush=on: flushes succeed at once */
    int detect_zeroes; /* BDRV_DETECT_ZEROES_* */
    int64_t total_bytes;
    /* Registered users (BlockUser), main loop or node's context. */
    GArray *users;

    /* Node's context only. */
    unsigned in_flight; /* atomic: drain reads it after acquiring */
    int quiesce_counter;
    AioBH *done_bh; /* runs bdrv_request_complete_later's queue */
    STAILQ_HEAD(, BdrvRequest) done_list;

    TAILQ_ENTRY(BlockDriverState) all_next; /* main loop */
};

/* block/io.c */
void bdrv_request_complete(BdrvRequest *req, int ret);
void bdrv_request_complete_later(BdrvRequest *req, int ret);
/* Sets up / tears down the node's completion BH in its context. */
void bdrv_io_attach(BlockDriverState *bs, AioContext *ctx);
void bdrv_io_detach(BlockDriverState *bs);

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

/* block/block.c: aborts with a message unless in the main loop thread. */
void bdrv_assert_main_loop(const char *fn);
/* block/block.c: the component of the graph connected to bs (bs first). */
GPtrArray *bdrv_graph_component(BlockDriverState *bs);
const BlockDriver *bdrv_find_driver(const char *name);

/* block/file-posix.c */
const char *bdrv_file_get_filename(BlockDriverState *bs);

/* Drivers. */
extern const BlockDriver bdrv_file;
extern const BlockDriver bdrv_raw;
extern const BlockDriver bdrv_null_co;
extern const BlockDriver bdrv_memory;
extern const BlockDriver bdrv_throttle;

#endif /* DATAPLANE_BLOCK_INT_H */
