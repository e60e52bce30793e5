/*
 * qcow2's coroutine plumbing: waking coroutines from the node's BH, the
 * metadata lock (a FIFO coroutine mutex), and child I/O that a coroutine
 * waits for.  Node's context.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "block/qcow2.h"

/* ---- coroutine plumbing -------------------------------------------------- */

void qcow2_wake_bh(void *opaque)
{
    Qcow2State *s = opaque;
    Coroutine *co;
    GQueue batch = G_QUEUE_INIT;

    /* Only those queued so far: one that wakes another re-schedules. */
    while ((co = g_queue_pop_head(&s->wake))) {
        g_queue_push_tail(&batch, co);
    }
    while ((co = g_queue_pop_head(&batch))) {
        coroutine_enter(co);
    }
}

void qcow2_co_wake(Qcow2State *s, Coroutine *co)
{
    g_queue_push_tail(&s->wake, co);
    aio_bh_schedule(s->wake_bh);
}

void qcow2_co_lock(Qcow2State *s)
{
    Coroutine *self = coroutine_self();

    g_assert(s->lock.owner != self);
    if (s->lock.owner) {
        g_queue_push_tail(&s->lock.waiters, self);
        coroutine_yield();
        /* Handed over by the unlock. */
        g_assert(s->lock.owner == self);
        return;
    }
    s->lock.owner = self;
}

void qcow2_co_unlock(Qcow2State *s)
{
    Coroutine *next = g_queue_pop_head(&s->lock.waiters);

    g_assert(s->lock.owner == coroutine_self());
    s->lock.owner = next;
    if (next) {
        qcow2_co_wake(s, next);
    }
}

bool qcow2_co_locked(Qcow2State *s)
{
    return s->lock.owner && s->lock.owner == coroutine_self();
}

typedef struct CoIo {
    Coroutine *co;
    int ret;
    bool done;
    bool waiting;
    int64_t pnum;
    unsigned status;
    int depth;
} CoIo;

static void co_io_cb(void *opaque, int ret)
{
    CoIo *c = opaque;

    c->ret = ret;
    c->done = true;
    if (c->waiting) {
        coroutine_enter(c->co);
    }
}

static void co_status_cb(void *opaque, int ret, int64_t pnum, unsigned status,
                         int depth)
{
    CoIo *c = opaque;

    c->pnum = pnum;
    c->status = status;
    c->depth = depth;
    co_io_cb(opaque, ret);
}

static int co_io_wait(CoIo *c)
{
    if (!c->done) {
        c->waiting = true;
        coroutine_yield();
    }
    return c->ret;
}

int qcow2_co_preadv(BlockDriverState *child, int64_t offset, IOVector *v)
{
    CoIo c = {.co = coroutine_self()};

    bdrv_aio_preadv(child, offset, v, 0, co_io_cb, &c);
    return co_io_wait(&c);
}

int qcow2_co_pwritev(Qcow2State *s, int64_t offset, IOVector *v, int flags)
{
    CoIo c = {.co = coroutine_self()};

    bdrv_aio_pwritev(s->bs->file, offset, v, flags, co_io_cb, &c);
    return co_io_wait(&c);
}

int qcow2_co_pread(Qcow2State *s, int64_t offset, void *buf, int64_t len)
{
    IOVector v;
    int ret;

    iov_init(&v, 1);
    iov_add(&v, buf, len);
    ret = qcow2_co_preadv(s->bs->file, offset, &v);
    iov_destroy(&v);
    return ret;
}

int qcow2_co_pwrite(Qcow2State *s, int64_t offset, const void *buf, int64_t len)
{
    IOVector v;
    int ret;

    iov_init(&v, 1);
    iov_add(&v, (void *)buf, len);
    ret = qcow2_co_pwritev(s, offset, &v, 0);
    iov_destroy(&v);
    return ret;
}

int qcow2_co_flush_file(Qcow2State *s)
{
    CoIo c = {.co = coroutine_self()};

    bdrv_aio_flush(s->bs->file, co_io_cb, &c);
    return co_io_wait(&c);
}

int qcow2_co_discard_file(Qcow2State *s, int64_t offset, int64_t len)
{
    CoIo c = {.co = coroutine_self()};

    bdrv_aio_pdiscard(s->bs->file, offset, len, co_io_cb, &c);
    return co_io_wait(&c);
}

int qcow2_signal_corruption(Qcow2State *s, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (!s->corrupt) {
        error_report("qcow2 node '%s': corrupt metadata: %s; no more writes "
                     "(check the image with qemu-img check)",
                     s->bs->node_name, msg);
    }
    s->corrupt = true;
    return -EIO;
}

int qcow2_co_block_status(BlockDriverState *child, int64_t offset,
                          int64_t bytes, int64_t *pnum, unsigned *status,
                          int *depth)
{
    CoIo c = {.co = coroutine_self()};

    bdrv_aio_block_status_depth(child, offset, bytes, co_status_cb, &c);
    if (co_io_wait(&c) < 0) {
        return c.ret;
    }
    *pnum = c.pnum;
    *status = c.status;
    *depth = c.depth;
    return 0;
}
