/*
 * bench/threadlet: offloading tiny tasks to a thread pool and getting the
 * completion back in the submitting loop thread, side by side:
 *
 *   dataplane   threadlet_submit_aio_to_queue() on an AioContext
 *   libuv       uv_queue_work() on a uv_loop_t
 *   glib        GThreadPool, completion handed back with
 *               g_main_context_invoke() to a GMainContext
 *
 * All three use the same number of pool threads (--threads, default 4:
 * libuv's default) and a trivial task, so what is measured is the pool's
 * hand-over machinery: queueing, waking a worker, and waking the loop.
 *
 * Figures:
 *   threadlet-throughput-w<N>  tasks/s with N in flight, submitted from the
 *                              loop thread and completed back in it
 *   threadlet-roundtrip        µs for one task there and back, one at a time
 *
 * Output: BENCH lines (one per round and implementation) on stdout; a table
 * of medians with ratios against dataplane on stderr.
 */
#include <glib.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "dataplane/aio.h"
#include "dataplane/threadlet.h"
#include "util/clock.h"

typedef struct Config {
    int threads;
    int rounds;
    int64_t min_run_ns; /* every reported measurement lasts at least this */
    const char *only;   /* one implementation, or NULL for all */
    const char *figure; /* one figure, or NULL for all */
} Config;

/* One measurement run: the same shape for every implementation. */
typedef struct Run {
    long total;  /* tasks to complete */
    long window; /* in flight */
    long submitted;
    long completed;
} Run;

/* A trivial task: enough to not be optimised away. */
static int task_body(void *arg)
{
    volatile long *sink = arg;

    return (int)(*sink & 1);
}

static long sink_value;

/* ---- dataplane ---------------------------------------------------------- */

typedef struct DpBench {
    AioContext *ctx;
    ThreadletQueue *q;
    Run run;
} DpBench;

static void dp_done(void *opaque, int ret);

static void dp_submit(DpBench *b)
{
    b->run.submitted++;
    threadlet_submit_aio_to_queue(b->q, b->ctx, task_body, &sink_value, dp_done,
                                  b);
}

static void dp_done(void *opaque, int ret)
{
    DpBench *b = opaque;

    b->run.completed++;
    if (b->run.submitted < b->run.total) {
        dp_submit(b);
    }
}

/* Returns the elapsed ns. */
static int64_t dp_measure(DpBench *b, long total, long window)
{
    int64_t start = clock_monotonic_ns();
    long i;

    b->run = (Run){.total = total, .window = window};
    for (i = 0; i < window && i < total; i++) {
        dp_submit(b);
    }
    while (b->run.completed < total) {
        aio_poll(b->ctx, true);
    }
    return clock_monotonic_ns() - start;
}

/* ---- libuv -------------------------------------------------------------- */

typedef struct UvBench {
    uv_loop_t loop;
    uv_work_t *reqs; /* one per slot in flight */
    Run run;
} UvBench;

static void uv_task(uv_work_t *req)
{
    task_body(&sink_value);
}

static void uv_after(uv_work_t *req, int status);

static void uv_submit(UvBench *b, uv_work_t *req)
{
    b->run.submitted++;
    req->data = b;
    if (uv_queue_work(&b->loop, req, uv_task, uv_after) != 0) {
        g_error("uv_queue_work failed");
    }
}

static void uv_after(uv_work_t *req, int status)
{
    UvBench *b = req->data;

    b->run.completed++;
    if (b->run.submitted < b->run.total) {
        uv_submit(b, req); /* the request is free again: reuse it */
    }
}

static int64_t uv_measure(UvBench *b, long total, long window)
{
    int64_t start = clock_monotonic_ns();
    long i;

    b->run = (Run){.total = total, .window = window};
    for (i = 0; i < window && i < total; i++) {
        uv_submit(b, &b->reqs[i]);
    }
    uv_run(&b->loop, UV_RUN_DEFAULT); /* returns when nothing is pending */
    if (b->run.completed != total) {
        g_error("libuv: %ld of %ld completed", b->run.completed, total);
    }
    return clock_monotonic_ns() - start;
}

/* ---- GLib --------------------------------------------------------------- */

typedef struct GlibBench {
    GMainContext *ctx;
    GThreadPool *pool;
    Run run;
} GlibBench;

static gboolean glib_done(gpointer data);

static void glib_task(gpointer data, gpointer user_data)
{
    GlibBench *b = user_data;

    task_body(&sink_value);
    /* From a pool thread this attaches an idle source to the context and
     * wakes it: GLib's way to run a function in another thread's loop. */
    g_main_context_invoke(b->ctx, glib_done, data);
}

static void glib_submit(GlibBench *b)
{
    GError *err = NULL;

    b->run.submitted++;
    /* The pool rejects NULL data; the pointer is only a token. */
    if (!g_thread_pool_push(b->pool, b, &err)) {
        g_error("g_thread_pool_push: %s", err->message);
    }
}

static gboolean glib_done(gpointer data)
{
    GlibBench *b = data;

    b->run.completed++;
    if (b->run.submitted < b->run.total) {
        glib_submit(b);
    }
    return G_SOURCE_REMOVE;
}

static int64_t glib_measure(GlibBench *b, long total, long window)
{
    int64_t start = clock_monotonic_ns();
    long i;

    b->run = (Run){.total = total, .window = window};
    for (i = 0; i < window && i < total; i++) {
        glib_submit(b);
    }
    while (b->run.completed < total) {
        g_main_context_iteration(b->ctx, TRUE);
    }
    return clock_monotonic_ns() - start;
}

/* ---- harness ------------------------------------------------------------ */

enum { IMPL_DP, IMPL_DP_POLL, IMPL_UV, IMPL_GLIB, IMPL_MAX };
static const char *const impl_names[IMPL_MAX] = {
    "dataplane",
    "dataplane-poll",
    "libuv",
    "glib",
};

typedef struct Figure {
    const char *name;
    const char *unit;
    bool higher_is_better;
    long window;              /* 0: round trip */
    GArray *values[IMPL_MAX]; /* double */
    long count[IMPL_MAX];     /* tasks per run, grown to last min_run_ns */
} Figure;

typedef struct Benches {
    DpBench dp;
    DpBench dp_poll;
    UvBench uv;
    GlibBench glib;
} Benches;

static int64_t measure(Benches *b, int impl, long total, long window)
{
    switch (impl) {
    case IMPL_DP:
        return dp_measure(&b->dp, total, window);
    case IMPL_DP_POLL:
        return dp_measure(&b->dp_poll, total, window);
    case IMPL_UV:
        return uv_measure(&b->uv, total, window);
    default:
        return glib_measure(&b->glib, total, window);
    }
}

static void benches_init(Benches *b, const Config *cfg)
{
    GError *err = NULL;
    char nthreads[16];

    /* libuv reads this once, when its pool starts on first use. */
    snprintf(nthreads, sizeof(nthreads), "%d", cfg->threads);
    setenv("UV_THREADPOOL_SIZE", nthreads, 1);

    /* min == max: threads stay up between runs, as libuv's and GLib's
     * exclusive pool's do. */
    b->dp.ctx = aio_context_new(&error_abort);
    b->dp.q = threadlet_queue_new("bench", cfg->threads, cfg->threads);
    /* The same with adaptive polling at the IOThread default (32 µs). */
    b->dp_poll.ctx = aio_context_new(&error_abort);
    aio_context_set_poll_params(b->dp_poll.ctx, 32768, 0, 0, &error_abort);
    b->dp_poll.q = threadlet_queue_new("bench-p", cfg->threads, cfg->threads);

    if (uv_loop_init(&b->uv.loop) != 0) {
        g_error("uv_loop_init failed");
    }
    b->uv.reqs = g_new0(uv_work_t, 1024);

    b->glib.ctx = g_main_context_new();
    b->glib.pool =
        g_thread_pool_new(glib_task, &b->glib, cfg->threads, TRUE, &err);
    if (!b->glib.pool) {
        g_error("g_thread_pool_new: %s", err->message);
    }
}

static void report_batches(const char *label, ThreadletQueue *q,
                           AioContext *ctx)
{
    ThreadletQueueStats s;
    AioContextStats cs;

    threadlet_queue_get_stats(q, &s);
    aio_context_get_stats(ctx, &cs);
    fprintf(stderr,
            "%s: %" PRIu64 " tasks, %" PRIu64 " completion batches "
            "(%.1f per batch), %" PRIu64 " loop iterations, %" PRIu64
            " eventfd writes\n",
            label, s.completed, s.completion_batches,
            s.completion_batches ? (double)s.completed / s.completion_batches
                                 : 0.0,
            cs.iterations, cs.notify_writes);
}

static void benches_cleanup(Benches *b)
{
    report_batches("dataplane", b->dp.q, b->dp.ctx);
    report_batches("dataplane-poll", b->dp_poll.q, b->dp_poll.ctx);
    threadlet_queue_destroy(b->dp.q);
    aio_context_unref(b->dp.ctx);
    threadlet_queue_destroy(b->dp_poll.q);
    aio_context_unref(b->dp_poll.ctx);
    uv_loop_close(&b->uv.loop);
    g_free(b->uv.reqs);
    g_thread_pool_free(b->glib.pool, FALSE, TRUE);
    g_main_context_unref(b->glib.ctx);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(GArray *values)
{
    if (!values->len) {
        return 0;
    }
    double *v = g_memdup2(values->data, values->len * sizeof(double));
    double m;

    qsort(v, values->len, sizeof(double), cmp_double);
    m = values->len % 2 ? v[values->len / 2]
                        : (v[values->len / 2 - 1] + v[values->len / 2]) / 2;
    g_free(v);
    return m;
}

static void print_table(Figure *figs, int nfigs)
{
    int f, i;

    fprintf(stderr, "\n%-28s %-15s %14s %8s\n", "figure", "implementation",
            "median", "vs dp");
    for (f = 0; f < nfigs; f++) {
        double base = median(figs[f].values[IMPL_DP]);

        if (base == 0) {
            base = NAN; /* dataplane not run: no ratios */
        }

        for (i = 0; i < IMPL_MAX; i++) {
            double m;

            if (!figs[f].values[i]->len) {
                continue;
            }
            m = median(figs[f].values[i]);
            /* "vs dp" > 1 means dataplane is better by that factor. */
            double ratio = figs[f].higher_is_better ? base / m : m / base;

            fprintf(stderr, "%-28s %-15s %14.2f %8.2fx  %s\n", figs[f].name,
                    impl_names[i], m, ratio, figs[f].unit);
        }
    }
}

/*
 * One measurement of figure f for implementation impl.  A run shorter than
 * min_run_ns is thrown away and redone with more tasks (the count is kept
 * for later rounds): at millions of tasks per second a fixed count lasts a
 * few ms, and one preemption on a shared machine would decide the figure.
 */
static double measure_figure(Benches *b, const Config *cfg, Figure *f, int impl)
{
    long window = f->window ? f->window : 1;
    int64_t ns;
    int tries;

    for (tries = 0; tries < 20; tries++) {
        ns = measure(b, impl, f->count[impl], window);
        if (ns >= cfg->min_run_ns) {
            break;
        }
        /* Aim 20% over the target, growing at most 10x per try. */
        f->count[impl] =
            (long)MIN(f->count[impl] * 10.0,
                      f->count[impl] * 1.2 * cfg->min_run_ns / MAX(ns, 1));
    }
    return f->window ? f->count[impl] * 1e9 / ns : ns / 1e3 / f->count[impl];
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--quick] [--rounds N] [--threads N]\n"
            "  --quick      a few seconds in all (30 ms per measurement, "
            "not 300)\n"
            "  --rounds N   measurements per figure and implementation "
            "(default 5)\n"
            "  --threads N  pool threads for every implementation "
            "(default 4)\n"
            "  --impl NAME  only dataplane, dataplane-poll, libuv or glib\n"
            "  --figure F   only figure F (e.g. threadlet-roundtrip)\n",
            argv0);
}

int main(int argc, char **argv)
{
    Config cfg = {.threads = 4, .rounds = 5, .min_run_ns = 300000000};
    Figure figs[] = {
        {"threadlet-throughput-w64", "tasks/s", true, 64},
        {"threadlet-throughput-w256", "tasks/s", true, 256},
        {"threadlet-roundtrip", "us", false, 0},
    };
    int nfigs = G_N_ELEMENTS(figs);
    Benches b;
    int f, i, r;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            cfg.min_run_ns = 30000000;
            cfg.rounds = 3;
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            cfg.rounds = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--figure") && i + 1 < argc) {
            cfg.figure = argv[++i];
        } else if (!strcmp(argv[i], "--impl") && i + 1 < argc) {
            cfg.only = argv[++i];
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            cfg.threads = atoi(argv[++i]);
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    if (cfg.rounds < 1 || cfg.threads < 1 || cfg.threads > 1024) {
        usage(argv[0]);
        return 2;
    }

    benches_init(&b, &cfg);
    for (f = 0; f < nfigs; f++) {
        for (i = 0; i < IMPL_MAX; i++) {
            figs[f].values[i] = g_array_new(FALSE, FALSE, sizeof(double));
            figs[f].count[i] = figs[f].window ? 20000 : 200;
        }
    }
    /* Warm up: threads started, caches and allocators primed. */
    for (i = 0; i < IMPL_MAX; i++) {
        if (!cfg.only || !strcmp(cfg.only, impl_names[i])) {
            measure(&b, i, 2000, 64);
        }
    }

    /* Implementations interleaved within each round, so that noise from
     * the shared machine hits them all alike. */
    for (r = 0; r < cfg.rounds; r++) {
        for (f = 0; f < nfigs; f++) {
            for (i = 0; i < IMPL_MAX; i++) {
                double value;

                if ((cfg.only && strcmp(cfg.only, impl_names[i])) ||
                    (cfg.figure && strcmp(cfg.figure, figs[f].name))) {
                    continue;
                }
                value = measure_figure(&b, &cfg, &figs[f], i);
                g_array_append_val(figs[f].values[i], value);
                printf("BENCH\t%s\t%s\t%.2f\t%s\t%s\n", figs[f].name,
                       impl_names[i], value, figs[f].unit,
                       figs[f].higher_is_better ? "higher" : "lower");
                fflush(stdout);
            }
        }
    }
    print_table(figs, nfigs);

    for (f = 0; f < nfigs; f++) {
        for (i = 0; i < IMPL_MAX; i++) {
            g_array_free(figs[f].values[i], TRUE);
        }
    }
    benches_cleanup(&b);
    return 0;
}
