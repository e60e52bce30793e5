/*
 * Threadlets: a pool of threads for blocking work
 * (include/dataplane/threadlet.h).
 *
 * One mutex per pool protects everything in it: the FIFO of queued work,
 * the thread counts, each worker's `current` item, and the completion lists
 * of submit_aio work.  A worker takes it once per item (recording the end of
 * one item and picking up the next under the same hold).
 *
 * Waking: at most one signal to idle threads is in flight; the thread it
 * wakes passes the wake on if work remains (pool_kick_locked), so tiny items
 * wake few threads and the submitter pays for one futex wake at most.
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
 * schedules into that context (completion_schedule).
 *
 * Lock order: pool->lock is a leaf, except that aio_bh_schedule_oneshot()
 * (lock-free) may be called under it on the cold paths (cancel, destroy).
 */
#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio/threadlet-internal.h"
#include "util/clock.h"
#include "util/thread.h"
#include "util/atomic.h"

/* ThreadletWork.state, under pool->lock. */
enum {
    WORK_QUEUED = 1,
    WORK_RUNNING, /* picked up; plain work stays here after func returns */
    WORK_DONE,    /* submit_aio work whose fn has returned */
    WORK_CANCELLED,
};

typedef struct ThreadletWorker ThreadletWorker;
typedef struct ThreadletCompletions ThreadletCompletions;
typedef struct ThreadletAioWork ThreadletAioWork;

struct ThreadletWorker {
    DpThread thread;
    ThreadletPool *pool;
    ThreadletWork *current; /* under pool->lock */
    LIST_ENTRY(ThreadletWorker) link;
};

/* Finished submit_aio work of one pool waiting for one AioContext. */
struct ThreadletCompletions {
    ThreadletPool *pool;
    AioContext *ctx;
    /* Under pool->lock: */
    ThreadletAioWork *ready_head; /* FIFO of items whose done is due */
    ThreadletAioWork **ready_tail;
    int64_t inflight;  /* submitted and done not yet run */
    bool bh_scheduled; /* a deliver BH is scheduled and has not started */
    LIST_ENTRY(ThreadletCompletions) link;

    /*
     * In ctx's thread only: the batch being delivered, and a BH that resumes
     * it.  A done callback may run a nested aio_poll() waiting for another
     * completion of the same batch (drain does that); the resume BH, kept
     * scheduled while items remain, lets the nested poll deliver them.
     */
    ThreadletAioWork *batch;
    AioBH *resume_bh;
    bool resume_scheduled;

    /* Under pool->lock: delivered items kept for reuse by the next submits
     * to this context (saves a malloc/free pair per item). */
    ThreadletAioWork *spare;
    int nspare;
};

/* Spare items kept per record, at most. */
#define THREADLET_MAX_SPARE 256

struct ThreadletAioWork {
    ThreadletWork work;
    ThreadletCompletions *comp;
    ThreadletFunc *fn;
    void *arg;
    ThreadletDoneFunc *done;
    void *opaque;
    int ret;
    ThreadletAioWork *next_ready; /* under pool->lock */
};

struct ThreadletPool {
    DpMutex lock;
    DpCond work_cond; /* idle workers wait for work here */
    DpCond exit_cond; /* destroy waits for threads == 0 */

    /* Everything below is protected by lock. */
    TAILQ_HEAD(, ThreadletWork) queue;
    LIST_HEAD(, ThreadletWorker) workers;
    LIST_HEAD(, ThreadletWorker) zombies; /* exited, not yet joined */
    bool has_zombies; /* atomic writes under lock; peeked without it */
    LIST_HEAD(, ThreadletCompletions) completions;
    int max_threads;
    int min_threads;
    int threads;
    int idle_threads;
    int wakes_pending; /* signals sent to idle threads not yet awake */
    int64_t queued;
    uint64_t completed;
    uint64_t cancelled;
    uint64_t batches;
    int64_t idle_timeout_ns;
    unsigned thread_serial;
    bool destroying;
    bool registered; /* atomic: in the object registry */
    int refcnt;      /* the queue handle + one per ThreadletCompletions */

    char *name; /* immutable */
};

static void aio_work_run(ThreadletWork *work);
static bool pool_kick_locked(ThreadletPool *pool, bool may_spawn);
static void completions_deliver(void *opaque);
static void completions_resume(void *opaque);

/* ---- pool life cycle ---------------------------------------------------- */

static void check_limits(int max_threads, int min_threads)
{
    if (max_threads < 1 || min_threads < 0 || min_threads > max_threads) {
        g_error("threadlet: bad thread limits max=%d min=%d", max_threads,
                min_threads);
    }
}

static ThreadletPool *pool_new(const char *name, int max_threads,
                               int min_threads)
{
    ThreadletPool *pool = g_new0(ThreadletPool, 1);

    check_limits(max_threads, min_threads);
    dp_mutex_init(&pool->lock);
    dp_cond_init(&pool->work_cond);
    dp_cond_init(&pool->exit_cond);
    TAILQ_INIT(&pool->queue);
    LIST_INIT(&pool->workers);
    LIST_INIT(&pool->zombies);
    LIST_INIT(&pool->completions);
    pool->max_threads = max_threads;
    pool->min_threads = min_threads;
    pool->idle_timeout_ns = THREADLET_DEFAULT_IDLE_TIMEOUT_NS;
    pool->refcnt = 1;
    pool->name = g_strdup(name);
    return pool;
}

static void pool_free(ThreadletPool *pool)
{
    g_assert(TAILQ_EMPTY(&pool->queue));
    g_assert(LIST_EMPTY(&pool->workers) && LIST_EMPTY(&pool->zombies));
    g_assert(LIST_EMPTY(&pool->completions));
    dp_cond_destroy(&pool->exit_cond);
    dp_cond_destroy(&pool->work_cond);
    dp_mutex_destroy(&pool->lock);
    g_free(pool->name);
    g_free(pool);
}

/* Drops one reference; the caller must not hold pool->lock. */
static void pool_unref(ThreadletPool *pool)
{
    bool last;

    dp_mutex_lock(&pool->lock);
    last = --pool->refcnt == 0;
    dp_mutex_unlock(&pool->lock);
    if (last) {
        pool_free(pool);
    }
}

/* Joins the threads that have exited.  Called without pool->lock. */
static void pool_reap(ThreadletPool *pool)
{
    LIST_HEAD(, ThreadletWorker) dead = LIST_HEAD_INITIALIZER(dead);
    ThreadletWorker *w;

    dp_mutex_lock(&pool->lock);
    while ((w = LIST_FIRST(&pool->zombies))) {
        LIST_REMOVE(w, link);
        LIST_INSERT_HEAD(&dead, w, link);
    }
    dp_atomic_store_relaxed(&pool->has_zombies, false);
    dp_mutex_unlock(&pool->lock);

    while ((w = LIST_FIRST(&dead))) {
        LIST_REMOVE(w, link);
        dp_thread_join(&w->thread);
        g_free(w);
    }
}

/* ---- workers ------------------------------------------------------------ */

/*
 * Appends a finished (or cancelled) submit_aio item to its record's ready
 * list.  Returns the record if the caller must schedule its deliver BH (the
 * list was idle), NULL if a BH is already on its way.  The returned record
 * stays alive until that BH runs, so it may be scheduled after unlocking.
 */
static ThreadletCompletions *completion_push_locked(ThreadletAioWork *aw)
{
    ThreadletCompletions *comp = aw->comp;

    aw->next_ready = NULL;
    *comp->ready_tail = aw;
    comp->ready_tail = &aw->next_ready;
    if (comp->bh_scheduled) {
        return NULL;
    }
    comp->bh_scheduled = true;
    /* Dropped by completion_schedule(); see there. */
    aio_context_ref(comp->ctx);
    return comp;
}

/*
 * Schedules comp's deliver BH (comp may be NULL: nothing to do).
 *
 * The BH can run, deliver the last done, and let its owner unref the
 * context while this thread is still inside aio_bh_schedule_oneshot()
 * (its aio_notify() comes after the push).  The reference taken in
 * completion_push_locked(), while undelivered items still guaranteed the
 * context was alive, keeps it valid until we are out; if ours turns out to
 * be the last reference, the context is freed here.
 */
static void completion_schedule(ThreadletCompletions *comp)
{
    AioContext *ctx;

    if (!comp) {
        return;
    }
    ctx = comp->ctx; /* comp may be freed as soon as the BH is queued */
    aio_bh_schedule_oneshot(ctx, completions_deliver, comp);
    aio_context_unref(ctx);
}

/*
 * Takes queued work off the queue before it ran: an aio work item still
 * completes, with -ECANCELED, in its context.  Called with pool->lock held.
 */
static void pool_cancel_queued_locked(ThreadletPool *pool, ThreadletWork *work)
{
    TAILQ_REMOVE(&pool->queue, work, node);
    pool->queued--;
    pool->cancelled++;
    work->state = WORK_CANCELLED;
    if (work->func == aio_work_run) {
        ThreadletAioWork *aw = container_of(work, ThreadletAioWork, work);

        aw->ret = -ECANCELED;
        completion_schedule(completion_push_locked(aw));
    }
}

/*
 * Waits for work.  Returns the first queued item, or NULL when this thread
 * should exit: the pool is being destroyed, it has more threads than
 * max_threads, or the thread stayed idle for idle_timeout_ns while the pool
 * had more than min_threads.  Called and returns with pool->lock held.
 */
static ThreadletWork *worker_next_locked(ThreadletPool *pool)
{
    int64_t idle_since = 0;

    for (;;) {
        if (pool->threads > pool->max_threads) {
            return NULL;
        }
        if (!TAILQ_EMPTY(&pool->queue)) {
            return TAILQ_FIRST(&pool->queue);
        }
        if (pool->destroying) {
            return NULL;
        }
        if (idle_since == 0) {
            idle_since = clock_monotonic_ns();
        }
        pool->idle_threads++;
        /* Re-read each time: set_idle_timeout_ns() broadcasts a change. */
        dp_cond_timedwait_ns(&pool->work_cond, &pool->lock,
                             idle_since + pool->idle_timeout_ns);
        pool->idle_threads--;
        if (pool->wakes_pending > 0) {
            pool->wakes_pending--;
        }
        if (TAILQ_EMPTY(&pool->queue) && !pool->destroying &&
            clock_monotonic_ns() >= idle_since + pool->idle_timeout_ns) {
            if (pool->threads > pool->min_threads) {
                return NULL;
            }
            idle_since = 0; /* a kept thread starts a new idle period */
        }
    }
}

static void *worker_thread(void *opaque)
{
    ThreadletWorker *self = opaque;
    ThreadletPool *pool = self->pool;
    ThreadletCompletions *to_schedule = NULL;
    ThreadletWork *work;

    dp_mutex_lock(&pool->lock);
    for (;;) {
        bool is_aio;
        bool chain;

        if (to_schedule && TAILQ_EMPTY(&pool->queue)) {
            /* Nothing to pick up: deliver now rather than after a wait. */
            dp_mutex_unlock(&pool->lock);
            completion_schedule(to_schedule);
            to_schedule = NULL;
            dp_mutex_lock(&pool->lock);
        }
        work = worker_next_locked(pool);
        if (!work) {
            break;
        }
        is_aio = work->func == aio_work_run;

        TAILQ_REMOVE(&pool->queue, work, node);
        pool->queued--;
        work->state = WORK_RUNNING;
        self->current = work;
        chain = !TAILQ_EMPTY(&pool->queue) && pool_kick_locked(pool, false);
        dp_mutex_unlock(&pool->lock);
        if (chain) {
            dp_cond_signal(&pool->work_cond);
        }

        /* The previous item's completion goes out before this one runs. */
        completion_schedule(to_schedule);
        to_schedule = NULL;

        /* Plain work may free itself in func: not touched after it. */
        work->func(work);

        dp_mutex_lock(&pool->lock);
        self->current = NULL;
        pool->completed++;
        if (is_aio) {
            work->state = WORK_DONE;
            to_schedule = completion_push_locked(
                container_of(work, ThreadletAioWork, work));
        }
    }

    LIST_REMOVE(self, link);
    LIST_INSERT_HEAD(&pool->zombies, self, link);
    dp_atomic_store_relaxed(&pool->has_zombies, true);
    pool->threads--;
    if (pool->threads == 0) {
        dp_cond_broadcast(&pool->exit_cond);
    }
    dp_mutex_unlock(&pool->lock);

    /* The record stays alive until its BH runs (bh_scheduled is set), and
     * destroy joins this thread before it frees the pool. */
    completion_schedule(to_schedule);
    return NULL;
}

static void pool_spawn_locked(ThreadletPool *pool)
{
    ThreadletWorker *w = g_new0(ThreadletWorker, 1);
    const char *label = pool->name ? pool->name : "anon";
    char name[16];

    w->pool = pool;
    pool->threads++;
    LIST_INSERT_HEAD(&pool->workers, w, link);
    /* "tl-global-3": the kernel keeps 15 bytes of a thread's name. */
    if (g_str_has_prefix(label, "threadlet-")) {
        label += strlen("threadlet-");
    }
    snprintf(name, sizeof(name), "tl-%.6s-%u", label, pool->thread_serial++);
    dp_thread_create(&w->thread, name, worker_thread, w);
}

/*
 * Decides whether an idle thread must be woken for the queued work.  At
 * most one wake-up is in flight: the thread it wakes takes an item and, if
 * more are queued, wakes the next (worker_thread), so a burst of tiny items
 * wakes only as many threads as keep up with it, and the submitter pays for
 * one futex wake at most.  Without an idle thread, may_spawn starts one (up
 * to max_threads).  Returns true if the caller must signal work_cond after
 * unlocking.
 */
static bool pool_kick_locked(ThreadletPool *pool, bool may_spawn)
{
    bool wake = false;

    /* A wake-up in flight means the thread on its way will chain. */
    if (pool->wakes_pending == 0 && pool->idle_threads > 0) {
        pool->wakes_pending++;
        wake = true;
    }
    /* More work queued than idle threads to take it: grow. */
    if (may_spawn && pool->queued > pool->idle_threads &&
        pool->threads < pool->max_threads) {
        pool_spawn_locked(pool);
    }
    return wake;
}

/*
 * Queues work and starts or wakes a thread for it (pool_kick_locked).
 * Returns true if the caller must signal work_cond after unlocking.
 */
static bool pool_enqueue_locked(ThreadletPool *pool, ThreadletWork *work)
{
    g_assert(!pool->destroying);
    work->pool = pool;
    work->state = WORK_QUEUED;
    TAILQ_INSERT_TAIL(&pool->queue, work, node);
    pool->queued++;
    return pool_kick_locked(pool, true);
}

static bool pool_has_zombies(ThreadletPool *pool)
{
    /* A stale answer only delays reaping to the next submit. */
    return dp_atomic_load_relaxed(&pool->has_zombies);
}

/* ---- public: queues ----------------------------------------------------- */

void threadlet_queue_init(ThreadletQueue *q, int max_threads, int min_threads)
{
    q->pool = pool_new(NULL, max_threads, min_threads);
    q->allocated = false;
}

ThreadletQueue *threadlet_queue_new(const char *name, int max_threads,
                                    int min_threads)
{
    ThreadletQueue *q = g_new0(ThreadletQueue, 1);

    q->pool = pool_new(name, max_threads, min_threads);
    q->allocated = true;
    return q;
}

static ThreadletQueue global_queue;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_queue_init(void)
{
    global_queue.pool =
        pool_new(THREADLET_GLOBAL_QUEUE_NAME, THREADLET_GLOBAL_MAX_THREADS,
                 THREADLET_GLOBAL_MIN_THREADS);
}

ThreadletQueue *threadlet_global_queue(void)
{
    pthread_once(&global_once, global_queue_init);
    return &global_queue;
}

void threadlet_queue_destroy(ThreadletQueue *q)
{
    ThreadletPool *pool = q->pool;
    ThreadletWorker *w;
    ThreadletWork *work;

    g_assert(q != &global_queue);
    if (threadlet_queue_is_registered(q)) {
        threadlet_queue_unregister_object(q);
    }
    threadlet_context_unbind_queue(q);
    dp_mutex_lock(&pool->lock);
    LIST_FOREACH(w, &pool->workers, link)
    {
        g_assert(!pthread_equal(w->thread.t, pthread_self()));
    }
    pool->destroying = true;
    while ((work = TAILQ_FIRST(&pool->queue))) {
        pool_cancel_queued_locked(pool, work);
    }
    dp_cond_broadcast(&pool->work_cond);
    while (pool->threads > 0) {
        dp_cond_wait(&pool->exit_cond, &pool->lock);
    }
    dp_mutex_unlock(&pool->lock);

    pool_reap(pool);
    q->pool = NULL;
    if (q->allocated) {
        g_free(q);
    }
    pool_unref(pool);
}

bool threadlet_queue_is_registered(ThreadletQueue *q)
{
    return dp_atomic_load_acquire(&q->pool->registered);
}

void threadlet_queue_set_registered(ThreadletQueue *q, bool registered)
{
    dp_atomic_store_release(&q->pool->registered, registered);
}

const char *threadlet_queue_get_name(ThreadletQueue *q)
{
    return q->pool->name;
}

bool threadlet_queue_set_limits(ThreadletQueue *q, int max_threads,
                                int min_threads, Error **errp)
{
    ThreadletPool *pool = q->pool;

    if (max_threads < 1) {
        error_setg(errp, "max-threads must be at least 1, not %d", max_threads);
        return false;
    }
    if (min_threads < 0 || min_threads > max_threads) {
        error_setg(errp,
                   "min-threads must be between 0 and max-threads (%d), "
                   "not %d",
                   max_threads, min_threads);
        return false;
    }
    dp_mutex_lock(&pool->lock);
    pool->max_threads = max_threads;
    pool->min_threads = min_threads;
    /* Surplus idle threads notice on waking up; busy ones when they finish. */
    dp_cond_broadcast(&pool->work_cond);
    dp_mutex_unlock(&pool->lock);
    return true;
}

void threadlet_queue_set_idle_timeout_ns(ThreadletQueue *q, int64_t ns)
{
    ThreadletPool *pool = q->pool;

    g_assert(ns > 0);
    dp_mutex_lock(&pool->lock);
    pool->idle_timeout_ns = ns;
    /* Idle threads recompute their deadline (a shorter one may be past). */
    dp_cond_broadcast(&pool->work_cond);
    dp_mutex_unlock(&pool->lock);
}

void threadlet_queue_get_stats(ThreadletQueue *q, ThreadletQueueStats *stats)
{
    ThreadletPool *pool = q->pool;

    dp_mutex_lock(&pool->lock);
    stats->max_threads = pool->max_threads;
    stats->min_threads = pool->min_threads;
    stats->threads = pool->threads;
    stats->idle_threads = pool->idle_threads;
    stats->queued = pool->queued;
    stats->completed = pool->completed;
    stats->cancelled = pool->cancelled;
    stats->completion_batches = pool->batches;
    dp_mutex_unlock(&pool->lock);
}

/* ---- public: plain work ------------------------------------------------- */

void threadlet_submit_to_queue(ThreadletQueue *q, ThreadletWork *work)
{
    ThreadletPool *pool = q->pool;
    bool wake;

    g_assert(work->func);
    if (pool_has_zombies(pool)) {
        pool_reap(pool);
    }
    dp_mutex_lock(&pool->lock);
    wake = pool_enqueue_locked(pool, work);
    dp_mutex_unlock(&pool->lock);
    if (wake) {
        dp_cond_signal(&pool->work_cond);
    }
}

void threadlet_submit(ThreadletWork *work)
{
    threadlet_submit_to_queue(threadlet_global_queue(), work);
}

/* Whether a worker is inside work->func right now.  O(threads). */
static bool pool_is_running_locked(ThreadletPool *pool, ThreadletWork *work)
{
    ThreadletWorker *w;

    LIST_FOREACH(w, &pool->workers, link)
    {
        if (w->current == work) {
            return true;
        }
    }
    return false;
}

static int pool_cancel(ThreadletPool *pool, ThreadletWork *work)
{
    int ret;

    dp_mutex_lock(&pool->lock);
    switch (work->state) {
    case WORK_QUEUED:
        pool_cancel_queued_locked(pool, work);
        ret = THREADLET_CANCELLED;
        break;
    case WORK_RUNNING:
        ret = pool_is_running_locked(pool, work) ? THREADLET_RUNNING
                                                 : THREADLET_DONE;
        break;
    case WORK_DONE:
        ret = THREADLET_DONE;
        break;
    case WORK_CANCELLED:
        ret = THREADLET_CANCELLED;
        break;
    default:
        ret = -EINVAL; /* never submitted */
        break;
    }
    dp_mutex_unlock(&pool->lock);
    return ret;
}

int threadlet_cancel_on_queue(ThreadletQueue *q, ThreadletWork *work)
{
    if (work->pool != q->pool) {
        return -EINVAL;
    }
    return pool_cancel(q->pool, work);
}

int threadlet_cancel(ThreadletWork *work)
{
    if (!work->pool) {
        return -EINVAL;
    }
    return pool_cancel(work->pool, work);
}

/* ---- public: submit_aio ------------------------------------------------- */

static void aio_work_run(ThreadletWork *work)
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
        pool_unref(pool);
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
    if (pool_has_zombies(pool)) {
        pool_reap(pool);
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
    aw->work.func = aio_work_run;
    aw->comp = comp;
    aw->fn = fn;
    aw->arg = arg;
    aw->done = done;
    aw->opaque = opaque;
    aw->ret = 0;
    comp->inflight++;
    wake = pool_enqueue_locked(pool, &aw->work);
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
