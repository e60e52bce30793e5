/*
 * The block layer: a graph of named nodes (BlockDriverState), each bound to
 * one AioContext, doing asynchronous I/O through a driver.
 *
 * Nodes and their options (docs/block.md has the long version):
 *   driver=file,node-name=,filename=,aio=io_uring|threads,
 *          cache.direct=on|off,read-only=on|off,discard=unmap|ignore
 *   driver=raw,node-name=,file=<node>,offset=,size=
 *   driver=null-co,node-name=,size=,read-zeroes=on|off
 *   driver=memory,node-name=,size=
 *   driver=throttle,node-name=,throttle-group=<id>,file=<node>
 *   driver=rbd,node-name=,pool=,image=,namespace=,snapshot=,conf=,user=,
 *          key-secret=,server.N.host=,server.N.port=,
 *          auth-client-required.N=,cache.direct=,discard=,
 *          x-mount-timeout=,x-osd-op-timeout=,x-mon-op-timeout=
 *          (docs/rbd.md)
 * Every driver also takes node-name, read-only, auto-read-only,
 * cache.no-flush and detect-zeroes=off|on|unmap.  A `file` child may be
 * named (file=<node-name>) or opened inline from dotted keys
 * (file.driver=file,file.filename=...).  A node without a node-name gets a
 * generated one ("#block<N>").
 *
 * Threading (DESIGN.md, rule 4, widened for multiqueue; docs/block.md):
 *  - Graph changes (bdrv_open, bdrv_unref of the last reference,
 *    bdrv_set_aio_context, bdrv_blockdev_del, the lookup functions) happen
 *    in the main loop thread only.
 *  - Every node has a home AioContext (bdrv_get_aio_context).  A node's
 *    whole connected graph (its file children and their parents) shares
 *    one home; bdrv_set_aio_context moves all of it.
 *  - I/O (bdrv_aio_*) may be submitted from any thread that runs an
 *    AioContext (an IOThread, the main loop, a thread that set its
 *    context with aio_set_current_context), or from any thread holding the
 *    home context with aio_context_acquire.  A request belongs to the
 *    submitter's own context, unless the submitter runs or holds the home
 *    context (or runs none): then to the home.  Its callback runs in that
 *    context (by the thread that runs it, or by a thread holding it: while
 *    another thread drains the node, that thread runs the home context
 *    with nested aio_poll() and the home's callbacks run there, as in
 *    QEMU; never two threads at once), always later than the submit call
 *    returns, never inside it.  Checked on every call
 *    (bdrv_assert_can_submit: an abort naming the node for a thread that
 *    runs no context and holds not the home).  Many contexts may have
 *    requests in flight on one node at once (multiqueue).
 *  - Drivers are multiqueue-safe or not (bdrv_is_multiqueue): file, raw,
 *    null-co and memory run a request in the context that submitted it;
 *    throttle runs every request in the home context (requests of other
 *    contexts are forwarded there and their completions handed back, one
 *    BH hop each way).  Either way the caller sees the same contract.
 *  - Drain and drained sections cover every context: they wait until no
 *    request of any context is in flight and every callback of a
 *    non-home context has returned.  A user that submits from contexts
 *    other than the home must stop doing so in its drained_begin hook
 *    (which runs in the main loop, holding the home context; it may take
 *    the other contexts too, since the main loop may hold several).
 *  - Moving a node (bdrv_set_aio_context) changes its home; requests from
 *    other contexts continue after the move's drained section.
 *
 * Callback contract: every bdrv_aio_* call calls its callback exactly once,
 * with 0 or a negative errno (-EINVAL for a range past the end of the node
 * or negative, -EPERM for a write, discard or write-zeroes on a read-only
 * node, -EIO/-ENOSPC/... from the storage).  Buffers passed in an IOVector
 * (the iov array and every buffer it points to) must stay valid and must
 * not be touched by the caller until the callback has run.
 */
#ifndef DATAPLANE_BLOCK_H
#define DATAPLANE_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "dataplane/aio.h"
#include "dataplane/error.h"
#include "dataplane/iov.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

typedef struct BlockDriverState BlockDriverState;

typedef void BlockCompletionFunc(void *opaque, int ret);

/* ---- the node graph (main loop thread) -------------------------------- */

/*
 * Registers the block layer's object types ("throttle-group") with the
 * object registry, so that --object/object-add can create them before any
 * node names them.  Idempotent (call it again after
 * object_registry_cleanup()).  Main loop thread.
 */
void bdrv_init(void);

/*
 * Opens a node from flat options (char * -> char *, dotted keys, the keys of
 * qemu-storage-daemon's --blockdev, see above).  Unknown keys, missing
 * required keys, bad values and duplicate node names are errors that name
 * the key.  opts is not modified or kept.  The new node runs in its file
 * child's AioContext if it has one, else in the main loop's
 * (main_loop_get_aio_context()).  Returns a node holding one reference,
 * which the caller owns, or NULL and *errp.  Main loop thread; a driver
 * that opens over the network (rbd) waits here (bdrv_open_async() does
 * not).
 */
BlockDriverState *bdrv_open(GHashTable *opts, Error **errp);

/*
 * Receives the result of bdrv_open_async(): the node (holding the
 * reference the caller owns) or NULL and err (the callee's to free).
 */
typedef void BlockOpenFunc(void *opaque, BlockDriverState *bs, Error *err);

/*
 * As bdrv_open(), for callers that must not block: a driver whose open
 * waits on the network (rbd: connecting to the cluster, opening the image)
 * waits on a threadlet, and cb runs later in the main loop; for the other
 * drivers, and for errors found before any waiting, cb runs inside this
 * call.  The node name is taken from the call on (a second open with it
 * fails at once).  A node nested in the options (file.driver=...) opens
 * synchronously.  opts is not kept.  Main loop thread.
 */
void bdrv_open_async(GHashTable *opts, BlockOpenFunc *cb, void *opaque);

/*
 * Runs the main loop's context until every bdrv_open_async() has called
 * back and every close a driver finishes in the background (rbd hands the
 * image's and the cluster connection's close to a threadlet, so that the
 * main loop is not blocked for seconds) is done.  Bounded by the drivers'
 * timeouts.  For exit: after it, no thread of the block layer's drivers
 * is left.  Main loop thread, holding no AioContext.
 */
void bdrv_wait_background(void);

/* The node named node_name, or NULL.  No reference is taken.  Main loop. */
BlockDriverState *bdrv_find_node(const char *node_name);

/*
 * References.  The last bdrv_unref drains the node, closes it, drops its
 * reference on its file child and removes it from the registry.  bdrv_ref:
 * any thread that already holds a reference.  bdrv_unref of what may be the
 * last reference: main loop thread, holding no AioContext.
 */
void bdrv_ref(BlockDriverState *bs);
void bdrv_unref(BlockDriverState *bs);

/*
 * blockdev-del: drops the reference that bdrv_open gave (the monitor's) on
 * the node named node_name.  Fails, changing nothing, if there is no such
 * node, if it is another node's child, or if anything else (an export, a
 * registered user) still holds it.  Main loop thread.
 */
bool bdrv_blockdev_del(const char *node_name, Error **errp);

typedef void BlockNodeFunc(BlockDriverState *bs, void *opaque);
/* Calls fn for every node, in the order they were opened.  fn must not open
 * or close nodes.  Main loop thread. */
void bdrv_foreach_node(BlockNodeFunc *fn, void *opaque);

/* ---- node properties (any thread holding a reference) ----------------- */

const char *bdrv_get_node_name(BlockDriverState *bs);
/* "file", "raw", "null-co", "memory", "throttle", "rbd". */
const char *bdrv_get_driver_name(BlockDriverState *bs);
/* Whether bs and every node under it run requests in the submitting
 * context (true), or some forward to the home context (false).  Either
 * way any context may submit; this says what it costs. */
bool bdrv_is_multiqueue(BlockDriverState *bs);
/* The file driver's filename, else its file child's, else NULL. */
const char *bdrv_get_filename(BlockDriverState *bs);
/* The `file` child, or NULL.  No reference is taken. */
BlockDriverState *bdrv_get_file_child(BlockDriverState *bs);
/* The `backing` child, or NULL.  No reference is taken. */
BlockDriverState *bdrv_get_backing_child(BlockDriverState *bs);
/* How many backing nodes are below bs (0: none). */
int bdrv_get_backing_depth(BlockDriverState *bs);

/* An internal snapshot of an image (qcow2), as QEMU's query lists it. */
typedef struct BdrvSnapshotInfo {
    char *id;
    char *name;
    uint64_t vm_state_size;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount; /* UINT64_MAX: not recorded */
} BdrvSnapshotInfo;
/* The node's internal snapshots, read when it was opened (a new array of
 * BdrvSnapshotInfo, freed with g_ptr_array_unref; empty for drivers
 * without them).  Main loop thread. */
GPtrArray *bdrv_list_snapshots(BlockDriverState *bs);
/* The size in bytes.  It changes only through bdrv_truncate (main loop,
 * node drained), so the node's context sees it stable between requests;
 * and a file node under a format driver (growable) grows as the format
 * writes past its end, in the node's context. */
int64_t bdrv_getlength(BlockDriverState *bs);
bool bdrv_is_read_only(BlockDriverState *bs);
/* Requests submitted on this node whose callback has not run yet. */
unsigned bdrv_get_in_flight(BlockDriverState *bs);

/*
 * block_resize: makes bs `size` bytes long.  Inside a drained section of
 * bs's graph, calls the driver's resize, records the new size and tells
 * bs's users (BlockUserOps.resize) and the parents whose size follows it
 * (raw without size=, throttle), and their users.  New bytes read as
 * zeroes.  Refused (nothing changed, *errp says why) for a read-only node,
 * a negative size, a driver that cannot resize (raw opened with size=)
 * and a smaller size on a driver that cannot shrink.  Which drivers grow
 * and shrink: file (ftruncate; a block device only within its own size),
 * memory, null-co, rbd; raw (without size=) and throttle pass it on to
 * their file child.  Main loop thread, holding no AioContext but the main
 * loop's own; waits for the node's requests in flight (drain) and for the
 * driver (a metadata update: a system call, a cluster round trip).
 */
bool bdrv_truncate(BlockDriverState *bs, int64_t size, Error **errp);

/* The result of bdrv_truncate_async(): err is NULL on success, else the
 * callee's to free. */
typedef void BlockTruncateFunc(void *opaque, Error *err);

/*
 * As bdrv_truncate(), for callers that must not block (QMP block_resize):
 * a driver whose resize waits on the network (rbd) resizes on a threadlet
 * while the main loop goes on, the node's graph staying drained (its
 * exports paused) and the node referenced (blockdev-del refuses) until cb
 * runs in the main loop; a second resize of the node meanwhile is refused.
 * For other drivers, and for refusals, cb runs inside this call.  The
 * drain itself still waits for requests in flight.  Main loop thread.
 */
void bdrv_truncate_async(BlockDriverState *bs, int64_t size,
                         BlockTruncateFunc *cb, void *opaque);

/* ---- asynchronous I/O (any thread running a context, or holding home) - */

enum {
    BDRV_REQ_FUA = 1,         /* write: data is stable when cb runs */
    BDRV_REQ_MAY_UNMAP = 2,   /* write-zeroes: may deallocate the range */
    BDRV_REQ_NO_FALLBACK = 4, /* write-zeroes: fail with -ENOTSUP rather
                                 than write zero buffers (fast zero) */
};

/*
 * Reads qiov->size bytes at offset into qiov.  flags must be 0.
 * qiov and its buffers must stay valid until cb runs.
 */
void bdrv_aio_preadv(BlockDriverState *bs, int64_t offset, IOVector *qiov,
                     int flags, BlockCompletionFunc *cb, void *opaque);
/*
 * Writes qiov->size bytes from qiov at offset.  flags: BDRV_REQ_FUA.
 * qiov and its buffers must stay valid until cb runs.
 */
void bdrv_aio_pwritev(BlockDriverState *bs, int64_t offset, IOVector *qiov,
                      int flags, BlockCompletionFunc *cb, void *opaque);
/* Makes every write completed before this call stable. */
void bdrv_aio_flush(BlockDriverState *bs, BlockCompletionFunc *cb,
                    void *opaque);
/*
 * Tells the node the range's contents are no longer needed; afterwards it
 * reads back as zeroes or as the old data.  Succeeds (doing nothing) on a
 * node opened with discard=ignore.
 */
void bdrv_aio_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       BlockCompletionFunc *cb, void *opaque);
/*
 * Makes the range read as zeroes.  flags: BDRV_REQ_MAY_UNMAP,
 * BDRV_REQ_NO_FALLBACK, BDRV_REQ_FUA.
 */
void bdrv_aio_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                            int flags, BlockCompletionFunc *cb, void *opaque);

enum {
    BDRV_BLOCK_HOLE = 1, /* not allocated (NBD_STATE_HOLE) */
    BDRV_BLOCK_ZERO = 2, /* reads as zeroes (NBD_STATE_ZERO) */
};
/*
 * ret is 0 or -errno; on success [offset, offset + pnum) (0 < pnum <= bytes)
 * all has `status` (BDRV_BLOCK_* bits; 0 means allocated data).
 */
typedef void BlockStatusFunc(void *opaque, int ret, int64_t pnum,
                             unsigned status);
/* Describes the allocation of the start of [offset, offset + bytes),
 * through the whole backing chain: BDRV_BLOCK_HOLE means no layer holds
 * data there (it reads as zeroes, from a zero cluster or from nothing). */
void bdrv_aio_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           BlockStatusFunc *cb, void *opaque);

/*
 * The same, with the allocation depth (qemu:allocation-depth): 0 if no
 * layer of the backing chain allocates the range (it reads as zeroes or
 * from nothing), 1 if this node does (data or a zero cluster), 2 if its
 * backing node does, and so on.  Filters (raw, throttle) add no depth.
 */
typedef void BlockStatusDepthFunc(void *opaque, int ret, int64_t pnum,
                                  unsigned status, int depth);
void bdrv_aio_block_status_depth(BlockDriverState *bs, int64_t offset,
                                 int64_t bytes, BlockStatusDepthFunc *cb,
                                 void *opaque);

/* ---- AioContext, drain, moves ----------------------------------------- */

/* The node's current AioContext.  Any thread holding a reference; the
 * answer may change only through bdrv_set_aio_context (main loop). */
AioContext *bdrv_get_aio_context(BlockDriverState *bs);

/*
 * Moves bs and its whole connected graph (children and parents) to ctx:
 * begins a drained section (users' drained_begin), waits until nothing is
 * in flight, then, holding both the old context and ctx, runs the users'
 * and the drivers' detach hooks, switches the graph to ctx and runs the
 * drivers' and the users' attach hooks; then ends the drained section
 * (users' drained_end, called with ctx acquired).  Main loop thread,
 * holding no AioContext but the main loop's own.  Every driver here can
 * move, so it returns true; false and *errp are for drivers that cannot
 * (nothing is changed then).
 */
bool bdrv_set_aio_context(BlockDriverState *bs, AioContext *ctx, Error **errp);

/*
 * Waits, running the node's home context with nested aio_poll(), until no
 * request of any context is in flight on bs, its children or its parents:
 * a drained section that ends at once (users pause meanwhile, throttle
 * nodes let their queues go).  Any thread, holding a reference on bs:
 *  - the node's own thread, the main loop thread, or a thread that runs no
 *    AioContext: it acquires the home context and runs it itself (the
 *    home's callbacks run in this thread, context held);
 *  - a thread that runs another context (an IOThread draining a node of
 *    another IOThread), which may not hold two: the node's thread drains,
 *    in a BH, while this thread keeps running its own loop (nested
 *    aio_poll() of its own context) until that is done.  Two IOThreads
 *    draining each other's nodes both finish.
 * Requests that complete in contexts other than the home are run by those
 * contexts' threads, and the last one wakes the drainer.  A drainer that
 * runs the home itself must have no request of its own context in flight
 * on the graph unless that context is the home (it is not run meanwhile),
 * and a callback running outside the home context must not drain the node.
 */
void bdrv_drain(BlockDriverState *bs);
/* bdrv_drain of every node, each context acquired in turn.  Main loop. */
void bdrv_drain_all(void);

/*
 * A drained section: begin tells the users of bs and of its connected
 * graph to stop submitting (their drained_begin hooks), then drains;
 * end tells them to resume.  Sections nest (a counter): hooks run on the
 * outermost begin and end only.  The main loop thread, the node's own
 * thread, or a thread that runs no AioContext (which acquires it).  Not a
 * thread that runs another context: a section stays open across returns,
 * and that thread cannot hold the node's context meanwhile; the call
 * aborts with a message that says so (bdrv_drain is the way from there).
 */
void bdrv_drained_begin(BlockDriverState *bs);
void bdrv_drained_end(BlockDriverState *bs);
/* True inside a drained section of this node.  Node's context. */
bool bdrv_is_drained(BlockDriverState *bs);

/*
 * Users (exports, long-running jobs) of a node, told about drained sections
 * and context moves.  Every hook is optional (NULL).
 *  - drained_begin: stop submitting new requests (those in flight finish);
 *  - drained_end:   may submit again;
 *  - detach_aio_context: remove fd handlers, timers and BHs from the old
 *    context (called with it acquired);
 *  - attach_aio_context: re-create them in new_ctx (called with it
 *    acquired);
 *  - resize: the node's size changed (bdrv_truncate of it, or of the child
 *    its size follows); bdrv_getlength() has the new size.  Called in the
 *    main loop with the node's context acquired, inside the drained
 *    section (so before drained_end).  An export announces the new size
 *    (vhost-user-blk: a config-change message); NBD has no way to tell a
 *    connected client, whose requests past the old end keep failing.
 * Hooks run in the main loop thread (moves, drain_all) or in the thread
 * that called bdrv_drained_begin/end, with the node's context acquired;
 * they must not call bdrv_drain or move nodes themselves.
 */
typedef struct BlockUserOps {
    void (*drained_begin)(void *opaque);
    void (*drained_end)(void *opaque);
    void (*detach_aio_context)(void *opaque);
    void (*attach_aio_context)(AioContext *new_ctx, void *opaque);
    void (*resize)(void *opaque);
} BlockUserOps;

/*
 * Registers (ops, opaque) on bs; the pair identifies the registration.
 * A registered user counts as a user for bdrv_blockdev_del (the node is
 * busy).  A user registering inside a drained section gets its
 * drained_begin at once, so that every drained_end it sees is balanced; a
 * user removed inside one gets no drained_end.  Main loop thread or the
 * node's context thread, with the node's context held.
 */
void bdrv_add_aio_context_notifier(BlockDriverState *bs,
                                   const BlockUserOps *ops, void *opaque);
void bdrv_remove_aio_context_notifier(BlockDriverState *bs,
                                      const BlockUserOps *ops, void *opaque);

DP_API_END

#endif /* DATAPLANE_BLOCK_H */
