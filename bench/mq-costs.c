/*
 * bench/mq-costs: the per-operation costs docs/scaling.md builds its model
 * from, measured in-process (no sockets, no client), so that they are
 * stable on a shared machine.
 *
 * Figures (BENCH lines, bench/bench-util.h), CPU ns per operation (process
 * user + system time divided by operations; lower is better) unless said:
 *   mq-null-read-cpu-ns       4k reads on one null-co node, QD32, from
 *                             1 IOThread ("dataplane") or 2 at once
 *                             ("dataplane-2threads"): the block layer's
 *                             own cost, and what sharing one node costs
 *   mq-null-read-mops         the same runs' throughput, million ops/s
 *                             (higher is better)
 *   mq-forwarded-read-cpu-ns  4k reads through a throttle node (not
 *                             multiqueue-safe, no limits) over null-co,
 *                             submitted from an IOThread that is not the
 *                             home ("dataplane"; every request forwarded
 *                             and handed back) or from the home itself
 *                             ("dataplane-local")
 *   mq-atomic-ns              one seq_cst fetch_add on a shared counter:
 *                             one thread ("dataplane", uncontended) or
 *                             two threads on one cache line
 *                             ("dataplane-2threads"): the price of a
 *                             shared in_flight count per request
 * Each figure runs for 2 s (0.3 s with --quick) per round.
 */
#include <sys/resource.h>

#include "bench/bench-util.h"
#include "dataplane/block.h"
#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "dataplane/object.h"
#include "util/atomic.h"
#include "util/thread.h"

#define QD 32
#define BS 4096

typedef struct Worker {
    BlockDriverState *bs;
    IOThread *thread;
    AioContext *ctx;
    bool stop;          /* atomic */
    unsigned in_flight; /* worker's thread */
    uint64_t done;      /* atomic */
    bool idle;          /* atomic: stopped and drained */
    char *bufs;
    IOVector qiov[QD];
    int64_t blocks;
    unsigned seed;
} Worker;

/* The workers of the run in progress: a completion finds its worker and
 * slot from its IOVector. */
static Worker *workers[2];

static Worker *slot_worker(IOVector *q, int *slot)
{
    int i;

    for (i = 0; i < 2; i++) {
        Worker *w = workers[i];

        if (w && q >= w->qiov && q < w->qiov + QD) {
            *slot = (int)(q - w->qiov);
            return w;
        }
    }
    g_assert_not_reached();
}

static void read_done(void *opaque, int ret)
{
    int slot;
    Worker *w = slot_worker(opaque, &slot);

    if (ret < 0) {
        g_error("mq-costs: a read failed: %s", g_strerror(-ret));
    }
    w->in_flight--;
    dp_atomic_fetch_add_relaxed(&w->done, 1);
    if (!dp_atomic_load_relaxed(&w->stop)) {
        w->in_flight++;
        bdrv_aio_preadv(w->bs, (int64_t)(rand_r(&w->seed) % w->blocks) * BS,
                        &w->qiov[slot], 0, read_done, &w->qiov[slot]);
    } else if (w->in_flight == 0) {
        dp_atomic_store_release(&w->idle, true);
    }
}

static void worker_start_bh(void *opaque)
{
    Worker *w = opaque;
    int i;

    for (i = 0; i < QD; i++) {
        w->in_flight++;
        bdrv_aio_preadv(w->bs, (int64_t)(rand_r(&w->seed) % w->blocks) * BS,
                        &w->qiov[i], 0, read_done, &w->qiov[i]);
    }
}

static int64_t process_cpu_ns(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

/*
 * Runs n workers (each in its own IOThread, threads[i]) reading bs at QD32
 * for `seconds`; returns CPU ns per op and sets *mops.
 */
static double run_readers(BlockDriverState *bs, IOThread **threads, int n,
                          double seconds, double *mops)
{
    Worker w[2] = {{0}};
    int64_t t0, c0, t1, c1;
    uint64_t ops = 0;
    int i, j;

    for (i = 0; i < n; i++) {
        w[i].bs = bs;
        w[i].thread = threads[i];
        w[i].ctx = iothread_get_aio_context(threads[i]);
        w[i].blocks = bdrv_getlength(bs) / BS;
        w[i].seed = 42 + i;
        w[i].bufs = g_malloc(QD * BS);
        for (j = 0; j < QD; j++) {
            iov_init(&w[i].qiov[j], 1);
            iov_add(&w[i].qiov[j], w[i].bufs + j * BS, BS);
        }
        workers[i] = &w[i];
    }
    t0 = clock_monotonic_ns();
    c0 = process_cpu_ns();
    for (i = 0; i < n; i++) {
        aio_bh_schedule_oneshot(w[i].ctx, worker_start_bh, &w[i]);
    }
    g_usleep((gulong)(seconds * 1e6));
    for (i = 0; i < n; i++) {
        ops += dp_atomic_load_relaxed(&w[i].done);
    }
    t1 = clock_monotonic_ns();
    c1 = process_cpu_ns();
    for (i = 0; i < n; i++) {
        dp_atomic_store_relaxed(&w[i].stop, true);
    }
    for (i = 0; i < n; i++) {
        while (!dp_atomic_load_acquire(&w[i].idle)) {
            g_usleep(1000);
        }
        for (j = 0; j < QD; j++) {
            iov_destroy(&w[i].qiov[j]);
        }
        g_free(w[i].bufs);
        workers[i] = NULL;
    }
    *mops = (double)ops / ((double)(t1 - t0) / 1e9) / 1e6;
    return ops ? (double)(c1 - c0) / (double)ops : 0;
}

static BlockDriverState *open_spec(const char *spec)
{
    g_autoptr(GHashTable) opts =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_auto(GStrv) pairs = g_strsplit(spec, ",", -1);
    int i;

    for (i = 0; pairs[i]; i++) {
        char *eq = strchr(pairs[i], '=');

        g_hash_table_insert(opts, g_strndup(pairs[i], eq - pairs[i]),
                            g_strdup(eq + 1));
    }
    return bdrv_open(opts, &error_abort);
}

/* ---- a contended counter ----------------------------------------------- */

typedef struct Counter {
    unsigned value;  /* the shared line */
    bool stop;       /* atomic */
    uint64_t ops[2]; /* per thread, written at the end */
} Counter;

typedef struct CounterArg {
    Counter *c;
    int index;
} CounterArg;

static void *counter_thread(void *opaque)
{
    CounterArg *a = opaque;
    uint64_t n = 0;

    while (!dp_atomic_load_relaxed(&a->c->stop)) {
        int i;

        for (i = 0; i < 1024; i++) {
            dp_atomic_fetch_add_seq_cst(&a->c->value, 1);
        }
        n += 1024;
    }
    a->c->ops[a->index] = n;
    return NULL;
}

/* ns of CPU per fetch_add with n threads hammering one counter. */
static double run_counter(int n, double seconds)
{
    Counter c = {0};
    CounterArg args[2];
    DpThread t[2];
    int64_t c0, c1;
    int i;

    c0 = process_cpu_ns();
    for (i = 0; i < n; i++) {
        args[i] = (CounterArg){&c, i};
        dp_thread_create(&t[i], "bench-counter", counter_thread, &args[i]);
    }
    g_usleep((gulong)(seconds * 1e6));
    dp_atomic_store_relaxed(&c.stop, true);
    for (i = 0; i < n; i++) {
        dp_thread_join(&t[i]);
    }
    c1 = process_cpu_ns();
    return (double)(c1 - c0) / (double)(c.ops[0] + c.ops[1]);
}

int main(int argc, char **argv)
{
    BenchOpts opts;
    IOThread *threads[2];
    double seconds;
    int round;
    int i;

    bench_parse_args(argc, argv, &opts,
                     "per-operation costs of the multiqueue block layer");
    seconds = opts.quick ? 0.3 : 2.0;
    main_loop_init(&error_abort);
    bdrv_init();
    for (i = 0; i < 2; i++) {
        char id[16];

        snprintf(id, sizeof(id), "bench-mq%d", i);
        threads[i] = iothread_new(id, NULL, &error_abort);
    }
    {
        g_autoptr(GHashTable) tg = g_hash_table_new(g_str_hash, g_str_equal);

        g_hash_table_insert(tg, "limits.iops-total", "1000000000");
        object_add("throttle-group", "bench-tg", tg, &error_abort);
    }

    for (round = 0; round < opts.rounds; round++) {
        BlockDriverState *bs = open_spec("driver=null-co,size=1G");
        BlockDriverState *thr;
        double mops, ns;

        g_assert_true(bdrv_set_aio_context(
            bs, iothread_get_aio_context(threads[0]), &error_abort));
        if (bench_wants(&opts, "dataplane")) {
            ns = run_readers(bs, threads, 1, seconds, &mops);
            bench_report("mq-null-read-cpu-ns", "dataplane", ns, "ns", false);
            bench_report("mq-null-read-mops", "dataplane", mops, "Mops/s",
                         true);
            ns = run_readers(bs, threads, 2, seconds, &mops);
            bench_report("mq-null-read-cpu-ns", "dataplane-2threads", ns, "ns",
                         false);
            bench_report("mq-null-read-mops", "dataplane-2threads", mops,
                         "Mops/s", true);
        }
        g_assert_true(bdrv_set_aio_context(bs, main_loop_get_aio_context(),
                                           &error_abort));
        bdrv_unref(bs);

        thr = open_spec("driver=throttle,throttle-group=bench-tg,"
                        "file.driver=null-co,file.size=1G");
        g_assert_true(bdrv_set_aio_context(
            thr, iothread_get_aio_context(threads[0]), &error_abort));
        if (bench_wants(&opts, "dataplane")) {
            /* threads[1] is not the home: every request is forwarded. */
            ns = run_readers(thr, &threads[1], 1, seconds, &mops);
            bench_report("mq-forwarded-read-cpu-ns", "dataplane", ns, "ns",
                         false);
            ns = run_readers(thr, &threads[0], 1, seconds, &mops);
            bench_report("mq-forwarded-read-cpu-ns", "dataplane-local", ns,
                         "ns", false);
        }
        g_assert_true(bdrv_set_aio_context(thr, main_loop_get_aio_context(),
                                           &error_abort));
        bdrv_unref(thr);

        if (bench_wants(&opts, "dataplane")) {
            bench_report("mq-atomic-ns", "dataplane", run_counter(1, seconds),
                         "ns", false);
            bench_report("mq-atomic-ns", "dataplane-2threads",
                         run_counter(2, seconds), "ns", false);
        }
    }
    for (i = 0; i < 2; i++) {
        iothread_destroy(threads[i]);
    }
    return 0;
}
