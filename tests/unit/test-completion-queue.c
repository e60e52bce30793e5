/*
 * CompletionQueue: completions pushed by foreign threads reach the
 * attached context once each, in order, batched behind one eventfd write,
 * and follow the queue when it moves between contexts.
 */
#include "block/completion-queue.h"
#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "util/atomic.h"
#include "util/thread.h"

typedef struct Item {
    CompletionEntry entry;
    int seq;
    int delivered; /* context's thread */
} Item;

typedef struct Sink {
    AioContext *expect_ctx; /* where fn must run, if set */
    int last_seq;
    int count; /* atomic: read by the main thread */
    bool in_order;
} Sink;

static void sink_fn(CompletionEntry *e, void *opaque)
{
    Item *it = (Item *)e;
    Sink *s = opaque;

    it->delivered++;
    if (it->seq != s->last_seq + 1) {
        s->in_order = false;
    }
    s->last_seq = it->seq;
    dp_atomic_fetch_add_seq_cst(&s->count, 1);
}

/* A burst pushed while the context sleeps is one wake-up and one batch,
 * delivered in push order. */
static void test_burst_is_one_batch_in_order(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    Sink sink = {.in_order = true};
    CompletionQueue q;
    Item items[1000] = {{{0}}};
    int i;

    g_assert_cmpint(completion_queue_init(&q, sink_fn, &sink), ==, 0);
    completion_queue_attach(&q, ctx);
    for (i = 0; i < 1000; i++) {
        items[i].seq = i + 1;
        completion_queue_push(&q, &items[i].entry);
    }
    for (i = 0; i < 100 && sink.count < 1000; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(sink.count, ==, 1000);
    g_assert_true(sink.in_order);
    g_assert_cmpuint(q.batches, ==, 1);
    g_assert_cmpuint(q.completions, ==, 1000);
    for (i = 0; i < 1000; i++) {
        g_assert_cmpint(items[i].delivered, ==, 1);
    }
    /* Nothing left: a further poll finds no work. */
    g_assert_false(aio_poll(ctx, false));
    completion_queue_detach(&q);
    completion_queue_cleanup(&q);
    aio_context_unref(ctx);
}

/* Entries pushed while detached wait, then run in the next context. */
static void test_detached_entries_run_after_attach(void)
{
    AioContext *a = aio_context_new(&error_abort);
    AioContext *b = aio_context_new(&error_abort);
    Sink sink = {.in_order = true};
    CompletionQueue q;
    Item items[3] = {{{0}, 1}, {{0}, 2}, {{0}, 3}};
    int i;

    g_assert_cmpint(completion_queue_init(&q, sink_fn, &sink), ==, 0);
    completion_queue_attach(&q, a);
    completion_queue_push(&q, &items[0].entry);
    aio_poll(a, true);
    g_assert_cmpint(sink.count, ==, 1);
    completion_queue_detach(&q);
    completion_queue_push(&q, &items[1].entry);
    completion_queue_push(&q, &items[2].entry);
    /* The old context no longer delivers. */
    g_assert_false(aio_poll(a, false));
    g_assert_cmpint(sink.count, ==, 1);
    completion_queue_attach(&q, b);
    for (i = 0; i < 100 && sink.count < 3; i++) {
        aio_poll(b, true);
    }
    g_assert_cmpint(sink.count, ==, 3);
    g_assert_true(sink.in_order);
    completion_queue_detach(&q);
    completion_queue_cleanup(&q);
    aio_context_unref(a);
    aio_context_unref(b);
}

#define PRODUCERS 4
#define PER_PRODUCER 20000

typedef struct Producer {
    CompletionQueue *q;
    Item *items;
    DpThread thread;
} Producer;

static void *producer_fn(void *opaque)
{
    Producer *p = opaque;
    int i;

    for (i = 0; i < PER_PRODUCER; i++) {
        completion_queue_push(p->q, &p->items[i].entry);
    }
    return NULL;
}

/* What a node move does: detach in the old context, attach in the new,
 * holding both. */
static void move_queue(CompletionQueue *q, AioContext *from, AioContext *to)
{
    aio_context_acquire(from);
    completion_queue_detach(q);
    aio_context_acquire(to);
    completion_queue_attach(q, to);
    aio_context_release(to);
    aio_context_release(from);
}

/* Foreign threads push while the queue hops between two IOThreads: every
 * entry is delivered exactly once. */
static void test_pushes_from_threads_while_moving(void)
{
    IOThread *t[2] = {iothread_new("cq0", NULL, &error_abort),
                      iothread_new("cq1", NULL, &error_abort)};
    AioContext *ctx[2] = {iothread_get_aio_context(t[0]),
                          iothread_get_aio_context(t[1])};
    Sink sink = {.in_order = true};
    Producer prod[PRODUCERS];
    CompletionQueue q;
    int cur = 0;
    int moves = 0;
    int i, j;

    g_assert_cmpint(completion_queue_init(&q, sink_fn, &sink), ==, 0);
    aio_context_acquire(ctx[0]);
    completion_queue_attach(&q, ctx[0]);
    aio_context_release(ctx[0]);
    for (i = 0; i < PRODUCERS; i++) {
        prod[i].q = &q;
        prod[i].items = g_new0(Item, PER_PRODUCER);
        dp_thread_create(&prod[i].thread, "cq-producer", producer_fn, &prod[i]);
    }
    while (dp_atomic_load_seq_cst(&sink.count) < PRODUCERS * PER_PRODUCER) {
        move_queue(&q, ctx[cur], ctx[!cur]);
        cur = !cur;
        moves++;
        g_assert_cmpint(moves, <, 10000000);
    }
    for (i = 0; i < PRODUCERS; i++) {
        dp_thread_join(&prod[i].thread);
    }
    aio_context_acquire(ctx[cur]);
    completion_queue_detach(&q);
    aio_context_release(ctx[cur]);
    for (i = 0; i < PRODUCERS; i++) {
        for (j = 0; j < PER_PRODUCER; j++) {
            g_assert_cmpint(prod[i].items[j].delivered, ==, 1);
        }
        g_free(prod[i].items);
    }
    g_assert_cmpint(sink.count, ==, PRODUCERS * PER_PRODUCER);
    completion_queue_cleanup(&q);
    iothread_destroy(t[0]);
    iothread_destroy(t[1]);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    main_loop_init(&error_abort);
    g_test_add_func("/completion-queue/burst-is-one-batch-in-order",
                    test_burst_is_one_batch_in_order);
    g_test_add_func("/completion-queue/detached-entries-run-after-attach",
                    test_detached_entries_run_after_attach);
    g_test_add_func("/completion-queue/pushes-from-threads-while-moving",
                    test_pushes_from_threads_while_moving);
    return g_test_run();
}
