/*
 * Helpers shared by the threadlet unit tests: a gate that blocking work waits
 * on, bounded waits on queue counters, and work items that record what ran,
 * where and with what result.
 */
#ifndef DATAPLANE_TESTS_THREADLET_TEST_UTIL_H
#define DATAPLANE_TESTS_THREADLET_TEST_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <glib.h>
#include <sched.h>

#include "dataplane/threadlet.h"
#include "util/atomic.h"
#include "util/thread.h"

/* Bounded waits: each step yields or polls once; this many steps cover the
 * slowest machine by far without ever hanging a failing test. */
#define WAIT_STEPS 2000000

/* ---- helpers ------------------------------------------------------------ */

/* A gate that blocking test work waits on, counting who arrived. */
typedef struct Gate {
    DpMutex lock;
    DpCond cond;
    int arrived;
    bool open;
} Gate;

static inline void gate_init(Gate *g)
{
    dp_mutex_init(&g->lock);
    dp_cond_init(&g->cond);
    g->arrived = 0;
    g->open = false;
}

static inline void gate_destroy(Gate *g)
{
    dp_cond_destroy(&g->cond);
    dp_mutex_destroy(&g->lock);
}

/* Called by pool threads: announce arrival, then block until opened. */
static inline void gate_pass(Gate *g)
{
    dp_mutex_lock(&g->lock);
    g->arrived++;
    dp_cond_broadcast(&g->cond);
    while (!g->open) {
        dp_cond_wait(&g->cond, &g->lock);
    }
    dp_mutex_unlock(&g->lock);
}

/* Waits until n threads are blocked in the gate. */
static inline void gate_wait_arrived(Gate *g, int n)
{
    dp_mutex_lock(&g->lock);
    while (g->arrived < n) {
        dp_cond_wait(&g->cond, &g->lock);
    }
    dp_mutex_unlock(&g->lock);
}

static inline void gate_open(Gate *g)
{
    dp_mutex_lock(&g->lock);
    g->open = true;
    dp_cond_broadcast(&g->cond);
    dp_mutex_unlock(&g->lock);
}

static inline ThreadletQueueStats stats_of(ThreadletQueue *q)
{
    ThreadletQueueStats s;

    threadlet_queue_get_stats(q, &s);
    return s;
}

/* Yields until the queue has counted n completed items (bounded). */
static inline void wait_completed(ThreadletQueue *q, uint64_t n)
{
    int i;

    for (i = 0; i < WAIT_STEPS && stats_of(q).completed < n; i++) {
        sched_yield();
    }
    g_assert_cmpuint(stats_of(q).completed, ==, n);
}

static inline void poll_until_count(AioContext *ctx, const int *count, int n)
{
    int i;

    for (i = 0; i < WAIT_STEPS && dp_atomic_load_acquire(count) < n; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(dp_atomic_load_acquire(count), ==, n);
}

/* Threads of this process, from /proc/self/task. */
static inline int count_threads(void)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *de;
    int n = 0;

    g_assert_nonnull(dir);
    while ((de = readdir(dir))) {
        if (de->d_name[0] != '.') {
            n++;
        }
    }
    closedir(dir);
    return n;
}

/* A submit_aio item's record: what ran, where, with what result. */
typedef struct AioItem {
    Gate *gate;    /* fn blocks here if set */
    int fn_runs;   /* atomic */
    int done_runs; /* done's thread only */
    int done_ret;
    pthread_t done_thread;
    int *done_counter; /* incremented (release) by done, if set */
    int fn_ret;
} AioItem;

static inline int item_fn(void *arg)
{
    AioItem *it = arg;

    dp_atomic_fetch_add_seq_cst(&it->fn_runs, 1);
    if (it->gate) {
        gate_pass(it->gate);
    }
    return it->fn_ret;
}

static inline void item_done(void *opaque, int ret)
{
    AioItem *it = opaque;

    it->done_runs++;
    it->done_ret = ret;
    it->done_thread = pthread_self();
    if (it->done_counter) {
        dp_atomic_fetch_add_seq_cst(it->done_counter, 1);
    }
}

/* ---- plain work: the seed's embedding ----------------------------------- */

typedef struct MyRequest {
    int value;
    ThreadletWork work;
    int result;
    pthread_t ran_on;
    Gate *gate;
    int runs; /* atomic */
    DpMutex lock;
    DpCond cond;
    bool finished;
} MyRequest;

static inline void my_request_init(MyRequest *r, int value)
{
    memset(r, 0, sizeof(*r));
    r->value = value;
    dp_mutex_init(&r->lock);
    dp_cond_init(&r->cond);
}

static inline void my_request_cleanup(MyRequest *r)
{
    dp_cond_destroy(&r->cond);
    dp_mutex_destroy(&r->lock);
}

static inline void my_request_func(ThreadletWork *work)
{
    MyRequest *r = container_of(work, MyRequest, work);

    dp_atomic_fetch_add_seq_cst(&r->runs, 1);
    if (r->gate) {
        gate_pass(r->gate);
    }
    dp_mutex_lock(&r->lock);
    r->result = r->value * 2;
    r->ran_on = pthread_self();
    r->finished = true;
    dp_cond_signal(&r->cond);
    dp_mutex_unlock(&r->lock);
}

static inline void my_request_wait(MyRequest *r)
{
    dp_mutex_lock(&r->lock);
    while (!r->finished) {
        dp_cond_wait(&r->cond, &r->lock);
    }
    dp_mutex_unlock(&r->lock);
}

#endif
