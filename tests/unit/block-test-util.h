/*
 * Helpers shared by the block layer unit tests: option tables from
 * "key=value,..." strings, synchronous wrappers that poll a node's context
 * until a request completes, and a deterministic random generator.
 */
#ifndef DATAPLANE_TESTS_BLOCK_TEST_UTIL_H
#define DATAPLANE_TESTS_BLOCK_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <glib.h>
#include <string.h>

#include "dataplane/block.h"
#include "dataplane/main-loop.h"
#include "util/atomic.h"

/* "driver=memory,size=1M" -> table.  Values may not contain ','. */
static inline GHashTable *test_opts(const char *spec)
{
    GHashTable *t =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_auto(GStrv) pairs = g_strsplit(spec, ",", -1);
    int i;

    for (i = 0; pairs[i]; i++) {
        char *eq = strchr(pairs[i], '=');

        g_assert_nonnull(eq);
        g_hash_table_insert(t, g_strndup(pairs[i], eq - pairs[i]),
                            g_strdup(eq + 1));
    }
    return t;
}

static inline BlockDriverState *test_open(const char *spec)
{
    g_autoptr(GHashTable) opts = test_opts(spec);

    return bdrv_open(opts, &error_abort);
}

/* The error text of a failing open (g_free it). */
static inline char *test_open_error(const char *spec)
{
    g_autoptr(GHashTable) opts = test_opts(spec);
    Error *err = NULL;
    BlockDriverState *bs = bdrv_open(opts, &err);
    char *msg;

    g_assert_null(bs);
    g_assert_nonnull(err);
    msg = g_strdup(error_get_pretty(err));
    error_free(err);
    return msg;
}

typedef struct SyncReq {
    bool done;
    int ret;
    int64_t pnum;
    unsigned status;
} SyncReq;

static inline void sync_cb(void *opaque, int ret)
{
    SyncReq *r = opaque;

    r->ret = ret;
    dp_atomic_store_release(&r->done, true);
}

static inline void sync_status_cb(void *opaque, int ret, int64_t pnum,
                                  unsigned status)
{
    SyncReq *r = opaque;

    r->pnum = pnum;
    r->status = status;
    sync_cb(opaque, ret);
}

/* Polls the node's context (acquired) until r is done: bounded. */
static inline int sync_wait(BlockDriverState *bs, SyncReq *r)
{
    AioContext *ctx = bdrv_get_aio_context(bs);
    int i;

    aio_context_acquire(ctx);
    for (i = 0; i < 1000000 && !dp_atomic_load_acquire(&r->done); i++) {
        aio_poll(ctx, true);
    }
    aio_context_release(ctx);
    g_assert_true(r->done);
    return r->ret;
}

static inline int test_pread(BlockDriverState *bs, int64_t off, void *buf,
                             size_t len)
{
    SyncReq r = {0};
    IOVector v;
    int ret;

    iov_init(&v, 1);
    iov_add(&v, buf, len);
    aio_context_acquire(bdrv_get_aio_context(bs));
    bdrv_aio_preadv(bs, off, &v, 0, sync_cb, &r);
    /* The callback never runs inside the submit call. */
    g_assert_false(r.done);
    aio_context_release(bdrv_get_aio_context(bs));
    ret = sync_wait(bs, &r);
    iov_destroy(&v);
    return ret;
}

static inline int test_pwrite(BlockDriverState *bs, int64_t off,
                              const void *buf, size_t len, int flags)
{
    SyncReq r = {0};
    IOVector v;
    int ret;

    iov_init(&v, 1);
    iov_add(&v, (void *)buf, len);
    aio_context_acquire(bdrv_get_aio_context(bs));
    bdrv_aio_pwritev(bs, off, &v, flags, sync_cb, &r);
    /* The callback never runs inside the submit call. */
    g_assert_false(r.done);
    aio_context_release(bdrv_get_aio_context(bs));
    ret = sync_wait(bs, &r);
    iov_destroy(&v);
    return ret;
}

static inline int test_discard(BlockDriverState *bs, int64_t off, int64_t len)
{
    SyncReq r = {0};

    aio_context_acquire(bdrv_get_aio_context(bs));
    bdrv_aio_pdiscard(bs, off, len, sync_cb, &r);
    /* The callback never runs inside the submit call. */
    g_assert_false(r.done);
    aio_context_release(bdrv_get_aio_context(bs));
    return sync_wait(bs, &r);
}

static inline int test_zeroes(BlockDriverState *bs, int64_t off, int64_t len,
                              int flags)
{
    SyncReq r = {0};

    aio_context_acquire(bdrv_get_aio_context(bs));
    bdrv_aio_pwrite_zeroes(bs, off, len, flags, sync_cb, &r);
    /* The callback never runs inside the submit call. */
    g_assert_false(r.done);
    aio_context_release(bdrv_get_aio_context(bs));
    return sync_wait(bs, &r);
}

static inline int test_flush(BlockDriverState *bs)
{
    SyncReq r = {0};

    aio_context_acquire(bdrv_get_aio_context(bs));
    bdrv_aio_flush(bs, sync_cb, &r);
    /* The callback never runs inside the submit call. */
    g_assert_false(r.done);
    aio_context_release(bdrv_get_aio_context(bs));
    return sync_wait(bs, &r);
}

static inline int test_block_status(BlockDriverState *bs, int64_t off,
                                    int64_t len, int64_t *pnum,
                                    unsigned *status)
{
    SyncReq r = {0};
    int ret;

    aio_context_acquire(bdrv_get_aio_context(bs));
    bdrv_aio_block_status(bs, off, len, sync_status_cb, &r);
    /* The callback never runs inside the submit call. */
    g_assert_false(r.done);
    aio_context_release(bdrv_get_aio_context(bs));
    ret = sync_wait(bs, &r);
    *pnum = r.pnum;
    *status = r.status;
    return ret;
}

/* A scratch file of `size` bytes in dir (the worktree's build directory is
 * on a disk file system, so O_DIRECT works there); g_free the name and
 * unlink it after. */
static inline char *test_scratch_file(const char *dir, int64_t size)
{
    char *name = g_strdup_printf("%s/block-test-XXXXXX", dir);
    int fd = g_mkstemp(name);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, size), ==, 0);
    close(fd);
    return name;
}

/* ---- images built here ----------------------------------------------------
 */

static inline void test_put32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static inline void test_put64(uint8_t *p, uint64_t v)
{
    test_put32(p, v >> 32);
    test_put32(p + 4, (uint32_t)v);
}

/*
 * An empty version 3 image: header (cluster 0), refcount table (1),
 * refcount block (2), L1 table (3), 16-bit refcounts.  Returns the first
 * 4 clusters in a buffer of 4 * cs bytes.
 */
static inline uint8_t *test_qcow2_build(unsigned cluster_bits, uint64_t size,
                                        const char *backing)
{
    uint64_t cs = UINT64_C(1) << cluster_bits;
    uint64_t per_l2 = cs / 8 * cs;
    uint32_t l1_size = (uint32_t)((size + per_l2 - 1) / per_l2);
    uint8_t *img = g_malloc0(4 * cs);
    int i;

    g_assert(l1_size * 8 <= cs);
    test_put32(img, 0x514649fbu);
    test_put32(img + 4, 3);
    test_put32(img + 20, cluster_bits);
    test_put64(img + 24, size);
    test_put32(img + 36, l1_size);
    test_put64(img + 40, 3 * cs);
    test_put64(img + 48, cs);
    test_put32(img + 56, 1);
    test_put32(img + 96, 4);
    test_put32(img + 100, 104);
    if (backing) {
        /* Extensions end at once (zeroes); the name sits after them. */
        test_put64(img + 8, 512);
        test_put32(img + 16, (uint32_t)strlen(backing));
        memcpy(img + 512, backing, strlen(backing));
    }
    test_put64(img + cs, 2 * cs);
    for (i = 0; i < 4; i++) {
        img[2 * cs + 2 * i + 1] = 1;
    }
    return img;
}

static inline char *test_qcow2_scratch(unsigned cluster_bits, uint64_t size,
                                       const char *backing)
{
    g_autofree uint8_t *img = test_qcow2_build(cluster_bits, size, backing);
    char *path = test_scratch_file("/var/tmp", 0);
    int fd = open(path, O_WRONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, img, 4 << cluster_bits, 0), ==,
                    4 << cluster_bits);
    close(fd);
    return path;
}

/* Common main() set-up: the main loop and the block layer's types. */
static inline void test_block_init(int *argc, char ***argv)
{
    g_test_init(argc, argv, NULL);
    main_loop_init(&error_abort);
    bdrv_init();
}

#endif
