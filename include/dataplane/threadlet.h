/*
 * Threadlets: a pool of threads for blocking work.
 *
 * A ThreadletQueue owns between min_threads and max_threads worker threads.
 * Threads start lazily, when work arrives and no idle thread can take it;
 * idle threads above min_threads exit after the queue's idle timeout
 * (10 s unless changed).  There is one global queue, created on first use,
 * and any number of private queues (one per IOThread, for instance, so that
 * slow work of one IOThread never queues behind another's; a queue bound to
 * a context with threadlet_context_set_queue() takes that context's
 * threadlet_submit_aio() work).
 *
 * Two ways to hand work over:
 *
 *  - threadlet_submit[_to_queue](work): the seed's embedding.  The caller
 *    puts a ThreadletWork inside its own struct, sets work->func and submits;
 *    func(work) runs on a pool thread and reaches the caller's struct with
 *    container_of().  Nothing runs afterwards: func itself reports back (a
 *    BH, a condition variable, ...) and may free the struct.
 *
 *  - threadlet_submit_aio[_to_queue](ctx, fn, arg, done, opaque): fn(arg)
 *    runs on a pool thread, then done(opaque, ret) runs in ctx's thread.
 *    done never runs inside the submit call.  Completions are batched: all
 *    the completions of a (queue, ctx) pair that are ready when ctx's loop
 *    gets to them are delivered by one BH, after one wake-up.
 *
 * Cancel (threadlet_cancel) tells three cases apart: THREADLET_CANCELLED
 * (the work was still queued; it will never run), THREADLET_RUNNING (a
 * thread has it; for submit_aio work, done still comes with fn's result)
 * and THREADLET_DONE (it already ran).  A cancelled submit_aio item's done
 * runs exactly once, in ctx, with -ECANCELED.
 *
 * Thread-safety: every function here may be called from any thread without
 * holding any AioContext, except where a comment narrows it (cancel of
 * submit_aio work: ctx's thread; the object registry functions and the
 * destroy of a registered queue: main loop thread).  docs/threadlets.md has the
 * long version and the mapping from the seed's names.
 */
#ifndef DATAPLANE_THREADLET_H
#define DATAPLANE_THREADLET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "dataplane/aio.h"
#include "dataplane/error.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

/* The struct that holds member `member` at ptr (the seed's embedding). */
#ifndef container_of
#define container_of(ptr, type, member)                                        \
    ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

typedef struct ThreadletQueue ThreadletQueue;
typedef struct ThreadletWork ThreadletWork;
typedef struct ThreadletPool ThreadletPool; /* private to aio/threadlet.c */

/*
 * A unit of work, embedded in the caller's own struct.  The caller sets
 * `func` before submitting and must not touch the other fields; it keeps
 * the struct alive until func has started (after that, func owns it and
 * may free it) or until threadlet_cancel() returned THREADLET_CANCELLED.
 */
struct ThreadletWork {
    void (*func)(ThreadletWork *work);

    /* Private: written by submit, read and written under the pool's lock. */
    TAILQ_ENTRY(ThreadletWork) node;
    ThreadletPool *pool;
    int state;
};

/*
 * A queue of work and the threads that serve it.  The struct is a handle:
 * the pool behind it is allocated by threadlet_queue_init/new.  Do not copy
 * it, and do not touch its fields.
 */
struct ThreadletQueue {
    ThreadletPool *pool;
    bool allocated; /* made by threadlet_queue_new: destroy frees it */
};

/* Defaults of the global queue and of IOThreads' queues. */
enum {
    THREADLET_GLOBAL_MAX_THREADS = 64,
    THREADLET_GLOBAL_MIN_THREADS = 0,
};
#define THREADLET_DEFAULT_IDLE_TIMEOUT_NS (10LL * 1000 * 1000 * 1000)

/*
 * Initialises a queue in caller-provided storage (the seed's form).  No
 * thread starts until work arrives.  Limits come in (min, max) order, as
 * everywhere (iothread_set_thread_pool_limits, QEMU's thread-pool-min/max;
 * the seed had (max, min)).  max_threads >= 1 and
 * 0 <= min_threads <= max_threads, or the call aborts (a programming
 * error; threadlet_queue_set_limits() checks values that come from users).
 * Any thread.  The queue is anonymous: it is not in the object registry.
 */
void threadlet_queue_init(ThreadletQueue *q, int min_threads, int max_threads);

/*
 * Allocates and initialises a queue.  name (may be NULL) is copied; a
 * named queue is what the object registry shows.  Same limits as
 * threadlet_queue_init().  Any thread.
 */
ThreadletQueue *threadlet_queue_new(const char *name, int min_threads,
                                    int max_threads);

/*
 * Destroys q, whether it came from _init or _new (the latter is freed).
 *  - Work still queued is cancelled: it never runs.  A submit_aio item's
 *    done(opaque, -ECANCELED) runs later in its ctx, exactly once, as for
 *    threadlet_cancel(); a plain ThreadletWork is simply dropped (its func
 *    never runs, so the caller still owns its struct).
 *  - Work already running is waited for; then every thread is joined.
 *  - Completions not yet delivered stay valid: their BHs run in their
 *    contexts after destroy returns (those contexts must go on running).
 * Any thread except one of q's own workers; the main loop thread if q is
 * in the object registry (destroy removes it from there).  Nobody may
 * submit to q concurrently with or after destroy.  The global queue is
 * never destroyed.
 */
void threadlet_queue_destroy(ThreadletQueue *q);

/* The global queue, created on first use (thread-safe).  Any thread.
 * Its name is THREADLET_GLOBAL_QUEUE_NAME. */
#define THREADLET_GLOBAL_QUEUE_NAME "threadlet-global"
ThreadletQueue *threadlet_global_queue(void);

/* The name given to threadlet_queue_new(), THREADLET_GLOBAL_QUEUE_NAME for
 * the global queue, NULL for anonymous queues.  Any thread. */
const char *threadlet_queue_get_name(ThreadletQueue *q);

/*
 * Changes the thread limits at run time.  Lowering max_threads lets surplus
 * threads finish their current work and exit; raising min_threads keeps
 * more idle threads alive but starts none (threads still start lazily).
 * Returns false and sets errp if max_threads < 1 or min_threads is out of
 * [0, max_threads].  Any thread.
 */
bool threadlet_queue_set_limits(ThreadletQueue *q, int min_threads,
                                int max_threads, Error **errp);

/*
 * How long an idle thread above min_threads waits for work before it
 * exits; ns > 0.  Threads already waiting apply the new value at once (to
 * the time they have already been idle).  Any thread.
 */
void threadlet_queue_set_idle_timeout_ns(ThreadletQueue *q, int64_t ns);

typedef struct ThreadletQueueStats {
    int max_threads;
    int min_threads;
    int threads;        /* threads alive */
    int idle_threads;   /* threads waiting for work */
    int64_t queued;     /* items waiting for a thread now */
    uint64_t completed; /* items whose function has returned, in total */
    uint64_t cancelled; /* items cancelled before they ran, in total */
    uint64_t completion_batches; /* BHs that delivered submit_aio results */
} ThreadletQueueStats;

/* A consistent snapshot (taken under the queue's lock).  Any thread. */
void threadlet_queue_get_stats(ThreadletQueue *q, ThreadletQueueStats *stats);

/*
 * Makes a named queue visible in the object registry as /objects/<name>,
 * type "threadlet-queue", with int properties max-threads and min-threads
 * (settable: threadlet_queue_set_limits()) and threads, idle-threads,
 * queued and completed (read-only; the stats above).  For the global queue
 * the id is THREADLET_GLOBAL_QUEUE_NAME.  Returns false and sets errp for
 * an anonymous queue, a queue already registered, or an id the registry
 * refuses (taken, malformed).  Main loop thread only (the registry's rule);
 * threadlet_queue_destroy() unregisters the queue.
 */
bool threadlet_queue_register_object(ThreadletQueue *q, Error **errp);

/*
 * Queues work on q (or on the global queue); work->func(work) runs on one
 * of q's threads.  The same work may be submitted again once its func has
 * started or it was cancelled, never while it is still queued.  Any thread.
 */
void threadlet_submit(ThreadletWork *work);
void threadlet_submit_to_queue(ThreadletQueue *q, ThreadletWork *work);

/* Results of threadlet_cancel[_on_queue]. */
enum {
    THREADLET_CANCELLED = 0, /* was queued; removed; will never run */
    THREADLET_RUNNING = 1,   /* a thread is running it; it completes normally */
    THREADLET_DONE = 2,      /* it has already run */
};

/*
 * Cancels work if it has not started.  Returns THREADLET_CANCELLED,
 * THREADLET_RUNNING or THREADLET_DONE (see above); _on_queue returns
 * -EINVAL if work was last submitted to another queue.  threadlet_cancel()
 * finds the queue by itself (the seed's version assumed the global queue).
 *
 * Plain work: any thread, as long as the caller knows the struct is still
 * alive (func may free it once it runs).
 * submit_aio work (the pointer the submit returned): only in ctx's thread
 * (or with ctx acquired) and only before done has run, because the handle
 * is freed right after done returns.  When it returns THREADLET_CANCELLED,
 * done(opaque, -ECANCELED) still runs once, later, in ctx; on
 * THREADLET_RUNNING or THREADLET_DONE, done comes with fn's return value.
 */
int threadlet_cancel(ThreadletWork *work);
int threadlet_cancel_on_queue(ThreadletQueue *q, ThreadletWork *work);

typedef int ThreadletFunc(void *arg);
typedef void ThreadletDoneFunc(void *opaque, int ret);

/*
 * Binds q to ctx: threadlet_submit_aio(ctx, ...) then sends its work to q
 * instead of the global queue (an IOThread binds its own queue, so that
 * code written against threadlet_submit_aio() uses it without knowing).
 * q == NULL removes the binding; threadlet_queue_destroy(q) removes every
 * binding to q.  Change a binding only while nobody submits to ctx, and
 * remove it before ctx is freed.  Any thread.
 */
void threadlet_context_set_queue(AioContext *ctx, ThreadletQueue *q);
/* The queue bound to ctx, or the global queue.  Any thread. */
ThreadletQueue *threadlet_context_get_queue(AioContext *ctx);

/*
 * Runs fn(arg) on a thread of ctx's queue (threadlet_submit_aio: the queue
 * bound to ctx, else the global queue) or of q (_to_queue), then
 * done(opaque, ret) in ctx's thread, where ret is fn's return value (or
 * -ECANCELED if the work was cancelled before it ran).  done runs exactly
 * once, never inside this call.  done may be NULL.  ctx must stay alive and
 * keep being polled until done has run.  Returns a handle for
 * threadlet_cancel(), valid until done returns (the pool then reuses its
 * memory for later items, so a stale handle may name another item).
 * Any thread.
 */
ThreadletWork *threadlet_submit_aio(AioContext *ctx, ThreadletFunc *fn,
                                    void *arg, ThreadletDoneFunc *done,
                                    void *opaque);
ThreadletWork *threadlet_submit_aio_to_queue(ThreadletQueue *q, AioContext *ctx,
                                             ThreadletFunc *fn, void *arg,
                                             ThreadletDoneFunc *done,
                                             void *opaque);

DP_API_END

#endif /* DATAPLANE_THREADLET_H */
