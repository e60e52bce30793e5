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
 * Every driver also takes node-name, read-only, auto-read-only,
 * cache.no-flush and detect-zeroes=off|on|unmap.  A `file` child may be
 * named (file=<node-name>) or opened inline from dotted keys
 * (file.driver=file,file.filename=...).  A node without a node-name gets a
 * generated one ("#block<N>").
 *
 * Threading (DESIGN.md, rule 4):
 *  - Graph changes (bdrv_open, bdrv_unref of the last reference,
 *    bdrv_set_aio_context, bdrv_blockdev_del, the lookup functions) happen
 *    in the main loop thread only.
 *  - I/O (bdrv_aio_*) is submitted from the thread that runs the node's
 *    AioContext (or a thread that holds it with aio_context_acquire),
 *    checked on every call (bdrv_assert_can_submit, an abort naming the
 *    node), and its completion callback runs in that context, always later
 *    than the submit call returns, never inside it.  "In that context"
 *    means by whichever thread runs it at the time: the IOThread normally,
 *    but while another thread drains the node (the main loop's
 *    bdrv_drain_all, a move, bdrv_drain from a thread without a context)
 *    that thread runs the context with nested aio_poll() and the callbacks
 *    run there, holding the context, as in QEMU.  Never two threads at
 *    once.
 *  - A node's whole connected graph (its file children and their parents)
 *    shares one AioContext; bdrv_set_aio_context moves all of it.
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
 * which the caller owns, or NULL and *errp.  Main loop thread.
 */
BlockDriverState *bdrv_open(GHashTable *opts, Error **errp);

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
/* "file", "raw", "null-co", "memory", "throttle". */
const char *bdrv_get_driver_name(BlockDriverState *bs);
/* The file driver's filename, else its file child's, else NULL. */
const char *bdrv_get_filename(BlockDriverState *bs);
/* The `file` child, or NULL.  No reference is taken. */
BlockDriverState *bdrv_get_file_child(BlockDriverState *bs);
/* The size in bytes.  It changes only through bdrv_truncate (main loop,
 * node drained), so the node's context sees it stable between requests. */
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
 * memory, null-co; raw (without size=) and throttle pass it on to
 * their file child.  Main loop thread, holding no AioContext but the main
 * loop's own; waits for the node's requests in flight (drain) and for the
 * driver (a metadata update: a system call, a cluster round trip).
 */
bool bdrv_truncate(BlockDriverState *bs, int64_t size, Error **errp);

/* ---- asynchronous I/O (node's AioContext thread, or acquired) --------- */

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
/* Describes the allocation of the start of [offset, offset + bytes). */
void bdrv_aio_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           BlockStatusFunc *cb, void *opaque);

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
 * Waits, running the node's context with nested aio_poll(), until no
 * request is in flight on bs, its children or its parents: a drained
 * section that ends at once (users pause meanwhile, throttle nodes let
 * their queues go).  Any thread, holding a reference on bs:
 *  - the node's own thread, the main loop thread, or a thread that runs no
 *    AioContext: it acquires the node's context and runs it itself (the
 *    drained requests' callbacks run in this thread, context held);
 *  - a thread that runs another context (an IOThread draining a node of
 *    another IOThread), which may not hold two: the node's thread drains,
 *    in a BH, while this thread keeps running its own loop (nested
 *    aio_poll() of its own context) until that is done.  Two IOThreads
 *    draining each other's nodes both finish.
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
