/*
 * A multiqueue node under random I/O from three IOThreads at once, checked
 * against a reference model, while the main loop moves its home context
 * and drains it.
 *
 * Each of SLOTS slots owns a region of the disk and a copy of what the
 * region must hold (its model).  A slot runs one request at a time, chosen
 * at random (write, FUA write, read and compare, write-zeroes, flush,
 * block status), from its current worker's IOThread, and every few
 * requests hands itself to another worker (a BH), so data written in one
 * thread is read back in another.  Every callback checks that it runs in
 * the context that submitted the request.  The workers are users of the
 * node: drained sections stop them (the hooks acquire each worker's
 * context from the main loop) and inside a section nothing is in flight.
 * At the end the main loop reads the whole disk and compares it with every
 * slot's model.  Nothing here measures time; the waits count completions.
 *
 * Built a second time with TEST_MQ_RBD (tests/integration/meson.build) as
 * test-rbd-multiqueue, which runs the same test on an rbd node of a real
 * cluster (tests/integration/rbd/rbd_tests.py gives it the image in
 * RBD_MQ_SPEC); there the home moves only between the first worker and
 * the main loop, and the other workers, never home, must have completed
 * rbd requests through their own contexts' completion queues (a request
 * forwarded to the home would complete through the home's).
 */
#include <sys/resource.h>
#include <unistd.h>

#include "block/block-int.h"
#include "dataplane/iothread.h"
#include "dataplane/object.h"
#include "tests/unit/block-test-util.h"
#include "util/thread.h"

#define WORKERS 3
#define SLOTS 12
#define MAX_LEN (12 * 1024)
#define STEPS 60             /* moves and drains done by the main loop */
#define PROGRESS_PER_STEP 48 /* completions between two steps */
#define HOP_EVERY 5          /* requests before a slot changes worker */

typedef struct Worker Worker;
typedef struct Test Test;

typedef enum SlotOp {
    OP_WRITE,
    OP_WRITE_FUA,
    OP_READ,
    OP_ZEROES,
    OP_FLUSH,
    OP_STATUS,
    OP_COUNT,
} SlotOp;

typedef struct Slot {
    Test *t;
    int index;
    Worker *w; /* owner; changes only through a BH of the new owner */
    int64_t offset;
    uint8_t *model;
    uint8_t *buf;
    IOVector qiov;
    SlotOp op;
    int64_t op_off, op_len; /* relative to the region */
    GRand *rand;
    unsigned ops;
} Slot;

struct Worker {
    Test *t;
    IOThread *thread;
    AioContext *ctx;
    AioBH *kick_bh;    /* resubmits parked slots after a drained section */
    bool quiesced;     /* under ctx (set by the main loop with ctx held) */
    GPtrArray *parked; /* worker's thread only */
};

struct Test {
    BlockDriverState *bs;
    int64_t region;
    Worker workers[WORKERS];
    Slot slots[SLOTS];
    bool stopping;           /* atomic */
    unsigned stopped;        /* atomic: slots that saw stopping */
    uint64_t completions;    /* atomic */
    uint64_t submissions;    /* atomic */
    unsigned wrong_thread;   /* atomic */
    unsigned mismatches;     /* atomic */
    unsigned errors;         /* atomic */
    unsigned drained_begins; /* main loop */
};

static void slot_next(Slot *s);

static void slot_adopt_bh(void *opaque)
{
    slot_next(opaque);
}

static void slot_done(void *opaque, int ret)
{
    Slot *s = opaque;
    Test *t = s->t;
    int64_t len = s->op_len;

    /* In the submitter's context: run by its IOThread, or by the main
     * loop while it holds that context (a drain of the node homed there). */
    if (!aio_context_in_current_thread(s->w->ctx)) {
        dp_atomic_fetch_add_seq_cst(&t->wrong_thread, 1);
    }
    if (ret < 0) {
        g_printerr("slot %d: op %d at +%" G_GINT64_FORMAT
                   " len %" G_GINT64_FORMAT ": %s\n",
                   s->index, s->op, s->op_off, len, g_strerror(-ret));
        dp_atomic_fetch_add_seq_cst(&t->errors, 1);
    } else if (s->op == OP_READ &&
               memcmp(s->buf, s->model + s->op_off, len) != 0) {
        g_printerr("slot %d: read at +%" G_GINT64_FORMAT " differs\n", s->index,
                   s->op_off);
        dp_atomic_fetch_add_seq_cst(&t->mismatches, 1);
    }
    iov_destroy(&s->qiov);
    dp_atomic_fetch_add_seq_cst(&t->completions, 1);

    if (++s->ops % HOP_EVERY == 0) {
        Worker *to = &t->workers[g_rand_int_range(s->rand, 0, WORKERS)];

        s->w = to;
        /* The BH's scheduling publishes the slot to the new owner. */
        aio_bh_schedule_oneshot(to->ctx, slot_adopt_bh, s);
        return;
    }
    slot_next(s);
}

static void slot_status_done(void *opaque, int ret, int64_t pnum,
                             unsigned status)
{
    Slot *s = opaque;

    if (ret == 0 && (pnum <= 0 || pnum > s->op_len)) {
        dp_atomic_fetch_add_seq_cst(&s->t->mismatches, 1);
    }
    slot_done(opaque, ret);
}

/* In s->w's thread: the slot's next request, unless it must stop. */
static void slot_next(Slot *s)
{
    Test *t = s->t;
    BlockDriverState *bs = t->bs;
    int64_t abs;
    int64_t i;

    if (dp_atomic_load_seq_cst(&t->stopping)) {
        dp_atomic_fetch_add_seq_cst(&t->stopped, 1);
        return;
    }
    if (s->w->quiesced) {
        g_ptr_array_add(s->w->parked, s);
        return;
    }
    s->op = g_rand_int_range(s->rand, 0, OP_COUNT);
    s->op_off = g_rand_int_range(s->rand, 0, t->region);
    s->op_len =
        g_rand_int_range(s->rand, 1, MIN(MAX_LEN, t->region - s->op_off) + 1);
    abs = s->offset + s->op_off;
    iov_init(&s->qiov, 1);
    dp_atomic_fetch_add_seq_cst(&t->submissions, 1);
    switch (s->op) {
    case OP_WRITE:
    case OP_WRITE_FUA:
        for (i = 0; i < s->op_len; i++) {
            s->buf[i] = (uint8_t)g_rand_int(s->rand);
        }
        memcpy(s->model + s->op_off, s->buf, s->op_len);
        iov_add(&s->qiov, s->buf, s->op_len);
        bdrv_aio_pwritev(bs, abs, &s->qiov,
                         s->op == OP_WRITE_FUA ? BDRV_REQ_FUA : 0, slot_done,
                         s);
        break;
    case OP_READ:
        iov_add(&s->qiov, s->buf, s->op_len);
        bdrv_aio_preadv(bs, abs, &s->qiov, 0, slot_done, s);
        break;
    case OP_ZEROES:
        memset(s->model + s->op_off, 0, s->op_len);
        bdrv_aio_pwrite_zeroes(bs, abs, s->op_len,
                               g_rand_boolean(s->rand) ? BDRV_REQ_MAY_UNMAP : 0,
                               slot_done, s);
        break;
    case OP_FLUSH:
        bdrv_aio_flush(bs, slot_done, s);
        break;
    case OP_STATUS:
        bdrv_aio_block_status(bs, abs, s->op_len, slot_status_done, s);
        break;
    default:
        g_assert_not_reached();
    }
}

static void worker_kick_bh(void *opaque)
{
    Worker *w = opaque;
    g_autoptr(GPtrArray) go = NULL;
    guint i;

    if (w->quiesced) {
        return;
    }
    go = w->parked;
    w->parked = g_ptr_array_new();
    for (i = 0; i < go->len; i++) {
        slot_next(g_ptr_array_index(go, i));
    }
}

/* Drained-section hooks: main loop, node's home context held; each
 * worker's context is taken in turn (the main loop may hold several), so
 * no worker is inside a callback while its flag changes. */
static void test_drained_begin(void *opaque)
{
    Test *t = opaque;
    int i;

    g_assert_true(main_loop_is_main_thread());
    t->drained_begins++;
    for (i = 0; i < WORKERS; i++) {
        aio_context_acquire(t->workers[i].ctx);
        t->workers[i].quiesced = true;
        aio_context_release(t->workers[i].ctx);
    }
}

static void test_drained_end(void *opaque)
{
    Test *t = opaque;
    int i;

    for (i = 0; i < WORKERS; i++) {
        aio_context_acquire(t->workers[i].ctx);
        t->workers[i].quiesced = false;
        aio_bh_schedule(t->workers[i].kick_bh);
        aio_context_release(t->workers[i].ctx);
    }
}

static const BlockUserOps test_user_ops = {
    .drained_begin = test_drained_begin,
    .drained_end = test_drained_end,
};

/* Waits (counting, not timing) until n more requests have completed. */
static void wait_progress(Test *t, uint64_t n)
{
    uint64_t target = dp_atomic_load_seq_cst(&t->completions) + n;
    int i;

    for (i = 0; i < 2000000 && dp_atomic_load_seq_cst(&t->completions) < target;
         i++) {
        /* Main loop work (a BH of a forwarded completion, say). */
        aio_poll(main_loop_get_aio_context(), false);
        g_usleep(50);
    }
    g_assert_cmpuint(dp_atomic_load_seq_cst(&t->completions), >=, target);
}

static unsigned graph_in_flight(BlockDriverState *bs)
{
    unsigned n = 0;

    for (; bs; bs = bdrv_get_file_child(bs)) {
        n += bdrv_get_in_flight(bs);
    }
    return n;
}

/* Contexts the home moves between: workers[0..homes-1] and the main loop.
 * If local_count is given, each worker that is never home must have
 * counted local completions (local_count(ctx) grew). */
static void run_multiqueue_homes(const char *spec, int64_t region, int homes,
                                 uint64_t (*local_count)(AioContext *ctx))
{
    uint64_t local_before[WORKERS] = {0};
    Test *t = g_new0(Test, 1);
    AioContext *main_ctx = main_loop_get_aio_context();
    g_autofree uint8_t *disk = NULL;
    int i, step;

    t->region = region;
    t->bs = test_open(spec);
    g_assert_cmpint(bdrv_getlength(t->bs), >=, SLOTS * region);
    for (i = 0; i < WORKERS; i++) {
        g_autofree char *id = g_strdup_printf("mq%d", i);
        Worker *w = &t->workers[i];

        w->t = t;
        w->thread = iothread_new(id, NULL, &error_abort);
        w->ctx = iothread_get_aio_context(w->thread);
        w->parked = g_ptr_array_new();
        aio_context_acquire(w->ctx);
        w->kick_bh = aio_bh_new(w->ctx, worker_kick_bh, w);
        if (local_count) {
            local_before[i] = local_count(w->ctx);
        }
        aio_context_release(w->ctx);
    }

    /* Start from a known disk: zeroes everywhere. */
    g_assert_cmpint(test_zeroes(t->bs, 0, SLOTS * region, 0), ==, 0);
    g_assert_true(bdrv_set_aio_context(t->bs, t->workers[0].ctx, &error_abort));
    aio_context_acquire(t->workers[0].ctx);
    bdrv_add_aio_context_notifier(t->bs, &test_user_ops, t);
    aio_context_release(t->workers[0].ctx);

    for (i = 0; i < SLOTS; i++) {
        Slot *s = &t->slots[i];

        s->t = t;
        s->index = i;
        s->offset = i * region;
        s->model = g_malloc0(region);
        s->buf = g_malloc(MAX_LEN);
        s->rand = g_rand_new_with_seed(0x5eed + i);
        s->w = &t->workers[i % WORKERS];
        aio_bh_schedule_oneshot(s->w->ctx, slot_adopt_bh, s);
    }

    for (step = 0; step < STEPS; step++) {
        wait_progress(t, PROGRESS_PER_STEP);
        switch (step % 4) {
        case 0: {
            /* Move the home context: an IOThread or the main loop. */
            int to = (step / 4) % (homes + 1);
            AioContext *ctx = to == homes ? main_ctx : t->workers[to].ctx;

            g_assert_true(bdrv_set_aio_context(t->bs, ctx, &error_abort));
            g_assert_true(bdrv_get_aio_context(t->bs) == ctx);
            break;
        }
        case 1:
            bdrv_drain(t->bs);
            break;
        case 2: {
            /* Inside a drained section nothing is in flight, every
             * callback has returned, in whichever thread it ran, and no
             * user submits. */
            uint64_t before;

            bdrv_drained_begin(t->bs);
            g_assert_cmpuint(graph_in_flight(t->bs), ==, 0);
            g_assert_cmpuint(dp_atomic_load_seq_cst(&t->completions), ==,
                             dp_atomic_load_seq_cst(&t->submissions));
            before = dp_atomic_load_seq_cst(&t->submissions);
            g_usleep(1000);
            g_assert_cmpuint(dp_atomic_load_seq_cst(&t->submissions), ==,
                             before);
            g_assert_cmpuint(graph_in_flight(t->bs), ==, 0);
            bdrv_drained_end(t->bs);
            break;
        }
        case 3:
            bdrv_drain_all();
            break;
        }
    }

    /* Stop every slot, then compare the disk with the models. */
    dp_atomic_store_seq_cst(&t->stopping, true);
    for (i = 0; i < 2000000 && dp_atomic_load_seq_cst(&t->stopped) < SLOTS;
         i++) {
        aio_poll(main_ctx, false);
        g_usleep(50);
    }
    g_assert_cmpuint(dp_atomic_load_seq_cst(&t->stopped), ==, SLOTS);
    bdrv_drain(t->bs);
    g_assert_cmpuint(graph_in_flight(t->bs), ==, 0);

    disk = g_malloc(SLOTS * region);
    g_assert_cmpint(test_pread(t->bs, 0, disk, SLOTS * region), ==, 0);
    for (i = 0; i < SLOTS; i++) {
        g_assert_cmpmem(disk + i * region, region, t->slots[i].model, region);
    }
    g_assert_cmpuint(t->wrong_thread, ==, 0);
    g_assert_cmpuint(t->mismatches, ==, 0);
    g_assert_cmpuint(t->errors, ==, 0);
    g_assert_cmpuint(t->drained_begins, >=, STEPS / 2);
    for (i = 0; local_count && i < WORKERS; i++) {
        Worker *w = &t->workers[i];
        uint64_t n;

        aio_context_acquire(w->ctx);
        n = local_count(w->ctx) - local_before[i];
        aio_context_release(w->ctx);
        g_test_message("worker %d (%s): %" G_GUINT64_FORMAT
                       " completions in its own context",
                       i, i < homes ? "home at times" : "never home", n);
        if (i >= homes) {
            g_assert_cmpuint(n, >, 0);
        }
    }

    aio_context_acquire(bdrv_get_aio_context(t->bs));
    bdrv_remove_aio_context_notifier(t->bs, &test_user_ops, t);
    aio_context_release(bdrv_get_aio_context(t->bs));
    g_assert_true(bdrv_set_aio_context(t->bs, main_ctx, &error_abort));
    bdrv_unref(t->bs);
    for (i = 0; i < WORKERS; i++) {
        Worker *w = &t->workers[i];

        aio_context_acquire(w->ctx);
        aio_bh_delete(w->kick_bh);
        aio_context_release(w->ctx);
        iothread_destroy(w->thread);
        g_ptr_array_free(w->parked, true);
    }
    for (i = 0; i < SLOTS; i++) {
        g_free(t->slots[i].model);
        g_free(t->slots[i].buf);
        g_rand_free(t->slots[i].rand);
    }
    g_free(t);
}

#ifndef TEST_MQ_RBD
static void run_multiqueue(const char *spec, int64_t region)
{
    run_multiqueue_homes(spec, region, WORKERS, NULL);
}

static void test_mq_memory(void)
{
    run_multiqueue("driver=memory,size=1M", 64 * 1024);
}

/* throttle is not multiqueue-safe: every request of the workers that are
 * not the home context is forwarded there and completed back. */
static void test_mq_forwarded_throttle(void)
{
    run_multiqueue("driver=throttle,throttle-group=tgmq,"
                   "file.driver=memory,file.size=1M",
                   64 * 1024);
}

static void run_file(const char *dir, const char *extra, int64_t region)
{
    /* A whole number of 4 KiB blocks, for O_DIRECT. */
    g_autofree char *file =
        test_scratch_file(dir, (SLOTS * region + 4095) / 4096 * 4096);
    g_autofree char *spec = g_strdup_printf(
        "driver=raw,file.driver=file,file.filename=%s%s", file, extra);

    run_multiqueue(spec, region);
    unlink(file);
}

/* tmpfs: small transfers copied inline in each submitting thread. */
static void test_mq_file_tmpfs(void)
{
    run_file("/dev/shm", "", 64 * 1024);
}

/* A disk file system: page-cache hits inline (RWF_NOWAIT), the rest on
 * each context's own ring. */
static void test_mq_file_disk(void)
{
    run_file("/var/tmp", ",file.discard=unmap", 64 * 1024);
}

static void test_mq_file_threads(void)
{
    run_file("/var/tmp", ",file.aio=threads", 64 * 1024);
}

/* O_DIRECT with regions that do not end on a block boundary: neighbouring
 * slots' read-modify-writes overlap, so requests of different contexts
 * wait for each other and are started again in their own context. */
static void test_mq_file_direct_shared_blocks(void)
{
    run_file("/var/tmp", ",file.cache.direct=on", 64 * 1024 + 1536);
}

static void *submit_from_bare_thread(void *opaque)
{
    static char buf[512];
    static IOVector qiov;

    iov_init(&qiov, 1);
    iov_add(&qiov, buf, sizeof(buf));
    bdrv_aio_preadv(opaque, 0, &qiov, 0, sync_cb, NULL);
    return NULL;
}

/* A thread that runs no context and holds none may not submit: the
 * callback would have no context to run in. */
static void test_mq_submit_needs_a_context(void)
{
    if (g_test_subprocess()) {
        BlockDriverState *bs = test_open("driver=null-co,size=1M");
        DpThread t;

        dp_thread_create(&t, "bare", submit_from_bare_thread, bs);
        dp_thread_join(&t);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*neither runs an AioContext nor holds*");
}

int main(int argc, char **argv)
{
    g_autoptr(GHashTable) tg = test_opts("limits.iops-total=100000000");

    test_block_init(&argc, &argv);
    object_add("throttle-group", "tgmq", tg, &error_abort);
    g_test_add_func("/block/multiqueue/submit-needs-a-context",
                    test_mq_submit_needs_a_context);
    g_test_add_func("/block/multiqueue/memory", test_mq_memory);
    g_test_add_func("/block/multiqueue/forwarded-throttle",
                    test_mq_forwarded_throttle);
    g_test_add_func("/block/multiqueue/file-tmpfs", test_mq_file_tmpfs);
    g_test_add_func("/block/multiqueue/file-disk", test_mq_file_disk);
    g_test_add_func("/block/multiqueue/file-threads", test_mq_file_threads);
    g_test_add_func("/block/multiqueue/file-direct-shared-blocks",
                    test_mq_file_direct_shared_blocks);
    return g_test_run();
}
#else
/* rbd: the home moves between worker 0 and the main loop; workers 1 and 2
 * submit from contexts that are never home. */
static void test_mq_rbd(void)
{
    const char *spec = g_getenv("RBD_MQ_SPEC");

    if (!spec) {
        g_error("RBD_MQ_SPEC is not set: run this through "
                "tests/integration/rbd/rbd_tests.py (it starts the cluster)");
    }
    run_multiqueue_homes(spec, 64 * 1024, 1, bdrv_rbd_context_completions);
    bdrv_wait_background(); /* rbd_close on its threadlet */
}

typedef struct NoFd {
    BlockDriverState *bs;
    AioContext *ctx;
    uint8_t out[8192];
    uint8_t in[8192];
    IOVector wq, rq;
    int wret, rret;
    bool wrong_thread;
    unsigned done; /* atomic: 1 after the write, 2 after the read */
} NoFd;

static void nofd_read_done(void *opaque, int ret)
{
    NoFd *n = opaque;

    n->wrong_thread |= !aio_context_in_current_thread(n->ctx);
    n->rret = ret;
    dp_atomic_store_seq_cst(&n->done, 2);
}

static void nofd_write_done(void *opaque, int ret)
{
    NoFd *n = opaque;

    n->wrong_thread |= !aio_context_in_current_thread(n->ctx);
    n->wret = ret;
    dp_atomic_store_seq_cst(&n->done, 1);
    bdrv_aio_preadv(n->bs, 64 * 1024, &n->rq, 0, nofd_read_done, n);
}

static void nofd_start_bh(void *opaque)
{
    NoFd *n = opaque;

    bdrv_aio_pwritev(n->bs, 64 * 1024, &n->wq, 0, nofd_write_done, n);
}

/*
 * An IOThread that cannot get an eventfd for its completion queue (out of
 * file descriptors when it submits its first rbd request) still completes
 * rbd requests, in its own thread, through aio_defer: its queue counts
 * none of them.  The connection to the cluster and the OSD session exist
 * before the limit is lowered (a request from the main loop made them).
 */
static void test_mq_rbd_no_eventfd(void)
{
    const char *spec = g_getenv("RBD_MQ_SPEC");
    NoFd *n = g_new0(NoFd, 1);
    IOThread *thread;
    struct rlimit old, low;
    uint8_t warm[4096] = {0};
    int fd, i;

    g_assert_nonnull(spec);
    n->bs = test_open(spec);
    g_assert_cmpint(test_pwrite(n->bs, 0, warm, sizeof(warm), 0), ==, 0);
    thread = iothread_new("nofd", NULL, &error_abort);
    n->ctx = iothread_get_aio_context(thread);
    for (i = 0; i < (int)sizeof(n->out); i++) {
        n->out[i] = (uint8_t)(i * 7 + 3);
    }
    iov_init(&n->wq, 1);
    iov_add(&n->wq, n->out, sizeof(n->out));
    iov_init(&n->rq, 1);
    iov_add(&n->rq, n->in, sizeof(n->in));

    /* The lowest free descriptor number becomes the limit: no new fd. */
    fd = open("/dev/null", O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &old), ==, 0);
    low = old;
    low.rlim_cur = fd;
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &low), ==, 0);
    g_assert_cmpint(open("/dev/null", O_RDONLY), ==, -1);

    aio_bh_schedule_oneshot(n->ctx, nofd_start_bh, n);
    for (i = 0; i < 2000000 && dp_atomic_load_seq_cst(&n->done) < 2; i++) {
        g_usleep(50);
    }
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &old), ==, 0);
    g_assert_cmpuint(dp_atomic_load_seq_cst(&n->done), ==, 2);
    g_assert_cmpint(n->wret, ==, 0);
    g_assert_cmpint(n->rret, ==, 0);
    g_assert_false(n->wrong_thread);
    g_assert_cmpmem(n->in, sizeof(n->in), n->out, sizeof(n->out));
    aio_context_acquire(n->ctx);
    g_assert_cmpuint(bdrv_rbd_context_completions(n->ctx), ==, 0);
    aio_context_release(n->ctx);

    iov_destroy(&n->wq);
    iov_destroy(&n->rq);
    bdrv_drain(n->bs);
    bdrv_unref(n->bs);
    iothread_destroy(thread);
    bdrv_wait_background();
    g_free(n);
}

int main(int argc, char **argv)
{
    test_block_init(&argc, &argv);
    g_test_add_func("/block/multiqueue/rbd", test_mq_rbd);
    g_test_add_func("/block/multiqueue/rbd-no-eventfd", test_mq_rbd_no_eventfd);
    return g_test_run();
}
#endif
