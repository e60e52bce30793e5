/*
 * qcow2: header parsing of hostile images, entry layouts, the coroutines
 * it runs on, and the driver end to end on images this test builds byte by
 * byte (so it needs no qemu-img and runs under the sanitizers).
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "block-test-util.h"
#include "block/block-int.h"
#include "block/coroutine.h"
#include "block/qcow2.h"

/* ---- header parsing ---------------------------------------------------------
 */

static char *parse_error(const uint8_t *buf, size_t len, int64_t file_size)
{
    Qcow2Image img;
    Error *err = NULL;
    char *msg;

    g_assert_false(qcow2_parse_header(buf, len, file_size, &img, &err));
    g_assert_nonnull(err);
    msg = g_strdup(error_get_pretty(err));
    error_free(err);
    return msg;
}

static void assert_refused(uint8_t *img, const char *needle)
{
    g_autofree char *msg = parse_error(img, 4096, 4 * 4096);

    if (!strstr(msg, needle)) {
        g_error("'%s' lacks '%s'", msg, needle);
    }
}

static void test_header_valid_image_parses(void)
{
    g_autofree uint8_t *buf = test_qcow2_build(12, 1 << 20, "base.img");
    Qcow2Image img;

    g_assert_true(qcow2_parse_header(buf, 4096, 4 * 4096, &img, &error_abort));
    g_assert_cmpuint(img.h.version, ==, 3);
    g_assert_cmpuint(img.h.cluster_bits, ==, 12);
    g_assert_cmpuint(img.h.size, ==, 1 << 20);
    g_assert_cmpstr(img.backing_file, ==, "base.img");
    g_assert_null(img.backing_format);
    qcow2_image_clear(&img);
}

static void test_header_hostile_fields_are_refused(void)
{
    struct {
        int offset;
        int width;
        uint64_t value;
        const char *needle;
    } cases[] = {
        {0, 4, 0x12345678, "no qcow2 magic"},
        {4, 4, 4, "Unsupported qcow2 version 4"},
        {20, 4, 8, "cluster size"},
        {20, 4, 40, "cluster size"},
        {24, 8, UINT64_MAX, "too large"},
        {36, 4, 0xffffffff, "L1 table is too large"},
        {36, 4, 0, "L1 table too small"},
        {40, 8, 4097, "not aligned"},
        {40, 8, UINT64_C(1) << 62, "not inside the file"},
        {48, 8, 0, "not inside the file"},
        {56, 4, 0xffffffff, "refcount table is too large"},
        {56, 4, 0, "empty refcount table"},
        {32, 4, 2, "Encrypted"},
        {72, 8, 1u << 4, "extended L2 entries"},
        {72, 8, 1u << 2, "external data file"},
        {72, 8, UINT64_C(1) << 40, "bit 40"},
        {96, 4, 7, "refcount order"},
        {100, 4, 100, "bad header length"},
        {100, 4, 1 << 20, "bad header length"},
        {8, 8, 4000, "backing file name"},
        {16, 4, 5000, "backing file name"},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree uint8_t *buf = test_qcow2_build(12, 1 << 20, "base");

        if (cases[i].width == 4) {
            test_put32(buf + cases[i].offset, (uint32_t)cases[i].value);
        } else {
            test_put64(buf + cases[i].offset, cases[i].value);
        }
        assert_refused(buf, cases[i].needle);
    }
}

static void test_header_feature_table_names_unknown_bits(void)
{
    g_autofree uint8_t *buf = test_qcow2_build(12, 1 << 20, NULL);

    test_put64(buf + 72, UINT64_C(1) << 9);
    test_put32(buf + 104, QCOW2_EXT_FEATURE_TABLE);
    test_put32(buf + 108, 48);
    buf[112] = 0; /* incompatible */
    buf[113] = 9;
    memcpy(buf + 114, "time travel", 11);
    assert_refused(buf, "time travel");
}

static void test_header_extension_lengths_are_bounded(void)
{
    g_autofree uint8_t *buf = test_qcow2_build(12, 1 << 20, NULL);

    test_put32(buf + 104, QCOW2_EXT_BACKING_FORMAT);
    test_put32(buf + 108, 0xfffffff0);
    assert_refused(buf, "runs past the first cluster");
    test_put32(buf + 108, 200); /* too long for a format name */
    assert_refused(buf, "backing format");
}

static void test_header_truncated_buffers_never_overread(void)
{
    g_autofree uint8_t *full = test_qcow2_build(12, 1 << 20, "b");
    size_t len;

    /* Every prefix: an error or success, never a read past len (ASan
     * watches the exact-size copy). */
    for (len = 0; len < 600; len++) {
        g_autofree uint8_t *buf = g_memdup2(full, len);
        Qcow2Image img;
        Error *err = NULL;

        if (qcow2_parse_header(buf, len, 4 * 4096, &img, &err)) {
            qcow2_image_clear(&img);
        } else {
            error_free(err);
        }
    }
}

static void test_snapshot_table_parses_and_bounds_entries(void)
{
    uint8_t t[200] = {0};
    g_autoptr(GPtrArray) list = g_ptr_array_new();
    BdrvSnapshotInfo *sn;
    Error *err = NULL;

    /* One entry: id "1", name "ab", 16 bytes of extra data. */
    t[13] = 1;
    t[15] = 2;
    test_put32(t + 16, 1234);
    test_put32(t + 36, 16);
    test_put64(t + 40, 4096); /* vm state size, 64-bit */
    t[56] = '1';
    t[57] = 'a';
    t[58] = 'b';
    g_assert_cmpint(qcow2_parse_snapshots(t, sizeof(t), 1, list, &error_abort),
                    ==, 64);
    g_assert_cmpuint(list->len, ==, 1);
    sn = g_ptr_array_index(list, 0);
    g_assert_cmpstr(sn->id, ==, "1");
    g_assert_cmpstr(sn->name, ==, "ab");
    g_assert_cmpuint(sn->date_sec, ==, 1234);
    g_assert_cmpuint(sn->vm_state_size, ==, 4096);
    g_free(sn->id);
    g_free(sn->name);
    g_free(sn);
    g_ptr_array_set_size(list, 0);
    /* Cut off: nothing parsed, the caller reads more. */
    g_assert_cmpint(qcow2_parse_snapshots(t, 50, 5, list, &error_abort), ==, 0);
    /* Extra data past any sane size: refused. */
    test_put32(t + 36, 100000);
    g_assert_cmpint(qcow2_parse_snapshots(t, sizeof(t), 5, list, &err), ==, -1);
    g_assert_nonnull(err);
    error_free(err);
    g_assert_cmpuint(list->len, ==, 0);
}

/* ---- entry layouts ---------------------------------------------------------
 */

static void test_refcount_widths_round_trip(void)
{
    uint8_t block[512];
    unsigned order;

    for (order = 0; order <= 6; order++) {
        uint64_t max =
            order == 6 ? UINT64_MAX : (UINT64_C(1) << (1u << order)) - 1;
        uint64_t n = 512 * 8 >> order;
        uint64_t i;

        memset(block, 0, sizeof(block));
        for (i = 0; i < n; i++) {
            qcow2_refcount_set(block, i, order, (i * 7 + 1) & max);
        }
        for (i = 0; i < n; i++) {
            g_assert_cmpuint(qcow2_refcount_get(block, i, order), ==,
                             (i * 7 + 1) & max);
        }
    }
    /* 16 bits are big-endian on disk. */
    memset(block, 0, sizeof(block));
    qcow2_refcount_set(block, 1, 4, 0x0102);
    g_assert_cmpuint(block[2], ==, 1);
    g_assert_cmpuint(block[3], ==, 2);
}

static void test_entry_types_and_compressed_ranges(void)
{
    uint64_t off, len;

    g_assert_cmpint(qcow2_entry_type(0, 3), ==, QCOW2_CLUSTER_UNALLOCATED);
    g_assert_cmpint(qcow2_entry_type(1, 3), ==, QCOW2_CLUSTER_ZERO_PLAIN);
    g_assert_cmpint(qcow2_entry_type(1, 2), ==, QCOW2_CLUSTER_UNALLOCATED);
    g_assert_cmpint(qcow2_entry_type(0x10001, 3), ==, QCOW2_CLUSTER_ZERO_ALLOC);
    g_assert_cmpint(qcow2_entry_type(0x10000 | QCOW2_OFLAG_COPIED, 3), ==,
                    QCOW2_CLUSTER_NORMAL);
    g_assert_cmpint(qcow2_entry_type(QCOW2_OFLAG_COMPRESSED | 5, 3), ==,
                    QCOW2_CLUSTER_COMPRESSED);
    /* 64 KiB clusters: x = 54; offset 1000, 2 additional sectors. */
    qcow2_compressed_range(QCOW2_OFLAG_COMPRESSED | (UINT64_C(2) << 54) | 1000,
                           16, &off, &len);
    g_assert_cmpuint(off, ==, 1000);
    g_assert_cmpuint(len, ==, 512 + 3 * 512 - 1000);
}

/* ---- coroutines ------------------------------------------------------------
 */

typedef struct CoCount {
    int steps;
    Coroutine *inner;
} CoCount;

static void co_steps(void *opaque)
{
    CoCount *c = opaque;

    c->steps++;
    coroutine_yield();
    c->steps++;
}

static void co_outer(void *opaque)
{
    CoCount *c = opaque;
    CoCount in = {0};

    c->inner = coroutine_create(co_steps, &in);
    coroutine_enter(c->inner); /* nested: returns at its yield */
    g_assert_cmpint(in.steps, ==, 1);
    g_assert_true(coroutine_self() != NULL);
    c->steps++;
    coroutine_yield();
    coroutine_enter(c->inner); /* finishes it */
    g_assert_cmpint(in.steps, ==, 2);
    c->steps++;
}

static void test_coroutine_yields_and_nests(void)
{
    CoCount c = {0};
    Coroutine *co;
    int i;

    g_assert_null(coroutine_self());
    for (i = 0; i < 200; i++) { /* reuses pooled stacks */
        c.steps = 0;
        co = coroutine_create(co_outer, &c);
        coroutine_enter(co);
        g_assert_cmpint(c.steps, ==, 1);
        coroutine_enter(co);
        g_assert_cmpint(c.steps, ==, 2);
    }
    g_assert_null(coroutine_self());
}

/* ---- the driver -----------------------------------------------------------
 */

static BlockDriverState *open_qcow2(const char *path, const char *extra)
{
    g_autofree char *spec = g_strdup_printf(
        "driver=qcow2,file.driver=file,file.filename=%s%s", path, extra);

    return test_open(spec);
}

static void fill(uint8_t *buf, size_t len, uint8_t v)
{
    memset(buf, v, len);
}

static void test_qcow2_write_read_reopen(void)
{
    g_autofree char *path = test_qcow2_scratch(12, 8 << 20, NULL);
    BlockDriverState *bs = open_qcow2(path, "");
    g_autofree uint8_t *buf = g_malloc(70000);
    g_autofree uint8_t *got = g_malloc(70000);
    int64_t pnum;
    unsigned status;

    g_assert_cmpint(bdrv_getlength(bs), ==, 8 << 20);
    g_assert_cmpint(test_pread(bs, 0, got, 4096), ==, 0);
    g_assert_true(iov_is_zero(
        &(IOVector){&(struct iovec){got, 4096}, 1, 1, 4096}, 0, 4096));
    fill(buf, 70000, 0xa5);
    /* Unaligned, across clusters, into fresh ones. */
    g_assert_cmpint(test_pwrite(bs, 1000, buf, 70000, 0), ==, 0);
    fill(buf, 4096, 0x5a);
    g_assert_cmpint(test_pwrite(bs, 6 << 20, buf, 4096, BDRV_REQ_FUA), ==, 0);
    g_assert_cmpint(test_block_status(bs, 0, 8 << 20, &pnum, &status), ==, 0);
    g_assert_cmpint(status, ==, 0);
    g_assert_cmpint(pnum, ==, 72 << 10); /* 18 allocated clusters */
    g_assert_cmpint(test_flush(bs), ==, 0);
    bdrv_unref(bs);

    bs = open_qcow2(path, ",read-only=on");
    g_assert_cmpint(test_pread(bs, 1000, got, 70000), ==, 0);
    fill(buf, 70000, 0xa5);
    g_assert_cmpmem(got, 70000, buf, 70000);
    g_assert_cmpint(test_pread(bs, 0, got, 1000), ==, 0);
    fill(buf, 1000, 0);
    g_assert_cmpmem(got, 1000, buf, 1000);
    g_assert_cmpint(test_pread(bs, 6 << 20, got, 4096), ==, 0);
    fill(buf, 4096, 0x5a);
    g_assert_cmpmem(got, 4096, buf, 4096);
    bdrv_unref(bs);
    unlink(path);
}

/* The on-disk L1 entry 0 of an image built by test_qcow2_build(). */
static uint64_t disk_l1_entry0(const char *path, unsigned cluster_bits)
{
    uint8_t b[8];
    int fd = open(path, O_RDONLY);
    uint64_t v = 0;
    int i;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, b, 8, 3 << cluster_bits), ==, 8);
    close(fd);
    for (i = 0; i < 8; i++) {
        v = v << 8 | b[i];
    }
    return v;
}

/* A FUA write in place into a cluster that an earlier plain write
 * allocated: acknowledged means the mapping is on disk too. */
static void test_qcow2_fua_write_makes_its_mapping_stable(void)
{
    g_autofree char *path = test_qcow2_scratch(12, 1 << 20, NULL);
    BlockDriverState *bs = open_qcow2(path, "");
    uint8_t buf[4096];

    fill(buf, sizeof(buf), 1);
    g_assert_cmpint(test_pwrite(bs, 8192, buf, 4096, 0), ==, 0);
    g_assert_cmpuint(disk_l1_entry0(path, 12), ==, 0); /* not yet */
    g_assert_cmpint(test_pwrite(bs, 8192, buf, 512, BDRV_REQ_FUA), ==, 0);
    g_assert_cmpuint(disk_l1_entry0(path, 12), !=, 0);
    bdrv_unref(bs);
    unlink(path);
}

static void test_qcow2_zeroes_and_discard(void)
{
    g_autofree char *path = test_qcow2_scratch(12, 1 << 20, NULL);
    BlockDriverState *bs = open_qcow2(path, ",discard=unmap");
    g_autofree uint8_t *buf = g_malloc(65536);
    int64_t pnum;
    unsigned status;

    fill(buf, 65536, 7);
    g_assert_cmpint(test_pwrite(bs, 0, buf, 65536, 0), ==, 0);
    g_assert_cmpint(test_zeroes(bs, 4096, 8192, 0), ==, 0);
    g_assert_cmpint(test_block_status(bs, 4096, 8192, &pnum, &status), ==, 0);
    g_assert_cmpint(status, ==, BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO);
    g_assert_cmpint(pnum, ==, 8192);
    g_assert_cmpint(test_pread(bs, 0, buf, 65536), ==, 0);
    g_assert_cmpint(buf[4095], ==, 7);
    g_assert_cmpint(buf[4096], ==, 0);
    g_assert_cmpint(buf[12287], ==, 0);
    g_assert_cmpint(buf[12288], ==, 7);
    /* Partial cluster zeroing writes zeroes; NO_FALLBACK refuses it. */
    g_assert_cmpint(test_zeroes(bs, 20000, 100, BDRV_REQ_NO_FALLBACK), ==,
                    -ENOTSUP);
    g_assert_cmpint(test_zeroes(bs, 20000, 100, 0), ==, 0);
    g_assert_cmpint(test_pread(bs, 19999, buf, 102), ==, 0);
    g_assert_cmpint(buf[0], ==, 7);
    g_assert_cmpint(buf[1], ==, 0);
    g_assert_cmpint(buf[100], ==, 0);
    g_assert_cmpint(buf[101], ==, 7);
    g_assert_cmpint(test_discard(bs, 32768, 32768), ==, 0);
    g_assert_cmpint(test_block_status(bs, 32768, 32768, &pnum, &status), ==, 0);
    g_assert_cmpint(status, ==, BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO);
    g_assert_cmpint(test_flush(bs), ==, 0);
    /* The freed clusters are reused: the file does not grow. */
    {
        int64_t len = bdrv_getlength(bdrv_get_file_child(bs));

        g_assert_cmpint(test_flush(bs), ==, 0);
        fill(buf, 32768, 9);
        g_assert_cmpint(test_pwrite(bs, 500 << 10, buf, 32768, 0), ==, 0);
        g_assert_cmpint(bdrv_getlength(bdrv_get_file_child(bs)), ==, len);
    }
    bdrv_unref(bs);
    unlink(path);
}

typedef struct Burst {
    int pending;
    int errors;
} Burst;

static void burst_cb(void *opaque, int ret)
{
    Burst *b = opaque;

    b->pending--;
    b->errors += ret < 0;
}

/* 256 sector writes in flight at once, up to 8 into each cluster while
 * it is being allocated: every sector reads back its own write. */
static void test_qcow2_concurrent_allocating_writes(void)
{
    g_autofree char *path = test_qcow2_scratch(12, 4 << 20, NULL);
    BlockDriverState *bs = open_qcow2(path, "");
    AioContext *ctx = bdrv_get_aio_context(bs);
    static uint8_t bufs[256][512];
    IOVector v[256];
    uint8_t expect[2048] = {0};
    Burst b = {0};
    g_autofree uint8_t *got = g_malloc(512);
    int i;

    aio_context_acquire(ctx);
    for (i = 0; i < 256; i++) {
        int sector = (i * 37) % 2048;

        memset(bufs[i], i + 1, 512);
        iov_init(&v[i], 1);
        iov_add(&v[i], bufs[i], 512);
        b.pending++;
        bdrv_aio_pwritev(bs, (int64_t)sector * 512, &v[i], 0, burst_cb, &b);
        expect[sector] = i + 1; /* 37 is odd: 256 distinct sectors */
    }
    while (b.pending) {
        aio_poll(ctx, true);
    }
    aio_context_release(ctx);
    g_assert_cmpint(b.errors, ==, 0);
    for (i = 0; i < 2048; i++) {
        g_assert_cmpint(test_pread(bs, (int64_t)i * 512, got, 512), ==, 0);
        g_assert_cmpint(got[0], ==, expect[i]);
        g_assert_cmpint(got[511], ==, expect[i]);
    }
    for (i = 0; i < 256; i++) {
        iov_destroy(&v[i]);
    }
    bdrv_unref(bs);
    unlink(path);
}

typedef struct DepthReq {
    SyncReq r;
    int depth;
} DepthReq;

static void depth_cb(void *opaque, int ret, int64_t pnum, unsigned status,
                     int depth)
{
    DepthReq *d = opaque;

    d->depth = depth;
    sync_status_cb(&d->r, ret, pnum, status);
}

/* The allocation depth of the start of the range. */
static int status_depth(BlockDriverState *bs, int64_t off, int64_t len,
                        int64_t *pnum, unsigned *status)
{
    DepthReq d = {{0}};

    aio_context_acquire(bdrv_get_aio_context(bs));
    bdrv_aio_block_status_depth(bs, off, len, depth_cb, &d);
    aio_context_release(bdrv_get_aio_context(bs));
    g_assert_cmpint(sync_wait(bs, &d.r), ==, 0);
    *pnum = d.r.pnum;
    *status = d.r.status;
    return d.depth;
}

/* Two images: the overlay reads through to its backing node (named with
 * backing=), copies the rest of a cluster on a partial write, and reports
 * the depth of each range. */
static void test_qcow2_backing_chain_and_depth(void)
{
    g_autofree char *base_path = test_qcow2_scratch(12, 1 << 20, NULL);
    g_autofree char *top_path = test_qcow2_scratch(12, 1 << 20, "ignored");
    g_autofree char *bspec = g_strdup_printf(
        "driver=qcow2,node-name=base,file.driver=file,file.filename=%s",
        base_path);
    BlockDriverState *base = test_open(bspec);
    BlockDriverState *top;
    uint8_t buf[8192];
    int64_t pnum;
    unsigned status;

    fill(buf, 8192, 3);
    g_assert_cmpint(test_pwrite(base, 0, buf, 8192, 0), ==, 0);
    g_assert_cmpint(test_flush(base), ==, 0);
    top = open_qcow2(top_path, ",backing=base");
    g_assert_true(bdrv_get_backing_child(top) == base);
    g_assert_cmpint(bdrv_get_backing_depth(top), ==, 1);
    fill(buf, 100, 4);
    g_assert_cmpint(test_pwrite(top, 100, buf, 100, 0), ==, 0);
    g_assert_cmpint(test_pread(top, 0, buf, 8192), ==, 0);
    g_assert_cmpint(buf[99], ==, 3);
    g_assert_cmpint(buf[100], ==, 4);
    g_assert_cmpint(buf[199], ==, 4);
    g_assert_cmpint(buf[200], ==, 3);
    g_assert_cmpint(buf[8191], ==, 3);
    g_assert_cmpint(status_depth(top, 0, 8192, &pnum, &status), ==, 1);
    g_assert_cmpint(pnum, ==, 4096);
    g_assert_cmpint(status_depth(top, 4096, 8192, &pnum, &status), ==, 2);
    g_assert_cmpint(status, ==, 0); /* data, in the backing */
    g_assert_cmpint(pnum, ==, 4096);
    g_assert_cmpint(status_depth(top, 8192, 4096, &pnum, &status), ==, 0);
    g_assert_cmpint(test_block_status(top, 8192, 4096, &pnum, &status), ==, 0);
    g_assert_cmpint(status, ==, BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO);
    /* The backing node is busy while the overlay uses it. */
    {
        Error *err = NULL;

        g_assert_false(bdrv_blockdev_del("base", &err));
        g_assert_nonnull(strstr(error_get_pretty(err), "backing child"));
        error_free(err);
    }
    bdrv_unref(top);
    bdrv_unref(base);
    unlink(base_path);
    unlink(top_path);
}

static void test_qcow2_refuses_what_it_cannot_write(void)
{
    g_autofree uint8_t *img = test_qcow2_build(12, 1 << 20, NULL);
    g_autofree char *path = test_scratch_file("/var/tmp", 0);
    g_autofree char *msg = NULL;
    g_autofree char *spec = NULL;
    int fd = open(path, O_WRONLY);
    BlockDriverState *bs;

    test_put64(img + 72, QCOW2_INCOMPAT_DIRTY);
    g_assert_cmpint(pwrite(fd, img, 4 * 4096, 0), ==, 4 * 4096);
    close(fd);
    spec =
        g_strdup_printf("driver=qcow2,file.driver=file,file.filename=%s", path);
    msg = test_open_error(spec);
    g_assert_nonnull(strstr(msg, "qemu-img check -r all"));
    /* Read-only is fine: refcounts do not matter for reading. */
    bs = open_qcow2(path, ",read-only=on");
    bdrv_unref(bs);
    unlink(path);
}

int main(int argc, char **argv)
{
    test_block_init(&argc, &argv);
    g_test_add_func("/qcow2/header/valid-image-parses",
                    test_header_valid_image_parses);
    g_test_add_func("/qcow2/header/hostile-fields-are-refused",
                    test_header_hostile_fields_are_refused);
    g_test_add_func("/qcow2/header/feature-table-names-unknown-bits",
                    test_header_feature_table_names_unknown_bits);
    g_test_add_func("/qcow2/header/extension-lengths-are-bounded",
                    test_header_extension_lengths_are_bounded);
    g_test_add_func("/qcow2/header/truncated-buffers-never-overread",
                    test_header_truncated_buffers_never_overread);
    g_test_add_func("/qcow2/header/snapshot-table-parses-and-bounds-entries",
                    test_snapshot_table_parses_and_bounds_entries);
    g_test_add_func("/qcow2/layout/refcount-widths-round-trip",
                    test_refcount_widths_round_trip);
    g_test_add_func("/qcow2/layout/entry-types-and-compressed-ranges",
                    test_entry_types_and_compressed_ranges);
    g_test_add_func("/qcow2/coroutine/yields-and-nests",
                    test_coroutine_yields_and_nests);
    g_test_add_func("/qcow2/driver/write-read-reopen",
                    test_qcow2_write_read_reopen);
    g_test_add_func("/qcow2/driver/fua-write-makes-its-mapping-stable",
                    test_qcow2_fua_write_makes_its_mapping_stable);
    g_test_add_func("/qcow2/driver/zeroes-and-discard",
                    test_qcow2_zeroes_and_discard);
    g_test_add_func("/qcow2/driver/concurrent-allocating-writes",
                    test_qcow2_concurrent_allocating_writes);
    g_test_add_func("/qcow2/driver/backing-chain-and-depth",
                    test_qcow2_backing_chain_and_depth);
    g_test_add_func("/qcow2/driver/refuses-what-it-cannot-write",
                    test_qcow2_refuses_what_it_cannot_write);
    return g_test_run();
}
