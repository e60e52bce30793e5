/*
 * Threadlets: the public functions on queues and plain work
 * (include/dataplane/threadlet.h).  The pool's threads and queue are in
 * threadlet-pool.c, submit_aio and its completions in
 * threadlet-completions.c; threadlet-pool.h has what they share.
 */
#include <errno.h>
#include <glib.h>
#include <pthread.h>

#include "aio/threadlet-internal.h"
#include "aio/threadlet-pool.h"
#include "util/atomic.h"

/* ---- public: queues ----------------------------------------------------- */

void threadlet_queue_init(ThreadletQueue *q, int min_threads, int max_threads)
{
    q->pool = threadlet_pool_new(NULL, min_threads, max_threads);
    q->allocated = false;
}

ThreadletQueue *threadlet_queue_new(const char *name, int min_threads,
                                    int max_threads)
{
    ThreadletQueue *q = g_new0(ThreadletQueue, 1);

    q->pool = threadlet_pool_new(name, min_threads, max_threads);
    q->allocated = true;
    return q;
}

static ThreadletQueue global_queue;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_queue_init(void)
{
    global_queue.pool = threadlet_pool_new(THREADLET_GLOBAL_QUEUE_NAME,
                                           THREADLET_GLOBAL_MIN_THREADS,
                                           THREADLET_GLOBAL_MAX_THREADS);
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
        threadlet_pool_cancel_queued_locked(pool, work);
    }
    dp_cond_broadcast(&pool->work_cond);
    while (pool->threads > 0) {
        dp_cond_wait(&pool->exit_cond, &pool->lock);
    }
    dp_mutex_unlock(&pool->lock);

    threadlet_pool_reap(pool);
    q->pool = NULL;
    if (q->allocated) {
        g_free(q);
    }
    threadlet_pool_unref(pool);
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

bool threadlet_queue_set_limits(ThreadletQueue *q, int min_threads,
                                int max_threads, Error **errp)
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
    if (threadlet_pool_has_zombies(pool)) {
        threadlet_pool_reap(pool);
    }
    dp_mutex_lock(&pool->lock);
    wake = threadlet_pool_enqueue_locked(pool, work);
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
        threadlet_pool_cancel_queued_locked(pool, work);
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
