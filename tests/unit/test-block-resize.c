/*
 * bdrv_truncate (block_resize): every driver that resizes, the refusals,
 * the users' resize hook and the parents whose size follows their child's.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "dataplane/iothread.h"
#include "dataplane/object.h"
#include "tests/unit/block-test-util.h"

/* A user that records its resize notifications. */
typedef struct Watcher {
    BlockDriverState *bs;
    int resizes;
    int64_t seen_len; /* bdrv_getlength() inside the last hook */
    bool drained;     /* the node was drained inside the hook */
    int *write_done;  /* if set: *write_done when the hook ran */
    int write_done_seen;
} Watcher;

static void watcher_resize(void *opaque)
{
    Watcher *w = opaque;

    w->resizes++;
    w->seen_len = bdrv_getlength(w->bs);
    w->drained = bdrv_is_drained(w->bs);
    if (w->write_done) {
        w->write_done_seen = *w->write_done;
    }
}

static const BlockUserOps watcher_ops = {
    .resize = watcher_resize,
};

static void watch(BlockDriverState *bs, Watcher *w)
{
    w->bs = bs;
    aio_context_acquire(bdrv_get_aio_context(bs));
    bdrv_add_aio_context_notifier(bs, &watcher_ops, w);
    aio_context_release(bdrv_get_aio_context(bs));
}

static void unwatch(Watcher *w)
{
    aio_context_acquire(bdrv_get_aio_context(w->bs));
    bdrv_remove_aio_context_notifier(w->bs, &watcher_ops, w);
    aio_context_release(bdrv_get_aio_context(w->bs));
}

static char *truncate_error(BlockDriverState *bs, int64_t size)
{
    Error *err = NULL;
    char *msg;

    g_assert_false(bdrv_truncate(bs, size, &err));
    g_assert_nonnull(err);
    msg = g_strdup(error_get_pretty(err));
    error_free(err);
    return msg;
}

static void fill(BlockDriverState *bs, int64_t off, size_t len, int byte)
{
    g_autofree char *buf = g_malloc(len);

    memset(buf, byte, len);
    g_assert_cmpint(test_pwrite(bs, off, buf, len, 0), ==, 0);
}

/* Asserts that [off, off + len) reads as `byte`. */
static void expect(BlockDriverState *bs, int64_t off, size_t len, int byte)
{
    g_autofree char *buf = g_malloc(len);
    size_t i;

    g_assert_cmpint(test_pread(bs, off, buf, len), ==, 0);
    for (i = 0; i < len; i++) {
        if ((unsigned char)buf[i] != byte) {
            g_error("byte %" G_GINT64_FORMAT " is 0x%02x, not 0x%02x",
                    off + (int64_t)i, (unsigned char)buf[i], byte);
        }
    }
}

static void test_memory_grows_with_zeroes_and_tells_users(void)
{
    BlockDriverState *bs = test_open("driver=memory,node-name=m,size=100k");
    Watcher w = {0};
    char byte;
    int64_t pnum;
    unsigned status;

    watch(bs, &w);
    fill(bs, 0, 100 * 1024, 0xaa);
    /* Past the end: refused before the resize. */
    g_assert_cmpint(test_pread(bs, 100 * 1024, &byte, 1), ==, -EINVAL);

    g_assert_true(bdrv_truncate(bs, 1024 * 1024, &error_abort));
    g_assert_cmpint(bdrv_getlength(bs), ==, 1024 * 1024);
    g_assert_cmpint(w.resizes, ==, 1);
    g_assert_cmpint(w.seen_len, ==, 1024 * 1024);
    g_assert_true(w.drained);
    g_assert_false(bdrv_is_drained(bs));

    expect(bs, 0, 100 * 1024, 0xaa);
    expect(bs, 100 * 1024, 924 * 1024, 0);
    fill(bs, 1024 * 1024 - 4096, 4096, 0xbb);
    expect(bs, 1024 * 1024 - 4096, 4096, 0xbb);
    g_assert_cmpint(
        test_block_status(bs, 256 * 1024, 512 * 1024, &pnum, &status), ==, 0);
    g_assert_cmpint(status, ==, BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO);
    g_assert_cmpint(pnum, ==, 512 * 1024);

    unwatch(&w);
    bdrv_unref(bs);
}

/* Shrinking into a chunk and growing again: the dropped tail reads as
 * zeroes, not as the data that was there. */
static void test_memory_shrink_then_grow_reads_zeroes(void)
{
    BlockDriverState *bs = test_open("driver=memory,size=4M");

    fill(bs, 0, 4 * 1024 * 1024, 0x5c);
    g_assert_true(bdrv_truncate(bs, 100 * 1024 + 17, &error_abort));
    g_assert_cmpint(bdrv_getlength(bs), ==, 100 * 1024 + 17);
    expect(bs, 0, 100 * 1024 + 17, 0x5c);
    g_assert_true(bdrv_truncate(bs, 4 * 1024 * 1024, &error_abort));
    expect(bs, 0, 100 * 1024 + 17, 0x5c);
    expect(bs, 100 * 1024 + 17, 4 * 1024 * 1024 - (100 * 1024 + 17), 0);
    /* To nothing and back. */
    g_assert_true(bdrv_truncate(bs, 0, &error_abort));
    g_assert_true(bdrv_truncate(bs, 1024 * 1024 * 1024, &error_abort));
    expect(bs, 0, 65536, 0);
    bdrv_unref(bs);
}

static void test_same_size_tells_nobody(void)
{
    BlockDriverState *bs = test_open("driver=null-co,size=1M");
    Watcher w = {0};

    watch(bs, &w);
    g_assert_true(bdrv_truncate(bs, 1024 * 1024, &error_abort));
    g_assert_cmpint(w.resizes, ==, 0);
    g_assert_true(bdrv_truncate(bs, 3 * 1024 * 1024, &error_abort));
    g_assert_cmpint(w.resizes, ==, 1);
    g_assert_cmpint(bdrv_getlength(bs), ==, 3 * 1024 * 1024);
    g_assert_true(bdrv_truncate(bs, 512, &error_abort));
    g_assert_cmpint(w.resizes, ==, 2);
    g_assert_cmpint(w.seen_len, ==, 512);
    unwatch(&w);
    bdrv_unref(bs);
}

static void test_refusals_change_nothing(void)
{
    BlockDriverState *ro = test_open("driver=null-co,size=1M,read-only=on");
    BlockDriverState *fixed = test_open(
        "driver=raw,node-name=fixed,size=64k,file.driver=memory,file.size=1M");
    BlockDriverState *mem = test_open("driver=memory,size=1M");
    Watcher w = {0};
    g_autofree char *e1 = truncate_error(ro, 2 * 1024 * 1024);
    g_autofree char *e2 = truncate_error(mem, -1);
    g_autofree char *e3 = NULL;
    g_autofree char *e4 = truncate_error(mem, INT64_C(1) << 51);

    g_assert_nonnull(strstr(e1, "read-only"));
    g_assert_nonnull(strstr(e2, "negative"));
    g_assert_nonnull(strstr(e4, "too large"));
    g_assert_cmpint(bdrv_getlength(ro), ==, 1024 * 1024);
    g_assert_cmpint(bdrv_getlength(mem), ==, 1024 * 1024);

    watch(fixed, &w);
    e3 = truncate_error(fixed, 128 * 1024);
    g_assert_nonnull(strstr(e3, "fixed-size"));
    g_assert_cmpint(bdrv_getlength(fixed), ==, 64 * 1024);
    g_assert_cmpint(bdrv_getlength(bdrv_get_file_child(fixed)), ==,
                    1024 * 1024);
    g_assert_cmpint(w.resizes, ==, 0);
    g_assert_false(bdrv_is_drained(fixed));
    unwatch(&w);

    bdrv_unref(ro);
    bdrv_unref(fixed);
    bdrv_unref(mem);
}

static void test_file_grows_and_shrinks_on_disk(void)
{
    g_autofree char *name = test_scratch_file("/var/tmp", 64 * 1024);
    g_autofree char *spec = g_strdup_printf("driver=file,filename=%s", name);
    BlockDriverState *bs = test_open(spec);
    struct stat st;

    fill(bs, 0, 64 * 1024, 0x11);
    g_assert_true(bdrv_truncate(bs, 1024 * 1024, &error_abort));
    g_assert_cmpint(stat(name, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 1024 * 1024);
    expect(bs, 0, 64 * 1024, 0x11);
    expect(bs, 64 * 1024, 960 * 1024, 0);
    fill(bs, 1024 * 1024 - 512, 512, 0x22);

    g_assert_true(bdrv_truncate(bs, 4096, &error_abort));
    g_assert_cmpint(stat(name, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 4096);
    g_assert_cmpint(bdrv_getlength(bs), ==, 4096);
    expect(bs, 0, 4096, 0x11);
    bdrv_unref(bs);
    unlink(name);
}

static void test_file_direct_needs_aligned_size(void)
{
    g_autofree char *name = test_scratch_file("/var/tmp", 64 * 1024);
    g_autofree char *spec =
        g_strdup_printf("driver=file,filename=%s,cache.direct=on", name);
    BlockDriverState *bs = test_open(spec);
    g_autofree char *msg = truncate_error(bs, 64 * 1024 + 1);
    struct stat st;

    g_assert_nonnull(strstr(msg, "multiple"));
    g_assert_true(bdrv_truncate(bs, 128 * 1024, &error_abort));
    g_assert_cmpint(stat(name, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 128 * 1024);
    expect(bs, 64 * 1024, 64 * 1024, 0);
    bdrv_unref(bs);
    unlink(name);
}

/* A device cannot grow; it may "resize" within what it is. */
static void test_file_device_cannot_grow(void)
{
    BlockDriverState *bs =
        test_open("driver=file,filename=/dev/null,read-only=off");
    g_autofree char *msg = truncate_error(bs, 4096);

    g_assert_nonnull(strstr(msg, "Cannot grow device files"));
    g_assert_true(bdrv_truncate(bs, 0, &error_abort));
    bdrv_unref(bs);
}

/* raw without size= resizes its child (at its offset), and both nodes'
 * users hear about it once. */
static void test_raw_resizes_its_child(void)
{
    BlockDriverState *bs = test_open(
        "driver=raw,node-name=r,offset=4k,file.driver=memory,file.size=68k");
    BlockDriverState *child = bdrv_get_file_child(bs);
    Watcher wr = {0}, wc = {0};

    watch(bs, &wr);
    watch(child, &wc);
    g_assert_cmpint(bdrv_getlength(bs), ==, 64 * 1024);
    g_assert_true(bdrv_truncate(bs, 1024 * 1024, &error_abort));
    g_assert_cmpint(bdrv_getlength(bs), ==, 1024 * 1024);
    g_assert_cmpint(bdrv_getlength(child), ==, 1024 * 1024 + 4096);
    g_assert_cmpint(wr.resizes, ==, 1);
    g_assert_cmpint(wc.resizes, ==, 1);
    g_assert_cmpint(wr.seen_len, ==, 1024 * 1024);
    fill(bs, 1024 * 1024 - 4096, 4096, 0x33);
    expect(child, 1024 * 1024, 4096, 0x33);
    unwatch(&wr);
    unwatch(&wc);
    bdrv_unref(bs);
}

/* Resizing the child directly: a raw parent without size= follows, one
 * with size= keeps its window. */
static void test_child_resize_reaches_following_parents(void)
{
    BlockDriverState *child = test_open("driver=memory,node-name=c,size=1M");
    BlockDriverState *follows =
        test_open("driver=raw,node-name=f,offset=64k,file=c");
    BlockDriverState *fixed =
        test_open("driver=raw,node-name=x,size=4k,file=c");
    Watcher wf = {0}, wx = {0};

    watch(follows, &wf);
    watch(fixed, &wx);
    g_assert_true(bdrv_truncate(child, 2 * 1024 * 1024, &error_abort));
    g_assert_cmpint(bdrv_getlength(follows), ==, 2 * 1024 * 1024 - 65536);
    g_assert_cmpint(bdrv_getlength(fixed), ==, 4096);
    g_assert_cmpint(wf.resizes, ==, 1);
    g_assert_cmpint(wx.resizes, ==, 0);
    /* Below the parent's offset: it is empty, not negative. */
    g_assert_true(bdrv_truncate(child, 4096, &error_abort));
    g_assert_cmpint(bdrv_getlength(follows), ==, 0);
    g_assert_cmpint(wf.resizes, ==, 2);
    unwatch(&wf);
    unwatch(&wx);
    bdrv_unref(follows);
    bdrv_unref(fixed);
    bdrv_unref(child);
}

static void test_throttle_passes_resize_to_child(void)
{
    BlockDriverState *bs;
    Watcher w = {0};

    g_autoptr(GHashTable) tg = test_opts("qom-type=throttle-group,id=tgr");
    g_assert_nonnull(object_add_opts(tg, &error_abort));
    bs = test_open("driver=throttle,node-name=t,throttle-group=tgr,"
                   "file.driver=memory,file.size=1M");
    watch(bs, &w);
    g_assert_true(bdrv_truncate(bs, 8 * 1024 * 1024, &error_abort));
    g_assert_cmpint(bdrv_getlength(bs), ==, 8 * 1024 * 1024);
    g_assert_cmpint(bdrv_getlength(bdrv_get_file_child(bs)), ==,
                    8 * 1024 * 1024);
    g_assert_cmpint(w.resizes, ==, 1);
    unwatch(&w);
    bdrv_unref(bs);
    g_assert_true(object_del("tgr", &error_abort));
}

static void write_done_cb(void *opaque, int ret)
{
    int *done = opaque;

    g_assert_cmpint(ret, ==, 0);
    *done = 1;
}

/* A request in flight when the resize starts completes before the driver
 * and the users see the new size; then an IOThread's requests see it. */
static void test_resize_waits_for_requests_in_flight(void)
{
    IOThread *io = iothread_new("resize-io", NULL, &error_abort);
    AioContext *main_ctx = main_loop_get_aio_context();
    BlockDriverState *bs = test_open("driver=memory,size=1M");
    Watcher w = {0};
    static char buf[65536];
    IOVector v;
    int done = 0;

    w.write_done = &done;
    watch(bs, &w);
    iov_init(&v, 1);
    iov_add(&v, buf, sizeof(buf));
    /* The main loop's context is not polled until the resize drains it. */
    aio_context_acquire(main_ctx);
    bdrv_aio_pwritev(bs, 0, &v, 0, write_done_cb, &done);
    aio_context_release(main_ctx);
    g_assert_cmpint(done, ==, 0);
    g_assert_true(bdrv_truncate(bs, 2 * 1024 * 1024, &error_abort));
    g_assert_cmpint(w.resizes, ==, 1);
    g_assert_cmpint(w.write_done_seen, ==, 1);
    unwatch(&w);

    g_assert_true(
        bdrv_set_aio_context(bs, iothread_get_aio_context(io), &error_abort));
    g_assert_cmpint(test_pread(bs, 2 * 1024 * 1024 - 4096, buf, 4096), ==, 0);
    g_assert_true(bdrv_truncate(bs, 4 * 1024 * 1024, &error_abort));
    g_assert_cmpint(test_pread(bs, 4 * 1024 * 1024 - 4096, buf, 4096), ==, 0);
    iov_destroy(&v);
    bdrv_unref(bs);
    iothread_destroy(io);
}

int main(int argc, char **argv)
{
    test_block_init(&argc, &argv);
    g_test_add_func("/block/resize/memory-grows-with-zeroes-and-tells-users",
                    test_memory_grows_with_zeroes_and_tells_users);
    g_test_add_func("/block/resize/memory-shrink-then-grow-reads-zeroes",
                    test_memory_shrink_then_grow_reads_zeroes);
    g_test_add_func("/block/resize/same-size-tells-nobody",
                    test_same_size_tells_nobody);
    g_test_add_func("/block/resize/refusals-change-nothing",
                    test_refusals_change_nothing);
    g_test_add_func("/block/resize/file-grows-and-shrinks-on-disk",
                    test_file_grows_and_shrinks_on_disk);
    g_test_add_func("/block/resize/file-direct-needs-aligned-size",
                    test_file_direct_needs_aligned_size);
    g_test_add_func("/block/resize/file-device-cannot-grow",
                    test_file_device_cannot_grow);
    g_test_add_func("/block/resize/raw-resizes-its-child",
                    test_raw_resizes_its_child);
    g_test_add_func("/block/resize/child-resize-reaches-following-parents",
                    test_child_resize_reaches_following_parents);
    g_test_add_func("/block/resize/throttle-passes-resize-to-child",
                    test_throttle_passes_resize_to_child);
    g_test_add_func("/block/resize/waits-for-requests-in-flight",
                    test_resize_waits_for_requests_in_flight);
    return g_test_run();
}
