/* Drain, drained sections and the users' hooks. */
#include <unistd.h>

#include "dataplane/iothread.h"
#include "dataplane/object.h"
#include "tests/unit/block-test-util.h"
#include "util/thread.h"

#define NREQ 32

typedef struct Batch {
    int done;
    char bufs[NREQ][4096];
    IOVector qiov[NREQ];
} Batch;

static void batch_cb(void *opaque, int ret)
{
    Batch *b = opaque;

    g_assert_cmpint(ret, ==, 0);
    b->done++;
}

/* Submits NREQ writes and reads (ctx held by the caller). */
static void batch_submit(BlockDriverState *bs, Batch *b)
{
    int i;

    for (i = 0; i < NREQ; i++) {
        iov_init(&b->qiov[i], 1);
        iov_add(&b->qiov[i], b->bufs[i], sizeof(b->bufs[i]));
        if (i % 2) {
            bdrv_aio_preadv(bs, i * 4096, &b->qiov[i], 0, batch_cb, b);
        } else {
            bdrv_aio_pwritev(bs, i * 4096, &b->qiov[i], 0, batch_cb, b);
        }
    }
}

static void batch_destroy(Batch *b)
{
    int i;

    for (i = 0; i < NREQ; i++) {
        iov_destroy(&b->qiov[i]);
    }
}

static void drain_with_requests(const char *spec)
{
    BlockDriverState *bs = test_open(spec);
    AioContext *ctx = bdrv_get_aio_context(bs);
    Batch b = {0};

    aio_context_acquire(ctx);
    batch_submit(bs, &b);
    g_assert_cmpuint(bdrv_get_in_flight(bs), ==, NREQ);
    g_assert_cmpint(b.done, ==, 0);
    bdrv_drain(bs);
    aio_context_release(ctx);
    g_assert_cmpint(b.done, ==, NREQ);
    g_assert_cmpuint(bdrv_get_in_flight(bs), ==, 0);
    batch_destroy(&b);
    bdrv_unref(bs);
}

static void test_drain_memory_returns_with_nothing_in_flight(void)
{
    drain_with_requests("driver=memory,size=1M");
}

static void test_drain_raw_counts_child_requests(void)
{
    BlockDriverState *raw = test_open("driver=raw,file.driver=memory,"
                                      "file.size=1M");
    BlockDriverState *mem = bdrv_get_file_child(raw);
    AioContext *ctx = bdrv_get_aio_context(raw);
    Batch b = {0};

    aio_context_acquire(ctx);
    batch_submit(raw, &b);
    g_assert_cmpuint(bdrv_get_in_flight(mem), ==, NREQ);
    /* Draining the child waits for the parent's requests too. */
    bdrv_drain(mem);
    aio_context_release(ctx);
    g_assert_cmpint(b.done, ==, NREQ);
    g_assert_cmpuint(bdrv_get_in_flight(raw), ==, 0);
    batch_destroy(&b);
    bdrv_unref(raw);
}

static void test_drain_file_returns_with_nothing_in_flight(gconstpointer data)
{
    g_autofree char *file = test_scratch_file("/var/tmp", 1 << 20);
    g_autofree char *spec = g_strdup_printf("driver=file,filename=%s,aio=%s",
                                            file, (const char *)data);

    drain_with_requests(spec);
    unlink(file);
}

static void test_drain_throttled_queue_goes_at_once(void)
{
    g_autoptr(GHashTable) tgopts = test_opts("limits.iops-total=1");
    BlockDriverState *bs;
    AioContext *ctx;
    Batch b = {0};

    object_add("throttle-group", "slow", tgopts, &error_abort);
    bs = test_open("driver=throttle,throttle-group=slow,file.driver=memory,"
                   "file.size=1M");
    ctx = bdrv_get_aio_context(bs);
    aio_context_acquire(ctx);
    batch_submit(bs, &b);
    /* At one request per second this would take half a minute; a drained
     * section lets the queue go instead. */
    bdrv_drained_begin(bs);
    g_assert_cmpint(b.done, ==, NREQ);
    bdrv_drained_end(bs);
    aio_context_release(ctx);
    batch_destroy(&b);
    bdrv_unref(bs);
    g_assert_true(object_del("slow", &error_abort));
}

typedef struct User {
    int begins, ends;
    BlockDriverState *bs;
    Batch *batch;
    DpMutex lock;
    DpCond cond;
    bool submitted;
} User;

static void user_drained_begin(void *opaque)
{
    User *u = opaque;

    u->begins++;
}

static void user_drained_end(void *opaque)
{
    User *u = opaque;

    u->ends++;
}

static const BlockUserOps user_ops = {
    .drained_begin = user_drained_begin,
    .drained_end = user_drained_end,
};

static void test_drained_sections_nest(void)
{
    BlockDriverState *bs = test_open("driver=memory,size=1M");
    User u = {0};

    bdrv_add_aio_context_notifier(bs, &user_ops, &u);
    bdrv_drained_begin(bs);
    g_assert_true(bdrv_is_drained(bs));
    bdrv_drained_begin(bs);
    g_assert_cmpint(u.begins, ==, 1);
    bdrv_drained_end(bs);
    g_assert_cmpint(u.ends, ==, 0);
    g_assert_true(bdrv_is_drained(bs));
    bdrv_drained_end(bs);
    g_assert_cmpint(u.ends, ==, 1);
    g_assert_false(bdrv_is_drained(bs));
    bdrv_remove_aio_context_notifier(bs, &user_ops, &u);
    bdrv_unref(bs);
}

static void test_user_joining_a_section_is_balanced(void)
{
    BlockDriverState *bs = test_open("driver=memory,size=1M");
    User u = {0};

    bdrv_drained_begin(bs);
    bdrv_add_aio_context_notifier(bs, &user_ops, &u);
    g_assert_cmpint(u.begins, ==, 1);
    bdrv_drained_end(bs);
    g_assert_cmpint(u.ends, ==, 1);
    bdrv_remove_aio_context_notifier(bs, &user_ops, &u);
    bdrv_unref(bs);
}

static void test_drained_section_of_child_tells_parent_users(void)
{
    BlockDriverState *raw = test_open("driver=raw,file.driver=memory,"
                                      "file.size=1M");
    User u = {0};
    Error *err = NULL;

    bdrv_add_aio_context_notifier(raw, &user_ops, &u);
    /* A registered user makes the node busy for blockdev-del. */
    g_assert_false(bdrv_blockdev_del(bdrv_get_node_name(raw), &err));
    error_free(err);
    bdrv_drained_begin(bdrv_get_file_child(raw));
    g_assert_cmpint(u.begins, ==, 1);
    g_assert_true(bdrv_is_drained(raw));
    bdrv_drained_end(bdrv_get_file_child(raw));
    g_assert_cmpint(u.ends, ==, 1);
    bdrv_remove_aio_context_notifier(raw, &user_ops, &u);
    bdrv_unref(raw);
}

/* Submitted by a BH in the IOThread, so the requests are the IOThread's. */
static void submit_bh(void *opaque)
{
    User *u = opaque;

    batch_submit(u->bs, u->batch);
    dp_mutex_lock(&u->lock);
    u->submitted = true;
    dp_cond_signal(&u->cond);
    dp_mutex_unlock(&u->lock);
}

static void test_drain_from_another_thread(void)
{
    IOThread *io = iothread_new("drainer", NULL, &error_abort);
    AioContext *ctx = iothread_get_aio_context(io);
    BlockDriverState *bs = test_open("driver=throttle,throttle-group=tgd,"
                                     "file.driver=memory,file.size=1M");
    Batch b = {0};
    User u = {.bs = bs, .batch = &b};

    g_assert_true(bdrv_set_aio_context(bs, ctx, &error_abort));
    /* Make the requests wait in the throttle queue so some are surely in
     * flight when the main thread drains. */
    dp_mutex_init(&u.lock);
    dp_cond_init(&u.cond);
    aio_bh_schedule_oneshot(ctx, submit_bh, &u);
    dp_mutex_lock(&u.lock);
    while (!u.submitted) {
        dp_cond_wait(&u.cond, &u.lock);
    }
    dp_mutex_unlock(&u.lock);
    g_assert_cmpuint(bdrv_get_in_flight(bs), >, 0);
    bdrv_drain(bs);
    g_assert_cmpuint(bdrv_get_in_flight(bs), ==, 0);
    aio_context_acquire(ctx);
    g_assert_cmpint(b.done, ==, NREQ);
    aio_context_release(ctx);
    g_assert_true(
        bdrv_set_aio_context(bs, main_loop_get_aio_context(), &error_abort));
    batch_destroy(&b);
    bdrv_unref(bs);
    iothread_destroy(io);
    dp_cond_destroy(&u.cond);
    dp_mutex_destroy(&u.lock);
}

/*
 * bdrv_drain() from an IOThread on a node of another IOThread: the caller
 * may not take the node's context while it runs its own (aio.h), so the
 * node's thread drains and the caller keeps running its loop meanwhile.
 * Each IOThread drains the other's node at the same time: both finish.
 */
typedef struct CrossDrain {
    BlockDriverState *bs; /* the other IOThread's node */
    Batch *batch;         /* its requests, completed in its thread */
    AioContext *own;
    unsigned in_flight_after;
    bool done; /* set last, under the main test's eyes: see wait_cross */
} CrossDrain;

static void cross_drain_bh(void *opaque)
{
    CrossDrain *cd = opaque;

    g_assert_true(aio_get_current_context() == cd->own);
    bdrv_drain(cd->bs);
    cd->in_flight_after = bdrv_get_in_flight(cd->bs);
    dp_atomic_store_release(&cd->done, true);
}

static void cross_submit_bh(void *opaque)
{
    CrossDrain *cd = opaque;

    batch_submit(cd->bs, cd->batch);
}

static void test_drain_from_another_iothread(void)
{
    IOThread *io[2] = {iothread_new("x0", NULL, &error_abort),
                       iothread_new("x1", NULL, &error_abort)};
    BlockDriverState *bs[2];
    Batch b[2] = {0};
    CrossDrain cd[2];
    int i;

    for (i = 0; i < 2; i++) {
        g_autoptr(GHashTable) tg = test_opts("limits.iops-total=1");
        g_autofree char *id = g_strdup_printf("tgx%d", i);
        g_autofree char *spec = g_strdup_printf(
            "driver=throttle,throttle-group=%s,file.driver=memory,"
            "file.size=1M",
            id);

        object_add("throttle-group", id, tg, &error_abort);
        bs[i] = test_open(spec);
        g_assert_true(bdrv_set_aio_context(
            bs[i], iothread_get_aio_context(io[i]), &error_abort));
    }
    for (i = 0; i < 2; i++) {
        /* IOThread i drains node 1 - i, which has requests of its own
         * thread in flight (queued by the throttle group). */
        cd[i] = (CrossDrain){.bs = bs[1 - i],
                             .batch = &b[1 - i],
                             .own = iothread_get_aio_context(io[i])};
        aio_bh_schedule_oneshot(iothread_get_aio_context(io[1 - i]),
                                cross_submit_bh, &cd[i]);
    }
    for (i = 0; i < 2; i++) {
        aio_bh_schedule_oneshot(cd[i].own, cross_drain_bh, &cd[i]);
    }
    for (i = 0; i < 2; i++) {
        while (!dp_atomic_load_acquire(&cd[i].done)) {
            main_loop_wait(false);
            g_usleep(1000);
        }
        g_assert_cmpuint(cd[i].in_flight_after, ==, 0);
    }
    for (i = 0; i < 2; i++) {
        AioContext *ctx = iothread_get_aio_context(io[i]);

        aio_context_acquire(ctx);
        g_assert_cmpint(b[i].done, ==, NREQ);
        aio_context_release(ctx);
        g_assert_true(bdrv_set_aio_context(bs[i], main_loop_get_aio_context(),
                                           &error_abort));
        batch_destroy(&b[i]);
        bdrv_unref(bs[i]);
    }
    g_assert_true(object_del("tgx0", &error_abort));
    g_assert_true(object_del("tgx1", &error_abort));
    iothread_destroy(io[0]);
    iothread_destroy(io[1]);
}

/* A drained section, unlike a drain, stays open across returns: it cannot
 * be held by another IOThread than the node's, and says so. */
static void test_drained_section_from_another_iothread_aborts(void)
{
    if (g_test_subprocess()) {
        IOThread *a = iothread_new("sa", NULL, &error_abort);
        IOThread *b = iothread_new("sb", NULL, &error_abort);
        BlockDriverState *bs = test_open("driver=memory,size=1M");

        g_assert_true(bdrv_set_aio_context(bs, iothread_get_aio_context(b),
                                           &error_abort));
        aio_bh_schedule_oneshot(iothread_get_aio_context(a),
                                (AioBHFunc *)bdrv_drained_begin, bs);
        for (;;) {
            g_usleep(100000);
        }
    }
    g_test_trap_subprocess(NULL, 30 * 1000000, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*bdrv_drained_begin: node '#block*' belongs to "
                              "another thread's AioContext*");
}

static void test_drain_all_drains_every_node(void)
{
    IOThread *io = iothread_new("drainall", NULL, &error_abort);
    BlockDriverState *a = test_open("driver=memory,size=1M");
    BlockDriverState *b = test_open("driver=memory,size=1M");
    AioContext *ctx_b = iothread_get_aio_context(io);
    Batch ba = {0}, bb = {0};

    g_assert_true(bdrv_set_aio_context(b, ctx_b, &error_abort));
    aio_context_acquire(bdrv_get_aio_context(a));
    batch_submit(a, &ba);
    aio_context_release(bdrv_get_aio_context(a));
    aio_context_acquire(ctx_b);
    batch_submit(b, &bb);
    aio_context_release(ctx_b);
    bdrv_drain_all();
    g_assert_cmpuint(bdrv_get_in_flight(a), ==, 0);
    g_assert_cmpuint(bdrv_get_in_flight(b), ==, 0);
    g_assert_cmpint(ba.done, ==, NREQ);
    aio_context_acquire(ctx_b);
    g_assert_cmpint(bb.done, ==, NREQ);
    aio_context_release(ctx_b);
    g_assert_true(
        bdrv_set_aio_context(b, main_loop_get_aio_context(), &error_abort));
    batch_destroy(&ba);
    batch_destroy(&bb);
    bdrv_unref(a);
    bdrv_unref(b);
    iothread_destroy(io);
}

static void test_unref_drains_first(void)
{
    BlockDriverState *bs = test_open("driver=memory,size=1M");
    Batch b = {0};

    aio_context_acquire(bdrv_get_aio_context(bs));
    batch_submit(bs, &b);
    aio_context_release(bdrv_get_aio_context(bs));
    bdrv_unref(bs);
    g_assert_cmpint(b.done, ==, NREQ);
    batch_destroy(&b);
}

/* As a QMP command would: drain (here through the last unref) from a
 * callback of the main loop's own context, dispatched by GLib. */
static void unref_in_main_loop_bh(void *opaque)
{
    BlockDriverState *bs = opaque;
    Batch b = {0};

    batch_submit(bs, &b);
    bdrv_drain(bs);
    g_assert_cmpint(b.done, ==, NREQ);
    batch_destroy(&b);
    batch_submit(bs, &b);
    bdrv_unref(bs);
    g_assert_cmpint(b.done, ==, 2 * NREQ);
    batch_destroy(&b);
    main_loop_quit();
}

static void test_drain_inside_main_loop_callback(void)
{
    BlockDriverState *bs = test_open("driver=memory,size=1M");

    aio_bh_schedule_oneshot(main_loop_get_aio_context(), unref_in_main_loop_bh,
                            bs);
    main_loop_run();
}

/*
 * Drained sections started in the node's own IOThread while the main loop
 * opens and closes parents on the node: the section reads the graph's
 * edges from the IOThread, the main loop changes them.  Nothing is
 * asserted about timing; ThreadSanitizer (CI) checks the edges are never
 * read while they change, and every section must still end balanced.
 */
typedef struct SectionLoop {
    BlockDriverState *bs;
    bool stop;     /* atomic */
    int sections;  /* atomic */
    bool finished; /* atomic */
} SectionLoop;

static void section_loop_bh(void *opaque)
{
    SectionLoop *l = opaque;

    if (dp_atomic_load_acquire(&l->stop)) {
        dp_atomic_store_release(&l->finished, true);
        return;
    }
    bdrv_drained_begin(l->bs);
    bdrv_drained_end(l->bs);
    dp_atomic_inc_relaxed(&l->sections);
    aio_bh_schedule_oneshot(bdrv_get_aio_context(l->bs), section_loop_bh, l);
}

static void test_sections_in_iothread_while_parents_come_and_go(void)
{
    IOThread *io = iothread_new("graphedges", NULL, &error_abort);
    AioContext *ctx = iothread_get_aio_context(io);
    BlockDriverState *base =
        test_open("driver=memory,node-name=edgebase,size=64k");
    SectionLoop l = {.bs = base};
    int i;

    g_assert_true(bdrv_set_aio_context(base, ctx, &error_abort));
    aio_bh_schedule_oneshot(ctx, section_loop_bh, &l);
    /* At least 5000 parents, and on until the IOThread has run 5000
     * sections alongside (bounded: a stuck IOThread fails below). */
    for (i = 0; i < 5000 ||
                (dp_atomic_load_relaxed(&l.sections) < 5000 && i < 1000000);
         i++) {
        BlockDriverState *raw = test_open("driver=raw,file=edgebase");

        g_assert_true(bdrv_get_aio_context(raw) == ctx);
        bdrv_unref(raw);
    }
    dp_atomic_store_release(&l.stop, true);
    while (!dp_atomic_load_acquire(&l.finished)) {
        g_usleep(1000);
    }
    g_test_message("%d parents opened, %d drained sections in the IOThread", i,
                   l.sections);
    g_assert_cmpint(l.sections, >=, 5000);
    aio_context_acquire(ctx);
    g_assert_false(bdrv_is_drained(base));
    aio_context_release(ctx);
    g_assert_true(
        bdrv_set_aio_context(base, main_loop_get_aio_context(), &error_abort));
    bdrv_unref(base);
    iothread_destroy(io);
}

int main(int argc, char **argv)
{
    g_autoptr(GHashTable) tg = test_opts("limits.iops-total=2");

    test_block_init(&argc, &argv);
    object_add("throttle-group", "tgd", tg, &error_abort);
    g_test_add_func("/block/drain/memory-returns-with-nothing-in-flight",
                    test_drain_memory_returns_with_nothing_in_flight);
    g_test_add_func("/block/drain/raw-counts-child-requests",
                    test_drain_raw_counts_child_requests);
    g_test_add_data_func(
        "/block/drain/file-io_uring-returns-with-nothing-in-flight", "io_uring",
        test_drain_file_returns_with_nothing_in_flight);
    g_test_add_data_func(
        "/block/drain/file-threads-returns-with-nothing-in-flight", "threads",
        test_drain_file_returns_with_nothing_in_flight);
    g_test_add_func("/block/drain/throttled-queue-goes-at-once",
                    test_drain_throttled_queue_goes_at_once);
    g_test_add_func("/block/drain/drained-sections-nest",
                    test_drained_sections_nest);
    g_test_add_func("/block/drain/user-joining-a-section-is-balanced",
                    test_user_joining_a_section_is_balanced);
    g_test_add_func("/block/drain/drained-section-of-child-tells-parent-users",
                    test_drained_section_of_child_tells_parent_users);
    g_test_add_func("/block/drain/from-another-thread",
                    test_drain_from_another_thread);
    g_test_add_func("/block/drain/from-another-iothread",
                    test_drain_from_another_iothread);
    g_test_add_func("/block/drain/drained-section-from-another-iothread-aborts",
                    test_drained_section_from_another_iothread_aborts);
    g_test_add_func("/block/drain/drain-all-drains-every-node",
                    test_drain_all_drains_every_node);
    g_test_add_func("/block/drain/inside-main-loop-callback",
                    test_drain_inside_main_loop_callback);
    g_test_add_func("/block/drain/unref-drains-first", test_unref_drains_first);
    g_test_add_func(
        "/block/drain/sections-in-iothread-while-parents-come-and-go",
        test_sections_in_iothread_while_parents_come_and_go);
    return g_test_run();
}
