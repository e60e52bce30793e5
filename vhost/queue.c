/*
 * A virtqueue of a vhost-user-blk connection, served from q->ctx.
 *
 * Taking requests: the kick eventfd is an event notifier of the context
 * whose poll function looks at the available index, so that while the
 * loop polls (adaptive polling) requests are found without a system call.
 * While the loop polls, and while the queue takes requests, the driver is
 * asked not to kick (it would cost it a system call, and us a read); when
 * the loop stops polling (kick_poll_end) or the ring is empty outside
 * polling, the queue asks for kicks again and looks once more
 * (vring_set_kicks), so a buffer made available in between is never
 * missed.  At most
 * VHOST_BLK_POP_BUDGET requests are taken per call; the rest continue from
 * the queue's BH.  At most `num` requests are in flight: a driver that
 * keeps advancing its index without waiting cannot make us hold more.
 *
 * Returning requests: each completion writes its status byte and used
 * entry; the queue's BH, which runs after every completion of the loop
 * iteration, publishes the used index once for all of them and decides
 * once whether to signal the call eventfd (EVENT_IDX's used_event, else
 * the NO_INTERRUPT flag).  One store to the line the driver polls per
 * batch, not per request.
 *
 * Everything here runs in q->ctx (its thread, or a thread holding it),
 * except for a queue on an IOThread of its own (own_ctx): the functions
 * the connection calls (start, stop, reset, set_kick_fd, remap, hand_over,
 * recall) run in the connection's context on a queue that is not handed
 * over, and only hand_over/recall cross to q->ctx (vhost-internal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhost/vhost-internal.h"

#define QUEUE_OF_KICK(e)                                                       \
    ((VhostBlkQueue *)((char *)(e)-offsetof(VhostBlkQueue, kick)))

static void queue_bh_cb(void *opaque);
static void queue_offline_fn(AioDeferred *d);

void vhost_queue_init(VhostBlkQueue *q, VhostConn *conn, unsigned index)
{
    VhostBlkExport *exp = conn->exp;

    memset(q, 0, sizeof(*q));
    q->conn = conn;
    q->index = index;
    q->ctx = conn->ctx;
    if (exp->n_ctxs) {
        q->own_ctx = true;
        q->ctx = exp->ctxs[index % exp->n_ctxs];
        q->quiesced = conn->quiesced;
    }
    q->kick.fd = -1;
    q->call_fd = -1;
    q->err_fd = -1;
}

/* ---- requests ----------------------------------------------------------- */

static VhostBlkRequest *req_get(VhostBlkQueue *q)
{
    VhostBlkRequest *req = q->free_reqs;

    if (req) {
        q->free_reqs = req->next_free;
    } else {
        req = g_new(VhostBlkRequest, 1);
    }
    req->q = q;
    req->status = NULL;
    req->pending = 0;
    req->ret = 0;
    req->done_len = 0;
    return req;
}

static void req_put(VhostBlkQueue *q, VhostBlkRequest *req)
{
    req->next_free = q->free_reqs;
    q->free_reqs = req;
}

static void req_free_all(VhostBlkQueue *q)
{
    while (q->free_reqs) {
        VhostBlkRequest *req = q->free_reqs;

        q->free_reqs = req->next_free;
        g_free(req);
    }
}

/* ---- state -------------------------------------------------------------- */

bool vhost_queue_runnable(VhostBlkQueue *q)
{
    VhostConn *c = q->conn;
    bool enabled =
        q->enabled || !(c->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES));

    if (q->own_ctx) {
        /* Nothing of the connection's that changes while handed over. */
        return q->started && enabled && !q->stopping && !q->broken &&
               !q->offlining && !q->quiesced && q->in_flight < q->vring.num;
    }
    return q->started && enabled && !q->stopping && !q->broken && !c->dead &&
           !c->quiesced && !c->deferred && q->in_flight < q->vring.num;
}

static bool queue_has_work(VhostBlkQueue *q)
{
    return q->resubmit_pos < q->n_resubmit || vring_has_work(&q->vring);
}

/* Writes the eventfd fd (call or err); the front-end may have handed us
 * anything, but conn.c made it non-blocking. */
static void eventfd_signal(int fd)
{
    uint64_t one = 1;
    ssize_t n;

    do {
        n = write(fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
}

static void queue_break(VhostBlkQueue *q, const char *why)
{
    vhost_conn_log(q->conn,
                   "queue %u: %s; the queue stops until the "
                   "front-end restarts it",
                   q->index, why);
    q->broken = true;
    if (q->err_fd >= 0) {
        eventfd_signal(q->err_fd);
    }
}

/*
 * Makes what completed since the last call visible (the used index, then
 * the inflight area's batch) and decides once whether to signal.  The
 * queue's BH runs it after the completions of a loop iteration.
 */
static void queue_flush(VhostBlkQueue *q)
{
    if (!q->signal_pending) {
        return;
    }
    q->signal_pending = false;
    vhost_inflight_pre_publish(&q->inflight);
    vring_publish(&q->vring);
    vhost_inflight_commit(&q->inflight, q->vring.used_idx);
    q->stats.batches++;
    if (vring_should_signal(&q->vring) && q->call_fd >= 0) {
        eventfd_signal(q->call_fd);
        q->stats.signals++;
    }
}

/* ---- taking requests ---------------------------------------------------- */

/* Takes and starts one request.  False when the ring is empty or broke. */
static bool queue_take_one(VhostBlkQueue *q)
{
    VhostConn *c = q->conn;
    VhostBlkRequest *req = req_get(q);
    const char *why = NULL;
    VringPopResult r;

    if (q->resubmit_pos < q->n_resubmit) {
        r = vring_walk_chain(
            &q->vring, &c->mem, &q->hint, q->resubmit[q->resubmit_pos++],
            &req->elem, req->iov, VHOST_BLK_MAX_IOV, VHOST_BLK_MAX_DESCS, &why);
    } else {
        r = vring_pop(&q->vring, &c->mem, &q->hint, &req->elem, req->iov,
                      VHOST_BLK_MAX_IOV, VHOST_BLK_MAX_DESCS, &why);
    }
    if (r != VRING_POP_OK) {
        req_put(q, req);
        if (r == VRING_POP_BROKEN) {
            queue_break(q, why);
        }
        return false;
    }
    vhost_inflight_take(&q->inflight, req->elem.head);
    q->in_flight++;
    q->stats.requests++;
    if (aio_get_current_context() == q->ctx) {
        q->stats.in_own_thread++;
    }
    if (!vhost_blk_request_start(req)) {
        q->in_flight--;
        req_put(q, req);
        queue_break(q, "a request without a writable status byte");
        return false;
    }
    return true;
}

/*
 * Takes what the ring has, within the budget.  Returns whether it took
 * anything.  Every way out that leaves kicks off has something that calls
 * again: the BH (budget), a completion (queue full), the resume paths
 * (paused, drained), or nothing because the queue is stopped or broken.
 */
static bool queue_process(VhostBlkQueue *q)
{
    unsigned budget = VHOST_BLK_POP_BUDGET;
    bool progress = false;

    if (!vhost_queue_runnable(q)) {
        return false;
    }
    if (q->vring.kicks_enabled) {
        vring_set_kicks(&q->vring, false);
    }
    for (;;) {
        while (vhost_queue_runnable(q)) {
            if (budget == 0) {
                aio_bh_schedule(q->bh);
                return progress;
            }
            if (!queue_take_one(q)) {
                break;
            }
            budget--;
            progress = true;
        }
        if (!vhost_queue_runnable(q)) {
            return progress;
        }
        /* Empty.  While the loop polls us, kicks stay off (it turns
         * them on when it stops: kick_poll_end).  Otherwise ask for
         * kicks, then look once more. */
        if (q->polled || !vring_set_kicks(&q->vring, true)) {
            return progress;
        }
        vring_set_kicks(&q->vring, false);
    }
}

/* The guest's memory file shrank under us: nothing in it can be trusted
 * (the SIGBUS guard put zeroes there), so the connection ends. */
static void queue_check_memory(VhostBlkQueue *q)
{
    if (q->own_ctx) {
        /* The connection is elsewhere: this queue stops touching the
         * memory and tells it (it checks, and closes). */
        if (!q->broken && vhost_mem_truncated(&q->conn->mem)) {
            q->broken = true;
            dp_mutex_lock(&q->conn->hand_lock);
            vhost_conn_wake_locked(q->conn);
            dp_mutex_unlock(&q->conn->hand_lock);
        }
        return;
    }
    if (!q->conn->dead && vhost_mem_truncated(&q->conn->mem)) {
        vhost_conn_close(q->conn, "the guest memory file was truncated "
                                  "under the mapping, closing");
    }
}

static void kick_cb(EventNotifier *e)
{
    VhostBlkQueue *q = QUEUE_OF_KICK(e);

    event_notifier_test_and_clear(e);
    q->stats.kicks++;
    queue_process(q);
    queue_check_memory(q);
}

static bool kick_poll(EventNotifier *e)
{
    VhostBlkQueue *q = QUEUE_OF_KICK(e);
    bool progress;

    if (!vhost_queue_runnable(q) || !queue_has_work(q)) {
        return false;
    }
    q->stats.polls++;
    progress = queue_process(q);
    queue_check_memory(q);
    return progress;
}

/* The loop busy-polls the ring from now on: the driver need not kick. */
static void kick_poll_begin(EventNotifier *e)
{
    VhostBlkQueue *q = QUEUE_OF_KICK(e);

    q->polled = true;
    if (q->started && !q->broken && q->vring.kicks_enabled) {
        vring_set_kicks(&q->vring, false);
    }
}

/* The loop stops polling and may sleep: kicks on again (the loop polls
 * once more after this, so a buffer that came meanwhile is taken). */
static void kick_poll_end(EventNotifier *e)
{
    VhostBlkQueue *q = QUEUE_OF_KICK(e);

    q->polled = false;
    if (q->started && !q->broken && !q->vring.kicks_enabled) {
        vring_set_kicks(&q->vring, true);
    }
}

static void queue_bh_cb(void *opaque)
{
    VhostBlkQueue *q = opaque;

    queue_flush(q);
    /* With kicks off, only we can notice new buffers (and turn kicks back
     * on when there are none). */
    if (vhost_queue_runnable(q) &&
        (queue_has_work(q) || !q->vring.kicks_enabled)) {
        queue_process(q);
    }
    queue_check_memory(q);
}

void vhost_queue_kick_soon(VhostBlkQueue *q)
{
    if (q->bh) {
        aio_bh_schedule(q->bh);
    }
}

/* ---- returning requests ------------------------------------------------- */

void vhost_queue_complete(VhostBlkRequest *req, uint8_t status, uint32_t len)
{
    VhostBlkQueue *q = req->q;
    VhostConn *c = q->conn;
    uint16_t head = req->elem.head;

    if (req->status) {
        *req->status = status;
    }
    /* Visible at the batch's end (queue_flush, from the BH). */
    vring_push(&q->vring, head, len);
    vhost_inflight_push(&q->inflight, head);
    req_put(q, req);
    g_assert(q->in_flight > 0);
    q->in_flight--;
    if (!q->signal_pending) {
        q->signal_pending = true;
        /* Also takes more if the queue was full. */
        aio_bh_schedule(q->bh);
    }
    if (q->own_ctx) {
        if (q->in_flight == 0 && q->offlining) {
            /* The recall waits for this: give the queue back. */
            aio_defer(q->ctx, &q->offline_d, queue_offline_fn);
        }
        return;
    }
    if (q->in_flight == 0 && (q->stopping || c->dead || c->deferred)) {
        vhost_conn_queue_idle(c);
    }
}

/* ---- life cycle --------------------------------------------------------- */

static void queue_set_kick_handler(VhostBlkQueue *q, bool on)
{
    if (q->kick.fd < 0) {
        return;
    }
    /* A new or removed handler is out of polling mode. */
    q->polled = false;
    if (on) {
        aio_set_event_notifier_poll(q->ctx, &q->kick, kick_cb, kick_poll,
                                    kick_poll_begin, kick_poll_end);
    } else {
        aio_set_event_notifier(q->ctx, &q->kick, NULL, NULL);
    }
}

/* Translates the ring addresses; NULL or why not. */
static const char *queue_translate(VhostBlkQueue *q, VringDesc **desc,
                                   uint8_t **avail, uint8_t **used)
{
    const VhostMemMap *m = &q->conn->mem;

    *desc = vhost_mem_uva_to_hva(m, q->desc_uaddr, VRING_DESC_SIZE(q->num));
    *avail = vhost_mem_uva_to_hva(m, q->avail_uaddr, VRING_AVAIL_SIZE(q->num));
    *used = vhost_mem_uva_to_hva(m, q->used_uaddr, VRING_USED_SIZE(q->num));
    if (!*desc || !*avail || !*used) {
        return "ring addresses outside the shared memory";
    }
    return NULL;
}

const char *vhost_queue_start(VhostBlkQueue *q)
{
    VhostConn *c = q->conn;
    VringDesc *desc;
    uint8_t *avail, *used;
    const char *why;
    uint16_t last_avail;

    if (q->started) {
        return "ring already started";
    }
    if (!q->num) {
        return "ring size not set";
    }
    if (!q->addr_set) {
        return "ring addresses not set";
    }
    why = queue_translate(q, &desc, &avail, &used);
    if (why) {
        return why;
    }
    vring_init(&q->vring, q->num, desc, avail, used, q->base,
               c->features & (1ULL << VIRTIO_RING_F_EVENT_IDX),
               c->features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC));
    q->resubmit = g_new(uint16_t, q->num);
    last_avail = vhost_inflight_start(
        &q->inflight, vhost_conn_inflight_region(c, q->index), q->num,
        q->vring.used_idx, q->base, q->resubmit, &q->n_resubmit);
    q->resubmit_pos = 0;
    if (q->n_resubmit > 0) {
        vhost_conn_log(c,
                       "queue %u: resubmitting %u requests in flight "
                       "before the reconnection",
                       q->index, q->n_resubmit);
    }
    /* Where taking resumes (the shadow index with it: nothing is known
     * to be available past that yet). */
    q->vring.last_avail_idx = last_avail;
    q->vring.shadow_avail_idx = last_avail;
    q->vring.signalled_used = q->vring.used_idx;
    q->started = true;
    q->stopping = false;
    q->broken = false;
    if (q->own_ctx) {
        vhost_queue_hand_over(q);
        return NULL;
    }
    q->bh = aio_bh_new(q->ctx, queue_bh_cb, q);
    queue_set_kick_handler(q, true);
    /* Buffers made available (and kicks sent) before we listened. */
    aio_bh_schedule(q->bh);
    return NULL;
}

void vhost_queue_stop(VhostBlkQueue *q)
{
    if (!q->started || q->stopping) {
        return;
    }
    if (q->own_ctx) {
        /* Stopping is getting it back from q->ctx (which removes the
         * handler and waits for the requests in flight); the caller waits
         * for vhost_queue_recall() to say it is back. */
        vhost_queue_recall(q);
        return;
    }
    q->stopping = true;
    queue_set_kick_handler(q, false);
}

void vhost_queue_reset(VhostBlkQueue *q)
{
    g_assert(q->in_flight == 0);
    g_assert(!q->handed);
    if (q->started) {
        if (!q->own_ctx) {
            queue_set_kick_handler(q, false);
        }
        queue_flush(q);
        q->base = q->vring.last_avail_idx;
    }
    aio_bh_delete(q->bh);
    q->bh = NULL;
    event_notifier_cleanup(&q->kick);
    if (q->call_fd >= 0) {
        close(q->call_fd);
        q->call_fd = -1;
    }
    if (q->err_fd >= 0) {
        close(q->err_fd);
        q->err_fd = -1;
    }
    req_free_all(q);
    vhost_inflight_stop(&q->inflight);
    g_free(q->resubmit);
    q->resubmit = NULL;
    q->n_resubmit = q->resubmit_pos = 0;
    q->started = false;
    q->stopping = false;
    q->broken = false;
    q->signal_pending = false;
}

void vhost_queue_set_kick_fd(VhostBlkQueue *q, int fd)
{
    /* An own_ctx queue is not handed over here: its handler is gone. */
    bool installed =
        !q->own_ctx && q->started && !q->stopping && !q->conn->dead;

    g_assert(!q->handed);
    if (installed) {
        queue_set_kick_handler(q, false);
    }
    event_notifier_cleanup(&q->kick);
    q->kick.fd = fd;
    if (installed) {
        queue_set_kick_handler(q, true);
        aio_bh_schedule(q->bh);
    }
}

void vhost_queue_remap(VhostBlkQueue *q)
{
    VringDesc *desc;
    uint8_t *avail, *used;

    if (!q->started) {
        return;
    }
    g_assert(q->in_flight == 0);
    g_assert(!q->handed);
    if (queue_translate(q, &desc, &avail, &used)) {
        /* The old pointers point at unmapped memory now: a broken queue
         * touches its rings no more, and they are cleared besides. */
        queue_break(q, "ring no longer in the shared memory after a memory "
                       "table change");
        q->vring.desc = NULL;
        q->vring.avail = NULL;
        q->vring.used = NULL;
        return;
    }
    q->vring.desc = desc;
    q->vring.avail = avail;
    q->vring.used = used;
}

void vhost_queue_detach(VhostBlkQueue *q)
{
    g_assert(!q->own_ctx);
    if (!q->bh) {
        return;
    }
    if (q->started && !q->stopping) {
        queue_set_kick_handler(q, false);
    }
    queue_flush(q);
    aio_bh_delete(q->bh);
    q->bh = NULL;
}

void vhost_queue_attach(VhostBlkQueue *q, AioContext *new_ctx)
{
    bool had_bh = q->started;

    g_assert(!q->own_ctx);
    q->ctx = new_ctx;
    if (!had_bh) {
        return;
    }
    q->bh = aio_bh_new(q->ctx, queue_bh_cb, q);
    if (!q->stopping && !q->conn->dead) {
        queue_set_kick_handler(q, true);
    }
    aio_bh_schedule(q->bh);
}

/* ---- a queue on an IOThread of its own ---------------------------------- */

/* q->ctx: the connection handed the queue over; start serving it. */
static void queue_online_fn(AioDeferred *d)
{
    VhostBlkQueue *q =
        (VhostBlkQueue *)((char *)d - offsetof(VhostBlkQueue, online_d));

    q->offlining = false;
    q->bh = aio_bh_new(q->ctx, queue_bh_cb, q);
    queue_set_kick_handler(q, true);
    /* Buffers made available (and kicks sent) before we listened. */
    aio_bh_schedule(q->bh);
}

/*
 * q->ctx: the connection wants the queue back.  Stop taking; once nothing
 * is in flight (now, or at the last completion, which defers this again),
 * publish what completed and give the queue back.
 */
static void queue_offline_fn(AioDeferred *d)
{
    VhostBlkQueue *q =
        (VhostBlkQueue *)((char *)d - offsetof(VhostBlkQueue, offline_d));
    VhostConn *c = q->conn;

    if (!q->offlining) {
        q->offlining = true;
        queue_set_kick_handler(q, false);
    }
    if (q->in_flight > 0) {
        return;
    }
    queue_flush(q);
    aio_bh_delete(q->bh);
    q->bh = NULL;
    q->offlining = false;
    /* After this store (seen under the lock) the queue is the
     * connection's again: nothing below touches q. */
    dp_mutex_lock(&c->hand_lock);
    q->returned = true;
    vhost_conn_wake_locked(c);
    dp_mutex_unlock(&c->hand_lock);
}

void vhost_queue_hand_over(VhostBlkQueue *q)
{
    g_assert(q->own_ctx && q->started && !q->handed);
    q->handed = true;
    q->recall = false;
    q->returned = false; /* ctx's last write was seen under the lock */
    aio_defer(q->ctx, &q->online_d, queue_online_fn);
}

bool vhost_queue_recall(VhostBlkQueue *q)
{
    bool back;

    if (!q->handed) {
        return true;
    }
    if (!q->recall) {
        q->recall = true;
        aio_defer(q->ctx, &q->offline_d, queue_offline_fn);
    }
    dp_mutex_lock(&q->conn->hand_lock);
    back = q->returned;
    dp_mutex_unlock(&q->conn->hand_lock);
    if (back) {
        q->handed = false;
        q->recall = false;
    }
    return back;
}

void vhost_queue_quiesce(VhostBlkQueue *q, bool quiesced)
{
    g_assert(q->own_ctx);
    aio_context_acquire(q->ctx);
    q->quiesced = quiesced;
    if (!quiesced && q->bh) {
        aio_bh_schedule(q->bh);
    }
    aio_context_release(q->ctx);
}
