/*
 * Threadlets: lazy threads, idle shrink, submit and submit_aio, batched
 * completions, the three cancel results, destroy with work in flight, the
 * registry objects.  Races and load are in test-threadlet-stress.c.
 */

#include <errno.h>
#include <glib.h>
#include <sched.h>

#include "dataplane/object.h"
#include "dataplane/threadlet.h"
#include "tests/unit/test-util.h"
#include "tests/unit/threadlet-test-util.h"
#include "util/atomic.h"
#include "util/thread.h"

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

    threadlet_queue_init(&q, 0, 2);
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
    ThreadletQueue *q = threadlet_queue_new("lazy", 1, 3);
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
    ThreadletQueue *q = threadlet_queue_new("shrink", 2, 6);
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
    ThreadletQueue *q = threadlet_queue_new("retime", 0, 3);
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
    ThreadletQueue *q = threadlet_queue_new("limits", 1, 4);
    Error *err = NULL;

    g_assert_false(threadlet_queue_set_limits(q, 0, 0, &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;
    g_assert_false(threadlet_queue_set_limits(q, 3, 2, &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;
    g_assert_false(threadlet_queue_set_limits(q, -1, 2, &err));
    g_assert_nonnull(err);
    error_free(err);
    g_assert_true(threadlet_queue_set_limits(q, 2, 8, &error_abort));
    g_assert_cmpint(stats_of(q).max_threads, ==, 8);
    g_assert_cmpint(stats_of(q).min_threads, ==, 2);
    threadlet_queue_destroy(q);
}

static void test_lowering_max_retires_surplus_threads(void)
{
    ThreadletQueue *q = threadlet_queue_new("lower", 0, 4);
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
    g_assert_true(threadlet_queue_set_limits(q, 0, 1, &error_abort));
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
    g_assert_cmpint(dp_atomic_load_seq_cst(&it.fn_runs), ==, 1);
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
    dp_atomic_store_release(&lt->ready, true);
    while (!dp_atomic_load_acquire(&lt->stop)) {
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
    for (i = 0; i < WAIT_STEPS && !dp_atomic_load_acquire(&lt.ready); i++) {
        sched_yield();
    }
    g_assert_true(dp_atomic_load_acquire(&lt.ready));

    /* Submitted from this thread, completed in the loop thread. */
    for (i = 0; i < 16; i++) {
        items[i] = (AioItem){.fn_ret = i, .done_counter = &done};
        threadlet_submit_aio(lt.ctx, item_fn, &items[i], item_done, &items[i]);
    }
    for (i = 0; i < WAIT_STEPS && dp_atomic_load_acquire(&done) < 16; i++) {
        sched_yield();
    }
    g_assert_cmpint(dp_atomic_load_acquire(&done), ==, 16);
    dp_atomic_store_release(&lt.stop, true);
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
    ThreadletQueue *q = threadlet_queue_new("batch", 0, 4);
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
    ThreadletQueue *q = threadlet_queue_new("bound", 0, 2);
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

/* The last done of a queue may destroy that queue. */
typedef struct SelfDestroy {
    ThreadletQueue *q;
    int done;
    int ret;
} SelfDestroy;

static int return_nine(void *arg)
{
    return 9;
}

static void done_destroys_queue(void *opaque, int ret)
{
    SelfDestroy *sd = opaque;

    sd->ret = ret;
    threadlet_queue_destroy(sd->q);
    sd->done++;
}

static void test_done_may_destroy_its_queue(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    SelfDestroy sd = {.q = threadlet_queue_new("selfdestroy", 1, 1)};

    threadlet_submit_aio_to_queue(sd.q, ctx, return_nine, NULL,
                                  done_destroys_queue, &sd);
    poll_until_count(ctx, &sd.done, 1);
    g_assert_cmpint(sd.ret, ==, 9);
    g_assert_false(aio_poll(ctx, false));
    aio_context_unref(ctx);
}

/* fn may hand more work to the pool from its worker thread. */
typedef struct Offload {
    ThreadletQueue *q;
    AioContext *ctx;
    AioItem inner;
    int done;
} Offload;

static int offload_more(void *arg)
{
    Offload *o = arg;

    threadlet_submit_aio_to_queue(o->q, o->ctx, item_fn, &o->inner, item_done,
                                  &o->inner);
    return 1;
}

static void offload_done(void *opaque, int ret)
{
    Offload *o = opaque;

    o->done += ret;
}

static void test_fn_may_submit_more_work(void)
{
    Offload o = {.q = threadlet_queue_new("offload", 0, 1),
                 .ctx = aio_context_new(&error_abort),
                 .inner = {.fn_ret = 3}};
    int inner_done = 0;

    o.inner.done_counter = &inner_done;
    threadlet_submit_aio_to_queue(o.q, o.ctx, offload_more, &o, offload_done,
                                  &o);
    poll_until_count(o.ctx, &inner_done, 1);
    poll_until_count(o.ctx, &o.done, 1);
    g_assert_cmpint(o.inner.done_ret, ==, 3);
    threadlet_queue_destroy(o.q);
    aio_context_unref(o.ctx);
}

/* ---- cancel ------------------------------------------------------------- */

static void test_cancel_queued_aio_work_runs_done_with_ecanceled(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    ThreadletQueue *q = threadlet_queue_new("cq", 0, 1);
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
    g_assert_cmpint(dp_atomic_load_seq_cst(&victim.fn_runs), ==, 0);
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
    ThreadletQueue *q = threadlet_queue_new("cr", 0, 1);
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
    ThreadletQueue *q = threadlet_queue_new("cd", 0, 1);
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
    ThreadletQueue *q = threadlet_queue_new("cp", 0, 1);
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
    g_assert_cmpint(dp_atomic_load_seq_cst(&queued.runs), ==, 0);

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
    ThreadletQueue *a = threadlet_queue_new("a", 0, 1);
    ThreadletQueue *b = threadlet_queue_new("b", 0, 1);
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
    ThreadletQueue *q = threadlet_queue_new("destroy", 0, RUNNING);
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
    g_assert_cmpint(dp_atomic_load_acquire(&running_done), ==, 0);
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
        g_assert_cmpint(dp_atomic_load_seq_cst(&queued[i].fn_runs), ==, 0);
    }
    g_assert_cmpint(dp_atomic_load_seq_cst(&plain.runs), ==, 0);
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

/* ---- object registry ---------------------------------------------------- */

static void test_named_queue_is_an_object_with_live_counters(void)
{
    ThreadletQueue *q = threadlet_queue_new("pool0", 1, 3);
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
    g_assert_cmpint(prop_get_int(obj, "max-threads"), ==, 3);
    g_assert_cmpint(prop_get_int(obj, "min-threads"), ==, 1);
    g_assert_cmpint(prop_get_int(obj, "threads"), ==, 0);

    gate_init(&gate);
    for (i = 0; i < 2; i++) {
        my_request_init(&r[i], i);
        r[i].work.func = my_request_func;
        r[i].gate = &gate;
        threadlet_submit_to_queue(q, &r[i].work);
    }
    gate_wait_arrived(&gate, 2);
    g_assert_cmpint(prop_get_int(obj, "threads"), ==, 2);
    g_assert_cmpint(prop_get_int(obj, "idle-threads"), ==, 0);
    g_assert_cmpint(prop_get_int(obj, "queued"), ==, 0);
    g_assert_cmpint(prop_get_int(obj, "completed"), ==, 0);
    gate_open(&gate);
    wait_completed(q, 2);
    g_assert_cmpint(prop_get_int(obj, "completed"), ==, 2);

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
    g_assert_cmpint(prop_get_int(obj, "max-threads"), ==,
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

    threadlet_queue_init(&q, 0, 1);
    g_assert_false(threadlet_queue_register_object(&q, &err));
    g_assert_nonnull(err);
    error_free(err);
    threadlet_queue_destroy(&q);
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
    g_test_add_func("/threadlet/aio/done-may-destroy-its-queue",
                    test_done_may_destroy_its_queue);
    g_test_add_func("/threadlet/aio/fn-may-submit-more-work",
                    test_fn_may_submit_more_work);
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
    g_test_add_func("/threadlet/destroy/waits-running-cancels-queued",
                    test_destroy_waits_for_running_and_cancels_queued);
    g_test_add_func("/threadlet/destroy/joins-min-threads",
                    test_destroy_idle_queue_joins_min_threads);
    g_test_add_func("/threadlet/object/named-queue-live-counters",
                    test_named_queue_is_an_object_with_live_counters);
    g_test_add_func("/threadlet/object/global-queue",
                    test_global_queue_is_an_object);
    g_test_add_func("/threadlet/object/anonymous-queue-refused",
                    test_anonymous_queue_cannot_be_an_object);
    return g_test_run();
}
