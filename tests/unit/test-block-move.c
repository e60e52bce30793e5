/*
 * Moving a node between IOThreads while a user keeps 32 requests in flight
 * on it: nothing is lost, repeated or corrupted, every completion runs in
 * the node's current IOThread, and the user hears of every move.
 *
 * The user behaves like an export: 32 slots, each owning a region of the
 * disk, each looping write(pattern) -> read -> verify -> next pattern from
 * its completion callbacks, i.e. in whichever IOThread runs the node.  Its
 * BlockUserOps stop it in drained sections and move its BH with the node.
 */
#include <unistd.h>

#include "dataplane/iothread.h"
#include "dataplane/object.h"
#include "tests/unit/block-test-util.h"
#include "util/thread.h"

#define SLOTS 32
#define SLOT_REGION (64 * 1024)
#define REQ_LEN (16 * 1024)
#define MOVES 1000
/* The variants of a case that MOVES already covers: fewer moves keep the
 * suite's time under ThreadSanitizer within its timeout. */
#define VARIANT_MOVES 250
#define PROGRESS_PER_MOVE 32 /* completions between two moves */

typedef enum SlotState { SLOT_IDLE, SLOT_WRITING, SLOT_READING } SlotState;

typedef struct Client Client;

typedef struct Slot {
    Client *c;
    int index;
    SlotState state;
    uint32_t gen;
    int64_t offset;
    uint8_t *wbuf;
    uint8_t *rbuf;
    IOVector qiov;
} Slot;

struct Client {
    BlockDriverState *bs;
    IOThread *threads[2];
    AioContext *ctx; /* where the node is, as the hooks told us */
    AioBH *kick_bh;  /* resubmits idle slots; lives in ctx */
    bool quiesced;
    Slot slots[SLOTS];
    int in_flight;

    /* Counters (read by the main thread under `lock`). */
    DpMutex lock;
    DpCond progress;
    uint64_t completions;
    uint64_t submissions;
    int detaches, attaches, drained_begins, drained_ends;
};

static void fill_pattern(uint8_t *buf, int slot, uint32_t gen)
{
    int i;

    for (i = 0; i < REQ_LEN; i += 4) {
        uint32_t v = (uint32_t)slot << 24 ^ gen ^ (uint32_t)i;

        memcpy(buf + i, &v, 4);
    }
}

static pid_t thread_of(Client *c, AioContext *ctx)
{
    int i;

    for (i = 0; i < 2; i++) {
        if (iothread_get_aio_context(c->threads[i]) == ctx) {
            return iothread_get_thread_id(c->threads[i]);
        }
    }
    g_assert_not_reached();
}

static void slot_cb(void *opaque, int ret);

static void slot_submit(Slot *s)
{
    Client *c = s->c;

    iov_reset(&s->qiov);
    if (s->state == SLOT_IDLE || s->state == SLOT_READING) {
        /* Next generation: write a new pattern at a new place. */
        s->gen++;
        s->offset = (int64_t)s->index * SLOT_REGION +
                    (s->gen % (SLOT_REGION / REQ_LEN)) * REQ_LEN;
        fill_pattern(s->wbuf, s->index, s->gen);
        s->state = SLOT_WRITING;
        iov_add(&s->qiov, s->wbuf, REQ_LEN);
        c->in_flight++;
        bdrv_aio_pwritev(c->bs, s->offset, &s->qiov, 0, slot_cb, s);
    } else {
        s->state = SLOT_READING;
        memset(s->rbuf, 0, REQ_LEN);
        iov_add(&s->qiov, s->rbuf, REQ_LEN);
        c->in_flight++;
        bdrv_aio_preadv(c->bs, s->offset, &s->qiov, 0, slot_cb, s);
    }
    dp_mutex_lock(&c->lock);
    c->submissions++;
    dp_mutex_unlock(&c->lock);
}

static void slot_cb(void *opaque, int ret)
{
    Slot *s = opaque;
    Client *c = s->c;

    g_assert_cmpint(ret, ==, 0);
    /* In the node's context: in its IOThread, or in the main loop thread
     * that holds the context to drain it for a move. */
    g_assert_true(bdrv_get_aio_context(c->bs) == c->ctx);
    if (dp_thread_get_tid() != thread_of(c, c->ctx)) {
        g_assert_true(main_loop_is_main_thread() && c->quiesced);
    }
    /* A repeated completion would find the slot idle. */
    g_assert_true(s->state == SLOT_WRITING || s->state == SLOT_READING);
    c->in_flight--;
    if (s->state == SLOT_READING) {
        uint8_t *expect = g_malloc(REQ_LEN);

        fill_pattern(expect, s->index, s->gen);
        g_assert_true(memcmp(expect, s->rbuf, REQ_LEN) == 0);
        g_free(expect);
    }
    dp_mutex_lock(&c->lock);
    c->completions++;
    dp_cond_broadcast(&c->progress);
    dp_mutex_unlock(&c->lock);

    if (c->quiesced) {
        /* Remember where we are: the kick resumes with the next step. */
        s->state = s->state == SLOT_WRITING ? SLOT_WRITING + 100 : SLOT_IDLE;
        return;
    }
    slot_submit(s);
}

/* Resubmits every slot that stopped during a drained section. */
static void kick_bh_cb(void *opaque)
{
    Client *c = opaque;
    int i;

    if (c->quiesced) {
        return;
    }
    for (i = 0; i < SLOTS; i++) {
        Slot *s = &c->slots[i];

        if (s->state == SLOT_WRITING + 100) {
            s->state = SLOT_WRITING; /* written: read it back next */
            slot_submit(s);
        } else if (s->state == SLOT_IDLE) {
            slot_submit(s);
        }
    }
}

static void client_drained_begin(void *opaque)
{
    Client *c = opaque;

    c->quiesced = true;
    c->drained_begins++;
}

static void client_drained_end(void *opaque)
{
    Client *c = opaque;

    c->quiesced = false;
    c->drained_ends++;
    aio_bh_schedule(c->kick_bh);
}

static void client_detach(void *opaque)
{
    Client *c = opaque;

    /* Nothing of ours is in flight: drain ran first. */
    g_assert_cmpint(c->in_flight, ==, 0);
    aio_bh_delete(c->kick_bh);
    c->kick_bh = NULL;
    c->ctx = NULL;
    c->detaches++;
}

static void client_attach(AioContext *new_ctx, void *opaque)
{
    Client *c = opaque;

    c->ctx = new_ctx;
    c->kick_bh = aio_bh_new(new_ctx, kick_bh_cb, c);
    c->attaches++;
}

static const BlockUserOps client_ops = {
    .drained_begin = client_drained_begin,
    .drained_end = client_drained_end,
    .detach_aio_context = client_detach,
    .attach_aio_context = client_attach,
};

/* Waits (main thread) until the client completed `target` requests. */
static void wait_completions(Client *c, uint64_t target)
{
    int64_t deadline =
        g_get_monotonic_time() * 1000 + 60 * G_GINT64_CONSTANT(1000000000);

    dp_mutex_lock(&c->lock);
    while (c->completions < target) {
        /* The deadline only turns a hang into a failure. */
        g_assert_true(dp_cond_timedwait_ns(&c->progress, &c->lock, deadline));
    }
    dp_mutex_unlock(&c->lock);
}

/* backend: the fd-monitoring backend of the two IOThreads' contexts. */
static void run_moves_on(const char *spec, int moves, AioBackend backend)
{
    IOThreadProps props;
    Client *c = g_new0(Client, 1);
    AioContext *main_ctx = main_loop_get_aio_context();
    uint64_t target = 0;
    int i;

    dp_mutex_init(&c->lock);
    dp_cond_init(&c->progress);
    iothread_props_init(&props);
    props.backend = backend;
    c->threads[0] = iothread_new("move0", &props, &error_abort);
    c->threads[1] = iothread_new("move1", &props, &error_abort);
    c->bs = test_open(spec);
    c->ctx = main_ctx;
    for (i = 0; i < SLOTS; i++) {
        c->slots[i] = (Slot){.c = c, .index = i};
        c->slots[i].wbuf = g_malloc(REQ_LEN);
        c->slots[i].rbuf = g_malloc(REQ_LEN);
        iov_init(&c->slots[i].qiov, 1);
    }
    aio_context_acquire(main_ctx);
    c->kick_bh = aio_bh_new(main_ctx, kick_bh_cb, c);
    bdrv_add_aio_context_notifier(c->bs, &client_ops, c);
    aio_context_release(main_ctx);

    /* The first move starts the I/O in move0 (drained_end kicks). */
    for (i = 0; i < moves; i++) {
        AioContext *to = iothread_get_aio_context(c->threads[i % 2]);

        g_assert_true(bdrv_set_aio_context(c->bs, to, &error_abort));
        g_assert_true(bdrv_get_aio_context(c->bs) == to);
        /* Let it run for a while in its new home before moving on. */
        target += PROGRESS_PER_MOVE;
        wait_completions(c, target);
    }

    /* Stop, and check that every request submitted completed once. */
    bdrv_drained_begin(c->bs);
    g_assert_cmpuint(bdrv_get_in_flight(c->bs), ==, 0);
    g_assert_cmpint(c->in_flight, ==, 0);
    dp_mutex_lock(&c->lock);
    g_assert_cmpuint(c->completions, ==, c->submissions);
    dp_mutex_unlock(&c->lock);
    g_assert_cmpint(c->attaches, ==, moves);
    g_assert_cmpint(c->detaches, ==, moves);
    /* One section per move, plus ours. */
    g_assert_cmpint(c->drained_begins, ==, moves + 1);
    g_assert_cmpint(c->drained_ends, ==, moves);

    aio_context_acquire(c->ctx);
    bdrv_remove_aio_context_notifier(c->bs, &client_ops, c);
    aio_bh_delete(c->kick_bh);
    aio_context_release(c->ctx);
    bdrv_drained_end(c->bs);
    g_assert_cmpint(c->drained_ends, ==, moves); /* no longer registered */

    /* Back home and closed from the main loop. */
    g_assert_true(bdrv_set_aio_context(c->bs, main_ctx, &error_abort));
    bdrv_unref(c->bs);
    iothread_destroy(c->threads[0]);
    iothread_destroy(c->threads[1]);
    for (i = 0; i < SLOTS; i++) {
        g_free(c->slots[i].wbuf);
        g_free(c->slots[i].rbuf);
        iov_destroy(&c->slots[i].qiov);
    }
    dp_cond_destroy(&c->progress);
    dp_mutex_destroy(&c->lock);
    g_free(c);
}

static void run_moves(const char *spec, int moves)
{
    run_moves_on(spec, moves, AIO_BACKEND_EPOLL);
}

static void test_move_memory_under_io(void)
{
    run_moves("driver=memory,size=2M", MOVES);
}

static void test_move_throttle_under_io(void)
{
    run_moves("driver=throttle,throttle-group=tgmove,"
              "file.driver=memory,file.size=2M",
              VARIANT_MOVES);
}

static void test_move_file(const char *aio, AioBackend backend, int moves)
{
    g_autofree char *file = test_scratch_file("/var/tmp", SLOTS * SLOT_REGION);
    g_autofree char *spec = g_strdup_printf("driver=raw,file.driver=file,"
                                            "file.filename=%s,file.aio=%s",
                                            file, aio);

    run_moves_on(spec, moves, backend);
    unlink(file);
}

static void test_move_file_io_uring_under_io(void)
{
    test_move_file("io_uring", AIO_BACKEND_EPOLL, MOVES);
}

/* The node's ring eventfd watched by io_uring-based event loops. */
static void test_move_file_io_uring_between_io_uring_loops(void)
{
    test_move_file("io_uring", AIO_BACKEND_IO_URING, VARIANT_MOVES);
}

static void test_move_file_threads_under_io(void)
{
    test_move_file("threads", AIO_BACKEND_EPOLL, MOVES);
}

/* A qcow2 image over a qcow2 backing file (named in its header): the
 * chain moves as one, allocating writes and reads through to the backing
 * file continue across moves. */
static void test_move_qcow2_chain_under_io(void)
{
    g_autofree char *base = test_qcow2_scratch(16, SLOTS * SLOT_REGION, NULL);
    g_autofree char *top = test_qcow2_scratch(16, SLOTS * SLOT_REGION, base);
    g_autofree char *spec =
        g_strdup_printf("driver=qcow2,file.driver=file,file.filename=%s", top);

    run_moves(spec, VARIANT_MOVES);
    unlink(top);
    unlink(base);
}

/* Moving one parent moves the child and the child's other parents. */
static void test_move_takes_the_connected_graph(void)
{
    IOThread *io = iothread_new("graph", NULL, &error_abort);
    AioContext *ctx = iothread_get_aio_context(io);
    AioContext *main_ctx = main_loop_get_aio_context();
    BlockDriverState *base = test_open("driver=memory,node-name=gbase,"
                                       "size=1M");
    BlockDriverState *p1 = test_open("driver=raw,file=gbase,size=512k");
    BlockDriverState *p2 = test_open("driver=raw,file=gbase,offset=512k");
    BlockDriverState *other = test_open("driver=memory,size=1M");
    char buf[512] = {0};
    SyncReq r = {0};
    IOVector v;

    g_assert_true(bdrv_set_aio_context(p1, ctx, &error_abort));
    g_assert_true(bdrv_get_aio_context(base) == ctx);
    g_assert_true(bdrv_get_aio_context(p2) == ctx);
    g_assert_true(bdrv_get_aio_context(other) == main_ctx);

    /* I/O on the moved graph completes in the IOThread. */
    iov_init(&v, 1);
    iov_add(&v, buf, sizeof(buf));
    aio_context_acquire(ctx);
    bdrv_aio_pwritev(p2, 0, &v, 0, sync_cb, &r);
    g_assert_false(r.done);
    aio_context_release(ctx);
    g_assert_cmpint(sync_wait(p2, &r), ==, 0);
    iov_destroy(&v);

    g_assert_true(bdrv_set_aio_context(base, main_ctx, &error_abort));
    g_assert_true(bdrv_get_aio_context(p1) == main_ctx);
    g_assert_true(bdrv_get_aio_context(p2) == main_ctx);
    bdrv_unref(p1);
    bdrv_unref(p2);
    bdrv_unref(base);
    bdrv_unref(other);
    iothread_destroy(io);
}

int main(int argc, char **argv)
{
    g_autoptr(GHashTable) tg = test_opts("limits.iops-total=100000000");

    test_block_init(&argc, &argv);
    object_add("throttle-group", "tgmove", tg, &error_abort);
    g_test_add_func("/block/move/takes-the-connected-graph",
                    test_move_takes_the_connected_graph);
    g_test_add_func("/block/move/memory-under-io", test_move_memory_under_io);
    g_test_add_func("/block/move/qcow2-chain-under-io",
                    test_move_qcow2_chain_under_io);
    g_test_add_func("/block/move/throttle-under-io",
                    test_move_throttle_under_io);
    g_test_add_func("/block/move/file-io_uring-under-io",
                    test_move_file_io_uring_under_io);
    g_test_add_func("/block/move/file-io_uring-between-io_uring-loops",
                    test_move_file_io_uring_between_io_uring_loops);
    g_test_add_func("/block/move/file-threads-under-io",
                    test_move_file_threads_under_io);
    return g_test_run();
}
