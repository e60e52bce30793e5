/*
 * aio_context_acquire() latency from another thread while an IOThread owns
 * the context.  The IOThread holds its context around every aio_poll(); a
 * waiter kicks it out of a blocking poll, so acquire should take about one
 * wake-up, not "until some event happens to arrive".
 *
 * The main thread acquires and releases the context of an IOThread again
 * and again, pausing 200 us between samples so that the IOThread goes back
 * to polling or sleeping each time:
 *   acquire-idle-*   the IOThread has nothing to do (blocked in aio_poll)
 *   acquire-busy-*   the IOThread runs a BH that does ~2 us of work and
 *                    reschedules itself, so acquire waits for an iteration
 * Figures: mean and p99 in us, lower is better.  "dataplane" has adaptive
 * polling on (poll-max-ns 32768, the default), "dataplane-nopoll" off.
 * There is no peer: libuv, GLib and libevent have no cross-thread lock on
 * a running loop.
 */
#include <glib.h>
#include <stdio.h>
#include <time.h>

#include "bench/bench-util.h"
#include "dataplane/aio.h"
#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "util/atomic.h"

#define POLL_MAX_NS 32768
#define BUSY_WORK_NS 2000
#define GAP_NS 200000

typedef struct Busy {
    AioBH *bh;
    bool stop; /* atomic */
} Busy;

/* In the IOThread: ~2 us of work, then run again next iteration. */
static void busy_bh(void *opaque)
{
    Busy *b = opaque;
    int64_t until = clock_monotonic_ns() + BUSY_WORK_NS;

    while (clock_monotonic_ns() < until) {
    }
    if (!dp_atomic_load_acquire(&b->stop)) {
        aio_bh_schedule(b->bh);
    }
}

static void measure(const char *impl, int64_t poll_max_ns, bool busy,
                    int samples)
{
    IOThreadProps props;
    IOThread *io;
    AioContext *ctx;
    Busy b = {NULL, false};
    struct timespec gap = {0, GAP_NS};
    double *lat = g_new(double, samples);
    double sum = 0;
    char fig[64];
    int i;

    iothread_props_init(&props);
    props.poll_max_ns = poll_max_ns;
    io = iothread_new("bench-acquire", &props, &error_abort);
    ctx = iothread_get_aio_context(io);
    if (busy) {
        aio_context_acquire(ctx);
        b.bh = aio_bh_new(ctx, busy_bh, &b);
        aio_bh_schedule(b.bh);
        aio_context_release(ctx);
    }
    for (i = 0; i < samples; i++) {
        int64_t t0;

        nanosleep(&gap, NULL); /* pacing: let the IOThread settle again */
        t0 = clock_monotonic_ns();
        aio_context_acquire(ctx);
        lat[i] = (double)(clock_monotonic_ns() - t0) / 1e3;
        aio_context_release(ctx);
        sum += lat[i];
    }
    if (busy) {
        dp_atomic_store_release(&b.stop, true);
        aio_context_acquire(ctx);
        aio_bh_delete(b.bh);
        aio_context_release(ctx);
    }
    iothread_destroy(io);

    snprintf(fig, sizeof(fig), "acquire-%s-mean", busy ? "busy" : "idle");
    bench_report(fig, impl, sum / samples, "us", false);
    snprintf(fig, sizeof(fig), "acquire-%s-p99", busy ? "busy" : "idle");
    bench_report(fig, impl, bench_percentile(lat, (size_t)samples, 99), "us",
                 false);
    g_free(lat);
}

int main(int argc, char **argv)
{
    BenchOpts opts;
    int samples, r;

    bench_parse_args(argc, argv, &opts,
                     "aio_context_acquire latency from another thread while "
                     "an IOThread owns the context");
    samples = opts.quick ? 300 : 3000;
    main_loop_init(&error_abort);
    for (r = 0; r < opts.rounds; r++) {
        if (!bench_wants(&opts, "dataplane")) {
            continue;
        }
        measure("dataplane", POLL_MAX_NS, false, samples);
        measure("dataplane-nopoll", 0, false, samples);
        measure("dataplane", POLL_MAX_NS, true, samples);
        measure("dataplane-nopoll", 0, true, samples);
    }
    return 0;
}
