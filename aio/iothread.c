/*
 * IOThread: a named thread running one AioContext.
 *
 * Lock order: iothreads_lock, then an IOThread's `mutex`; neither is held
 * while acquiring an AioContext.
 */
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/queue.h>

#include "aio/aio-internal.h"
#include "aio/iothread-internal.h"
#include "util/atomic.h"
#include "util/thread.h"
#include "dataplane/input.h"
#include "dataplane/threadlet.h"

/* Final drain at stop: at most this many non-blocking iterations, so a BH
 * that reschedules itself forever cannot hold up destroy. */
#define STOP_DRAIN_ITERATIONS 1000

struct IOThread {
    char *id;
    AioContext *ctx;
    /* Its own pool for blocking work (thread-pool-min/max), bound to ctx so
     * that threadlet_submit_aio(ctx, ...) uses it: one IOThread's blocking
     * work never queues behind another's. */
    ThreadletQueue *pool;
    DpThread thread;
    TAILQ_ENTRY(IOThread) link; /* protected by iothreads_lock */
    bool paused;                /* stop-the-world holds ctx; main loop only */

    /* Written by the thread itself (stop BH), read by it. */
    bool stopping;

    DpMutex mutex;
    DpCond cond;
    /* Protected by mutex. */
    bool started;
    pid_t tid;
    IOThreadProps props;
    GSource *gsource;

    /* Set once under mutex (release), read by the thread (acquire). */
    GMainContext *gctx;
};

static DpMutex iothreads_lock;
static TAILQ_HEAD(IOThreadList,
                  IOThread) iothreads = TAILQ_HEAD_INITIALIZER(iothreads);
static unsigned pause_depth; /* main loop thread only */

static void __attribute__((constructor)) iothreads_lock_init(void)
{
    dp_mutex_init(&iothreads_lock);
}

void iothread_props_init(IOThreadProps *props)
{
    *props = (IOThreadProps){
        .poll_max_ns = 32768,
        .poll_grow = 0,
        .poll_shrink = 0,
        .aio_max_batch = 0,
        .thread_pool_min = 0,
        .thread_pool_max = 64,
        .backend = AIO_BACKEND_EPOLL,
    };
}

static bool props_check(const IOThreadProps *p, Error **errp)
{
    if (p->aio_max_batch < 0 || p->aio_max_batch > INT_MAX) {
        error_setg(errp, "aio-max-batch must be between 0 and %d", INT_MAX);
        return false;
    }
    if (p->thread_pool_min < 0) {
        error_setg(errp, "thread-pool-min must be between 0 and %d", INT_MAX);
        return false;
    }
    if (p->thread_pool_max < 1) {
        error_setg(errp, "thread-pool-max must be between 1 and %d", INT_MAX);
        return false;
    }
    if (p->thread_pool_min > p->thread_pool_max) {
        error_setg(errp,
                   "thread-pool-min (%d) must not exceed "
                   "thread-pool-max (%d)",
                   p->thread_pool_min, p->thread_pool_max);
        return false;
    }
    return true;
}

static IOThread *find_locked(const char *id)
{
    IOThread *it;

    TAILQ_FOREACH(it, &iothreads, link)
    {
        if (!strcmp(it->id, id)) {
            return it;
        }
    }
    return NULL;
}

/* Runs in the IOThread, with its context held. */
static void iothread_stop_bh(void *opaque)
{
    IOThread *it = opaque;

    it->stopping = true;
}

static void *iothread_run(void *opaque)
{
    IOThread *it = opaque;
    GMainContext *pushed = NULL;
    int i;

    aio_set_current_context(it->ctx);
    dp_mutex_lock(&it->mutex);
    it->tid = dp_thread_get_tid();
    it->started = true;
    dp_cond_broadcast(&it->cond);
    dp_mutex_unlock(&it->mutex);

    while (!it->stopping) {
        /* Pairs with the release store in iothread_get_g_main_context(). */
        GMainContext *gctx = dp_atomic_load_acquire(&it->gctx);

        aio_context_acquire(it->ctx);
        if (gctx) {
            if (!pushed) {
                /* GLib code in this thread (GTask, ...) uses it too. */
                g_main_context_push_thread_default(gctx);
                pushed = gctx;
            }
            g_main_context_iteration(gctx, TRUE);
        } else {
            aio_poll(it->ctx, true);
        }
        aio_context_release(it->ctx);
    }

    /* Whatever the last BHs scheduled runs too, within a bound. */
    aio_context_acquire(it->ctx);
    for (i = 0; i < STOP_DRAIN_ITERATIONS && aio_poll(it->ctx, false); i++) {
    }
    aio_context_release(it->ctx);
    if (pushed) {
        g_main_context_pop_thread_default(pushed);
    }
    /* The context may outlive the thread (references): it has no home. */
    aio_set_current_context(NULL);
    return NULL;
}

IOThread *iothread_new(const char *id, const IOThreadProps *props, Error **errp)
{
    IOThreadProps defaults;
    char *pool_name;
    IOThread *it;

    if (!props) {
        iothread_props_init(&defaults);
        props = &defaults;
    }
    if (!input_id_wellformed(id)) {
        error_setg(errp,
                   "invalid IOThread id '%s': it must start with a letter "
                   "and contain only letters, digits, '-', '.' and '_' "
                   "(at most %d characters)",
                   id ? id : "", INPUT_ID_MAX);
        return NULL;
    }
    if (!props_check(props, errp)) {
        return NULL;
    }

    it = g_new0(IOThread, 1);
    it->id = g_strdup(id);
    it->props = *props;
    dp_mutex_init(&it->mutex);
    dp_cond_init(&it->cond);
    it->ctx = aio_context_new_with_backend(props->backend, errp);
    if (!it->ctx) {
        goto fail_ctx;
    }
    if (!aio_context_set_poll_params(it->ctx, props->poll_max_ns,
                                     props->poll_grow, props->poll_shrink,
                                     errp) ||
        !aio_context_set_max_batch(it->ctx, props->aio_max_batch, errp)) {
        goto fail_props;
    }
    pool_name = g_strdup_printf("%s-pool", id);
    it->pool = threadlet_queue_new(pool_name, props->thread_pool_min,
                                   props->thread_pool_max);
    g_free(pool_name);
    threadlet_context_set_queue(it->ctx, it->pool);

    dp_mutex_lock(&iothreads_lock);
    if (find_locked(id)) {
        dp_mutex_unlock(&iothreads_lock);
        error_setg(errp, "an IOThread with id '%s' already exists", id);
        goto fail_props;
    }
    TAILQ_INSERT_TAIL(&iothreads, it, link);
    dp_mutex_unlock(&iothreads_lock);

    if (pause_depth > 0) {
        /* The world is stopped: this thread starts stopped too. */
        aio_context_acquire(it->ctx);
        it->paused = true;
    }
    dp_thread_create(&it->thread, id, iothread_run, it);

    /* The thread id is a property: have it before returning. */
    dp_mutex_lock(&it->mutex);
    while (!it->started) {
        dp_cond_wait(&it->cond, &it->mutex);
    }
    dp_mutex_unlock(&it->mutex);
    return it;

fail_props:
    if (it->pool) {
        threadlet_queue_destroy(it->pool);
    }
    aio_context_unref(it->ctx);
fail_ctx:
    dp_cond_destroy(&it->cond);
    dp_mutex_destroy(&it->mutex);
    g_free(it->id);
    g_free(it);
    return NULL;
}

void iothread_destroy(IOThread *it)
{
    if (!it) {
        return;
    }
    /* Joining ourselves, or a thread blocked on a context we hold, would
     * never return. */
    g_assert(dp_thread_get_tid() != iothread_get_thread_id(it));
    dp_mutex_lock(&iothreads_lock);
    TAILQ_REMOVE(&iothreads, it, link);
    dp_mutex_unlock(&iothreads_lock);
    if (it->paused) {
        it->paused = false;
        aio_context_release(it->ctx);
    }
    if (rfifolock_depth_self(&it->ctx->lock) != 0) {
        g_error("iothread_destroy('%s'): the caller holds its context; "
                "release it first",
                it->id);
    }

    /* After every BH scheduled so far: the pending list runs in order. */
    aio_bh_schedule_oneshot(it->ctx, iothread_stop_bh, it);
    dp_thread_join(&it->thread);

    /* Waits for running work; queued completions were delivered by the
     * final iterations of the thread or come with -ECANCELED. */
    threadlet_queue_destroy(it->pool);
    if (it->gsource) {
        g_source_destroy(it->gsource);
        g_source_unref(it->gsource);
        g_main_context_unref(it->gctx);
    }
    aio_context_unref(it->ctx);
    dp_cond_destroy(&it->cond);
    dp_mutex_destroy(&it->mutex);
    g_free(it->id);
    g_free(it);
}

ThreadletQueue *iothread_get_threadlet_queue(IOThread *it)
{
    return it->pool;
}

AioContext *iothread_get_aio_context(IOThread *it)
{
    return it->ctx;
}

GMainContext *iothread_get_g_main_context(IOThread *it)
{
    GMainContext *gctx;

    dp_mutex_lock(&it->mutex);
    gctx = it->gctx;
    if (!gctx) {
        gctx = g_main_context_new();
        it->gsource = aio_get_g_source(it->ctx);
        g_source_attach(it->gsource, gctx);
        /* Pairs with the acquire load in iothread_run(). */
        dp_atomic_store_release(&it->gctx, gctx);
        /* The thread may sleep in aio_poll(): make it switch now. */
        aio_notify(it->ctx);
    }
    dp_mutex_unlock(&it->mutex);
    return gctx;
}

const char *iothread_get_id(IOThread *it)
{
    return it->id;
}

pid_t iothread_get_thread_id(IOThread *it)
{
    pid_t tid;

    dp_mutex_lock(&it->mutex);
    tid = it->tid;
    dp_mutex_unlock(&it->mutex);
    return tid;
}

IOThread *iothread_find(const char *id)
{
    IOThread *it;

    dp_mutex_lock(&iothreads_lock);
    it = find_locked(id);
    dp_mutex_unlock(&iothreads_lock);
    return it;
}

void iothread_get_props(IOThread *it, IOThreadProps *props)
{
    dp_mutex_lock(&it->mutex);
    *props = it->props;
    dp_mutex_unlock(&it->mutex);
}

bool iothread_set_aio_max_batch(IOThread *it, int64_t max_batch, Error **errp)
{
    bool ok;

    dp_mutex_lock(&it->mutex);
    ok = aio_context_set_max_batch(it->ctx, max_batch, errp);
    if (ok) {
        it->props.aio_max_batch = max_batch;
    }
    dp_mutex_unlock(&it->mutex);
    return ok;
}

bool iothread_set_poll_params(IOThread *it, int64_t max_ns, int64_t grow,
                              int64_t shrink, Error **errp)
{
    bool ok;

    dp_mutex_lock(&it->mutex);
    ok = aio_context_set_poll_params(it->ctx, max_ns, grow, shrink, errp);
    if (ok) {
        it->props.poll_max_ns = max_ns;
        it->props.poll_grow = grow;
        it->props.poll_shrink = shrink;
    }
    dp_mutex_unlock(&it->mutex);
    return ok;
}

bool iothread_set_thread_pool_limits(IOThread *it, int min_threads,
                                     int max_threads, Error **errp)
{
    bool ok;

    if (min_threads < 0 || max_threads < 1) {
        error_setg(errp, "thread-pool-min must be >= 0 and thread-pool-max "
                         ">= 1");
        return false;
    }
    dp_mutex_lock(&it->mutex);
    ok = threadlet_queue_set_limits(it->pool, min_threads, max_threads, errp);
    if (ok) {
        it->props.thread_pool_min = min_threads;
        it->props.thread_pool_max = max_threads;
    }
    dp_mutex_unlock(&it->mutex);
    return ok;
}

void iothread_foreach(void (*fn)(IOThread *iothread, void *opaque),
                      void *opaque)
{
    IOThread *it;

    TAILQ_FOREACH(it, &iothreads, link)
    {
        fn(it, opaque);
    }
}

void iothread_pause_all(void)
{
    IOThread *it;

    if (pause_depth++ > 0) {
        return;
    }
    /* Creation order; the list only changes in this (main loop) thread. */
    TAILQ_FOREACH(it, &iothreads, link)
    {
        aio_context_acquire(it->ctx);
        it->paused = true;
    }
}

void iothread_resume_all(void)
{
    IOThread *it;

    g_assert(pause_depth > 0);
    if (--pause_depth > 0) {
        return;
    }
    TAILQ_FOREACH_REVERSE(it, &iothreads, IOThreadList, link)
    {
        if (it->paused) {
            it->paused = false;
            aio_context_release(it->ctx);
        }
    }
}
