/*
 * A million timers armed and fired, measured the way libuv's
 * million_timers benchmark does: timer i gets a timeout of 1 + i/1000 ms
 * (a thousand timers per millisecond), the loop runs until every one has
 * fired, then they are all released.
 *
 * Figures (N = 1M, or 100k with --quick), lower is better:
 *   timers-N-arm    ns per timer to create and arm all of them
 *   timers-N-cpu    process CPU ns per timer to arm and fire all of them
 *   timers-N-total  seconds of wall time: arm, fire (the last deadline is
 *                   N/1000 ms away, a floor every loop shares) and release
 */
#include <glib.h>
#include <stdio.h>

#ifdef HAVE_LIBUV
#include <uv.h>
#endif

#include "bench/bench-util.h"
#include "dataplane/aio.h"

typedef struct TimerResult {
    double arm_ns; /* per timer */
    double cpu_ns; /* per timer, arm + fire */
    double total_s;
} TimerResult;

static long fired;

static void result_finish(TimerResult *res, long n, int64_t t0, int64_t t_armed,
                          int64_t cpu0, int64_t cpu_fired, int64_t t_end)
{
    res->arm_ns = (double)(t_armed - t0) / (double)n;
    res->cpu_ns = (double)(cpu_fired - cpu0) / (double)n;
    res->total_s = (double)(t_end - t0) / 1e9;
}

static long timeout_ms(long i)
{
    return 1 + i / 1000;
}

/* ---- dataplane -------------------------------------------------------- */

static void dp_timer_cb(void *opaque)
{
    fired++;
}

static void dp_timers(long n, TimerResult *res)
{
    AioContext *ctx = aio_context_new(&error_abort);
    AioTimer **timers = g_new(AioTimer *, n);
    int64_t t0, t_armed, cpu0, cpu_fired, now_ms;
    long i;

    fired = 0;
    t0 = clock_monotonic_ns();
    cpu0 = bench_process_cpu_ns();
    now_ms = aio_clock_get_ns(AIO_CLOCK_REALTIME) / 1000000;
    for (i = 0; i < n; i++) {
        timers[i] = aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_MS,
                                  dp_timer_cb, NULL);
        aio_timer_mod(timers[i], now_ms + timeout_ms(i));
    }
    t_armed = clock_monotonic_ns();
    while (fired < n) {
        aio_poll(ctx, true);
    }
    cpu_fired = bench_process_cpu_ns();
    for (i = 0; i < n; i++) {
        aio_timer_free(timers[i]);
    }
    result_finish(res, n, t0, t_armed, cpu0, cpu_fired, clock_monotonic_ns());
    g_free(timers);
    aio_context_unref(ctx);
}

/* ---- libuv ------------------------------------------------------------ */

#ifdef HAVE_LIBUV
static void libuv_timer_fired(uv_timer_t *t)
{
    fired++;
}

static void libuv_timers(long n, TimerResult *res)
{
    uv_loop_t loop;
    uv_timer_t *timers = g_new(uv_timer_t, n);
    int64_t t0, t_armed, cpu0, cpu_fired;
    long i;

    uv_loop_init(&loop);
    fired = 0;
    t0 = clock_monotonic_ns();
    cpu0 = bench_process_cpu_ns();
    for (i = 0; i < n; i++) {
        uv_timer_init(&loop, &timers[i]);
        uv_timer_start(&timers[i], libuv_timer_fired, timeout_ms(i), 0);
    }
    t_armed = clock_monotonic_ns();
    uv_run(&loop, UV_RUN_DEFAULT);
    cpu_fired = bench_process_cpu_ns();
    if (fired != n) {
        fprintf(stderr, "libuv: %ld of %ld timers fired\n", fired, n);
        exit(1);
    }
    for (i = 0; i < n; i++) {
        uv_close((uv_handle_t *)&timers[i], NULL);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    result_finish(res, n, t0, t_armed, cpu0, cpu_fired, clock_monotonic_ns());
    uv_loop_close(&loop);
    g_free(timers);
}
#endif

/* ---- GLib ------------------------------------------------------------- */

static gboolean glib_timer_fired(gpointer opaque)
{
    fired++;
    return G_SOURCE_REMOVE;
}

static void glib_timers(long n, TimerResult *res)
{
    GMainContext *ctx = g_main_context_new();
    int64_t t0, t_armed, cpu0, cpu_fired;
    long i;

    fired = 0;
    t0 = clock_monotonic_ns();
    cpu0 = bench_process_cpu_ns();
    for (i = 0; i < n; i++) {
        GSource *s = g_timeout_source_new((guint)timeout_ms(i));

        g_source_set_callback(s, glib_timer_fired, NULL, NULL);
        g_source_attach(s, ctx);
        g_source_unref(s);
    }
    t_armed = clock_monotonic_ns();
    while (fired < n) {
        g_main_context_iteration(ctx, TRUE);
    }
    cpu_fired = bench_process_cpu_ns();
    /* The sources removed themselves when they fired: nothing to release. */
    result_finish(res, n, t0, t_armed, cpu0, cpu_fired, clock_monotonic_ns());
    g_main_context_unref(ctx);
}

static void report(const char *prefix, const char *impl, const TimerResult *r)
{
    char fig[64];

    snprintf(fig, sizeof(fig), "%s-arm", prefix);
    bench_report(fig, impl, r->arm_ns, "ns/timer", false);
    snprintf(fig, sizeof(fig), "%s-cpu", prefix);
    bench_report(fig, impl, r->cpu_ns, "ns/timer", false);
    snprintf(fig, sizeof(fig), "%s-total", prefix);
    bench_report(fig, impl, r->total_s, "s", false);
}

int main(int argc, char **argv)
{
    BenchOpts opts;
    TimerResult res;
    const char *prefix;
    long n;
    int r;

    bench_parse_args(argc, argv, &opts,
                     "a million timers armed and fired (dataplane, libuv, "
                     "GLib), as libuv's million_timers");
    n = opts.quick ? 100000 : 1000000;
    prefix = opts.quick ? "timers-100k" : "timers-1M";
#ifndef HAVE_LIBUV
    bench_note(prefix, "libuv", "built without libuv (libuv1-dev missing)");
#endif
    for (r = 0; r < opts.rounds; r++) {
        if (bench_wants(&opts, "dataplane")) {
            dp_timers(n, &res);
            report(prefix, "dataplane", &res);
        }
#ifdef HAVE_LIBUV
        if (bench_wants(&opts, "libuv")) {
            libuv_timers(n, &res);
            report(prefix, "libuv", &res);
        }
#endif
        if (bench_wants(&opts, "glib")) {
            glib_timers(n, &res);
            report(prefix, "glib", &res);
        }
    }
    return 0;
}
