/*
 * Threadlets: the pool of threads for blocking work, its workers and its
 * queue (include/dataplane/threadlet.h; the public functions are
 * threadlet.c, submit_aio completions threadlet-completions.c).
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
 * Lock order: threadlet-pool.h.
 */
#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "aio/threadlet-pool.h"
#include "util/atomic.h"
#include "util/clock.h"

static bool pool_kick_locked(ThreadletPool *pool, bool may_spawn);

/* ---- pool life cycle ---------------------------------------------------- */

static void check_limits(int min_threads, int max_threads)
{
    if (max_threads < 1 || min_threads < 0 || min_threads > max_threads) {
        g_error("threadlet: bad thread limits min=%d max=%d", min_threads,
                max_threads);
    }
}

ThreadletPool *threadlet_pool_new(const char *name, int min_threads,
                                  int max_threads)
{
    ThreadletPool *pool = g_new0(ThreadletPool, 1);

    check_limits(min_threads, max_threads);
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
void threadlet_pool_unref(ThreadletPool *pool)
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
void threadlet_pool_reap(ThreadletPool *pool)
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
 * Takes queued work off the queue before it ran: an aio work item still
 * completes, with -ECANCELED, in its context.  Called with pool->lock held.
 */
void threadlet_pool_cancel_queued_locked(ThreadletPool *pool,
                                         ThreadletWork *work)
{
    TAILQ_REMOVE(&pool->queue, work, node);
    pool->queued--;
    pool->cancelled++;
    work->state = WORK_CANCELLED;
    if (work->func == threadlet_aio_work_run) {
        ThreadletAioWork *aw = container_of(work, ThreadletAioWork, work);

        aw->ret = -ECANCELED;
        threadlet_completion_schedule(threadlet_completion_push_locked(aw));
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
            threadlet_completion_schedule(to_schedule);
            to_schedule = NULL;
            dp_mutex_lock(&pool->lock);
        }
        work = worker_next_locked(pool);
        if (!work) {
            break;
        }
        is_aio = work->func == threadlet_aio_work_run;

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
        threadlet_completion_schedule(to_schedule);
        to_schedule = NULL;

        /* Plain work may free itself in func: not touched after it. */
        work->func(work);

        dp_mutex_lock(&pool->lock);
        self->current = NULL;
        pool->completed++;
        if (is_aio) {
            work->state = WORK_DONE;
            to_schedule = threadlet_completion_push_locked(
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
    threadlet_completion_schedule(to_schedule);
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
bool threadlet_pool_enqueue_locked(ThreadletPool *pool, ThreadletWork *work)
{
    g_assert(!pool->destroying);
    work->pool = pool;
    work->state = WORK_QUEUED;
    TAILQ_INSERT_TAIL(&pool->queue, work, node);
    pool->queued++;
    return pool_kick_locked(pool, true);
}

bool threadlet_pool_has_zombies(ThreadletPool *pool)
{
    /* A stale answer only delays reaping to the next submit. */
    return dp_atomic_load_relaxed(&pool->has_zombies);
}
