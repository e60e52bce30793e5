/*
 * Threadlets: completions of submit_aio work, delivered in the submitter's
 * AioContext (include/dataplane/threadlet.h; the pool is threadlet-pool.c).
 *
 * submit_aio completions are batched per (pool, AioContext) pair in a
 * ThreadletCompletions record: a finished item is appended to the record's
 * ready list, and only the item that finds the list idle (bh_scheduled was
 * false) schedules a oneshot BH in the context.  That BH takes the whole
 * list at once, so N completions ready before the loop runs cost one BH and
 * at most one wake-up.  Delivered items stay on the record as spares for
 * the next submits to that context.
 *
 * Lifetimes.  A record exists while it has items in flight (submitted, done
 * not yet run) or a oneshot BH scheduled; the delivery that finds neither
 * frees it.  Records keep the pool (not the queue handle) alive through
 * pool->refcnt, so a queue can be destroyed while completions still wait
 * for their contexts.  A worker holds a context reference while it
 * schedules into that context (threadlet_completion_schedule).
 */
#include <errno.h>
#include <glib.h>

#include "aio/threadlet-pool.h"

static void completions_deliver(void *opaque);
static void completions_resume(void *opaque);

/*
 * Appends a finished (or cancelled) submit_aio item to its record's ready
 * list.  Returns the record if the caller must schedule its deliver BH (the
 * list was idle), NULL if a BH is already on its way.  The returned record
 * stays alive until that BH runs, so it may be scheduled after unlocking.
 */
ThreadletCompletions *threadlet_completion_push_locked(ThreadletAioWork *aw)
{
    ThreadletCompletions *comp = aw->comp;

    aw->next_ready = NULL;
    *comp->ready_tail = aw;
    comp->ready_tail = &aw->next_ready;
    if (comp->bh_scheduled) {
        return NULL;
    }
    comp->bh_scheduled = true;
    /* Dropped by threadlet_completion_schedule(); see there. */
    aio_context_ref(comp->ctx);
    return comp;
}

/*
 * Schedules comp's deliver BH (comp may be NULL: nothing to do).
 *
 * The BH can run, deliver the last done, and let its owner unref the
 * context while this thread is still inside aio_bh_schedule_oneshot()
 * (its aio_notify() comes after the push).  The reference taken in
 * threadlet_completion_push_locked(), while undelivered items still guaranteed
 * the context was alive, keeps it valid until we are out; if ours turns out to
 * be the last reference, the context is freed here.
 */
void threadlet_completion_schedule(ThreadletCompletions *comp)
{
    AioContext *ctx;

    if (!comp) {
        return;
    }
    ctx = comp->ctx; /* comp may be freed as soon as the BH is queued */
    aio_bh_schedule_oneshot(ctx, completions_deliver, comp);
    aio_context_unref(ctx);
}

/* ---- public: submit_aio ------------------------------------------------- */

void threadlet_aio_work_run(ThreadletWork *work)
{
    ThreadletAioWork *aw = container_of(work, ThreadletAioWork, work);

    aw->ret = aw->fn(aw->arg);
}

/* The record for ctx, created if needed; most recently used first. */
static ThreadletCompletions *completions_get_locked(ThreadletPool *pool,
                                                    AioContext *ctx)
{
    ThreadletCompletions *comp;

    LIST_FOREACH(comp, &pool->completions, link)
    {
        if (comp->ctx == ctx) {
            if (comp != LIST_FIRST(&pool->completions)) {
                LIST_REMOVE(comp, link);
                LIST_INSERT_HEAD(&pool->completions, comp, link);
            }
            return comp;
        }
    }
    comp = g_new0(ThreadletCompletions, 1);
    comp->pool = pool;
    comp->ctx = ctx;
    comp->ready_tail = &comp->ready_head;
    pool->refcnt++;
    LIST_INSERT_HEAD(&pool->completions, comp, link);
    return comp;
}

/*
 * Runs done callbacks from comp->batch until it is empty (in comp->ctx).
 * Before each callback that leaves items behind, the resume BH is
 * scheduled, so that a nested aio_poll() in the callback carries on with
 * them.  Items delivered here stay counted in inflight until this frame
 * ends, so no nested frame can free the record under it.
 */
static void completions_run_batch(ThreadletCompletions *comp)
{
    ThreadletPool *pool = comp->pool;
    ThreadletAioWork *aw;
    ThreadletAioWork *used = NULL; /* delivered here, to recycle */
    ThreadletAioWork **used_tail = &used;
    int64_t n = 0;
    bool free_comp;

    while ((aw = comp->batch)) {
        comp->batch = aw->next_ready;
        if (comp->batch && !comp->resume_scheduled) {
            if (!comp->resume_bh) {
                comp->resume_bh =
                    aio_bh_new(comp->ctx, completions_resume, comp);
            }
            comp->resume_scheduled = true;
            aio_bh_schedule(comp->resume_bh);
        }
        if (aw->done) {
            aw->done(aw->opaque, aw->ret);
        }
        aw->next_ready = NULL;
        *used_tail = aw;
        used_tail = &aw->next_ready;
        n++;
    }

    dp_mutex_lock(&pool->lock);
    comp->inflight -= n;
    /* inflight == 0 implies an empty batch and no outer frame running. */
    free_comp = comp->inflight == 0 && !comp->bh_scheduled;
    if (free_comp) {
        LIST_REMOVE(comp, link);
    } else if (used && comp->nspare < THREADLET_MAX_SPARE) {
        *used_tail = comp->spare;
        comp->spare = used;
        comp->nspare += n;
        used = NULL;
    }
    dp_mutex_unlock(&pool->lock);
    if (free_comp) {
        *used_tail = comp->spare;
        aio_bh_delete(comp->resume_bh); /* NULL-safe; never runs after */
        g_free(comp);
        threadlet_pool_unref(pool);
    }
    while (used) {
        aw = used;
        used = aw->next_ready;
        g_free(aw);
    }
}

/* The resume BH (see completions_run_batch). */
static void completions_resume(void *opaque)
{
    ThreadletCompletions *comp = opaque;

    comp->resume_scheduled = false;
    completions_run_batch(comp);
}

/*
 * The oneshot BH a worker schedules (in comp->ctx): takes every completion
 * that is ready and delivers it.  done callbacks run without pool->lock, so
 * they may submit, cancel, or poll the context.
 */
static void completions_deliver(void *opaque)
{
    ThreadletCompletions *comp = opaque;
    ThreadletPool *pool = comp->pool;
    ThreadletAioWork **tail = &comp->batch;

    /* Appended behind what an outer frame has still to deliver: FIFO. */
    while (*tail) {
        tail = &(*tail)->next_ready;
    }
    dp_mutex_lock(&pool->lock);
    *tail = comp->ready_head;
    comp->ready_head = NULL;
    comp->ready_tail = &comp->ready_head;
    comp->bh_scheduled = false;
    pool->batches++;
    dp_mutex_unlock(&pool->lock);

    completions_run_batch(comp);
}

ThreadletWork *threadlet_submit_aio_to_queue(ThreadletQueue *q, AioContext *ctx,
                                             ThreadletFunc *fn, void *arg,
                                             ThreadletDoneFunc *done,
                                             void *opaque)
{
    ThreadletPool *pool = q->pool;
    ThreadletCompletions *comp;
    ThreadletAioWork *aw;
    bool wake;

    g_assert(ctx && fn);
    if (threadlet_pool_has_zombies(pool)) {
        threadlet_pool_reap(pool);
    }
    dp_mutex_lock(&pool->lock);
    comp = completions_get_locked(pool, ctx);
    aw = comp->spare;
    if (aw) {
        comp->spare = aw->next_ready;
        comp->nspare--;
    } else {
        aw = g_new(ThreadletAioWork, 1);
    }
    aw->work.func = threadlet_aio_work_run;
    aw->comp = comp;
    aw->fn = fn;
    aw->arg = arg;
    aw->done = done;
    aw->opaque = opaque;
    aw->ret = 0;
    comp->inflight++;
    wake = threadlet_pool_enqueue_locked(pool, &aw->work);
    dp_mutex_unlock(&pool->lock);
    if (wake) {
        dp_cond_signal(&pool->work_cond);
    }
    return &aw->work;
}

ThreadletWork *threadlet_submit_aio(AioContext *ctx, ThreadletFunc *fn,
                                    void *arg, ThreadletDoneFunc *done,
                                    void *opaque)
{
    return threadlet_submit_aio_to_queue(threadlet_context_get_queue(ctx), ctx,
                                         fn, arg, done, opaque);
}
