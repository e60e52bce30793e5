/*
 * Cross-thread wake-up round trip: thread A hands a unit of work to thread
 * B's event loop, B hands one back, and A counts the round trip.  Measured
 * for dataplane (a BH ping-pong between two IOThreads, adaptive polling
 * on and off), libuv (uv_async_send between two loops, as libuv's async1
 * benchmark), GLib (g_main_context_invoke between two GMainContexts), a raw
 * eventfd pair (two threads blocked in read()) and two spinning threads
 * (the physical limit of the machine), in two forms: "spin" passes one
 * flag back and forth (one cache line for both directions), "spin-mailbox"
 * gives each side a mailbox of its own that the other writes (a line per
 * direction, as any two event loops with an inbox each).
 *
 * Figure: wakeup-roundtrip, microseconds per round trip, lower is better.
 * "dataplane" is the default configuration (poll-max-ns 32768);
 * "dataplane-nopoll" has adaptive polling off.  Each round measures the
 * two spinning pairs right before dataplane, so that a ratio between them
 * compares minutes alike: where the host runs the two vCPUs (the same
 * core or not) changes a round trip three- to fivefold here.
 *
 * Figure: async-pummel-1, as libuv's async_pummel_1: one thread signals the
 * loop as fast as it can (aio_bh_schedule of one BH / uv_async_send of one
 * handle; repeated signals coalesce) and the loop counts its callbacks;
 * callbacks per second, higher is better.  libuv's benchmark stops after a
 * million callbacks; this one after 2 s (0.2 s with --quick), because on a
 * loaded 2-CPU machine a million can take minutes.  The loop does not
 * busy-poll here (as libuv's cannot), and the figure has two steady states
 * for both libraries: one where the loop finds the next signal already
 * there after each callback (dataplane: millions per second), and one
 * where it often finds none, goes to sleep, and the signalling thread
 * pays an eventfd write for it (dataplane: about half a million).  Which
 * one a run settles in varies from run to run.
 */
#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/eventfd.h>
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

#define FIGURE "wakeup-roundtrip"
#define POLL_MAX_NS 32768

/*
 * Round-trip accounting, touched only by side A (the thread that counts).
 * The first warm_left round trips are not timed: they let adaptive polling
 * grow its window and fault in the stacks.
 */
typedef struct Trip {
    int64_t warm_left;
    int64_t duration_ns;
    int64_t start_ns;
    int64_t end_ns;
    int64_t count;
} Trip;

static void trip_init(Trip *t, const BenchOpts *opts)
{
    t->warm_left = opts->quick ? 200 : 2000;
    t->duration_ns = opts->quick ? 200000000LL : 2000000000LL;
    t->start_ns = t->end_ns = 0;
    t->count = 0;
}

/* Side A completed a round trip; false when the timed run is over. */
static bool trip_next(Trip *t)
{
    int64_t now;

    if (t->warm_left > 0) {
        if (--t->warm_left == 0) {
            t->start_ns = clock_monotonic_ns();
        }
        return true;
    }
    t->count++;
    if (t->count & 63) {
        return true;
    }
    now = clock_monotonic_ns();
    if (now - t->start_ns < t->duration_ns) {
        return true;
    }
    t->end_ns = now;
    return false;
}

static double trip_us(const Trip *t)
{
    return t->count ? (double)(t->end_ns - t->start_ns) / 1e3 / (double)t->count
                    : 0;
}

/* ---- dataplane: BH ping-pong between two AioContexts ------------------ */

typedef struct DpPair {
    AioContext *ctx[2];
    AioBH *bh[2]; /* bh[i] runs in ctx[i] */
    /* Side A's alone, on a line of its own: side B reads bh[0] on every
     * hop, and a counter written beside it would cost B a miss per hop
     * that is the benchmark's, not the loop's. */
    _Alignas(64) Trip trip;
    bool done; /* atomic: the timed run is over */
    DpMutex lock;
    DpCond cond; /* signalled with done */
} DpPair;

/* In ctx[1]: hand the work back to A. */
static void dp_pong(void *opaque)
{
    DpPair *p = opaque;

    aio_bh_schedule(p->bh[0]);
}

/* In ctx[0]: count the round trip and start the next one. */
static void dp_ping(void *opaque)
{
    DpPair *p = opaque;

    if (trip_next(&p->trip)) {
        aio_bh_schedule(p->bh[1]);
        return;
    }
    dp_mutex_lock(&p->lock);
    dp_atomic_store_release(&p->done, true);
    dp_cond_signal(&p->cond);
    dp_mutex_unlock(&p->lock);
}

/* Both sides are IOThreads; this thread only starts and waits. */
static double dp_wakeup(const BenchOpts *opts, int64_t poll_max_ns)
{
    IOThreadProps props;
    IOThread *io[2];
    DpPair p = {0};
    double us;
    int i;

    iothread_props_init(&props);
    props.poll_max_ns = poll_max_ns;
    dp_mutex_init(&p.lock);
    dp_cond_init(&p.cond);
    trip_init(&p.trip, opts);
    for (i = 0; i < 2; i++) {
        char id[16];

        snprintf(id, sizeof(id), "bench-io%d", i);
        io[i] = iothread_new(id, &props, &error_abort);
        p.ctx[i] = iothread_get_aio_context(io[i]);
        aio_context_acquire(p.ctx[i]);
        p.bh[i] = aio_bh_new(p.ctx[i], i ? dp_pong : dp_ping, &p);
        aio_context_release(p.ctx[i]);
    }
    aio_bh_schedule(p.bh[1]);
    dp_mutex_lock(&p.lock);
    while (!dp_atomic_load_acquire(&p.done)) {
        dp_cond_wait(&p.cond, &p.lock);
    }
    dp_mutex_unlock(&p.lock);
    us = trip_us(&p.trip);
    /*
     * Side B first: its last aio_bh_schedule(bh[0]) may still be inside
     * aio_notify(ctx[0]) after side A ran the BH, so ctx[0] may only go
     * once B's thread is joined.  Side A touches ctx[1] no more: its last
     * schedule of bh[1] returned before B could answer it.
     */
    for (i = 1; i >= 0; i--) {
        aio_context_acquire(p.ctx[i]);
        aio_bh_delete(p.bh[i]);
        aio_context_release(p.ctx[i]);
        iothread_destroy(io[i]);
    }
    dp_cond_destroy(&p.cond);
    dp_mutex_destroy(&p.lock);
    return us;
}

/* ---- libuv: uv_async_send between two loops --------------------------- */

#ifdef HAVE_LIBUV
typedef struct UvPair {
    uv_loop_t loop[2];
    uv_async_t async[2]; /* async[i] belongs to loop[i] */
    Trip trip;
    bool stop; /* atomic */
} UvPair;

/* In loop[1]. */
static void libuv_pong(uv_async_t *h)
{
    UvPair *p = h->data;

    if (dp_atomic_load_acquire(&p->stop)) {
        uv_close((uv_handle_t *)&p->async[1], NULL);
        return;
    }
    uv_async_send(&p->async[0]);
}

/* In loop[0]. */
static void libuv_ping(uv_async_t *h)
{
    UvPair *p = h->data;

    if (trip_next(&p->trip)) {
        uv_async_send(&p->async[1]);
        return;
    }
    dp_atomic_store_release(&p->stop, true);
    uv_async_send(&p->async[1]);
    uv_close((uv_handle_t *)&p->async[0], NULL);
}

static void *libuv_side_b(void *opaque)
{
    UvPair *p = opaque;

    uv_run(&p->loop[1], UV_RUN_DEFAULT);
    return NULL;
}

static double libuv_wakeup(const BenchOpts *opts)
{
    UvPair p = {0};
    DpThread b;
    int i;

    trip_init(&p.trip, opts);
    for (i = 0; i < 2; i++) {
        uv_loop_init(&p.loop[i]);
        uv_async_init(&p.loop[i], &p.async[i], i ? libuv_pong : libuv_ping);
        p.async[i].data = &p;
    }
    dp_thread_create(&b, "bench-side-b", libuv_side_b, &p);
    uv_async_send(&p.async[1]);
    uv_run(&p.loop[0], UV_RUN_DEFAULT);
    dp_thread_join(&b);
    for (i = 0; i < 2; i++) {
        uv_loop_close(&p.loop[i]);
    }
    return trip_us(&p.trip);
}
#endif

/* ---- GLib: g_main_context_invoke between two GMainContexts ------------ */

typedef struct GPair {
    GMainContext *ctx[2];
    Trip trip;
    bool stop; /* atomic */
    bool done; /* side A only */
} GPair;

static gboolean glib_ping(gpointer opaque);

/* In ctx[1]. */
static gboolean glib_pong(gpointer opaque)
{
    GPair *p = opaque;

    g_main_context_invoke(p->ctx[0], glib_ping, p);
    return G_SOURCE_REMOVE;
}

/* In ctx[0]. */
static gboolean glib_ping(gpointer opaque)
{
    GPair *p = opaque;

    if (trip_next(&p->trip)) {
        g_main_context_invoke(p->ctx[1], glib_pong, p);
    } else {
        p->done = true;
    }
    return G_SOURCE_REMOVE;
}

static void *glib_side_b(void *opaque)
{
    GPair *p = opaque;

    g_main_context_push_thread_default(p->ctx[1]);
    while (!dp_atomic_load_acquire(&p->stop)) {
        g_main_context_iteration(p->ctx[1], TRUE);
    }
    g_main_context_pop_thread_default(p->ctx[1]);
    return NULL;
}

static double glib_wakeup(const BenchOpts *opts)
{
    GPair p = {0};
    DpThread b;

    trip_init(&p.trip, opts);
    p.ctx[0] = g_main_context_new();
    p.ctx[1] = g_main_context_new();
    g_main_context_push_thread_default(p.ctx[0]);
    dp_thread_create(&b, "bench-side-b", glib_side_b, &p);
    g_main_context_invoke(p.ctx[1], glib_pong, &p);
    while (!p.done) {
        g_main_context_iteration(p.ctx[0], TRUE);
    }
    dp_atomic_store_release(&p.stop, true);
    g_main_context_wakeup(p.ctx[1]);
    dp_thread_join(&b);
    /* Drain an invoke that side B may have queued before it stopped. */
    while (g_main_context_iteration(p.ctx[0], FALSE)) {
    }
    g_main_context_pop_thread_default(p.ctx[0]);
    g_main_context_unref(p.ctx[0]);
    g_main_context_unref(p.ctx[1]);
    return trip_us(&p.trip);
}

/* ---- a raw eventfd pair: two threads blocked in read() ---------------- */

typedef struct EfdPair {
    int fd[2]; /* fd[i] wakes side i */
    bool stop; /* atomic */
} EfdPair;

static void efd_signal(int fd)
{
    uint64_t one = 1;

    while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
}

static void efd_wait(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR) {
    }
}

static void *efd_side_b(void *opaque)
{
    EfdPair *p = opaque;

    for (;;) {
        efd_wait(p->fd[1]);
        if (dp_atomic_load_acquire(&p->stop)) {
            return NULL;
        }
        efd_signal(p->fd[0]);
    }
}

static double efd_wakeup(const BenchOpts *opts)
{
    EfdPair p = {{eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC)}, false};
    Trip trip;
    DpThread b;

    if (p.fd[0] < 0 || p.fd[1] < 0) {
        perror("eventfd");
        exit(1);
    }
    trip_init(&trip, opts);
    dp_thread_create(&b, "bench-side-b", efd_side_b, &p);
    do {
        efd_signal(p.fd[1]);
        efd_wait(p.fd[0]);
    } while (trip_next(&trip));
    dp_atomic_store_release(&p.stop, true);
    efd_signal(p.fd[1]);
    dp_thread_join(&b);
    close(p.fd[0]);
    close(p.fd[1]);
    return trip_us(&trip);
}

/* ---- two spinning threads: the physical limit ------------------------- */

enum { SPIN_A, SPIN_B, SPIN_STOP };

static void *spin_side_b(void *opaque)
{
    int *turn = opaque;

    for (;;) {
        int t = dp_atomic_load_acquire(turn);

        if (t == SPIN_STOP) {
            return NULL;
        }
        if (t == SPIN_B) {
            dp_atomic_store_release(turn, SPIN_A);
        }
    }
}

static double spin_wakeup(const BenchOpts *opts)
{
    int turn = SPIN_A;
    Trip trip;
    DpThread b;

    trip_init(&trip, opts);
    dp_thread_create(&b, "bench-side-b", spin_side_b, &turn);
    do {
        dp_atomic_store_release(&turn, SPIN_B);
        while (dp_atomic_load_acquire(&turn) != SPIN_A) {
        }
    } while (trip_next(&trip));
    dp_atomic_store_release(&turn, SPIN_STOP);
    dp_thread_join(&b);
    return trip_us(&trip);
}

/* ---- two spinning threads, a mailbox each ----------------------------- */

/* Each side's inbox on a line of its own: written by the other side. */
typedef struct SpinMailboxes {
    _Alignas(64) uint64_t to_a;
    _Alignas(64) uint64_t to_b;
    _Alignas(64) bool stop; /* atomic */
} SpinMailboxes;

static void *spin_mailbox_side_b(void *opaque)
{
    SpinMailboxes *m = opaque;
    uint64_t seen = 0;

    for (;;) {
        uint64_t v = dp_atomic_load_acquire(&m->to_b);

        if (v != seen) {
            seen = v;
            dp_atomic_store_release(&m->to_a, v);
        } else if (dp_atomic_load_relaxed(&m->stop)) {
            return NULL;
        }
    }
}

static double spin_mailbox_wakeup(const BenchOpts *opts)
{
    SpinMailboxes *m = g_aligned_alloc0(1, sizeof(*m), 64);
    uint64_t n = 0;
    Trip trip;
    DpThread b;
    double us;

    trip_init(&trip, opts);
    dp_thread_create(&b, "bench-side-b", spin_mailbox_side_b, m);
    do {
        dp_atomic_store_release(&m->to_b, ++n);
        while (dp_atomic_load_acquire(&m->to_a) != n) {
        }
    } while (trip_next(&trip));
    dp_atomic_store_release(&m->stop, true);
    dp_thread_join(&b);
    us = trip_us(&trip);
    g_aligned_free(m);
    return us;
}

/* ---- async pummel: one thread signals as fast as it can --------------- */

/* The loop's counter and the flag the pummelling thread reads in every
 * iteration on lines of their own: on one line, each callback would cost
 * the pummelling thread a cache miss, and whether they shared one depended
 * on where the stack happened to start (the figure was 0.4M or 1.4M
 * callbacks/s from one process to the next, always 0.4M without ASLR). */
typedef struct Pummel {
    _Alignas(64) long callbacks; /* loop thread only */
    int64_t deadline;            /* on the monotonic clock */
    _Alignas(64) bool stop;      /* atomic: the pummelling thread ends */
    AioBH *bh;
#ifdef HAVE_LIBUV
    _Alignas(64) uv_async_t async;
#endif
} Pummel;

static void dp_pummel_bh(void *opaque)
{
    Pummel *p = opaque;

    if (++p->callbacks % 64 == 0 && clock_monotonic_ns() >= p->deadline) {
        dp_atomic_store_release(&p->stop, true);
    }
}

static void *dp_pummel_thread(void *opaque)
{
    Pummel *p = opaque;

    while (!dp_atomic_load_acquire(&p->stop)) {
        aio_bh_schedule(p->bh);
    }
    return NULL;
}

/* The loop runs in this thread, as libuv's default loop does there. */
static double dp_pummel(int64_t duration_ns)
{
    Pummel p = {0, clock_monotonic_ns() + duration_ns, false, NULL};
    AioContext *ctx = aio_context_new(&error_abort);
    DpThread t;
    int64_t t0, t1;

    p.bh = aio_bh_new(ctx, dp_pummel_bh, &p);
    t0 = clock_monotonic_ns();
    dp_thread_create(&t, "bench-pummel", dp_pummel_thread, &p);
    while (!dp_atomic_load_acquire(&p.stop)) {
        aio_poll(ctx, true);
    }
    t1 = clock_monotonic_ns();
    dp_thread_join(&t);
    aio_bh_delete(p.bh);
    while (aio_poll(ctx, false)) {
    }
    aio_context_unref(ctx);
    return (double)p.callbacks / ((double)(t1 - t0) / 1e9);
}

#ifdef HAVE_LIBUV
static void libuv_pummel_cb(uv_async_t *h)
{
    Pummel *p = h->data;

    if (++p->callbacks % 64 == 0 && clock_monotonic_ns() >= p->deadline) {
        dp_atomic_store_release(&p->stop, true);
        uv_close((uv_handle_t *)h, NULL);
    }
}

static void *libuv_pummel_thread(void *opaque)
{
    Pummel *p = opaque;

    while (!dp_atomic_load_acquire(&p->stop)) {
        uv_async_send(&p->async);
    }
    return NULL;
}

static double libuv_pummel(int64_t duration_ns)
{
    Pummel p = {0, clock_monotonic_ns() + duration_ns, false, NULL};
    uv_loop_t loop;
    DpThread t;
    int64_t t0, t1;

    uv_loop_init(&loop);
    uv_async_init(&loop, &p.async, libuv_pummel_cb);
    p.async.data = &p;
    t0 = clock_monotonic_ns();
    dp_thread_create(&t, "bench-pummel", libuv_pummel_thread, &p);
    uv_run(&loop, UV_RUN_DEFAULT);
    t1 = clock_monotonic_ns();
    dp_thread_join(&t);
    uv_loop_close(&loop);
    return (double)p.callbacks / ((double)(t1 - t0) / 1e9);
}
#endif

int main(int argc, char **argv)
{
    BenchOpts opts;
    int r;

    bench_parse_args(argc, argv, &opts,
                     "cross-thread wake-up round trip (dataplane BH, libuv "
                     "async, GLib invoke, eventfd, spin)");
    main_loop_init(&error_abort);
#ifndef HAVE_LIBUV
    bench_note(FIGURE, "libuv", "built without libuv (libuv1-dev missing)");
#endif
    for (r = 0; r < opts.rounds; r++) {
        int64_t pummel_ns = opts.quick ? 200000000LL : 2000000000LL;

        if (bench_wants(&opts, "dataplane")) {
            bench_report("async-pummel-1", "dataplane", dp_pummel(pummel_ns),
                         "callbacks/s", true);
        }
#ifdef HAVE_LIBUV
        if (bench_wants(&opts, "libuv")) {
            bench_report("async-pummel-1", "libuv", libuv_pummel(pummel_ns),
                         "callbacks/s", true);
        }
#endif
        /* Interleaved, so that a noisy neighbour hurts every row alike;
         * the spinning pairs right before dataplane (see the top). */
        if (bench_wants(&opts, "spin")) {
            bench_report(FIGURE, "spin", spin_wakeup(&opts), "us", false);
            bench_report(FIGURE, "spin-mailbox", spin_mailbox_wakeup(&opts),
                         "us", false);
        }
        if (bench_wants(&opts, "dataplane")) {
            bench_report(FIGURE, "dataplane", dp_wakeup(&opts, POLL_MAX_NS),
                         "us", false);
            bench_report(FIGURE, "dataplane-nopoll", dp_wakeup(&opts, 0), "us",
                         false);
        }
#ifdef HAVE_LIBUV
        if (bench_wants(&opts, "libuv")) {
            bench_report(FIGURE, "libuv", libuv_wakeup(&opts), "us", false);
        }
#endif
        if (bench_wants(&opts, "glib")) {
            bench_report(FIGURE, "glib", glib_wakeup(&opts), "us", false);
        }
        if (bench_wants(&opts, "eventfd")) {
            bench_report(FIGURE, "eventfd", efd_wakeup(&opts), "us", false);
        }
    }
    return 0;
}
