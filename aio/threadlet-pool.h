/*
 * Between the files of the threadlet pool: threadlet.c (the public
 * functions), threadlet-pool.c (threads, queue, waking) and
 * threadlet-completions.c (submit_aio completions).  Not installed.
 *
 * Lock order: pool->lock is a leaf, except that aio_bh_schedule_oneshot()
 * (lock-free) may be called under it on the cold paths (cancel, destroy).
 */
#ifndef DATAPLANE_AIO_THREADLET_POOL_H
#define DATAPLANE_AIO_THREADLET_POOL_H

#include <sys/queue.h>

#include "dataplane/threadlet.h"
#include "util/thread.h"

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

/* ---- threadlet-pool.c --------------------------------------------------- */

/* A pool with one reference (the queue handle's).  Aborts on bad limits
 * (max_threads >= 1, 0 <= min_threads <= max_threads). */
ThreadletPool *threadlet_pool_new(const char *name, int min_threads,
                                  int max_threads);
/* Drops one reference; the caller must not hold pool->lock. */
void threadlet_pool_unref(ThreadletPool *pool);
/* Joins the threads that have exited.  Called without pool->lock. */
void threadlet_pool_reap(ThreadletPool *pool);
/* Whether exited threads wait to be joined (a stale answer only delays
 * reaping to the next submit).  Any thread, no lock. */
bool threadlet_pool_has_zombies(ThreadletPool *pool);
/* Queues work and starts or wakes a thread for it.  Returns true if the
 * caller must signal pool->work_cond after unlocking.  pool->lock held. */
bool threadlet_pool_enqueue_locked(ThreadletPool *pool, ThreadletWork *work);
/* Takes queued work off the queue before it ran (submit_aio work still
 * completes, with -ECANCELED).  pool->lock held. */
void threadlet_pool_cancel_queued_locked(ThreadletPool *pool,
                                         ThreadletWork *work);

/* ---- threadlet-completions.c -------------------------------------------- */

/* The func of every submit_aio item: how a worker tells them apart. */
void threadlet_aio_work_run(ThreadletWork *work);
/* Appends a finished or cancelled submit_aio item to its record's ready
 * list; returns the record whose BH the caller must schedule (after
 * unlocking is fine), or NULL.  pool->lock held. */
ThreadletCompletions *threadlet_completion_push_locked(ThreadletAioWork *aw);
/* Schedules comp's deliver BH; comp NULL: nothing to do.  No lock. */
void threadlet_completion_schedule(ThreadletCompletions *comp);

#endif /* DATAPLANE_AIO_THREADLET_POOL_H */
