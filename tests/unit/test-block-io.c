/*
 * Random mixed I/O against an in-memory reference model, for every driver
 * and both aio modes; plus the request path's errors and promises.
 *
 * The random workload keeps up to QD requests in flight, never two with
 * overlapping ranges (their order would be undefined), so the model's
 * content is exact: writes update it when submitted, reads are checked when
 * they complete, discards and zeroings clear it.
 */
#include <unistd.h>

#include "dataplane/iothread.h"
#include "dataplane/object.h"
#include "block/file-posix-int.h"
#include "tests/unit/block-test-util.h"

#define DISK_SIZE (4 * 1024 * 1024)
#define QD 16
#define OPS 2500

typedef struct IoConfig {
    const char *name;
    const char *spec; /* %s: a scratch file name, when needs_file */
    bool needs_file;
    bool discard_zeroes; /* discard makes data read as zeroes */
    bool direct;
    const char *dir; /* for the scratch file; NULL: /var/tmp (ext4 here) */
} IoConfig;

static const IoConfig configs[] = {
    {"memory", "driver=memory,size=4M", false, true, false},
    {"raw-over-memory",
     "driver=raw,offset=64k,size=4M,file.driver=memory,file.size=5M", false,
     true, false},
    {"throttle-over-memory",
     "driver=throttle,throttle-group=tgfast,file.driver=memory,file.size=4M",
     false, true, false},
    {"file-io_uring", "driver=file,filename=%s,aio=io_uring,discard=unmap",
     true, true, false},
    {"file-threads", "driver=file,filename=%s,aio=threads,discard=unmap", true,
     true, false},
    {"file-discard-ignore", "driver=file,filename=%s,discard=ignore", true,
     false, false},
    {"raw-over-file",
     "driver=raw,file.driver=file,file.filename=%s,file.discard=unmap", true,
     true, false},
    {"file-io_uring-direct",
     "driver=file,filename=%s,aio=io_uring,cache.direct=on,discard=unmap", true,
     true, true},
    {"file-threads-direct",
     "driver=file,filename=%s,aio=threads,cache.direct=on,discard=unmap", true,
     true, true},
    /* tmpfs has no FALLOC_FL_ZERO_RANGE: write-zeroes takes the
     * punch-and-reallocate path there. */
    {"file-on-tmpfs", "driver=file,filename=%s,discard=unmap", true, true,
     false, "/dev/shm"},
};

typedef enum OpType {
    OP_READ,
    OP_WRITE,
    OP_ZEROES,
    OP_DISCARD,
    OP_FLUSH,
    OP_STATUS
} OpType;

typedef struct Op Op;
typedef struct Workload {
    BlockDriverState *bs;
    const IoConfig *cfg;
    uint8_t *model;
    GRand *rand;
    Op *slots[QD];
    int in_flight;
    int completed;
} Workload;

struct Op {
    Workload *w;
    int slot;
    OpType type;
    int64_t offset;
    int64_t len;
    uint8_t *buf; /* with 64 bytes of slack for unaligned starts */
    uint8_t *data;
    IOVector qiov;
};

static bool overlaps_in_flight(Workload *w, int64_t off, int64_t len)
{
    int i;

    for (i = 0; i < QD; i++) {
        Op *o = w->slots[i];

        if (o && o->len && off < o->offset + o->len && o->offset < off + len) {
            return true;
        }
    }
    return false;
}

static void op_done(Op *op, int ret, int64_t pnum, unsigned status)
{
    Workload *w = op->w;

    if (ret != 0) {
        g_error("%s: op %d at %" G_GINT64_FORMAT "+%" G_GINT64_FORMAT
                " failed: %s",
                w->cfg->name, op->type, op->offset, op->len, g_strerror(-ret));
    }
    if (op->type == OP_READ &&
        memcmp(op->data, w->model + op->offset, op->len) != 0) {
        g_error("%s: read at %" G_GINT64_FORMAT "+%" G_GINT64_FORMAT
                " differs from the model",
                w->cfg->name, op->offset, op->len);
    }
    if (op->type == OP_STATUS) {
        g_assert_cmpint(pnum, >, 0);
        g_assert_cmpint(pnum, <=, op->len);
        if (status & BDRV_BLOCK_ZERO) {
            int64_t i;

            for (i = 0; i < pnum; i++) {
                g_assert_cmpint(w->model[op->offset + i], ==, 0);
            }
        }
    }
    w->slots[op->slot] = NULL;
    w->in_flight--;
    w->completed++;
    iov_destroy(&op->qiov);
    g_free(op->buf);
    g_free(op);
}

static void op_cb(void *opaque, int ret)
{
    op_done(opaque, ret, 0, 0);
}

static void op_status_cb(void *opaque, int ret, int64_t pnum, unsigned status)
{
    op_done(opaque, ret, pnum, status);
}

/* Offsets and lengths: a mix of sector-aligned and odd ones. */
static int64_t rand_offset(GRand *r, int64_t max_len)
{
    int64_t off = g_rand_int_range(r, 0, DISK_SIZE - (int32_t)max_len);

    return g_rand_boolean(r) ? off & ~INT64_C(4095) : off;
}

static int64_t rand_len(GRand *r, int64_t max)
{
    int64_t len = g_rand_int_range(r, 1, (int32_t)max + 1);

    return g_rand_boolean(r) ? MAX(len & ~INT64_C(511), 512) : len;
}

/* Splits the data buffer into up to three iovec pieces. */
static void op_build_qiov(Op *op, GRand *r)
{
    int64_t cut1 = g_rand_int_range(r, 0, (int32_t)op->len + 1);
    int64_t cut2 = g_rand_int_range(r, (int32_t)cut1, (int32_t)op->len + 1);

    iov_init(&op->qiov, 3);
    iov_add(&op->qiov, op->data, cut1);
    /* Leave a gap in memory between pieces so they stay separate. */
    iov_add(&op->qiov, op->data + cut1, cut2 - cut1);
    iov_add(&op->qiov, op->data + cut2, op->len - cut2);
    g_assert_cmpuint(op->qiov.size, ==, op->len);
}

static void submit_one(Workload *w)
{
    GRand *r = w->rand;
    Op *op = g_new0(Op, 1);
    int pick = g_rand_int_range(r, 0, 100);
    int i, tries;

    op->w = w;
    op->type = pick < 40   ? OP_READ
               : pick < 75 ? OP_WRITE
               : pick < 83 ? OP_ZEROES
               : pick < 90 ? OP_DISCARD
               : pick < 95 ? OP_FLUSH
                           : OP_STATUS;
    for (tries = 0; tries < 1000; tries++) {
        int64_t max = op->type == OP_ZEROES || op->type == OP_DISCARD
                          ? 512 * 1024
                          : 96 * 1024;

        op->len = op->type == OP_FLUSH ? 0 : rand_len(r, max);
        op->offset = op->type == OP_FLUSH ? 0 : rand_offset(r, max);
        if (!overlaps_in_flight(w, op->offset, op->len)) {
            break;
        }
    }
    g_assert_cmpint(tries, <, 1000);
    for (i = 0; w->slots[i]; i++) {
    }
    op->slot = i;
    w->slots[i] = op;
    w->in_flight++;

    switch (op->type) {
    case OP_READ:
    case OP_WRITE:
        op->buf = g_malloc(op->len + 64);
        op->data =
            op->buf + (g_rand_boolean(r) ? 0 : g_rand_int_range(r, 1, 64));
        if (op->type == OP_WRITE) {
            int64_t j;

            for (j = 0; j < op->len; j++) {
                op->data[j] = g_rand_int(r) | 1; /* never zero: holes show */
            }
            memcpy(w->model + op->offset, op->data, op->len);
        } else {
            memset(op->data, 0xa5, op->len);
        }
        op_build_qiov(op, r);
        if (op->type == OP_READ) {
            bdrv_aio_preadv(w->bs, op->offset, &op->qiov, 0, op_cb, op);
        } else {
            bdrv_aio_pwritev(w->bs, op->offset, &op->qiov,
                             g_rand_int_range(r, 0, 8) == 0 ? BDRV_REQ_FUA : 0,
                             op_cb, op);
        }
        break;
    case OP_ZEROES:
        memset(w->model + op->offset, 0, op->len);
        bdrv_aio_pwrite_zeroes(w->bs, op->offset, op->len,
                               g_rand_boolean(r) ? BDRV_REQ_MAY_UNMAP : 0,
                               op_cb, op);
        break;
    case OP_DISCARD:
        if (w->cfg->discard_zeroes) {
            memset(w->model + op->offset, 0, op->len);
        }
        bdrv_aio_pdiscard(w->bs, op->offset, op->len, op_cb, op);
        break;
    case OP_FLUSH:
        bdrv_aio_flush(w->bs, op_cb, op);
        break;
    case OP_STATUS:
        bdrv_aio_block_status(w->bs, op->offset, op->len, op_status_cb, op);
        break;
    }
}

static void run_workload(const IoConfig *cfg, const char *file)
{
    g_auto(GStrv) parts = g_strsplit(cfg->spec, "%s", 2);
    g_autofree char *spec = g_strjoinv(file ? file : "", parts);
    g_autoptr(GHashTable) opts = test_opts(spec);
    Workload w = {0};
    Error *err = NULL;
    AioContext *ctx;
    uint8_t *check;
    int submitted = 0;
    int i;

    w.bs = bdrv_open(opts, &err);
    if (!w.bs && cfg->direct && strstr(error_get_pretty(err), "O_DIRECT")) {
        g_test_skip(error_get_pretty(err));
        error_free(err);
        return;
    }
    g_assert_null(err);
    w.cfg = cfg;
    w.model = g_malloc0(DISK_SIZE);
    w.rand = g_rand_new_with_seed(g_test_rand_int());
    ctx = bdrv_get_aio_context(w.bs);

    aio_context_acquire(ctx);
    for (i = 0; i < 100000 && w.completed < OPS; i++) {
        while (submitted < OPS && w.in_flight < QD) {
            submit_one(&w);
            submitted++;
        }
        aio_poll(ctx, true);
    }
    aio_context_release(ctx);
    g_assert_cmpint(w.completed, ==, OPS);
    g_assert_cmpuint(bdrv_get_in_flight(w.bs), ==, 0);

    check = g_malloc(DISK_SIZE);
    g_assert_cmpint(test_pread(w.bs, 0, check, DISK_SIZE), ==, 0);
    g_assert_true(memcmp(check, w.model, DISK_SIZE) == 0);

    g_free(check);
    g_free(w.model);
    g_rand_free(w.rand);
    bdrv_unref(w.bs);
}

static void test_random_io_matches_model(gconstpointer data)
{
    const IoConfig *cfg = data;
    g_autofree char *file = NULL;

    if (cfg->needs_file) {
        file = test_scratch_file(cfg->dir ? cfg->dir : "/var/tmp", DISK_SIZE);
    }
    run_workload(cfg, file);
    if (file) {
        unlink(file);
    }
}

/* ---- errors and promises ----------------------------------------------- */

static void test_read_only_refuses_writes(void)
{
    BlockDriverState *bs = test_open("driver=memory,size=64k,read-only=on");
    char buf[512] = {0};

    g_assert_true(bdrv_is_read_only(bs));
    g_assert_cmpint(test_pwrite(bs, 0, buf, sizeof(buf), 0), ==, -EPERM);
    g_assert_cmpint(test_discard(bs, 0, 512), ==, -EPERM);
    g_assert_cmpint(test_zeroes(bs, 0, 512, 0), ==, -EPERM);
    g_assert_cmpint(test_pread(bs, 0, buf, sizeof(buf)), ==, 0);
    g_assert_cmpint(test_flush(bs), ==, 0);
    bdrv_unref(bs);
}

static void test_read_only_file_refuses_writes(void)
{
    g_autofree char *file = test_scratch_file("/var/tmp", 65536);
    g_autofree char *spec = g_strdup_printf("driver=file,filename=%s,"
                                            "read-only=on",
                                            file);
    BlockDriverState *bs = test_open(spec);
    char buf[512] = {0};

    g_assert_cmpint(test_pwrite(bs, 0, buf, sizeof(buf), 0), ==, -EPERM);
    g_assert_cmpint(test_zeroes(bs, 0, 512, BDRV_REQ_MAY_UNMAP), ==, -EPERM);
    g_assert_cmpint(test_pread(bs, 0, buf, sizeof(buf)), ==, 0);
    bdrv_unref(bs);
    unlink(file);
}

static void test_past_the_end_is_einval(void)
{
    BlockDriverState *bs = test_open("driver=memory,size=64k");
    char buf[1024] = {0};
    int64_t pnum;
    unsigned status;

    g_assert_cmpint(test_pread(bs, 65536 - 512, buf, 1024), ==, -EINVAL);
    g_assert_cmpint(test_pwrite(bs, 65536, buf, 1, 0), ==, -EINVAL);
    g_assert_cmpint(test_pread(bs, -1, buf, 1), ==, -EINVAL);
    g_assert_cmpint(test_discard(bs, 0, 65537), ==, -EINVAL);
    g_assert_cmpint(test_zeroes(bs, INT64_MAX, 2, 0), ==, -EINVAL);
    g_assert_cmpint(test_block_status(bs, 65536, 1, &pnum, &status), ==,
                    -EINVAL);
    /* The last byte is fine. */
    g_assert_cmpint(test_pwrite(bs, 65535, buf, 1, 0), ==, 0);
    bdrv_unref(bs);
}

static void test_raw_window_is_bounded(void)
{
    BlockDriverState *bs = test_open("driver=raw,offset=4k,size=4k,"
                                     "file.driver=memory,file.size=64k");
    BlockDriverState *mem = bdrv_get_file_child(bs);
    char buf[4096];
    char back[4096];

    memset(buf, 7, sizeof(buf));
    g_assert_cmpint(test_pwrite(bs, 0, buf, 4096, 0), ==, 0);
    g_assert_cmpint(test_pwrite(bs, 1, buf, 4096, 0), ==, -EINVAL);
    g_assert_cmpint(test_pread(mem, 4096, back, 4096), ==, 0);
    g_assert_true(memcmp(buf, back, 4096) == 0);
    g_assert_cmpint(test_pread(mem, 0, back, 4096), ==, 0);
    g_assert_cmpint(back[0], ==, 0);
    bdrv_unref(bs);
}

static void test_null_co_reads_zeroes_and_drops_writes(void)
{
    BlockDriverState *bs = test_open("driver=null-co,size=1M,read-zeroes=on");
    char buf[4096];
    int64_t pnum;
    unsigned status;

    memset(buf, 1, sizeof(buf));
    g_assert_cmpint(test_pwrite(bs, 0, buf, sizeof(buf), BDRV_REQ_FUA), ==, 0);
    g_assert_cmpint(test_pread(bs, 0, buf, sizeof(buf)), ==, 0);
    g_assert_cmpint(buf[0], ==, 0);
    g_assert_cmpint(buf[4095], ==, 0);
    g_assert_cmpint(test_block_status(bs, 0, 1 << 20, &pnum, &status), ==, 0);
    g_assert_cmpint(pnum, ==, 1 << 20);
    g_assert_cmpuint(status, ==, BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO);
    bdrv_unref(bs);
}

static void test_memory_block_status_tracks_allocation(void)
{
    BlockDriverState *bs = test_open("driver=memory,size=1M");
    char buf[100] = {1};
    int64_t pnum;
    unsigned status;

    g_assert_cmpint(test_block_status(bs, 0, 1 << 20, &pnum, &status), ==, 0);
    g_assert_cmpint(pnum, ==, 1 << 20);
    g_assert_cmpuint(status, ==, BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO);

    g_assert_cmpint(test_pwrite(bs, 65536 + 10, buf, sizeof(buf), 0), ==, 0);
    g_assert_cmpint(test_block_status(bs, 0, 1 << 20, &pnum, &status), ==, 0);
    g_assert_cmpint(pnum, ==, 65536);
    g_assert_cmpint(test_block_status(bs, 65536, 1 << 19, &pnum, &status), ==,
                    0);
    g_assert_cmpint(pnum, ==, 65536);
    g_assert_cmpuint(status, ==, 0);

    /* Zeroing without unmap keeps the range allocated but zero. */
    g_assert_cmpint(test_zeroes(bs, 65536, 65536, 0), ==, 0);
    g_assert_cmpint(test_block_status(bs, 65536, 65536, &pnum, &status), ==, 0);
    g_assert_cmpuint(status, ==, BDRV_BLOCK_ZERO);
    g_assert_cmpint(test_discard(bs, 65536, 65536), ==, 0);
    g_assert_cmpint(test_block_status(bs, 0, 1 << 20, &pnum, &status), ==, 0);
    g_assert_cmpint(pnum, ==, 1 << 20);
    g_assert_cmpuint(status, ==, BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO);
    bdrv_unref(bs);
}

static void test_memory_huge_sparse_disk(void)
{
    const int64_t size = INT64_C(1) << 50; /* the largest: 1 PiB */
    BlockDriverState *bs = test_open("driver=memory,size=1P");
    char buf[512], back[512];
    int64_t pnum;
    unsigned status;

    g_assert_cmpint(bdrv_getlength(bs), ==, size);
    memset(buf, 0x42, sizeof(buf));
    g_assert_cmpint(test_pwrite(bs, size - 512, buf, 512, 0), ==, 0);
    g_assert_cmpint(test_pread(bs, size - 512, back, 512), ==, 0);
    g_assert_true(memcmp(buf, back, 512) == 0);
    /* 4 GiB of hole in one answer, without walking 65536 chunks. */
    g_assert_cmpint(test_block_status(bs, 0, INT64_C(1) << 32, &pnum, &status),
                    ==, 0);
    g_assert_cmpint(pnum, ==, INT64_C(1) << 32);
    g_assert_cmpuint(status, ==, BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO);
    g_assert_cmpint(test_block_status(bs, size - 65536, 65536, &pnum, &status),
                    ==, 0);
    g_assert_cmpuint(status, ==, 0);
    g_assert_cmpint(test_discard(bs, size - 65536, 65536), ==, 0);
    g_assert_cmpint(test_block_status(bs, size - 65536, 65536, &pnum, &status),
                    ==, 0);
    g_assert_cmpuint(status, ==, BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO);
    bdrv_unref(bs);
    g_free(test_open_error("driver=memory,size=2P"));
}

static void test_file_block_status_finds_holes(void)
{
    g_autofree char *file = test_scratch_file("/var/tmp", 1 << 20);
    g_autofree char *spec = g_strdup_printf("driver=file,filename=%s", file);
    BlockDriverState *bs = test_open(spec);
    char buf[4096];
    int64_t pnum;
    unsigned status;

    memset(buf, 3, sizeof(buf));
    g_assert_cmpint(test_pwrite(bs, 512 * 1024, buf, sizeof(buf), 0), ==, 0);
    g_assert_cmpint(test_flush(bs), ==, 0);
    g_assert_cmpint(test_block_status(bs, 0, 1 << 20, &pnum, &status), ==, 0);
    g_assert_cmpuint(status, ==, BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO);
    g_assert_cmpint(pnum, <=, 512 * 1024);
    g_assert_cmpint(test_block_status(bs, 512 * 1024, 4096, &pnum, &status), ==,
                    0);
    g_assert_cmpuint(status, ==, 0);
    g_assert_cmpint(pnum, ==, 4096);
    bdrv_unref(bs);
    unlink(file);
}

static void test_file_zeroes_no_fallback(void)
{
    g_autofree char *file = test_scratch_file("/var/tmp", 1 << 20);
    g_autofree char *spec = g_strdup_printf("driver=file,filename=%s", file);
    BlockDriverState *bs = test_open(spec);
    char buf[8192];
    int ret;

    memset(buf, 9, sizeof(buf));
    g_assert_cmpint(test_pwrite(bs, 0, buf, sizeof(buf), 0), ==, 0);
    /* ext4 (where /var/tmp lives here) zeroes with fallocate, so a fast
     * zero succeeds; a file system without it answers -ENOTSUP. */
    ret = test_zeroes(bs, 100, 5000, BDRV_REQ_NO_FALLBACK);
    g_assert_true(ret == 0 || ret == -ENOTSUP);
    if (ret == 0) {
        g_assert_cmpint(test_pread(bs, 0, buf, sizeof(buf)), ==, 0);
        g_assert_cmpint(buf[99], ==, 9);
        g_assert_cmpint(buf[100], ==, 0);
        g_assert_cmpint(buf[5099], ==, 0);
        g_assert_cmpint(buf[5100], ==, 9);
    }
    bdrv_unref(bs);
    unlink(file);
}

typedef struct Pieces {
    int done;
    int failed;
} Pieces;

static void piece_cb(void *opaque, int ret)
{
    Pieces *p = opaque;

    p->done++;
    if (ret < 0) {
        p->failed++;
    }
}

/*
 * O_DIRECT with unaligned requests that share sectors, all in flight at
 * once: each becomes a read-modify-write of the same aligned blocks, and
 * only their serialisation keeps every piece.
 */
static void test_direct_unaligned_writes_sharing_sectors(gconstpointer data)
{
    enum { N = 64, PIECE = 100 };
    g_autofree char *file = test_scratch_file("/var/tmp", 65536);
    g_autofree char *spec = g_strdup_printf("driver=file,filename=%s,"
                                            "cache.direct=on,aio=%s",
                                            file, (const char *)data);
    g_autoptr(GHashTable) opts = test_opts(spec);
    Error *err = NULL;
    BlockDriverState *bs = bdrv_open(opts, &err);
    static char bufs[N][PIECE];
    IOVector v[N];
    Pieces p = {0};
    char *back;
    int i, j;

    if (!bs) {
        g_assert_nonnull(strstr(error_get_pretty(err), "O_DIRECT"));
        g_test_skip(error_get_pretty(err));
        error_free(err);
        unlink(file);
        return;
    }
    aio_context_acquire(bdrv_get_aio_context(bs));
    for (i = 0; i < N; i++) {
        memset(bufs[i], 'A' + i % 26, PIECE);
        iov_init(&v[i], 1);
        iov_add(&v[i], bufs[i], PIECE);
        /* Odd offset, odd length, unaligned buffer address. */
        bdrv_aio_pwritev(bs, 7 + i * PIECE, &v[i], 0, piece_cb, &p);
    }
    for (i = 0; i < 100000 && p.done < N; i++) {
        aio_poll(bdrv_get_aio_context(bs), true);
    }
    aio_context_release(bdrv_get_aio_context(bs));
    g_assert_cmpint(p.done, ==, N);
    g_assert_cmpint(p.failed, ==, 0);

    back = g_malloc(65536);
    g_assert_cmpint(test_pread(bs, 0, back, 65536), ==, 0);
    for (i = 0; i < 7; i++) {
        g_assert_cmpint(back[i], ==, 0);
    }
    for (i = 0; i < N; i++) {
        for (j = 0; j < PIECE; j++) {
            g_assert_cmpint(back[7 + i * PIECE + j], ==, 'A' + i % 26);
        }
        iov_destroy(&v[i]);
    }
    g_assert_cmpint(back[7 + N * PIECE], ==, 0);
    g_free(back);
    bdrv_unref(bs);
    unlink(file);
}

/* On tmpfs, small transfers are copied in the node's thread and large ones
 * go through the ring: both see each other's data, in either order. */
static void test_tmpfs_small_and_large_transfers_agree(void)
{
    const size_t big = 1024 * 1024 + 4096 + 7; /* over the inline limit */
    g_autofree char *file = test_scratch_file("/dev/shm", 4 * 1024 * 1024);
    g_autofree char *spec = g_strdup_printf("driver=file,filename=%s", file);
    BlockDriverState *bs = test_open(spec);
    g_autofree uint8_t *data = g_malloc(big);
    g_autofree uint8_t *back = g_malloc(big);
    size_t i;

    for (i = 0; i < big; i++) {
        data[i] = (uint8_t)(i * 7 + 3);
    }
    /* Large write (ring), small reads (inline). */
    g_assert_cmpint(test_pwrite(bs, 4093, data, big, 0), ==, 0);
    for (i = 0; i + 4096 <= big; i += 65536) {
        g_assert_cmpint(test_pread(bs, 4093 + i, back, 4096), ==, 0);
        g_assert_true(memcmp(back, data + i, 4096) == 0);
    }
    /* Small writes (inline), large read (ring). */
    for (i = 0; i + 4096 <= big; i += 65536) {
        memset(data + i, 0xa5, 4096);
        g_assert_cmpint(test_pwrite(bs, 4093 + i, data + i, 4096, 0), ==, 0);
    }
    g_assert_cmpint(test_pread(bs, 4093, back, big), ==, 0);
    g_assert_true(memcmp(back, data, big) == 0);
    bdrv_unref(bs);
    unlink(file);
}

static void test_direct_needs_aligned_file_size(void)
{
    g_autofree char *file = test_scratch_file("/var/tmp", 12345);
    g_autofree char *spec = g_strdup_printf("driver=file,filename=%s,"
                                            "cache.direct=on",
                                            file);
    g_autofree char *msg = test_open_error(spec);

    g_assert_true(strstr(msg, "multiple") || strstr(msg, "O_DIRECT"));
    unlink(file);
}

static void test_detect_zeroes(void)
{
    static const struct {
        const char *mode;
        unsigned status;
    } cases[] = {
        {"off", 0},
        {"on", BDRV_BLOCK_ZERO},
        {"unmap", BDRV_BLOCK_ZERO | BDRV_BLOCK_HOLE},
    };
    char *zeroes = g_malloc0(65536);
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *spec = g_strdup_printf("driver=memory,size=1M,"
                                                "detect-zeroes=%s",
                                                cases[i].mode);
        BlockDriverState *bs = test_open(spec);
        int64_t pnum;
        unsigned status;

        g_assert_cmpint(test_pwrite(bs, 65536, zeroes, 65536, 0), ==, 0);
        g_assert_cmpint(test_block_status(bs, 65536, 65536, &pnum, &status), ==,
                        0);
        g_assert_cmpint(pnum, ==, 65536);
        g_assert_cmpuint(status, ==, cases[i].status);
        bdrv_unref(bs);
    }
    g_free(zeroes);
}

/* cache.no-flush=on: a flush succeeds without reaching the child. */
static void test_no_flush_skips_flushes(void)
{
    static const struct {
        const char *spec;
        unsigned child_in_flight;
    } cases[] = {
        {"driver=raw,file.driver=memory,file.size=64k", 1},
        {"driver=raw,cache.no-flush=on,file.driver=memory,file.size=64k", 0},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        BlockDriverState *bs = test_open(cases[i].spec);
        SyncReq r = {0};

        aio_context_acquire(bdrv_get_aio_context(bs));
        bdrv_aio_flush(bs, sync_cb, &r);
        g_assert_cmpuint(bdrv_get_in_flight(bdrv_get_file_child(bs)), ==,
                         cases[i].child_in_flight);
        aio_context_release(bdrv_get_aio_context(bs));
        g_assert_cmpint(sync_wait(bs, &r), ==, 0);
        bdrv_unref(bs);
    }
}

static void test_bad_flags_are_einval(void)
{
    BlockDriverState *bs = test_open("driver=memory,size=64k");
    char buf[512];

    g_assert_cmpint(test_pread(bs, 0, buf, sizeof(buf)), ==, 0);
    g_assert_cmpint(test_pwrite(bs, 0, buf, sizeof(buf), BDRV_REQ_MAY_UNMAP),
                    ==, -EINVAL);
    bdrv_unref(bs);
}

static void test_iov_helpers(void)
{
    char a[8] = "abcdefg", b[8] = "hijklmn", out[16] = {0};
    IOVector v, w;

    iov_init(&v, 0);
    iov_add(&v, a, 3);
    iov_add(&v, a + 3, 4); /* contiguous: merged */
    iov_add(&v, b, 7);
    g_assert_cmpint(v.niov, ==, 2);
    g_assert_cmpuint(v.size, ==, 14);
    g_assert_cmpuint(iov_to_buf(&v, 5, out, 100), ==, 9);
    g_assert_cmpstr(out, ==, "fghijklmn");
    g_assert_cmpuint(iov_from_buf(&v, 6, "XY", 2), ==, 2);
    g_assert_cmpint(a[6], ==, 'X');
    g_assert_cmpint(b[0], ==, 'Y');
    g_assert_cmpuint(iov_memset(&v, 13, 0, 5), ==, 1);
    g_assert_cmpint(b[6], ==, 0);
    g_assert_true(iov_is_zero(&v, 13, 1));
    g_assert_false(iov_is_zero(&v, 12, 2));
    iov_init(&w, 0);
    g_assert_cmpuint(iov_concat(&w, &v, 5, 4), ==, 4);
    g_assert_cmpint(w.niov, ==, 2);
    g_assert_false(iov_is_aligned(&w, 512));
    iov_reset(&v);
    g_assert_cmpuint(v.size, ==, 0);
    iov_destroy(&v);
    iov_destroy(&w);
}

/*
 * aio-max-batch: with the default (0) the io_uring engine submits what a
 * callback queued once, at the end of the loop iteration; with 3, every
 * third request already goes to the kernel as it is queued.  Counted in
 * io_uring_submit() calls, before and after the iteration.
 */
static void read_done(void *opaque, int ret)
{
    g_assert_cmpint(ret, ==, 0);
    (*(int *)opaque)++;
}

static uint64_t submits_for_9_reads(int max_batch, uint64_t *after_poll)
{
    g_autofree char *file = test_scratch_file("/var/tmp", 1 << 20);
    g_autofree char *spec =
        g_strdup_printf("driver=file,filename=%s,aio=io_uring", file);
    AioContext *ctx = main_loop_get_aio_context();
    BlockDriverState *bs;
    FileState *s;
    static char bufs[9][4096];
    IOVector qiov[9];
    uint64_t before, queued;
    int done = 0;

    g_assert_true(aio_context_set_max_batch(ctx, max_batch, &error_abort));
    bs = test_open(spec);
    s = bs->opaque;
    before = s->ring_submits;
    for (int i = 0; i < 9; i++) {
        iov_init(&qiov[i], 1);
        iov_add(&qiov[i], bufs[i], sizeof(bufs[i]));
        bdrv_aio_preadv(bs, i * 4096, &qiov[i], 0, read_done, &done);
    }
    queued = s->ring_submits - before;
    while (done < 9) {
        aio_poll(ctx, true);
    }
    *after_poll = s->ring_submits - before;
    for (int i = 0; i < 9; i++) {
        iov_destroy(&qiov[i]);
    }
    bdrv_unref(bs);
    unlink(file);
    g_assert_true(aio_context_set_max_batch(ctx, 0, &error_abort));
    return queued;
}

static void test_file_io_uring_honours_aio_max_batch(void)
{
    uint64_t after;
    Error *err = NULL;

    g_assert_cmpuint(submits_for_9_reads(0, &after), ==, 0);
    g_assert_cmpuint(after, ==, 1);
    g_assert_cmpuint(submits_for_9_reads(3, &after), ==, 3);
    g_assert_cmpuint(after, ==, 3);
    g_assert_false(
        aio_context_set_max_batch(main_loop_get_aio_context(), -1, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "aio-max-batch must be between 0 and 2147483647");
    error_free(err);
}

/*
 * The I/O entry points check the threading contract: a thread that neither
 * runs the node's context nor holds it gets an abort that names the node,
 * not a silent race.
 */
static void test_io_from_a_foreign_thread_aborts(void)
{
    if (g_test_subprocess()) {
        IOThread *io = iothread_new("owner", NULL, &error_abort);
        BlockDriverState *bs = test_open("driver=memory,node-name=m9,size=1M");
        static char buf[512];
        IOVector qiov;

        g_assert_true(bdrv_set_aio_context(bs, iothread_get_aio_context(io),
                                           &error_abort));
        iov_init(&qiov, 1);
        iov_add(&qiov, buf, sizeof(buf));
        /* The main thread runs the main loop's context, not the node's. */
        bdrv_aio_preadv(bs, 0, &qiov, 0, NULL, NULL);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*block I/O on node 'm9' from a thread that "
                              "neither runs its AioContext nor holds it*");
}

int main(int argc, char **argv)
{
    size_t i;
    g_autoptr(GHashTable) tg = test_opts("limits.iops-total=10000000");

    test_block_init(&argc, &argv);
    object_add("throttle-group", "tgfast", tg, &error_abort);
    for (i = 0; i < G_N_ELEMENTS(configs); i++) {
        g_autofree char *path = g_strdup_printf(
            "/block/io/%s/random-io-matches-model", configs[i].name);

        g_test_add_data_func(path, &configs[i], test_random_io_matches_model);
    }
    g_test_add_func("/block/io/read-only-refuses-writes",
                    test_read_only_refuses_writes);
    g_test_add_func("/block/io/read-only-file-refuses-writes",
                    test_read_only_file_refuses_writes);
    g_test_add_func("/block/io/past-the-end-is-einval",
                    test_past_the_end_is_einval);
    g_test_add_func("/block/io/raw-window-is-bounded",
                    test_raw_window_is_bounded);
    g_test_add_func("/block/io/null-co-reads-zeroes-and-drops-writes",
                    test_null_co_reads_zeroes_and_drops_writes);
    g_test_add_func("/block/io/memory-block-status-tracks-allocation",
                    test_memory_block_status_tracks_allocation);
    g_test_add_func("/block/io/memory-huge-sparse-disk",
                    test_memory_huge_sparse_disk);
    g_test_add_func("/block/io/file-block-status-finds-holes",
                    test_file_block_status_finds_holes);
    g_test_add_func("/block/io/file-zeroes-no-fallback",
                    test_file_zeroes_no_fallback);
    g_test_add_data_func(
        "/block/io/direct-unaligned-writes-sharing-sectors/io_uring",
        "io_uring", test_direct_unaligned_writes_sharing_sectors);
    g_test_add_data_func(
        "/block/io/direct-unaligned-writes-sharing-sectors/threads", "threads",
        test_direct_unaligned_writes_sharing_sectors);
    g_test_add_func("/block/io/tmpfs-small-and-large-transfers-agree",
                    test_tmpfs_small_and_large_transfers_agree);
    g_test_add_func("/block/io/direct-needs-aligned-file-size",
                    test_direct_needs_aligned_file_size);
    g_test_add_func("/block/io/detect-zeroes", test_detect_zeroes);
    g_test_add_func("/block/io/no-flush-skips-flushes",
                    test_no_flush_skips_flushes);
    g_test_add_func("/block/io/bad-flags-are-einval",
                    test_bad_flags_are_einval);
    g_test_add_func("/block/io/iov-helpers", test_iov_helpers);
    g_test_add_func("/block/io/file-io_uring-honours-aio-max-batch",
                    test_file_io_uring_honours_aio_max_batch);
    g_test_add_func("/block/io/from-a-foreign-thread-aborts",
                    test_io_from_a_foreign_thread_aborts);
    return g_test_run();
}
