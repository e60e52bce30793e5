/*
 * The CPU an idle event-loop thread costs.  A thread (for dataplane, an
 * IOThread) runs its loop with nothing to do; its CPU time is read from its
 * thread CPU clock before and after an interval of wall time (1 s; 0.3 s
 * with --quick).  The dataplane
 * loop first handles a burst of cross-thread wake-ups (work that makes
 * adaptive polling start), so the figure shows the steady idle state after
 * activity: the polling window shrinks to zero once the loop sleeps longer
 * than poll-max-ns, instead of spinning for it on every sleep.
 *
 * Figure: idle-cpu, percent of one CPU, lower is better.  "dataplane" has
 * poll-max-ns 32768 (the default), "dataplane-nopoll" has polling off.
 */
#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_LIBUV
#include <uv.h>
#endif

#include "bench/bench-util.h"
#include "dataplane/aio.h"
#include "util/thread.h"
#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "util/atomic.h"

#define FIGURE "idle-cpu"
#define POLL_MAX_NS 32768
#define BURST 2000

/* The CPU clock of thread tid of this process (the kernel's encoding, the
 * one glibc's pthread_getcpuclockid() uses). */
static clockid_t thread_cpu_clock(pid_t tid)
{
    return (clockid_t)((~(unsigned)tid << 3) | 6);
}

static int64_t clock_ns(clockid_t clk)
{
    struct timespec ts;

    if (clock_gettime(clk, &ts) < 0) {
        perror("clock_gettime(thread CPU clock)");
        exit(1);
    }
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Percent of one CPU that thread tid used over interval_ns of wall time. */
static double measure_idle(pid_t tid, int64_t interval_ns)
{
    clockid_t clk = thread_cpu_clock(tid);
    struct timespec nap = {interval_ns / 1000000000LL,
                           interval_ns % 1000000000LL};
    int64_t cpu0, t0, cpu1, t1;

    cpu0 = clock_ns(clk);
    t0 = clock_monotonic_ns();
    nanosleep(&nap, NULL); /* the measured interval itself, not a sync */
    cpu1 = clock_ns(clk);
    t1 = clock_monotonic_ns();
    return 100.0 * (double)(cpu1 - cpu0) / (double)(t1 - t0);
}

/* ---- dataplane -------------------------------------------------------- */

typedef struct DpIdle {
    AioContext *ctx;
    bool ran; /* atomic: the burst BH ran */
} DpIdle;

static void dp_burst_bh(void *opaque)
{
    DpIdle *d = opaque;

    dp_atomic_store_release(&d->ran, true);
}

/* Wake the loop BURST times, each after it went back to sleep or poll. */
static void dp_burst(DpIdle *d, AioBH *bh)
{
    int i, spins;

    for (i = 0; i < BURST; i++) {
        dp_atomic_store_relaxed(&d->ran, false);
        aio_bh_schedule(bh);
        for (spins = 0; spins < 100000000 && !dp_atomic_load_acquire(&d->ran);
             spins++) {
        }
    }
}

static double dp_idle(int64_t poll_max_ns, int64_t interval_ns)
{
    IOThreadProps props;
    IOThread *io;
    DpIdle d = {0};
    AioBH *bh;
    double pct;

    iothread_props_init(&props);
    props.poll_max_ns = poll_max_ns;
    io = iothread_new("bench-idle", &props, &error_abort);
    d.ctx = iothread_get_aio_context(io);
    aio_context_acquire(d.ctx);
    bh = aio_bh_new(d.ctx, dp_burst_bh, &d);
    aio_context_release(d.ctx);
    dp_burst(&d, bh);
    pct = measure_idle(iothread_get_thread_id(io), interval_ns);
    aio_context_acquire(d.ctx);
    aio_bh_delete(bh);
    aio_context_release(d.ctx);
    iothread_destroy(io);
    return pct;
}

/* ---- peers: a thread blocked in the library's loop -------------------- */

typedef struct PeerIdle {
    pid_t tid;
    bool stop; /* atomic */
    DpMutex lock;
    DpCond cond;
#ifdef HAVE_LIBUV
    uv_loop_t loop;
    uv_async_t wake;
#endif
    GMainContext *gctx;
} PeerIdle;

static void peer_publish_tid(PeerIdle *p)
{
    dp_mutex_lock(&p->lock);
    p->tid = dp_thread_get_tid();
    dp_cond_signal(&p->cond);
    dp_mutex_unlock(&p->lock);
}

static void peer_wait_tid(PeerIdle *p)
{
    dp_mutex_lock(&p->lock);
    while (!p->tid) {
        dp_cond_wait(&p->cond, &p->lock);
    }
    dp_mutex_unlock(&p->lock);
}

#ifdef HAVE_LIBUV
static void libuv_wake_cb(uv_async_t *h)
{
    PeerIdle *p = h->data;

    if (dp_atomic_load_acquire(&p->stop)) {
        uv_close((uv_handle_t *)h, NULL);
    }
}

static void *libuv_idle_thread(void *opaque)
{
    PeerIdle *p = opaque;

    peer_publish_tid(p);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    return NULL;
}

static double libuv_idle(int64_t interval_ns)
{
    PeerIdle p = {0};
    DpThread t;
    double pct;

    dp_mutex_init(&p.lock);
    dp_cond_init(&p.cond);
    uv_loop_init(&p.loop);
    uv_async_init(&p.loop, &p.wake, libuv_wake_cb);
    p.wake.data = &p;
    dp_thread_create(&t, "bench-idle", libuv_idle_thread, &p);
    peer_wait_tid(&p);
    pct = measure_idle(p.tid, interval_ns);
    dp_atomic_store_release(&p.stop, true);
    uv_async_send(&p.wake);
    dp_thread_join(&t);
    uv_loop_close(&p.loop);
    dp_cond_destroy(&p.cond);
    dp_mutex_destroy(&p.lock);
    return pct;
}
#endif

static void *glib_idle_thread(void *opaque)
{
    PeerIdle *p = opaque;

    g_main_context_push_thread_default(p->gctx);
    peer_publish_tid(p);
    while (!dp_atomic_load_acquire(&p->stop)) {
        g_main_context_iteration(p->gctx, TRUE);
    }
    g_main_context_pop_thread_default(p->gctx);
    return NULL;
}

static double glib_idle(int64_t interval_ns)
{
    PeerIdle p = {0};
    DpThread t;
    double pct;

    dp_mutex_init(&p.lock);
    dp_cond_init(&p.cond);
    p.gctx = g_main_context_new();
    dp_thread_create(&t, "bench-idle", glib_idle_thread, &p);
    peer_wait_tid(&p);
    pct = measure_idle(p.tid, interval_ns);
    dp_atomic_store_release(&p.stop, true);
    g_main_context_wakeup(p.gctx);
    dp_thread_join(&t);
    g_main_context_unref(p.gctx);
    dp_cond_destroy(&p.cond);
    dp_mutex_destroy(&p.lock);
    return pct;
}

int main(int argc, char **argv)
{
    BenchOpts opts;
    int64_t interval;
    int r;

    bench_parse_args(argc, argv, &opts,
                     "CPU of an idle event-loop thread (dataplane with "
                     "polling on and off, libuv, GLib)");
    interval = opts.quick ? 300000000LL : 1000000000LL;
    main_loop_init(&error_abort);
#ifndef HAVE_LIBUV
    bench_note(FIGURE, "libuv", "built without libuv (libuv1-dev missing)");
#endif
    for (r = 0; r < opts.rounds; r++) {
        if (bench_wants(&opts, "dataplane")) {
            bench_report(FIGURE, "dataplane", dp_idle(POLL_MAX_NS, interval),
                         "%", false);
            bench_report(FIGURE, "dataplane-nopoll", dp_idle(0, interval), "%",
                         false);
        }
#ifdef HAVE_LIBUV
        if (bench_wants(&opts, "libuv")) {
            bench_report(FIGURE, "libuv", libuv_idle(interval), "%", false);
        }
#endif
        if (bench_wants(&opts, "glib")) {
            bench_report(FIGURE, "glib", glib_idle(interval), "%", false);
        }
    }
    return 0;
}
