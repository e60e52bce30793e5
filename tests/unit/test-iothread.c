/* IOThread: the loop, the kick, naming, properties, GLib, destroy. */
#include <dirent.h>
#include <sched.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "tests/unit/test-util.h"
#include "util/atomic.h"
#include "util/clock.h"
#include "util/thread.h"

#define WAIT_LIMIT_NS (30 * 1000000000LL) /* a failing test, not a timing */

/* A one-shot event another thread waits for. */
typedef struct Event {
    DpMutex mutex;
    DpCond cond;
    int count;
    pid_t tid; /* thread that signalled last */
} Event;

static void event_init(Event *e)
{
    dp_mutex_init(&e->mutex);
    dp_cond_init(&e->cond);
    e->count = 0;
    e->tid = 0;
}

static void event_destroy(Event *e)
{
    dp_cond_destroy(&e->cond);
    dp_mutex_destroy(&e->mutex);
}

static void event_signal(Event *e)
{
    dp_mutex_lock(&e->mutex);
    e->count++;
    e->tid = dp_thread_get_tid();
    dp_cond_broadcast(&e->cond);
    dp_mutex_unlock(&e->mutex);
}

/* Where each thread sleeps: printed before a wait fails, to debug a hang. */
static void dump_threads(void)
{
    g_autoptr(GDir) dir = g_dir_open("/proc/self/task", 0, NULL);
    const char *tid;

    while (dir && (tid = g_dir_read_name(dir)) != NULL) {
        g_autofree char *comm = NULL;
        g_autofree char *wchan = NULL;
        g_autofree char *syscall = NULL;
        g_autofree char *p1 = g_strdup_printf("/proc/self/task/%s/comm", tid);
        g_autofree char *p2 = g_strdup_printf("/proc/self/task/%s/wchan", tid);
        g_autofree char *p3 =
            g_strdup_printf("/proc/self/task/%s/syscall", tid);

        g_file_get_contents(p1, &comm, NULL, NULL);
        g_file_get_contents(p2, &wchan, NULL, NULL);
        g_file_get_contents(p3, &syscall, NULL, NULL);
        g_printerr("thread %s %s: wchan %s, syscall %s", tid,
                   comm ? g_strchomp(comm) : "?", wchan ? wchan : "?",
                   syscall ? syscall : "?\n");
    }
}

static void event_wait_count(Event *e, int count)
{
    int64_t deadline = clock_monotonic_ns() + WAIT_LIMIT_NS;

    dp_mutex_lock(&e->mutex);
    while (e->count < count) {
        if (!dp_cond_timedwait_ns(&e->cond, &e->mutex, deadline)) {
            dump_threads();
            g_error("waited %lld s for an IOThread's callback",
                    (long long)(WAIT_LIMIT_NS / 1000000000));
        }
    }
    dp_mutex_unlock(&e->mutex);
}

static pid_t event_tid(Event *e)
{
    pid_t tid;

    dp_mutex_lock(&e->mutex);
    tid = e->tid;
    dp_mutex_unlock(&e->mutex);
    return tid;
}

static void event_signal_bh(void *opaque)
{
    event_signal(opaque);
}

/* The comm of thread tid of this process; "0" means the main thread. */
static char *task_comm(const char *tid)
{
    g_autofree char *path =
        strcmp(tid, "0") ? g_strdup_printf("/proc/self/task/%s/comm", tid)
                         : g_strdup("/proc/self/comm");
    char *comm = NULL;

    if (!g_file_get_contents(path, &comm, NULL, NULL)) {
        return g_strdup(""); /* it just exited */
    }
    return g_strchomp(comm);
}

/*
 * Threads that something in this process created and named.  Threads that
 * carry the program's own name are left out: ThreadSanitizer starts one of
 * its own whenever it likes.
 */
static int count_named_threads(void)
{
    g_autofree char *self = task_comm("0");
    DIR *dir = opendir("/proc/self/task");
    struct dirent *d;
    int n = 0;

    g_assert_nonnull(dir);
    while ((d = readdir(dir)) != NULL) {
        g_autofree char *comm = NULL;

        if (d->d_name[0] == '.') {
            continue;
        }
        comm = task_comm(d->d_name);
        n += strcmp(comm, self) != 0;
    }
    closedir(dir);
    return n;
}

/* Makes sure the thread ran at least one iteration, then is idle. */
static void wait_thread_running(IOThread *it)
{
    Event e;

    event_init(&e);
    aio_bh_schedule_oneshot(iothread_get_aio_context(it), event_signal_bh, &e);
    event_wait_count(&e, 1);
    g_assert_cmpint(event_tid(&e), ==, iothread_get_thread_id(it));
    event_destroy(&e);
}

/*
 * Whether thread tid sleeps in one of the system calls an event loop blocks
 * in (epoll_wait/epoll_pwait/epoll_pwait2, io_uring_enter, poll/ppoll for
 * GLib): /proc/self/task/<tid>/syscall starts with the call's number.
 */
static bool thread_sleeps_in_loop(pid_t tid)
{
    static const long loop_calls[] = {232, 281, 441, 426, 7, 271};
    g_autofree char *path =
        g_strdup_printf("/proc/self/task/%d/syscall", (int)tid);
    g_autofree char *text = NULL;
    long nr;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return false;
    }
    nr = strtol(text, NULL, 10);
    for (size_t i = 0; i < G_N_ELEMENTS(loop_calls); i++) {
        if (nr == loop_calls[i]) {
            return true;
        }
    }
    return false;
}

/* Waits (bounded) until the IOThread sleeps in its loop's system call. */
static void wait_thread_asleep(IOThread *it)
{
    int i;

    for (i = 0;
         i < 300000 && !thread_sleeps_in_loop(iothread_get_thread_id(it));
         i++) {
        g_usleep(100);
    }
    g_assert_true(thread_sleeps_in_loop(iothread_get_thread_id(it)));
}

/*
 * The IOThread sleeps in aio_poll() holding its context, with no fd ready
 * and no timer armed; without the kick acquire would never return.  What is
 * counted: each acquire wakes the sleeping loop with exactly the kick, one
 * eventfd write by the contention callback's aio_notify() (notify_writes).
 * A missing kick is a hang, which the alarm turns into a failure.
 */
static void check_acquire_kicks_blocked_thread(IOThread *it)
{
    AioContext *ctx = iothread_get_aio_context(it);
    AioContextStats before, after;
    int round;

    wait_thread_running(it);
    alarm(120); /* a hang detector, not a measurement */
    for (round = 0; round < 20; round++) {
        wait_thread_asleep(it);
        aio_context_get_stats(ctx, &before);
        aio_context_acquire(ctx);
        aio_context_get_stats(ctx, &after);
        aio_context_release(ctx);
        g_assert_cmpuint(after.notify_writes, >, before.notify_writes);
    }
    alarm(0);
}

static void test_iothread_acquire_kicks_blocked_epoll_thread(void)
{
    IOThreadProps props;
    IOThread *it;

    iothread_props_init(&props);
    props.poll_max_ns = 0; /* sleep at once: no busy polling */
    it = iothread_new("kick-epoll", &props, &error_abort);
    check_acquire_kicks_blocked_thread(it);
    iothread_destroy(it);
}

static void test_iothread_acquire_kicks_blocked_io_uring_thread(void)
{
    IOThreadProps props;
    IOThread *it;

    iothread_props_init(&props);
    props.poll_max_ns = 0;
    props.backend = AIO_BACKEND_IO_URING;
    it = iothread_new("kick-uring", &props, &error_abort);
    check_acquire_kicks_blocked_thread(it);
    iothread_destroy(it);
}

static void test_iothread_acquire_kicks_thread_blocked_in_glib(void)
{
    static const AioBackend backends[] = {AIO_BACKEND_EPOLL,
                                          AIO_BACKEND_IO_URING};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(backends); i++) {
        IOThreadProps props;
        IOThread *it;

        iothread_props_init(&props);
        props.backend = backends[i];
        it = iothread_new("kick-glib", &props, &error_abort);
        iothread_get_g_main_context(it);
        check_acquire_kicks_blocked_thread(it);
        iothread_destroy(it);
    }
}

static void test_iothread_thread_is_named_after_id(void)
{
    IOThread *it = iothread_new("disk-io.7", NULL, &error_abort);
    char *path = g_strdup_printf("/proc/self/task/%d/comm",
                                 (int)iothread_get_thread_id(it));
    char *comm = NULL;

    g_assert_cmpint(iothread_get_thread_id(it), >, 0);
    g_assert_cmpint(iothread_get_thread_id(it), !=, dp_thread_get_tid());
    g_assert_true(g_file_get_contents(path, &comm, NULL, NULL));
    g_assert_cmpstr(g_strchomp(comm), ==, "disk-io.7");
    g_assert_cmpstr(iothread_get_id(it), ==, "disk-io.7");
    g_free(comm);
    g_free(path);
    iothread_destroy(it);
}

static void test_iothread_callbacks_run_in_the_thread(void)
{
    IOThread *it = iothread_new("cb-thread", NULL, &error_abort);
    Event e;

    event_init(&e);
    aio_bh_schedule_oneshot(iothread_get_aio_context(it), event_signal_bh, &e);
    event_wait_count(&e, 1);
    g_assert_cmpint(event_tid(&e), ==, iothread_get_thread_id(it));
    event_destroy(&e);
    iothread_destroy(it);
}

typedef struct CurrentContextProbe {
    AioContext *seen;
    bool in_own;
    bool in_main;
    Event done;
} CurrentContextProbe;

static void probe_current_context_bh(void *opaque)
{
    CurrentContextProbe *p = opaque;

    p->seen = aio_get_current_context();
    p->in_own = aio_context_in_current_thread(p->seen);
    p->in_main = aio_context_in_current_thread(main_loop_get_aio_context());
    event_signal(&p->done);
}

static void test_iothread_current_context_is_its_own(void)
{
    IOThread *it = iothread_new("current-ctx", NULL, &error_abort);
    AioContext *ctx = iothread_get_aio_context(it);
    CurrentContextProbe p = {0};

    /* The main thread's context is the main loop's, and only it. */
    g_assert_true(aio_get_current_context() == main_loop_get_aio_context());
    g_assert_false(aio_context_in_current_thread(ctx));

    event_init(&p.done);
    aio_bh_schedule_oneshot(ctx, probe_current_context_bh, &p);
    event_wait_count(&p.done, 1);
    g_assert_true(p.seen == ctx);
    g_assert_true(p.in_own);
    g_assert_false(p.in_main);
    event_destroy(&p.done);

    /* Holding a context makes it usable here without making it ours. */
    aio_context_acquire(ctx);
    g_assert_true(aio_context_in_current_thread(ctx));
    g_assert_true(aio_get_current_context() == main_loop_get_aio_context());
    aio_context_release(ctx);
    g_assert_false(aio_context_in_current_thread(ctx));
    iothread_destroy(it);
}

static void test_iothread_props_have_qemu_defaults(void)
{
    IOThread *it = iothread_new("defaults", NULL, &error_abort);
    int64_t max_ns, grow, shrink;
    IOThreadProps p;

    iothread_get_props(it, &p);
    g_assert_cmpint(p.poll_max_ns, ==, 32768);
    g_assert_cmpint(p.poll_grow, ==, 0);
    g_assert_cmpint(p.poll_shrink, ==, 0);
    g_assert_cmpint(p.aio_max_batch, ==, 0);
    g_assert_cmpint(p.thread_pool_min, ==, 0);
    g_assert_cmpint(p.thread_pool_max, ==, 64);
    g_assert_cmpint(p.backend, ==, AIO_BACKEND_EPOLL);
    aio_context_get_poll_params(iothread_get_aio_context(it), &max_ns, &grow,
                                &shrink);
    g_assert_cmpint(max_ns, ==, 32768);
    iothread_destroy(it);
}

static void test_iothread_props_are_kept(void)
{
    IOThreadProps in, out;
    IOThread *it;

    iothread_props_init(&in);
    in.aio_max_batch = 32;
    in.thread_pool_min = 2;
    in.thread_pool_max = 8;
    in.backend = AIO_BACKEND_IO_URING;
    it = iothread_new("kept", &in, &error_abort);
    iothread_get_props(it, &out);
    g_assert_cmpint(out.aio_max_batch, ==, 32);
    g_assert_cmpint(out.thread_pool_min, ==, 2);
    g_assert_cmpint(out.thread_pool_max, ==, 8);
    g_assert_cmpint(out.backend, ==, AIO_BACKEND_IO_URING);
    g_assert_cmpint(aio_context_get_backend(iothread_get_aio_context(it)), ==,
                    AIO_BACKEND_IO_URING);
    iothread_destroy(it);
}

static void test_iothread_poll_params_settable_at_runtime(void)
{
    IOThread *it = iothread_new("poll-set", NULL, &error_abort);
    int64_t max_ns, grow, shrink;
    Error *err = NULL;
    IOThreadProps p;

    wait_thread_running(it);
    g_assert_true(iothread_set_poll_params(it, 100000, 4, 2, &error_abort));
    aio_context_get_poll_params(iothread_get_aio_context(it), &max_ns, &grow,
                                &shrink);
    g_assert_cmpint(max_ns, ==, 100000);
    g_assert_cmpint(grow, ==, 4);
    g_assert_cmpint(shrink, ==, 2);
    iothread_get_props(it, &p);
    g_assert_cmpint(p.poll_max_ns, ==, 100000);

    g_assert_false(iothread_set_poll_params(it, -1, 0, 0, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "poll-max-ns"));
    error_free(err);
    iothread_get_props(it, &p);
    g_assert_cmpint(p.poll_max_ns, ==, 100000); /* unchanged */
    wait_thread_running(it); /* still alive with the new values */
    iothread_destroy(it);
}

static void expect_new_fails(const char *id, const IOThreadProps *props,
                             const char *needle)
{
    Error *err = NULL;

    g_assert_null(iothread_new(id, props, &err));
    g_assert_nonnull(err);
    if (!strstr(error_get_pretty(err), needle)) {
        g_error("'%s' does not mention '%s'", error_get_pretty(err), needle);
    }
    error_free(err);
}

static void test_iothread_new_rejects_bad_input(void)
{
    IOThreadProps p;
    IOThread *it;

    expect_new_fails("", NULL, "invalid IOThread id");
    expect_new_fails("9lives", NULL, "invalid IOThread id");
    expect_new_fails("a b", NULL, "invalid IOThread id");
    expect_new_fails(NULL, NULL, "invalid IOThread id");
    iothread_props_init(&p);
    p.poll_grow = 1;
    expect_new_fails("bad-grow", &p, "poll-grow");
    iothread_props_init(&p);
    p.thread_pool_min = 9;
    p.thread_pool_max = 8;
    expect_new_fails("bad-pool", &p, "thread-pool-min (9)");
    iothread_props_init(&p);
    p.aio_max_batch = -1;
    expect_new_fails("bad-batch", &p, "aio-max-batch");

    it = iothread_new("dup", NULL, &error_abort);
    expect_new_fails("dup", NULL, "'dup' already exists");
    iothread_destroy(it);
    it = iothread_new("dup", NULL, &error_abort); /* the id is free again */
    iothread_destroy(it);
}

static void test_iothread_find_by_id(void)
{
    IOThread *a = iothread_new("find-a", NULL, &error_abort);
    IOThread *b = iothread_new("find-b", NULL, &error_abort);

    g_assert_true(iothread_find("find-a") == a);
    g_assert_true(iothread_find("find-b") == b);
    g_assert_null(iothread_find("find-c"));
    iothread_destroy(a);
    g_assert_null(iothread_find("find-a"));
    iothread_destroy(b);
}

static void collect_id(IOThread *iothread, void *opaque)
{
    g_ptr_array_add(opaque, (gpointer)iothread_get_id(iothread));
}

static void test_iothread_foreach_visits_in_creation_order(void)
{
    IOThread *c = iothread_new("order-c", NULL, &error_abort);
    IOThread *a = iothread_new("order-a", NULL, &error_abort);
    IOThread *b = iothread_new("order-b", NULL, &error_abort);
    g_autoptr(GPtrArray) ids = g_ptr_array_new();

    iothread_foreach(collect_id, ids);
    g_assert_cmpuint(ids->len, ==, 3);
    g_assert_cmpstr(g_ptr_array_index(ids, 0), ==, "order-c");
    g_assert_cmpstr(g_ptr_array_index(ids, 1), ==, "order-a");
    g_assert_cmpstr(g_ptr_array_index(ids, 2), ==, "order-b");
    iothread_destroy(a);
    g_ptr_array_set_size(ids, 0);
    iothread_foreach(collect_id, ids);
    g_assert_cmpuint(ids->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(ids, 1), ==, "order-b");
    iothread_destroy(b);
    iothread_destroy(c);
}

static gboolean idle_signal(gpointer opaque)
{
    event_signal(opaque);
    return G_SOURCE_REMOVE;
}

static void test_iothread_gsources_run_in_the_thread(void)
{
    IOThread *it = iothread_new("glib-src", NULL, &error_abort);
    GMainContext *gctx = iothread_get_g_main_context(it);
    GSource *idle = g_idle_source_new();
    Event e, bh;

    g_assert_true(iothread_get_g_main_context(it) == gctx);
    event_init(&e);
    event_init(&bh);
    g_source_set_callback(idle, idle_signal, &e, NULL);
    /* With the context held: an ordering ThreadSanitizer sees (GLib's
     * own locks it does not). */
    aio_context_acquire(iothread_get_aio_context(it));
    g_source_attach(idle, gctx);
    aio_context_release(iothread_get_aio_context(it));
    g_source_unref(idle);
    event_wait_count(&e, 1);
    g_assert_cmpint(event_tid(&e), ==, iothread_get_thread_id(it));

    /* The AioContext still runs, inside the GLib loop. */
    aio_bh_schedule_oneshot(iothread_get_aio_context(it), event_signal_bh, &bh);
    event_wait_count(&bh, 1);
    g_assert_cmpint(event_tid(&bh), ==, iothread_get_thread_id(it));
    event_destroy(&e);
    event_destroy(&bh);
    iothread_destroy(it);
}

typedef struct Chain {
    AioContext *ctx;
    int remaining; /* IOThread only; read after join */
    int ran;
} Chain;

static void chain_bh(void *opaque)
{
    Chain *c = opaque;

    c->ran++;
    if (--c->remaining > 0) {
        aio_bh_schedule_oneshot(c->ctx, chain_bh, c);
    }
}

static void count_bh(void *opaque)
{
    int *ran = opaque;

    (*ran)++;
}

static void test_iothread_destroy_runs_scheduled_bhs(void)
{
    IOThread *it = iothread_new("bh-drain", NULL, &error_abort);
    AioContext *ctx = iothread_get_aio_context(it);
    Chain chain = {ctx, 3, 0};
    int ran = 0;
    int i;

    /* Paused, the thread cannot run them before destroy is called. */
    main_loop_stop_the_world();
    for (i = 0; i < 10; i++) {
        aio_bh_schedule_oneshot(ctx, count_bh, &ran);
    }
    aio_bh_schedule_oneshot(ctx, chain_bh, &chain);
    g_assert_cmpint(ran, ==, 0);
    iothread_destroy(it);
    main_loop_resume_the_world();
    g_assert_cmpint(ran, ==, 10);
    g_assert_cmpint(chain.ran, ==, 3); /* follow-ups ran too */
}

static void test_iothread_destroy_while_holding_context_aborts(void)
{
    if (g_test_subprocess()) {
        IOThread *it = iothread_new("held", NULL, &error_abort);

        aio_context_acquire(iothread_get_aio_context(it));
        iothread_destroy(it); /* would deadlock in the join */
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*the caller holds its context*");
}

/*
 * The kernel removes a thread from /proc/self/task a little after
 * pthread_join() returns (join waits for the thread's tid to be cleared,
 * which happens before the task is released), and nothing signals the
 * removal: look again, a bounded number of times.
 */
static int named_threads_settle(int expected)
{
    int n = count_named_threads();
    int i;

    for (i = 0; i < 100000 && n != expected; i++) {
        sched_yield();
        n = count_named_threads();
    }
    return n;
}

static void create_use_destroy(const char *id, AioBackend backend, bool glib)
{
    IOThreadProps props;
    IOThread *it;

    iothread_props_init(&props);
    props.backend = backend;
    it = iothread_new(id, &props, &error_abort);
    if (glib) {
        iothread_get_g_main_context(it);
    }
    wait_thread_running(it);
    aio_context_acquire(iothread_get_aio_context(it));
    aio_context_release(iothread_get_aio_context(it));
    iothread_destroy(it);
}

static void check_destroy_leaves_nothing(AioBackend backend, bool glib)
{
    int tasks, fds;
    int i;

    create_use_destroy("warm-up", backend, glib); /* GLib's one-time setup */
    tasks = count_named_threads();
    fds = count_open_fds();
    for (i = 0; i < 3; i++) {
        create_use_destroy("leak-check", backend, glib);
        g_assert_cmpint(named_threads_settle(tasks), ==, tasks);
        g_assert_cmpint(count_open_fds(), ==, fds);
    }
}

static void test_iothread_destroy_leaves_no_thread_or_fd_epoll(void)
{
    check_destroy_leaves_nothing(AIO_BACKEND_EPOLL, false);
}

static void test_iothread_destroy_leaves_no_thread_or_fd_io_uring(void)
{
    check_destroy_leaves_nothing(AIO_BACKEND_IO_URING, false);
}

static void test_iothread_destroy_leaves_no_thread_or_fd_glib(void)
{
    check_destroy_leaves_nothing(AIO_BACKEND_EPOLL, true);
    check_destroy_leaves_nothing(AIO_BACKEND_IO_URING, true);
}

/*
 * aio_poll() checks who calls it: another thread may run an IOThread's
 * context only while holding it.  Holding it, it may (the drain of the main
 * loop does); without, the call aborts with a sentence.
 */
static void test_iothread_poll_of_its_context_needs_the_lock(void)
{
    if (g_test_subprocess()) {
        IOThread *io = iothread_new("polled", NULL, &error_abort);
        AioContext *ctx = iothread_get_aio_context(io);

        aio_context_acquire(ctx);
        aio_poll(ctx, false); /* fine: held */
        aio_context_release(ctx);
        aio_poll(ctx, false); /* not held: aborts */
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*aio_poll: this thread * neither runs this "
                              "AioContext nor holds it*");
}

/* A private context that no thread calls home may be run by any thread
 * (a small program's loop, a benchmark's from the main thread). */
static void count_run(void *opaque)
{
    (*(int *)opaque)++;
}

static void run_private_context_here(int *runs)
{
    AioContext *ctx = aio_context_new(&error_abort);

    aio_bh_schedule_oneshot(ctx, count_run, runs);
    g_assert_true(aio_poll(ctx, false));
    aio_context_unref(ctx);
}

static void *run_private_context(void *opaque)
{
    g_assert_null(aio_get_current_context());
    run_private_context_here(opaque);
    return NULL;
}

static void test_iothread_private_context_runs_anywhere(void)
{
    int runs = 0;

    g_thread_join(g_thread_new("private", run_private_context, &runs));
    g_assert_cmpint(runs, ==, 1);
    /* This thread runs the main loop's context, and may run it too. */
    g_assert_nonnull(aio_get_current_context());
    run_private_context_here(&runs);
    g_assert_cmpint(runs, ==, 2);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    main_loop_init(&error_abort);
    g_test_add_func("/iothread/poll-of-its-context-needs-the-lock",
                    test_iothread_poll_of_its_context_needs_the_lock);
    g_test_add_func("/iothread/private-context-runs-anywhere",
                    test_iothread_private_context_runs_anywhere);
    g_test_add_func("/iothread/acquire-kicks-blocked-epoll-thread",
                    test_iothread_acquire_kicks_blocked_epoll_thread);
    g_test_add_func("/iothread/acquire-kicks-blocked-io-uring-thread",
                    test_iothread_acquire_kicks_blocked_io_uring_thread);
    g_test_add_func("/iothread/acquire-kicks-thread-blocked-in-glib",
                    test_iothread_acquire_kicks_thread_blocked_in_glib);
    g_test_add_func("/iothread/thread-is-named-after-id",
                    test_iothread_thread_is_named_after_id);
    g_test_add_func("/iothread/callbacks-run-in-the-thread",
                    test_iothread_callbacks_run_in_the_thread);
    g_test_add_func("/iothread/current-context-is-its-own",
                    test_iothread_current_context_is_its_own);
    g_test_add_func("/iothread/props-have-qemu-defaults",
                    test_iothread_props_have_qemu_defaults);
    g_test_add_func("/iothread/props-are-kept", test_iothread_props_are_kept);
    g_test_add_func("/iothread/poll-params-settable-at-runtime",
                    test_iothread_poll_params_settable_at_runtime);
    g_test_add_func("/iothread/new-rejects-bad-input",
                    test_iothread_new_rejects_bad_input);
    g_test_add_func("/iothread/find-by-id", test_iothread_find_by_id);
    g_test_add_func("/iothread/foreach-visits-in-creation-order",
                    test_iothread_foreach_visits_in_creation_order);
    g_test_add_func("/iothread/gsources-run-in-the-thread",
                    test_iothread_gsources_run_in_the_thread);
    g_test_add_func("/iothread/destroy-runs-scheduled-bhs",
                    test_iothread_destroy_runs_scheduled_bhs);
    g_test_add_func("/iothread/destroy-while-holding-context-aborts",
                    test_iothread_destroy_while_holding_context_aborts);
    g_test_add_func("/iothread/destroy-leaves-no-thread-or-fd/epoll",
                    test_iothread_destroy_leaves_no_thread_or_fd_epoll);
    g_test_add_func("/iothread/destroy-leaves-no-thread-or-fd/io_uring",
                    test_iothread_destroy_leaves_no_thread_or_fd_io_uring);
    g_test_add_func("/iothread/destroy-leaves-no-thread-or-fd/glib",
                    test_iothread_destroy_leaves_no_thread_or_fd_glib);
    return g_test_run();
}
