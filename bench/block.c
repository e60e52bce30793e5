/*
 * bench/block: 4k random reads at queue depth 32 from a file on /dev/shm,
 * through the block layer in-process (driver=file, aio=io_uring and
 * aio=threads), side by side with fio's io_uring engine on the same file
 * (the limit: the same kernel interface without a block layer on top).
 *
 * Figures (BENCH lines, bench/bench-util.h):
 *   block-randread-4k-qd32-iops   IOPS, higher is better, for
 *                                 dataplane (aio=io_uring),
 *                                 dataplane-aio-threads, fio-io_uring
 * Each round runs every implementation once, in turn, for 5 s (1 s with
 * --quick), on one thread each (fio: one job).
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <unistd.h>

#include "bench/bench-util.h"
#include "dataplane/block.h"
#include "dataplane/main-loop.h"

#define QD 32
#define BS 4096
#define FIGURE "block-randread-4k-qd32-iops"

typedef struct Run {
    BlockDriverState *bs;
    int64_t blocks;
    uint64_t completed;
    bool stop;
    int in_flight;
    GRand *rand;
    char *bufs;
    IOVector qiov[QD];
} Run;

static void read_cb(void *opaque, int ret);

static void submit(Run *r, int slot)
{
    int64_t off = (int64_t)g_rand_int_range(r->rand, 0, (gint32)r->blocks) * BS;

    r->in_flight++;
    bdrv_aio_preadv(r->bs, off, &r->qiov[slot], 0, read_cb, &r->qiov[slot]);
}

static Run *the_run;

static void read_cb(void *opaque, int ret)
{
    Run *r = the_run;

    if (ret < 0) {
        fprintf(stderr, "bench/block: read failed: %s\n", g_strerror(-ret));
        exit(1);
    }
    r->in_flight--;
    r->completed++;
    if (!r->stop) {
        submit(r, (IOVector *)opaque - r->qiov);
    }
}

/* IOPS of the block layer on `path` with the given aio mode. */
static double run_dataplane(const char *path, int64_t size, const char *aio,
                            double seconds)
{
    g_autoptr(GHashTable) opts = g_hash_table_new(g_str_hash, g_str_equal);
    AioContext *ctx = main_loop_get_aio_context();
    Run r = {0};
    int64_t start, end = 0;
    int i;

    g_hash_table_insert(opts, "driver", "file");
    g_hash_table_insert(opts, "filename", (char *)path);
    g_hash_table_insert(opts, "aio", (char *)aio);
    g_hash_table_insert(opts, "read-only", "on");
    r.bs = bdrv_open(opts, &error_abort);
    r.blocks = size / BS;
    r.rand = g_rand_new_with_seed(42);
    r.bufs = g_malloc(QD * BS);
    the_run = &r;
    for (i = 0; i < QD; i++) {
        iov_init(&r.qiov[i], 1);
        iov_add(&r.qiov[i], r.bufs + i * BS, BS);
    }

    aio_context_acquire(ctx);
    start = clock_monotonic_ns();
    for (i = 0; i < QD; i++) {
        submit(&r, i);
    }
    /* Check the clock every 256 iterations only: it is not free. */
    for (i = 0;; i++) {
        aio_poll(ctx, true);
        if ((i & 255) == 0) {
            end = clock_monotonic_ns();
            if (end - start >= (int64_t)(seconds * 1e9)) {
                break;
            }
        }
    }
    r.stop = true;
    bdrv_drain(r.bs);
    aio_context_release(ctx);

    for (i = 0; i < QD; i++) {
        iov_destroy(&r.qiov[i]);
    }
    g_free(r.bufs);
    g_rand_free(r.rand);
    bdrv_unref(r.bs);
    return r.completed / ((end - start) / 1e9);
}

/* IOPS of fio's io_uring engine on the same file; < 0 if fio failed. */
static double run_fio(const char *path, int64_t size, double seconds)
{
    g_autofree char *runtime = g_strdup_printf("--runtime=%.0f", seconds);
    g_autofree char *fsize = g_strdup_printf("--size=%" G_GINT64_FORMAT, size);
    g_autofree char *fname = g_strdup_printf("--filename=%s", path);
    char *argv[] = {
        "fio",
        "--name=randread",
        "--ioengine=io_uring",
        "--rw=randread",
        "--bs=4k",
        "--iodepth=32",
        "--numjobs=1",
        "--time_based",
        runtime,
        fsize,
        fname,
        "--readonly",
        "--norandommap",
        "--randrepeat=0",
        "--minimal",
        NULL,
    };
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_auto(GStrv) fields = NULL;
    GError *gerr = NULL;
    int status;

    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                      &err, &status, &gerr)) {
        fprintf(stderr, "bench/block: cannot run fio: %s\n", gerr->message);
        g_error_free(gerr);
        return -1;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        fprintf(stderr, "bench/block: fio failed: %s\n", err);
        return -1;
    }
    /* Terse output: field 8 (1-based) is the read IOPS. */
    fields = g_strsplit(out, ";", -1);
    if (g_strv_length(fields) < 8) {
        fprintf(stderr, "bench/block: unexpected fio output: %s\n", out);
        return -1;
    }
    return g_ascii_strtod(fields[7], NULL);
}

/* The test file: non-zero data, so no read is of a hole. */
static void make_file(const char *path, int64_t size)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    char *chunk = g_malloc(1 << 20);
    int64_t off;

    if (fd < 0) {
        fprintf(stderr, "bench/block: cannot create %s: %s\n", path,
                g_strerror(errno));
        exit(1);
    }
    memset(chunk, 0x5a, 1 << 20);
    for (off = 0; off < size; off += 1 << 20) {
        if (write(fd, chunk, 1 << 20) != 1 << 20) {
            fprintf(stderr, "bench/block: cannot fill %s\n", path);
            exit(1);
        }
    }
    close(fd);
    g_free(chunk);
}

int main(int argc, char **argv)
{
    BenchOpts opts;
    g_autofree char *path =
        g_strdup_printf("/dev/shm/dataplane-bench-block-%d", (int)getpid());
    int64_t size;
    double seconds;
    int round;

    bench_parse_args(argc, argv, &opts,
                     "4k random reads at QD32 from /dev/shm: block layer "
                     "vs fio io_uring");
    main_loop_init(&error_abort);
    bdrv_init();
    size = opts.quick ? INT64_C(256) << 20 : INT64_C(1) << 30;
    seconds = opts.quick ? 1 : 5;
    make_file(path, size);

    for (round = 0; round < opts.rounds; round++) {
        if (bench_wants(&opts, "dataplane")) {
            bench_report(FIGURE, "dataplane",
                         run_dataplane(path, size, "io_uring", seconds), "IOPS",
                         true);
        }
        if (bench_wants(&opts, "dataplane-aio-threads")) {
            bench_report(FIGURE, "dataplane-aio-threads",
                         run_dataplane(path, size, "threads", seconds), "IOPS",
                         true);
        }
        if (bench_wants(&opts, "fio-io_uring")) {
            double iops = run_fio(path, size, seconds);

            if (iops < 0) {
                bench_note(FIGURE, "fio-io_uring", "fio did not run");
            } else {
                bench_report(FIGURE, "fio-io_uring", iops, "IOPS", true);
            }
        }
    }
    unlink(path);
    return 0;
}
