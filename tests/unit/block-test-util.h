/*
 * Helpers shared by the block layer unit tests: option tables from
 * "key=value,..." strings, synchronous wrappers that poll a node's context
 * until a request completes, and a deterministic random generator.
 */
#ifndef DATAPLANE_TESTS_BLOCK_TEST_UTIL_H
#define DATAPLANE_TESTS_BLOCK_TEST_UTIL_H

#include <errno.h>
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

/* Common main() set-up: the main loop and the block layer's types. */
static inline void test_block_init(int *argc, char ***argv)
{
    g_test_init(argc, argv, NULL);
    main_loop_init(&error_abort);
    bdrv_init();
}

#endif
