/*
 * The main loop (GLib with the main AioContext as a source), code that runs
 * unchanged in the main loop and in an IOThread, stop-the-world, and the
 * one-multi-holder rule of aio_context_acquire.
 */
#include <glib.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "util/atomic.h"
#include "util/clock.h"
#include "util/thread.h"

#define WAIT_LIMIT_NS (30 * 1000000000LL) /* a failing test, not a timing */

/* ---- a workload written once against an AioContext * ------------------ */

/*
 * A BH writes to a pipe, the read handler arms a timer, the timer removes
 * the handler and reports: every AioContext service, in sequence, all from
 * callbacks of ctx.  The caller learns about completion through done().
 */
typedef struct Workload {
    AioContext *ctx;
    int fds[2];
    AioTimer *timer;
    pid_t bh_tid, read_tid, timer_tid;
    void (*done)(struct Workload *w);
    DpMutex mutex; /* for the IOThread case: guards `finished` */
    DpCond cond;
    bool finished;
} Workload;

static void workload_timer_cb(void *opaque)
{
    Workload *w = opaque;

    w->timer_tid = dp_thread_get_tid();
    aio_set_fd_handler(w->ctx, w->fds[0], NULL, NULL, NULL, NULL);
    close(w->fds[0]);
    close(w->fds[1]);
    aio_timer_free(w->timer);
    w->done(w);
}

static void workload_read_cb(void *opaque)
{
    Workload *w = opaque;
    char c;

    g_assert_cmpint(read(w->fds[0], &c, 1), ==, 1);
    w->read_tid = dp_thread_get_tid();
    w->timer = aio_timer_new(w->ctx, AIO_CLOCK_REALTIME, AIO_SCALE_US,
                             workload_timer_cb, w);
    aio_timer_mod(w->timer,
                  aio_clock_get_ns(AIO_CLOCK_REALTIME) / AIO_SCALE_US + 500);
}

static void workload_bh(void *opaque)
{
    Workload *w = opaque;

    w->bh_tid = dp_thread_get_tid();
    g_assert_cmpint(write(w->fds[1], "!", 1), ==, 1);
}

/* In ctx's thread (or with ctx acquired). */
static void workload_start(AioContext *ctx, Workload *w)
{
    w->ctx = ctx;
    g_assert_cmpint(pipe(w->fds), ==, 0);
    aio_set_fd_handler(ctx, w->fds[0], workload_read_cb, NULL, NULL, w);
    aio_bh_schedule_oneshot(ctx, workload_bh, w);
}

static void workload_done_quit(Workload *w)
{
    main_loop_quit();
}

static void workload_done_signal(Workload *w)
{
    dp_mutex_lock(&w->mutex);
    w->finished = true;
    dp_cond_broadcast(&w->cond);
    dp_mutex_unlock(&w->mutex);
}

static void workload_start_bh(void *opaque)
{
    Workload *w = opaque;

    workload_start(w->ctx, w);
}

static void test_main_loop_same_code_runs_in_main_loop_and_iothread(void)
{
    Workload in_main = {.done = workload_done_quit};
    Workload in_iothread = {.done = workload_done_signal};
    IOThread *it = iothread_new("same-code", NULL, &error_abort);
    int64_t deadline = clock_monotonic_ns() + WAIT_LIMIT_NS;
    pid_t it_tid = iothread_get_thread_id(it);

    workload_start(main_loop_get_aio_context(), &in_main);
    main_loop_run();
    g_assert_cmpint(in_main.bh_tid, ==, dp_thread_get_tid());
    g_assert_cmpint(in_main.read_tid, ==, dp_thread_get_tid());
    g_assert_cmpint(in_main.timer_tid, ==, dp_thread_get_tid());

    dp_mutex_init(&in_iothread.mutex);
    dp_cond_init(&in_iothread.cond);
    in_iothread.ctx = iothread_get_aio_context(it);
    aio_bh_schedule_oneshot(in_iothread.ctx, workload_start_bh, &in_iothread);
    dp_mutex_lock(&in_iothread.mutex);
    while (!in_iothread.finished) {
        g_assert_true(dp_cond_timedwait_ns(&in_iothread.cond,
                                           &in_iothread.mutex, deadline));
    }
    dp_mutex_unlock(&in_iothread.mutex);
    g_assert_cmpint(in_iothread.bh_tid, ==, it_tid);
    g_assert_cmpint(in_iothread.read_tid, ==, it_tid);
    g_assert_cmpint(in_iothread.timer_tid, ==, it_tid);
    dp_cond_destroy(&in_iothread.cond);
    dp_mutex_destroy(&in_iothread.mutex);
    iothread_destroy(it);
}

/* ---- GLib sources beside the AioContext ------------------------------ */

typedef struct Mixed {
    int idles, timeouts, bhs;
} Mixed;

static void mixed_check_done(Mixed *m)
{
    if (m->idles && m->timeouts && m->bhs) {
        main_loop_quit();
    }
}

static gboolean mixed_idle(gpointer opaque)
{
    ((Mixed *)opaque)->idles++;
    mixed_check_done(opaque);
    return G_SOURCE_REMOVE;
}

static gboolean mixed_timeout(gpointer opaque)
{
    ((Mixed *)opaque)->timeouts++;
    mixed_check_done(opaque);
    return G_SOURCE_REMOVE;
}

static void mixed_bh(void *opaque)
{
    ((Mixed *)opaque)->bhs++;
    mixed_check_done(opaque);
}

static void test_main_loop_runs_aio_beside_glib_sources(void)
{
    Mixed m = {0};

    g_idle_add(mixed_idle, &m);
    g_timeout_add(1, mixed_timeout, &m);
    aio_bh_schedule_oneshot(main_loop_get_aio_context(), mixed_bh, &m);
    main_loop_run();
    g_assert_cmpint(m.idles, ==, 1);
    g_assert_cmpint(m.timeouts, ==, 1);
    g_assert_cmpint(m.bhs, ==, 1);
}

static void *quit_from_thread(void *opaque)
{
    main_loop_quit();
    return NULL;
}

static void test_main_loop_quit_from_another_thread(void)
{
    int round;

    for (round = 0; round < 100; round++) {
        DpThread t;

        dp_thread_create(&t, "quitter", quit_from_thread, NULL);
        main_loop_run(); /* returns whether quit came before or during */
        dp_thread_join(&t);
    }
}

static void set_flag_bh(void *opaque)
{
    *(bool *)opaque = true;
}

static void test_main_loop_wait_nonblocking_runs_ready_bh(void)
{
    bool ran = false;

    aio_bh_schedule_oneshot(main_loop_get_aio_context(), set_flag_bh, &ran);
    g_assert_true(main_loop_wait(false));
    g_assert_true(ran);
}

static void test_main_loop_init_twice_is_an_error(void)
{
    Error *err = NULL;

    g_assert_false(main_loop_init(&err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "the main loop is already initialised");
    error_free(err);
}

/* ---- stop the world --------------------------------------------------- */

/*
 * A BH that reschedules itself, so its IOThread runs callbacks all the
 * time.  Each run checks the `paused` flag the main thread raises while
 * the world is stopped: a run then is a violation.
 */
typedef struct Spinner {
    AioBH *bh;
    DpMutex mutex;
    DpCond cond;
    int runs;        /* protected by mutex */
    bool stop;       /* protected by mutex */
    bool *paused;    /* atomic */
    int *violations; /* atomic */
} Spinner;

static void spinner_bh(void *opaque)
{
    Spinner *s = opaque;
    bool stop;

    if (dp_atomic_load_seq_cst(s->paused)) {
        dp_atomic_fetch_add_seq_cst(s->violations, 1);
    }
    dp_mutex_lock(&s->mutex);
    s->runs++;
    stop = s->stop;
    dp_cond_broadcast(&s->cond);
    dp_mutex_unlock(&s->mutex);
    if (!stop) {
        aio_bh_schedule(s->bh);
    }
}

static int spinner_runs(Spinner *s)
{
    int runs;

    dp_mutex_lock(&s->mutex);
    runs = s->runs;
    dp_mutex_unlock(&s->mutex);
    return runs;
}

static void spinner_wait_runs(Spinner *s, int runs)
{
    int64_t deadline = clock_monotonic_ns() + WAIT_LIMIT_NS;

    dp_mutex_lock(&s->mutex);
    while (s->runs < runs) {
        g_assert_true(dp_cond_timedwait_ns(&s->cond, &s->mutex, deadline));
    }
    dp_mutex_unlock(&s->mutex);
}

#define N_SPIN 3

static void test_main_loop_stop_the_world_pauses_every_iothread(void)
{
    IOThread *it[N_SPIN];
    Spinner s[N_SPIN];
    bool paused = false;
    int violations = 0;
    int round, i, k;

    for (i = 0; i < N_SPIN; i++) {
        char id[16];

        g_snprintf(id, sizeof(id), "spin%d", i);
        it[i] = iothread_new(id, NULL, &error_abort);
        s[i] = (Spinner){.paused = &paused, .violations = &violations};
        dp_mutex_init(&s[i].mutex);
        dp_cond_init(&s[i].cond);
        s[i].bh =
            aio_bh_new(iothread_get_aio_context(it[i]), spinner_bh, &s[i]);
        aio_bh_schedule(s[i].bh);
    }
    for (round = 0; round < 20; round++) {
        int before[N_SPIN];

        for (i = 0; i < N_SPIN; i++) {
            spinner_wait_runs(&s[i], spinner_runs(&s[i]) + 1);
        }
        main_loop_stop_the_world();
        dp_atomic_store_seq_cst(&paused, true);
        for (i = 0; i < N_SPIN; i++) {
            before[i] = spinner_runs(&s[i]);
        }
        /* Give the threads every chance to misbehave: kick them. */
        for (k = 0; k < 200; k++) {
            for (i = 0; i < N_SPIN; i++) {
                aio_notify(iothread_get_aio_context(it[i]));
            }
            sched_yield();
        }
        for (i = 0; i < N_SPIN; i++) {
            g_assert_cmpint(spinner_runs(&s[i]), ==, before[i]);
        }
        dp_atomic_store_seq_cst(&paused, false);
        main_loop_resume_the_world();
    }
    g_assert_cmpint(dp_atomic_load_seq_cst(&violations), ==, 0);

    for (i = 0; i < N_SPIN; i++) {
        AioContext *ctx = iothread_get_aio_context(it[i]);

        dp_mutex_lock(&s[i].mutex);
        s[i].stop = true;
        dp_mutex_unlock(&s[i].mutex);
        aio_context_acquire(ctx); /* the BH is not running: delete it */
        aio_bh_delete(s[i].bh);
        aio_context_release(ctx);
        iothread_destroy(it[i]);
        dp_cond_destroy(&s[i].cond);
        dp_mutex_destroy(&s[i].mutex);
    }
}

static void test_main_loop_stop_the_world_nests(void)
{
    IOThread *it = iothread_new("nest", NULL, &error_abort);
    bool ran = false;

    main_loop_stop_the_world();
    main_loop_stop_the_world();
    aio_bh_schedule_oneshot(iothread_get_aio_context(it), set_flag_bh, &ran);
    main_loop_resume_the_world();
    /* Still paused: the context is ours, the BH cannot have run. */
    g_assert_false(dp_atomic_load_seq_cst(&ran));
    main_loop_resume_the_world();
    iothread_destroy(it); /* joins: the BH ran before the thread ended */
    g_assert_true(ran);
}

static void test_main_loop_iothread_created_while_stopped_starts_paused(void)
{
    IOThread *it;
    Spinner s = {0};
    bool paused = true;
    int violations = 0;

    main_loop_stop_the_world();
    it = iothread_new("late", NULL, &error_abort);
    s.paused = &paused;
    s.violations = &violations;
    s.stop = true; /* run once */
    dp_mutex_init(&s.mutex);
    dp_cond_init(&s.cond);
    s.bh = aio_bh_new(iothread_get_aio_context(it), spinner_bh, &s);
    aio_bh_schedule(s.bh);
    g_assert_cmpint(spinner_runs(&s), ==, 0);
    dp_atomic_store_seq_cst(&paused, false);
    main_loop_resume_the_world();
    spinner_wait_runs(&s, 1);
    g_assert_cmpint(violations, ==, 0);
    aio_context_acquire(iothread_get_aio_context(it));
    aio_bh_delete(s.bh);
    aio_context_release(iothread_get_aio_context(it));
    iothread_destroy(it);
    dp_cond_destroy(&s.cond);
    dp_mutex_destroy(&s.mutex);
}

/* ---- only the main loop thread holds several contexts ----------------- */

static void test_main_loop_thread_may_hold_several_contexts(void)
{
    AioContext *a = aio_context_new(&error_abort);
    AioContext *b = aio_context_new(&error_abort);

    aio_context_acquire(main_loop_get_aio_context());
    aio_context_acquire(a);
    aio_context_acquire(b);
    aio_context_acquire(a); /* nesting */
    aio_context_release(a);
    aio_context_release(b);
    aio_context_release(a);
    aio_context_release(main_loop_get_aio_context());
    aio_context_unref(a);
    aio_context_unref(b);
}

static void *acquire_two(void *opaque)
{
    AioContext **ctxs = opaque;

    aio_context_acquire(ctxs[0]);
    aio_context_acquire(ctxs[0]); /* nesting one context is fine */
    aio_context_acquire(ctxs[1]); /* aborts */
    return NULL;
}

static void test_main_loop_other_thread_holding_two_aborts(void)
{
    if (g_test_subprocess()) {
        AioContext *ctxs[2] = {aio_context_new(&error_abort),
                               aio_context_new(&error_abort)};
        DpThread t;

        dp_thread_create(&t, "two-holder", acquire_two, ctxs);
        dp_thread_join(&t);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*only the main loop thread*");
}

static void acquire_main_ctx_bh(void *opaque)
{
    aio_context_acquire(main_loop_get_aio_context()); /* aborts */
    aio_context_release(main_loop_get_aio_context());
    *(bool *)opaque = true;
}

static void test_main_loop_iothread_taking_main_context_aborts(void)
{
    if (g_test_subprocess()) {
        IOThread *it = iothread_new("greedy", NULL, &error_abort);
        bool ran = false;

        aio_bh_schedule_oneshot(iothread_get_aio_context(it),
                                acquire_main_ctx_bh, &ran);
        iothread_destroy(it);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*only the main loop thread*");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    main_loop_init(&error_abort);
    g_test_add_func("/main-loop/same-code-runs-in-main-loop-and-iothread",
                    test_main_loop_same_code_runs_in_main_loop_and_iothread);
    g_test_add_func("/main-loop/runs-aio-beside-glib-sources",
                    test_main_loop_runs_aio_beside_glib_sources);
    g_test_add_func("/main-loop/quit-from-another-thread",
                    test_main_loop_quit_from_another_thread);
    g_test_add_func("/main-loop/wait-nonblocking-runs-ready-bh",
                    test_main_loop_wait_nonblocking_runs_ready_bh);
    g_test_add_func("/main-loop/init-twice-is-an-error",
                    test_main_loop_init_twice_is_an_error);
    g_test_add_func("/main-loop/stop-the-world/pauses-every-iothread",
                    test_main_loop_stop_the_world_pauses_every_iothread);
    g_test_add_func("/main-loop/stop-the-world/nests",
                    test_main_loop_stop_the_world_nests);
    g_test_add_func(
        "/main-loop/stop-the-world/"
        "iothread-created-while-stopped-starts-paused",
        test_main_loop_iothread_created_while_stopped_starts_paused);
    g_test_add_func("/main-loop/lock/main-thread-may-hold-several-contexts",
                    test_main_loop_thread_may_hold_several_contexts);
    g_test_add_func("/main-loop/lock/other-thread-holding-two-aborts",
                    test_main_loop_other_thread_holding_two_aborts);
    g_test_add_func("/main-loop/lock/iothread-taking-main-context-aborts",
                    test_main_loop_iothread_taking_main_context_aborts);
    return g_test_run();
}
