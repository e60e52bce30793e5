/*
 * Threadlets: lazy threads, idle shrink, submit and submit_aio, batched
 * completions, the three cancel results, destroy with work in flight, and
 * exactly-once delivery under load from several threads.
 */
#include <dirent.h>
#include <errno.h>
#include <glib.h>
#include <sched.h>

#include "dataplane/object.h"
#include "dataplane/threadlet.h"
#include "util/atomic.h"
#include "util/thread.h"

/* Full counts under TSan as well: the whole file runs there in ~5 s. */
#define STRESS_ITEMS 1000000
#define RACE_ROUNDS 20000
#define STRESS_THREADS 4
#define STRESS_WINDOW 512 /* in flight per submitter thread */

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

static void gate_init(Gate *g)
{
    dp_mutex_init(&g->lock);
    dp_cond_init(&g->cond);
    g->arrived = 0;
    g->open = false;
}

static void gate_destroy(Gate *g)
{
    dp_cond_destroy(&g->cond);
    dp_mutex_destroy(&g->lock);
}

/* Called by pool threads: announce arrival, then block until opened. */
static void gate_pass(Gate *g)
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
static void gate_wait_arrived(Gate *g, int n)
{
    dp_mutex_lock(&g->lock);
    while (g->arrived < n) {
        dp_cond_wait(&g->cond, &g->lock);
    }
    dp_mutex_unlock(&g->lock);
}

static void gate_open(Gate *g)
{
    dp_mutex_lock(&g->lock);
    g->open = true;
    dp_cond_broadcast(&g->cond);
    dp_mutex_unlock(&g->lock);
}

static ThreadletQueueStats stats_of(ThreadletQueue *q)
{
    ThreadletQueueStats s;

    threadlet_queue_get_stats(q, &s);
    return s;
}

/* Yields until the queue has counted n completed items (bounded). */
static void wait_completed(ThreadletQueue *q, uint64_t n)
{
    int i;

    for (i = 0; i < WAIT_STEPS && stats_of(q).completed < n; i++) {
        sched_yield();
    }
    g_assert_cmpuint(stats_of(q).completed, ==, n);
}

static void poll_until_count(AioContext *ctx, const int *count, int n)
{
    int i;

    for (i = 0; i < WAIT_STEPS && atomic_load_acquire(count) < n; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(atomic_load_acquire(count), ==, n);
}

/* Threads of this process, from /proc/self/task. */
static int count_threads(void)
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

static int item_fn(void *arg)
{
    AioItem *it = arg;

    atomic_fetch_add_seq(&it->fn_runs, 1);
    if (it->gate) {
        gate_pass(it->gate);
    }
    return it->fn_ret;
}

static void item_done(void *opaque, int ret)
{
    AioItem *it = opaque;

    it->done_runs++;
    it->done_ret = ret;
    it->done_thread = pthread_self();
    if (it->done_counter) {
        atomic_fetch_add_seq(it->done_counter, 1);
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

static void my_request_init(MyRequest *r, int value)
{
    memset(r, 0, sizeof(*r));
    r->value = value;
    dp_mutex_init(&r->lock);
    dp_cond_init(&r->cond);
}

static void my_request_cleanup(MyRequest *r)
{
    dp_cond_destroy(&r->cond);
    dp_mutex_destroy(&r->lock);
}

static void my_request_func(ThreadletWork *work)
{
    MyRequest *r = container_of(work, MyRequest, work);

    atomic_fetch_add_seq(&r->runs, 1);
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

static void my_request_wait(MyRequest *r)
{
    dp_mutex_lock(&r->lock);
    while (!r->finished) {
        dp_cond_wait(&r->cond, &r->lock);
    }
    dp_mutex_unlock(&r->lock);
}

static void test_submit_runs_embedded_work_on_pool_thread(void)
{
    MyRequest r;

    my_request_init(&r, 21);
    r.work.func = my_request_func;
    threadlet_submit(&r.work);
    my_request_wait(&r);
    g_assert_cmpint(r.result, ==, 42);
    g_assert_false(pthread_equal(r.ran_on, pthread_self()));
    my_request_cleanup(&r);
}

static void *get_global_thread(void *opaque)
{
    return threadlet_global_queue();
}

static void test_global_queue_is_created_once(void)
{
    DpThread threads[4];
    void *seen[4];
    int i;

    for (i = 0; i < 4; i++) {
        dp_thread_create(&threads[i], "tl-once", get_global_thread, NULL);
    }
    for (i = 0; i < 4; i++) {
        seen[i] = dp_thread_join(&threads[i]);
    }
    for (i = 0; i < 4; i++) {
        g_assert_true(seen[i] == threadlet_global_queue());
    }
    g_assert_cmpstr(threadlet_queue_get_name(threadlet_global_queue()), ==,
                    THREADLET_GLOBAL_QUEUE_NAME);
    g_assert_cmpint(stats_of(threadlet_global_queue()).max_threads, ==,
                    THREADLET_GLOBAL_MAX_THREADS);
}

static void test_private_queue_from_init_runs_work(void)
{
    ThreadletQueue q;
    MyRequest r;

    threadlet_queue_init(&q, 2, 0);
    g_assert_null(threadlet_queue_get_name(&q));
    my_request_init(&r, 5);
    r.work.func = my_request_func;
    threadlet_submit_to_queue(&q, &r.work);
    my_request_wait(&r);
    g_assert_cmpint(r.result, ==, 10);
    threadlet_queue_destroy(&q);
    my_request_cleanup(&r);
}

/* ---- thread management -------------------------------------------------- */

static void test_threads_start_lazily_up_to_max(void)
{
    ThreadletQueue *q = threadlet_queue_new("lazy", 3, 1);
    MyRequest r[10];
    Gate gate;
    int i;

    gate_init(&gate);
    g_assert_cmpint(stats_of(q).threads, ==, 0);
    for (i = 0; i < 10; i++) {
        my_request_init(&r[i], i);
        r[i].work.func = my_request_func;
        r[i].gate = &gate;
        threadlet_submit_to_queue(q, &r[i].work);
    }
    gate_wait_arrived(&gate, 3);
    ThreadletQueueStats s = stats_of(q);
    g_assert_cmpint(s.threads, ==, 3);
    g_assert_cmpint(s.idle_threads, ==, 0);
    g_assert_cmpint(s.queued, ==, 7);
    gate_open(&gate);
    for (i = 0; i < 10; i++) {
        my_request_wait(&r[i]);
        g_assert_cmpint(r[i].result, ==, 2 * i);
    }
    wait_completed(q, 10);
    g_assert_cmpint(stats_of(q).threads, <=, 3);
    threadlet_queue_destroy(q);
    for (i = 0; i < 10; i++) {
        my_request_cleanup(&r[i]);
    }
    gate_destroy(&gate);
}

static void test_idle_threads_shrink_to_min(void)
{
    ThreadletQueue *q = threadlet_queue_new("shrink", 6, 2);
    MyRequest r[6];
    Gate gate;
    int i;

    threadlet_queue_set_idle_timeout_ns(q, 1000000); /* 1 ms */
    gate_init(&gate);
    for (i = 0; i < 6; i++) {
        my_request_init(&r[i], i);
        r[i].work.func = my_request_func;
        r[i].gate = &gate;
        threadlet_submit_to_queue(q, &r[i].work);
    }
    gate_wait_arrived(&gate, 6);
    g_assert_cmpint(stats_of(q).threads, ==, 6);
    gate_open(&gate);

    /* Bounded wait on the counters, not on a clock. */
    for (i = 0; i < WAIT_STEPS; i++) {
        ThreadletQueueStats s = stats_of(q);

        if (s.threads == 2 && s.idle_threads == 2) {
            break;
        }
        sched_yield();
    }
    g_assert_cmpint(stats_of(q).threads, ==, 2);
    g_assert_cmpint(stats_of(q).idle_threads, ==, 2);
    g_assert_cmpuint(stats_of(q).completed, ==, 6);

    /* The kept threads still serve work. */
    my_request_cleanup(&r[0]);
    my_request_init(&r[0], 50);
    r[0].work.func = my_request_func;
    threadlet_submit_to_queue(q, &r[0].work);
    my_request_wait(&r[0]);
    g_assert_cmpint(r[0].result, ==, 100);

    threadlet_queue_destroy(q);
    for (i = 0; i < 6; i++) {
        my_request_cleanup(&r[i]);
    }
    gate_destroy(&gate);
}

/* Idle threads are woken one after the other (a chain), but every one of
 * them ends up working when the items block. */
static void test_burst_of_blocking_items_wakes_every_idle_thread(void)
{
    enum { N = 4 };
    ThreadletQueue *q = threadlet_queue_new("burst", N, N);
    MyRequest r[2][N];
    Gate gate[2];
    int round, i;

    for (round = 0; round < 2; round++) {
        gate_init(&gate[round]);
        for (i = 0; i < N; i++) {
            my_request_init(&r[round][i], i);
            r[round][i].work.func = my_request_func;
            r[round][i].gate = &gate[round];
            threadlet_submit_to_queue(q, &r[round][i].work);
        }
        /* Round 0 starts the threads, round 1 finds them all idle. */
        gate_wait_arrived(&gate[round], N);
        g_assert_cmpint(stats_of(q).threads, ==, N);
        gate_open(&gate[round]);
        wait_completed(q, (round + 1) * N);
        for (i = 0; i < WAIT_STEPS && stats_of(q).idle_threads < N; i++) {
            sched_yield();
        }
        g_assert_cmpint(stats_of(q).idle_threads, ==, N);
    }
    threadlet_queue_destroy(q);
    for (round = 0; round < 2; round++) {
        for (i = 0; i < N; i++) {
            my_request_cleanup(&r[round][i]);
        }
        gate_destroy(&gate[round]);
    }
}

/* Threads idle under the default 10 s timeout exit once it is shortened. */
static void test_shorter_idle_timeout_applies_to_waiting_threads(void)
{
    ThreadletQueue *q = threadlet_queue_new("retime", 3, 0);
    MyRequest r[3];
    Gate gate;
    int i;

    gate_init(&gate);
    for (i = 0; i < 3; i++) {
        my_request_init(&r[i], i);
        r[i].work.func = my_request_func;
        r[i].gate = &gate;
        threadlet_submit_to_queue(q, &r[i].work);
    }
    gate_wait_arrived(&gate, 3);
    gate_open(&gate);
    for (i = 0; i < WAIT_STEPS && stats_of(q).idle_threads < 3; i++) {
        sched_yield();
    }
    g_assert_cmpint(stats_of(q).idle_threads, ==, 3);
    threadlet_queue_set_idle_timeout_ns(q, 1000); /* 1 µs */
    for (i = 0; i < WAIT_STEPS && stats_of(q).threads > 0; i++) {
        sched_yield();
    }
    g_assert_cmpint(stats_of(q).threads, ==, 0);
    threadlet_queue_destroy(q);
    for (i = 0; i < 3; i++) {
        my_request_cleanup(&r[i]);
    }
    gate_destroy(&gate);
}

static void test_set_limits_rejects_bad_values(void)
{
    ThreadletQueue *q = threadlet_queue_new("limits", 4, 1);
    Error *err = NULL;

    g_assert_false(threadlet_queue_set_limits(q, 0, 0, &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;
    g_assert_false(threadlet_queue_set_limits(q, 2, 3, &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;
    g_assert_false(threadlet_queue_set_limits(q, 2, -1, &err));
    g_assert_nonnull(err);
    error_free(err);
    g_assert_true(threadlet_queue_set_limits(q, 8, 2, &error_abort));
    g_assert_cmpint(stats_of(q).max_threads, ==, 8);
    g_assert_cmpint(stats_of(q).min_threads, ==, 2);
    threadlet_queue_destroy(q);
}

static void test_lowering_max_retires_surplus_threads(void)
{
    ThreadletQueue *q = threadlet_queue_new("lower", 4, 0);
    MyRequest r[4];
    Gate gate;
    int i;

    gate_init(&gate);
    for (i = 0; i < 4; i++) {
        my_request_init(&r[i], i);
        r[i].work.func = my_request_func;
        r[i].gate = &gate;
        threadlet_submit_to_queue(q, &r[i].work);
    }
    gate_wait_arrived(&gate, 4);
    g_assert_true(threadlet_queue_set_limits(q, 1, 0, &error_abort));
    gate_open(&gate);
    for (i = 0; i < WAIT_STEPS && stats_of(q).threads > 1; i++) {
        sched_yield();
    }
    g_assert_cmpint(stats_of(q).threads, <=, 1);
    threadlet_queue_destroy(q);
    for (i = 0; i < 4; i++) {
        my_request_cleanup(&r[i]);
    }
    gate_destroy(&gate);
}

/* ---- submit_aio --------------------------------------------------------- */

static void test_submit_aio_done_never_runs_inside_submit(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    /* min == max: the worker never exits, so a completion it held back
     * until its next item (or its exit) would hang this test. */
    ThreadletQueue *q = threadlet_queue_new("inside", 1, 1);
    AioItem it = {.fn_ret = 7};
    int done = 0;

    it.done_counter = &done;
    threadlet_submit_aio_to_queue(q, ctx, item_fn, &it, item_done, &it);
    g_assert_cmpint(it.done_runs, ==, 0);
    wait_completed(q, 1);
    /* fn has returned, but done waits for the loop. */
    g_assert_cmpint(it.done_runs, ==, 0);
    poll_until_count(ctx, &done, 1);
    g_assert_cmpint(it.done_runs, ==, 1);
    g_assert_cmpint(it.done_ret, ==, 7);
    g_assert_cmpint(atomic_read_seq(&it.fn_runs), ==, 1);
    threadlet_queue_destroy(q);
    aio_context_unref(ctx);
}

typedef struct LoopThread {
    AioContext *ctx;
    DpThread thread;
    pthread_t self;
    bool stop;  /* atomic */
    bool ready; /* atomic */
} LoopThread;

static void *loop_thread_fn(void *opaque)
{
    LoopThread *lt = opaque;

    lt->self = pthread_self();
    atomic_store_release(&lt->ready, true);
    while (!atomic_load_acquire(&lt->stop)) {
        aio_poll(lt->ctx, true);
    }
    return NULL;
}

static void test_submit_aio_done_runs_in_ctx_thread(void)
{
    LoopThread lt = {0};
    AioItem items[16];
    int done = 0;
    int i;

    lt.ctx = aio_context_new(&error_abort);
    dp_thread_create(&lt.thread, "tl-loop", loop_thread_fn, &lt);
    for (i = 0; i < WAIT_STEPS && !atomic_load_acquire(&lt.ready); i++) {
        sched_yield();
    }
    g_assert_true(atomic_load_acquire(&lt.ready));

    /* Submitted from this thread, completed in the loop thread. */
    for (i = 0; i < 16; i++) {
        items[i] = (AioItem){.fn_ret = i, .done_counter = &done};
        threadlet_submit_aio(lt.ctx, item_fn, &items[i], item_done, &items[i]);
    }
    for (i = 0; i < WAIT_STEPS && atomic_load_acquire(&done) < 16; i++) {
        sched_yield();
    }
    g_assert_cmpint(atomic_load_acquire(&done), ==, 16);
    atomic_store_release(&lt.stop, true);
    aio_notify(lt.ctx);
    dp_thread_join(&lt.thread);
    for (i = 0; i < 16; i++) {
        g_assert_cmpint(items[i].done_runs, ==, 1);
        g_assert_cmpint(items[i].done_ret, ==, i);
        g_assert_true(pthread_equal(items[i].done_thread, lt.self));
    }
    aio_context_unref(lt.ctx);
}

static void test_ready_completions_are_delivered_by_one_bh(void)
{
    enum { N = 64 };
    AioContext *ctx = aio_context_new(&error_abort);
    ThreadletQueue *q = threadlet_queue_new("batch", 4, 0);
    AioItem items[N];
    AioContextStats before, after;
    ThreadletQueueStats qs;
    int done = 0;
    int i;

    for (i = 0; i < N; i++) {
        items[i] = (AioItem){.fn_ret = i, .done_counter = &done};
        threadlet_submit_aio_to_queue(q, ctx, item_fn, &items[i], item_done,
                                      &items[i]);
    }
    wait_completed(q, N);
    aio_context_get_stats(ctx, &before);
    g_assert_cmpuint(stats_of(q).completion_batches, ==, 0);

    /* One iteration of the loop delivers all N, from one BH. */
    g_assert_true(aio_poll(ctx, true));
    aio_context_get_stats(ctx, &after);
    g_assert_cmpint(done, ==, N);
    g_assert_cmpuint(after.iterations - before.iterations, ==, 1);
    g_assert_cmpuint(after.notify_writes - before.notify_writes, <=, 1);
    threadlet_queue_get_stats(q, &qs);
    g_assert_cmpuint(qs.completion_batches, ==, 1);
    for (i = 0; i < N; i++) {
        g_assert_cmpint(items[i].done_runs, ==, 1);
        g_assert_cmpint(items[i].done_ret, ==, i);
    }
    g_assert_false(aio_poll(ctx, false));
    threadlet_queue_destroy(q);
    aio_context_unref(ctx);
}

/* done(A) polls the context until done(B) has run, B having completed in
 * the same batch as A (the drain pattern). */
typedef struct NestedPoll {
    AioContext *ctx;
    AioItem b;
    bool b_seen_inside_a;
} NestedPoll;

static void nested_done_a(void *opaque, int ret)
{
    NestedPoll *np = opaque;
    int i;

    for (i = 0; i < 1000 && !np->b.done_runs; i++) {
        aio_poll(np->ctx, false);
    }
    np->b_seen_inside_a = np->b.done_runs == 1;
}

static void test_done_may_poll_for_a_completion_of_the_same_batch(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    ThreadletQueue *q = threadlet_queue_new("nested", 1, 1);
    NestedPoll np = {.ctx = ctx, .b = {.fn_ret = 2}};
    AioItem a = {.fn_ret = 1};
    ThreadletQueueStats s;

    threadlet_submit_aio_to_queue(q, ctx, item_fn, &a, nested_done_a, &np);
    threadlet_submit_aio_to_queue(q, ctx, item_fn, &np.b, item_done, &np.b);
    wait_completed(q, 2);
    g_assert_cmpuint(stats_of(q).completion_batches, ==, 0);
    g_assert_true(aio_poll(ctx, true));
    g_assert_true(np.b_seen_inside_a);
    g_assert_cmpint(np.b.done_runs, ==, 1);
    g_assert_cmpint(np.b.done_ret, ==, 2);
    /* Nothing is delivered twice afterwards. */
    while (aio_poll(ctx, false)) {
    }
    g_assert_cmpint(np.b.done_runs, ==, 1);
    threadlet_queue_get_stats(q, &s);
    g_assert_cmpuint(s.completion_batches, ==, 1);
    threadlet_queue_destroy(q);
    aio_context_unref(ctx);
}

static void *get_queue_thread(void *opaque)
{
    return threadlet_context_get_queue(opaque);
}

static ThreadletQueue *queue_seen_by_other_thread(AioContext *ctx)
{
    DpThread t;

    dp_thread_create(&t, "tl-bind", get_queue_thread, ctx);
    return dp_thread_join(&t);
}

static void test_bound_context_sends_submit_aio_to_its_queue(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    ThreadletQueue *q = threadlet_queue_new("bound", 2, 0);
    ThreadletQueue *global = threadlet_global_queue();
    AioItem it = {.fn_ret = 5};
    int done = 0;

    g_assert_true(threadlet_context_get_queue(ctx) == global);
    threadlet_context_set_queue(ctx, q);
    /* Seen at once, by this thread's cache and by a fresh thread. */
    g_assert_true(threadlet_context_get_queue(ctx) == q);
    g_assert_true(queue_seen_by_other_thread(ctx) == q);

    it.done_counter = &done;
    threadlet_submit_aio(ctx, item_fn, &it, item_done, &it);
    poll_until_count(ctx, &done, 1);
    g_assert_cmpint(it.done_ret, ==, 5);
    g_assert_cmpuint(stats_of(q).completed, ==, 1);

    threadlet_context_set_queue(ctx, NULL);
    g_assert_true(threadlet_context_get_queue(ctx) == global);

    /* Destroying a bound queue unbinds it. */
    threadlet_context_set_queue(ctx, q);
    g_assert_true(threadlet_context_get_queue(ctx) == q);
    threadlet_queue_destroy(q);
    g_assert_true(threadlet_context_get_queue(ctx) == global);
    g_assert_true(queue_seen_by_other_thread(ctx) == global);
    aio_context_unref(ctx);
}

/* ---- cancel ------------------------------------------------------------- */

static void test_cancel_queued_aio_work_runs_done_with_ecanceled(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    ThreadletQueue *q = threadlet_queue_new("cq", 1, 0);
    Gate gate;
    AioItem blocker = {.fn_ret = 1};
    AioItem victim = {.fn_ret = 2};
    ThreadletWork *w;
    int done = 0;

    gate_init(&gate);
    blocker.gate = &gate;
    blocker.done_counter = &done;
    victim.done_counter = &done;
    threadlet_submit_aio_to_queue(q, ctx, item_fn, &blocker, item_done,
                                  &blocker);
    gate_wait_arrived(&gate, 1); /* the only thread is busy */
    w = threadlet_submit_aio_to_queue(q, ctx, item_fn, &victim, item_done,
                                      &victim);
    g_assert_cmpint(threadlet_cancel(w), ==, THREADLET_CANCELLED);
    /* A second cancel of the same handle says the same, nothing more. */
    g_assert_cmpint(threadlet_cancel_on_queue(q, w), ==, THREADLET_CANCELLED);
    g_assert_cmpint(victim.done_runs, ==, 0); /* not inside cancel either */
    gate_open(&gate);
    poll_until_count(ctx, &done, 2);
    g_assert_cmpint(atomic_read_seq(&victim.fn_runs), ==, 0);
    g_assert_cmpint(victim.done_runs, ==, 1);
    g_assert_cmpint(victim.done_ret, ==, -ECANCELED);
    g_assert_cmpint(blocker.done_ret, ==, 1);
    g_assert_cmpuint(stats_of(q).cancelled, ==, 1);
    threadlet_queue_destroy(q);
    gate_destroy(&gate);
    aio_context_unref(ctx);
}

static void test_cancel_running_aio_work_returns_running(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    ThreadletQueue *q = threadlet_queue_new("cr", 1, 0);
    Gate gate;
    AioItem it = {.fn_ret = 33};
    ThreadletWork *w;
    int done = 0;

    gate_init(&gate);
    it.gate = &gate;
    it.done_counter = &done;
    w = threadlet_submit_aio_to_queue(q, ctx, item_fn, &it, item_done, &it);
    gate_wait_arrived(&gate, 1);
    g_assert_cmpint(threadlet_cancel(w), ==, THREADLET_RUNNING);
    gate_open(&gate);
    poll_until_count(ctx, &done, 1);
    g_assert_cmpint(it.done_runs, ==, 1);
    g_assert_cmpint(it.done_ret, ==, 33);
    threadlet_queue_destroy(q);
    gate_destroy(&gate);
    aio_context_unref(ctx);
}

static void test_cancel_finished_aio_work_returns_done(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    ThreadletQueue *q = threadlet_queue_new("cd", 1, 0);
    AioItem it = {.fn_ret = 44};
    ThreadletWork *w;
    int done = 0;

    it.done_counter = &done;
    w = threadlet_submit_aio_to_queue(q, ctx, item_fn, &it, item_done, &it);
    wait_completed(q, 1);
    /* fn has returned; done has not run yet, so the handle is valid. */
    g_assert_cmpint(threadlet_cancel(w), ==, THREADLET_DONE);
    poll_until_count(ctx, &done, 1);
    g_assert_cmpint(it.done_ret, ==, 44);
    threadlet_queue_destroy(q);
    aio_context_unref(ctx);
}

static void test_cancel_plain_work_three_results(void)
{
    ThreadletQueue *q = threadlet_queue_new("cp", 1, 0);
    MyRequest running, queued, finished;
    Gate gate;

    gate_init(&gate);
    my_request_init(&finished, 1);
    finished.work.func = my_request_func;
    threadlet_submit_to_queue(q, &finished.work);
    my_request_wait(&finished);
    wait_completed(q, 1);
    g_assert_cmpint(threadlet_cancel(&finished.work), ==, THREADLET_DONE);

    my_request_init(&running, 2);
    running.work.func = my_request_func;
    running.gate = &gate;
    threadlet_submit_to_queue(q, &running.work);
    gate_wait_arrived(&gate, 1);
    g_assert_cmpint(threadlet_cancel(&running.work), ==, THREADLET_RUNNING);

    my_request_init(&queued, 3);
    queued.work.func = my_request_func;
    threadlet_submit_to_queue(q, &queued.work);
    g_assert_cmpint(threadlet_cancel_on_queue(q, &queued.work), ==,
                    THREADLET_CANCELLED);

    gate_open(&gate);
    my_request_wait(&running);
    wait_completed(q, 2);
    g_assert_cmpint(threadlet_cancel(&running.work), ==, THREADLET_DONE);
    g_assert_cmpint(atomic_read_seq(&queued.runs), ==, 0);

    /* A cancelled item may be submitted again, and then it runs. */
    threadlet_submit_to_queue(q, &queued.work);
    my_request_wait(&queued);
    g_assert_cmpint(queued.result, ==, 6);

    threadlet_queue_destroy(q);
    my_request_cleanup(&finished);
    my_request_cleanup(&running);
    my_request_cleanup(&queued);
    gate_destroy(&gate);
}

static void test_cancel_on_other_queue_is_einval(void)
{
    ThreadletQueue *a = threadlet_queue_new("a", 1, 0);
    ThreadletQueue *b = threadlet_queue_new("b", 1, 0);
    MyRequest r;

    my_request_init(&r, 1);
    r.work.func = my_request_func;
    threadlet_submit_to_queue(a, &r.work);
    g_assert_cmpint(threadlet_cancel_on_queue(b, &r.work), ==, -EINVAL);
    my_request_wait(&r);
    threadlet_queue_destroy(a);
    threadlet_queue_destroy(b);
    my_request_cleanup(&r);
}

/*
 * Cancel straight after submit, while idle threads race to pick the item up.
 * Whatever cancel answers must be true: CANCELLED means fn never ran and done
 * got -ECANCELED; otherwise fn ran once and done got its result.  done runs
 * exactly once either way.
 */
static void test_cancel_racing_pickup_never_runs_twice_or_loses(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    ThreadletQueue *q = threadlet_queue_new("race", 4, 4);
    AioItem *items = g_new0(AioItem, RACE_ROUNDS);
    int *answers = g_new(int, RACE_ROUNDS);
    int done = 0;
    int cancelled = 0;
    int i;

    for (i = 0; i < RACE_ROUNDS; i++) {
        ThreadletWork *w;

        items[i].fn_ret = i;
        items[i].done_counter = &done;
        w = threadlet_submit_aio_to_queue(q, ctx, item_fn, &items[i], item_done,
                                          &items[i]);
        if (i % 3 == 1) {
            sched_yield(); /* vary the window between submit and cancel */
        }
        answers[i] = threadlet_cancel(w);
        if (i % 64 == 63) {
            aio_poll(ctx, false);
        }
    }
    poll_until_count(ctx, &done, RACE_ROUNDS);
    for (i = 0; i < RACE_ROUNDS; i++) {
        AioItem *it = &items[i];

        g_assert_cmpint(it->done_runs, ==, 1);
        if (answers[i] == THREADLET_CANCELLED) {
            cancelled++;
            g_assert_cmpint(atomic_read_seq(&it->fn_runs), ==, 0);
            g_assert_cmpint(it->done_ret, ==, -ECANCELED);
        } else {
            g_assert_true(answers[i] == THREADLET_RUNNING ||
                          answers[i] == THREADLET_DONE);
            g_assert_cmpint(atomic_read_seq(&it->fn_runs), ==, 1);
            g_assert_cmpint(it->done_ret, ==, i);
        }
    }
    g_assert_cmpuint(stats_of(q).cancelled, ==, (uint64_t)cancelled);
    g_assert_cmpuint(stats_of(q).completed, ==,
                     (uint64_t)(RACE_ROUNDS - cancelled));
    g_test_message("%d of %d cancelled before pick-up", cancelled, RACE_ROUNDS);
    threadlet_queue_destroy(q);
    g_free(items);
    g_free(answers);
    aio_context_unref(ctx);
}

typedef struct RaceWork {
    ThreadletWork work;
    int runs; /* atomic */
} RaceWork;

static void race_work_func(ThreadletWork *work)
{
    RaceWork *rw = container_of(work, RaceWork, work);

    atomic_fetch_add_seq(&rw->runs, 1);
}

/* The same race for plain work: CANCELLED means func never runs, anything
 * else means it runs exactly once. */
static void test_cancel_racing_pickup_plain_work(void)
{
    ThreadletQueue *q = threadlet_queue_new("race-plain", 4, 4);
    RaceWork *items = g_new0(RaceWork, RACE_ROUNDS);
    int *answers = g_new(int, RACE_ROUNDS);
    int cancelled = 0;
    int i;

    for (i = 0; i < RACE_ROUNDS; i++) {
        items[i].work.func = race_work_func;
        threadlet_submit_to_queue(q, &items[i].work);
        if (i % 3 == 1) {
            sched_yield();
        }
        answers[i] = threadlet_cancel(&items[i].work);
        cancelled += answers[i] == THREADLET_CANCELLED;
    }
    wait_completed(q, RACE_ROUNDS - cancelled);
    for (i = 0; i < RACE_ROUNDS; i++) {
        int runs = atomic_read_seq(&items[i].runs);

        g_assert_cmpint(runs, ==, answers[i] == THREADLET_CANCELLED ? 0 : 1);
        g_assert_cmpint(threadlet_cancel(&items[i].work), ==,
                        answers[i] == THREADLET_CANCELLED ? THREADLET_CANCELLED
                                                          : THREADLET_DONE);
    }
    threadlet_queue_destroy(q);
    g_free(items);
    g_free(answers);
}

/* ---- destroy ------------------------------------------------------------ */

typedef struct Destroyer {
    ThreadletQueue *q;
    DpThread thread;
} Destroyer;

static void *destroyer_fn(void *opaque)
{
    Destroyer *d = opaque;

    threadlet_queue_destroy(d->q);
    return NULL;
}

static void test_destroy_waits_for_running_and_cancels_queued(void)
{
    enum { RUNNING = 2, QUEUED = 5 };
    AioContext *ctx = aio_context_new(&error_abort);
    int threads_before = count_threads();
    ThreadletQueue *q = threadlet_queue_new("destroy", RUNNING, 0);
    AioItem running[RUNNING], queued[QUEUED];
    MyRequest plain;
    Destroyer d = {.q = q};
    Gate gate;
    int cancelled_done = 0, running_done = 0;
    int i;

    gate_init(&gate);
    for (i = 0; i < RUNNING; i++) {
        running[i] = (AioItem){
            .gate = &gate, .fn_ret = 100 + i, .done_counter = &running_done};
        threadlet_submit_aio_to_queue(q, ctx, item_fn, &running[i], item_done,
                                      &running[i]);
    }
    gate_wait_arrived(&gate, RUNNING);
    for (i = 0; i < QUEUED; i++) {
        queued[i] = (AioItem){.fn_ret = i, .done_counter = &cancelled_done};
        threadlet_submit_aio_to_queue(q, ctx, item_fn, &queued[i], item_done,
                                      &queued[i]);
    }
    my_request_init(&plain, 9);
    plain.work.func = my_request_func;
    threadlet_submit_to_queue(q, &plain.work);

    dp_thread_create(&d.thread, "tl-destroy", destroyer_fn, &d);
    /* The queued items come back cancelled while the running ones still
     * hold their threads, so destroy is waiting for them. */
    poll_until_count(ctx, &cancelled_done, QUEUED);
    g_assert_cmpint(atomic_load_acquire(&running_done), ==, 0);
    gate_open(&gate);
    dp_thread_join(&d.thread);

    /* The queue is gone; its last completions are still delivered. */
    poll_until_count(ctx, &running_done, RUNNING);
    for (i = 0; i < RUNNING; i++) {
        g_assert_cmpint(running[i].done_runs, ==, 1);
        g_assert_cmpint(running[i].done_ret, ==, 100 + i);
    }
    for (i = 0; i < QUEUED; i++) {
        g_assert_cmpint(queued[i].done_runs, ==, 1);
        g_assert_cmpint(queued[i].done_ret, ==, -ECANCELED);
        g_assert_cmpint(atomic_read_seq(&queued[i].fn_runs), ==, 0);
    }
    g_assert_cmpint(atomic_read_seq(&plain.runs), ==, 0);
    /* No thread of the queue is left (other pools' threads may only have
     * exited meanwhile). */
    g_assert_cmpint(count_threads(), <=, threads_before);
    g_assert_false(aio_poll(ctx, false));
    my_request_cleanup(&plain);
    gate_destroy(&gate);
    aio_context_unref(ctx);
}

static void test_destroy_idle_queue_joins_min_threads(void)
{
    int threads_before = count_threads();
    ThreadletQueue *q = threadlet_queue_new("idle", 3, 3);
    MyRequest r[3];
    Gate gate;
    int i;

    gate_init(&gate);
    for (i = 0; i < 3; i++) {
        my_request_init(&r[i], i);
        r[i].work.func = my_request_func;
        r[i].gate = &gate;
        threadlet_submit_to_queue(q, &r[i].work);
    }
    gate_wait_arrived(&gate, 3);
    g_assert_cmpint(stats_of(q).threads, ==, 3);
    gate_open(&gate);
    wait_completed(q, 3);
    threadlet_queue_destroy(q);
    g_assert_cmpint(count_threads(), <=, threads_before);
    for (i = 0; i < 3; i++) {
        my_request_cleanup(&r[i]);
    }
    gate_destroy(&gate);
}

/* ---- stress ------------------------------------------------------------- */

typedef struct Stress {
    ThreadletQueue *q;
    uint64_t *fn_bits;   /* set by fn, atomic */
    uint64_t *done_bits; /* set by done, atomic */
    int base;
    int count;
    AioContext *ctx;
    int done; /* this submitter's done count, its own thread only */
    int dup;  /* doubles seen, atomic */
    pthread_t self;
    int wrong_thread;
} Stress;

typedef struct StressItem {
    Stress *s;
    int index;
} StressItem;

static bool set_bit_once(uint64_t *bits, int index)
{
    uint64_t mask = 1ULL << (index % 64);

    return !(atomic_fetch_or(&bits[index / 64], mask) & mask);
}

static int stress_fn(void *arg)
{
    StressItem *it = arg;

    if (!set_bit_once(it->s->fn_bits, it->index)) {
        atomic_fetch_add_seq(&it->s->dup, 1);
    }
    return it->index;
}

static void stress_done(void *opaque, int ret)
{
    StressItem *it = opaque;
    Stress *s = it->s;

    if (ret != it->index || !set_bit_once(s->done_bits, it->index)) {
        atomic_fetch_add_seq(&s->dup, 1);
    }
    if (!pthread_equal(pthread_self(), s->self)) {
        s->wrong_thread++;
    }
    s->done++;
    g_free(it);
}

static void *stress_thread(void *opaque)
{
    Stress *s = opaque;
    int submitted = 0;
    int steps = 0;

    s->self = pthread_self();
    while (s->done < s->count && steps++ < 50 * STRESS_ITEMS) {
        while (submitted < s->count && submitted - s->done < STRESS_WINDOW) {
            StressItem *it = g_new(StressItem, 1);

            it->s = s;
            it->index = s->base + submitted++;
            threadlet_submit_aio_to_queue(s->q, s->ctx, stress_fn, it,
                                          stress_done, it);
        }
        aio_poll(s->ctx, true);
    }
    return NULL;
}

static void test_million_items_from_4_threads_complete_exactly_once(void)
{
    ThreadletQueue *q = threadlet_queue_new("stress", 4, 0);
    int words = (STRESS_ITEMS + 63) / 64;
    uint64_t *fn_bits = g_new0(uint64_t, words);
    uint64_t *done_bits = g_new0(uint64_t, words);
    Stress s[STRESS_THREADS];
    DpThread threads[STRESS_THREADS];
    int per = STRESS_ITEMS / STRESS_THREADS;
    int i;

    for (i = 0; i < STRESS_THREADS; i++) {
        s[i] = (Stress){
            .q = q,
            .fn_bits = fn_bits,
            .done_bits = done_bits,
            .base = i * per,
            .count = i == STRESS_THREADS - 1 ? STRESS_ITEMS - i * per : per,
            .ctx = aio_context_new(&error_abort)};
        dp_thread_create(&threads[i], "tl-stress", stress_thread, &s[i]);
    }
    for (i = 0; i < STRESS_THREADS; i++) {
        dp_thread_join(&threads[i]);
        g_assert_cmpint(s[i].done, ==, s[i].count);
        g_assert_cmpint(atomic_read_seq(&s[i].dup), ==, 0);
        g_assert_cmpint(s[i].wrong_thread, ==, 0);
        g_assert_false(aio_poll(s[i].ctx, false));
        aio_context_unref(s[i].ctx);
    }
    for (i = 0; i < STRESS_ITEMS; i++) {
        uint64_t mask = 1ULL << (i % 64);

        if (!(fn_bits[i / 64] & mask) || !(done_bits[i / 64] & mask)) {
            g_error("item %d: fn ran %d, done ran %d", i,
                    !!(fn_bits[i / 64] & mask), !!(done_bits[i / 64] & mask));
        }
    }
    g_assert_cmpuint(stats_of(q).completed, ==, STRESS_ITEMS);
    g_test_message("%d items in %" G_GUINT64_FORMAT " completion batches",
                   STRESS_ITEMS, stats_of(q).completion_batches);
    threadlet_queue_destroy(q);
    g_free(fn_bits);
    g_free(done_bits);
}

/* ---- object registry ---------------------------------------------------- */

static int64_t prop_int(Object *obj, const char *name)
{
    int64_t v = -1;

    g_assert_true(object_property_get_int(obj, name, &v, &error_abort));
    return v;
}

static void test_named_queue_is_an_object_with_live_counters(void)
{
    ThreadletQueue *q = threadlet_queue_new("pool0", 3, 1);
    MyRequest r[2];
    Object *obj;
    Error *err = NULL;
    Gate gate;
    int i;

    g_assert_true(threadlet_queue_register_object(q, &error_abort));
    obj = object_find("pool0");
    g_assert_nonnull(obj);
    g_assert_cmpstr(object_get_type(obj), ==, "threadlet-queue");
    g_assert_true(object_get_instance(obj) == q);
    g_assert_cmpint(prop_int(obj, "max-threads"), ==, 3);
    g_assert_cmpint(prop_int(obj, "min-threads"), ==, 1);
    g_assert_cmpint(prop_int(obj, "threads"), ==, 0);

    gate_init(&gate);
    for (i = 0; i < 2; i++) {
        my_request_init(&r[i], i);
        r[i].work.func = my_request_func;
        r[i].gate = &gate;
        threadlet_submit_to_queue(q, &r[i].work);
    }
    gate_wait_arrived(&gate, 2);
    g_assert_cmpint(prop_int(obj, "threads"), ==, 2);
    g_assert_cmpint(prop_int(obj, "idle-threads"), ==, 0);
    g_assert_cmpint(prop_int(obj, "queued"), ==, 0);
    g_assert_cmpint(prop_int(obj, "completed"), ==, 0);
    gate_open(&gate);
    wait_completed(q, 2);
    g_assert_cmpint(prop_int(obj, "completed"), ==, 2);

    /* The limits are settable, with the queue's own checks. */
    g_assert_true(object_property_set_int(obj, "max-threads", 5, &error_abort));
    g_assert_cmpint(stats_of(q).max_threads, ==, 5);
    g_assert_true(object_property_set_int(obj, "min-threads", 2, &error_abort));
    g_assert_cmpint(stats_of(q).min_threads, ==, 2);
    g_assert_false(object_property_set_int(obj, "min-threads", 6, &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;
    g_assert_false(object_property_set_int(obj, "max-threads", 0, &err));
    error_free(err);
    err = NULL;
    /* The counters are not. */
    g_assert_false(object_property_set_int(obj, "threads", 9, &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;

    g_assert_false(threadlet_queue_register_object(q, &err));
    g_assert_nonnull(err);
    error_free(err);

    threadlet_queue_destroy(q); /* unregisters */
    g_assert_null(object_find("pool0"));
    for (i = 0; i < 2; i++) {
        my_request_cleanup(&r[i]);
    }
    gate_destroy(&gate);
    object_registry_cleanup();
}

static void test_global_queue_is_an_object(void)
{
    Object *obj;

    g_assert_true(threadlet_queue_register_object(threadlet_global_queue(),
                                                  &error_abort));
    obj = object_find(THREADLET_GLOBAL_QUEUE_NAME);
    g_assert_nonnull(obj);
    g_assert_cmpint(prop_int(obj, "max-threads"), ==,
                    THREADLET_GLOBAL_MAX_THREADS);
    object_registry_cleanup();
    /* After a registry reset it can be registered again. */
    g_assert_true(threadlet_queue_register_object(threadlet_global_queue(),
                                                  &error_abort));
    object_registry_cleanup();
}

static void test_anonymous_queue_cannot_be_an_object(void)
{
    ThreadletQueue q;
    Error *err = NULL;

    threadlet_queue_init(&q, 1, 0);
    g_assert_false(threadlet_queue_register_object(&q, &err));
    g_assert_nonnull(err);
    error_free(err);
    threadlet_queue_destroy(&q);
}

/*
 * Four threads submit into one context that a fifth thread runs: the
 * per-context record is created, shared, emptied and freed again while
 * the submitters race, and every done still runs once, in the loop thread.
 */
#define SHARED_ITEMS 200000

typedef struct SharedLoop {
    AioContext *ctx;
    ThreadletQueue *q;
    uint64_t *bits;
    pthread_t loop_thread;
    int done;       /* loop thread only */
    int errors;     /* loop thread only */
    int next_index; /* atomic */
} SharedLoop;

typedef struct SharedItem {
    SharedLoop *sl;
    int index;
} SharedItem;

static int shared_fn(void *arg)
{
    SharedItem *it = arg;

    return it->index;
}

static void shared_done(void *opaque, int ret)
{
    SharedItem *it = opaque;
    SharedLoop *sl = it->sl;

    if (ret != it->index || !set_bit_once(sl->bits, it->index) ||
        !pthread_equal(pthread_self(), sl->loop_thread)) {
        sl->errors++;
    }
    sl->done++;
    g_free(it);
}

static void *shared_submitter(void *opaque)
{
    SharedLoop *sl = opaque;
    int i;

    for (i = 0; i < SHARED_ITEMS / STRESS_THREADS; i++) {
        SharedItem *it = g_new(SharedItem, 1);

        it->sl = sl;
        it->index = atomic_fetch_add_seq(&sl->next_index, 1);
        threadlet_submit_aio_to_queue(sl->q, sl->ctx, shared_fn, it,
                                      shared_done, it);
        if (i % 256 == 255) {
            sched_yield(); /* let the record go idle now and then */
        }
    }
    return NULL;
}

static void *shared_loop(void *opaque)
{
    SharedLoop *sl = opaque;
    int steps;

    for (steps = 0; steps < 50 * SHARED_ITEMS && sl->done < SHARED_ITEMS;
         steps++) {
        aio_poll(sl->ctx, true);
    }
    return NULL;
}

static void test_submitters_sharing_one_context_complete_exactly_once(void)
{
    SharedLoop sl = {0};
    DpThread loop, subs[STRESS_THREADS];
    int i;

    sl.ctx = aio_context_new(&error_abort);
    sl.q = threadlet_queue_new("shared", 4, 0);
    sl.bits = g_new0(uint64_t, (SHARED_ITEMS + 63) / 64);
    dp_thread_create(&loop, "tl-shared-loop", shared_loop, &sl);
    sl.loop_thread = loop.t;
    for (i = 0; i < STRESS_THREADS; i++) {
        dp_thread_create(&subs[i], "tl-shared-sub", shared_submitter, &sl);
    }
    for (i = 0; i < STRESS_THREADS; i++) {
        dp_thread_join(&subs[i]);
    }
    dp_thread_join(&loop);
    g_assert_cmpint(sl.done, ==, SHARED_ITEMS);
    g_assert_cmpint(sl.errors, ==, 0);
    for (i = 0; i < SHARED_ITEMS; i++) {
        g_assert_true(sl.bits[i / 64] & (1ULL << (i % 64)));
    }
    g_assert_false(aio_poll(sl.ctx, false));
    threadlet_queue_destroy(sl.q);
    g_free(sl.bits);
    aio_context_unref(sl.ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/threadlet/submit/embedded-work-runs-on-pool-thread",
                    test_submit_runs_embedded_work_on_pool_thread);
    g_test_add_func("/threadlet/global/created-once",
                    test_global_queue_is_created_once);
    g_test_add_func("/threadlet/queue/init-runs-work",
                    test_private_queue_from_init_runs_work);
    g_test_add_func("/threadlet/queue/threads-start-lazily-up-to-max",
                    test_threads_start_lazily_up_to_max);
    g_test_add_func("/threadlet/queue/idle-threads-shrink-to-min",
                    test_idle_threads_shrink_to_min);
    g_test_add_func("/threadlet/queue/burst-wakes-every-idle-thread",
                    test_burst_of_blocking_items_wakes_every_idle_thread);
    g_test_add_func("/threadlet/queue/shorter-idle-timeout-applies-at-once",
                    test_shorter_idle_timeout_applies_to_waiting_threads);
    g_test_add_func("/threadlet/queue/set-limits-rejects-bad-values",
                    test_set_limits_rejects_bad_values);
    g_test_add_func("/threadlet/queue/lowering-max-retires-surplus",
                    test_lowering_max_retires_surplus_threads);
    g_test_add_func("/threadlet/aio/done-never-inside-submit",
                    test_submit_aio_done_never_runs_inside_submit);
    g_test_add_func("/threadlet/aio/done-runs-in-ctx-thread",
                    test_submit_aio_done_runs_in_ctx_thread);
    g_test_add_func("/threadlet/aio/ready-completions-one-bh",
                    test_ready_completions_are_delivered_by_one_bh);
    g_test_add_func("/threadlet/aio/done-may-poll-for-same-batch",
                    test_done_may_poll_for_a_completion_of_the_same_batch);
    g_test_add_func("/threadlet/aio/bound-context-uses-its-queue",
                    test_bound_context_sends_submit_aio_to_its_queue);
    g_test_add_func("/threadlet/cancel/queued-aio-done-ecanceled",
                    test_cancel_queued_aio_work_runs_done_with_ecanceled);
    g_test_add_func("/threadlet/cancel/running-aio-returns-running",
                    test_cancel_running_aio_work_returns_running);
    g_test_add_func("/threadlet/cancel/finished-aio-returns-done",
                    test_cancel_finished_aio_work_returns_done);
    g_test_add_func("/threadlet/cancel/plain-work-three-results",
                    test_cancel_plain_work_three_results);
    g_test_add_func("/threadlet/cancel/other-queue-einval",
                    test_cancel_on_other_queue_is_einval);
    g_test_add_func("/threadlet/cancel/racing-pickup-exactly-once",
                    test_cancel_racing_pickup_never_runs_twice_or_loses);
    g_test_add_func("/threadlet/cancel/racing-pickup-plain-work",
                    test_cancel_racing_pickup_plain_work);
    g_test_add_func("/threadlet/destroy/waits-running-cancels-queued",
                    test_destroy_waits_for_running_and_cancels_queued);
    g_test_add_func("/threadlet/destroy/joins-min-threads",
                    test_destroy_idle_queue_joins_min_threads);
    g_test_add_func("/threadlet/stress/million-from-4-threads-exactly-once",
                    test_million_items_from_4_threads_complete_exactly_once);
    g_test_add_func("/threadlet/stress/shared-context-exactly-once",
                    test_submitters_sharing_one_context_complete_exactly_once);
    g_test_add_func("/threadlet/object/named-queue-live-counters",
                    test_named_queue_is_an_object_with_live_counters);
    g_test_add_func("/threadlet/object/global-queue",
                    test_global_queue_is_an_object);
    g_test_add_func("/threadlet/object/anonymous-queue-refused",
                    test_anonymous_queue_cannot_be_an_object);
    return g_test_run();
}
