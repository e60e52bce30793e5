/*
 * Doorbell lines: contexts share cache lines for their doorbell words, and
 * must still run only their own BHs, across threads, without losing a
 * ring.
 */
#include <glib.h>

#include "aio/aio-internal.h"
#include "aio/doorbell-line.h"
#include "tests/unit/aio-test-util.h"
#include "util/atomic.h"
#include "util/thread.h"

static uintptr_t line_of(const uint64_t *word)
{
    return (uintptr_t)word / 64;
}

static void test_words_fill_a_line_then_the_next(void)
{
    uint64_t *words[AIO_DOORBELL_LINE_SHARERS];
    uint64_t *next;
    uint64_t *again;
    int i;
    int j;

    for (i = 0; i < AIO_DOORBELL_LINE_SHARERS; i++) {
        words[i] = aio_doorbell_word_get();
        g_assert_cmpuint(*words[i], ==, 0);
        g_assert_cmpuint(line_of(words[i]), ==, line_of(words[0]));
        for (j = 0; j < i; j++) {
            g_assert_true(words[i] != words[j]);
        }
    }
    next = aio_doorbell_word_get();
    g_assert_cmpuint(line_of(next), !=, line_of(words[0]));

    /* A word given back is the first one handed out again, cleared. */
    *words[1] = UINT64_MAX;
    aio_doorbell_word_put(words[1]);
    again = aio_doorbell_word_get();
    g_assert_true(again == words[1]);
    g_assert_cmpuint(*again, ==, 0);

    aio_doorbell_word_put(next);
    for (i = 0; i < AIO_DOORBELL_LINE_SHARERS; i++) {
        aio_doorbell_word_put(words[i]);
    }
}

static void test_contexts_made_together_share_a_line(gconstpointer data)
{
    AioContext *ctx[AIO_DOORBELL_LINE_SHARERS + 1];
    int i;

    for (i = 0; i < AIO_DOORBELL_LINE_SHARERS + 1; i++) {
        ctx[i] = test_ctx_new(data);
    }
    for (i = 1; i < AIO_DOORBELL_LINE_SHARERS; i++) {
        g_assert_cmpuint(line_of(ctx[i]->doorbells_rung), ==,
                         line_of(ctx[0]->doorbells_rung));
    }
    g_assert_cmpuint(line_of(ctx[AIO_DOORBELL_LINE_SHARERS]->doorbells_rung),
                     !=, line_of(ctx[0]->doorbells_rung));
    for (i = 0; i < AIO_DOORBELL_LINE_SHARERS + 1; i++) {
        aio_context_unref(ctx[i]);
    }
}

static void count_cb(void *opaque)
{
    int *count = opaque;

    (*count)++;
}

static void test_neighbours_run_only_their_own_bhs(gconstpointer data)
{
    AioContext *ctx[AIO_DOORBELL_LINE_SHARERS];
    AioBH *bh[AIO_DOORBELL_LINE_SHARERS];
    int runs[AIO_DOORBELL_LINE_SHARERS] = {0};
    int i;
    int j;

    for (i = 0; i < AIO_DOORBELL_LINE_SHARERS; i++) {
        ctx[i] = test_ctx_new(data);
        bh[i] = aio_bh_new(ctx[i], count_cb, &runs[i]);
    }
    g_assert_cmpuint(
        line_of(ctx[AIO_DOORBELL_LINE_SHARERS - 1]->doorbells_rung), ==,
        line_of(ctx[0]->doorbells_rung));

    for (i = 0; i < AIO_DOORBELL_LINE_SHARERS; i++) {
        aio_bh_schedule(bh[i]);
        /* The neighbours see nothing of it... */
        for (j = 0; j < AIO_DOORBELL_LINE_SHARERS; j++) {
            if (j != i) {
                g_assert_false(aio_poll(ctx[j], false));
            }
        }
        for (j = 0; j < AIO_DOORBELL_LINE_SHARERS; j++) {
            g_assert_cmpint(runs[j], ==, j < i ? 1 : 0);
        }
        /* ...and cancelling in one leaves the others' bells alone. */
        aio_bh_schedule(bh[(i + 1) % AIO_DOORBELL_LINE_SHARERS]);
        aio_bh_cancel(bh[(i + 1) % AIO_DOORBELL_LINE_SHARERS]);
        g_assert_true(aio_poll(ctx[i], false));
        g_assert_cmpint(runs[i], ==, 1);
    }
    for (i = 0; i < AIO_DOORBELL_LINE_SHARERS; i++) {
        g_assert_false(aio_poll(ctx[i], false));
        g_assert_cmpint(runs[i], ==, 1);
        aio_bh_delete(bh[i]);
        aio_context_unref(ctx[i]);
    }
}

/*
 * Two loops on one line pass a BH back and forth while a third thread
 * rings a third context of the same line: every ring must wake its own
 * loop (a lost one hangs the test), polling and sleeping alike.
 */
#define HOPS 5000
#define RINGS 5000

typedef struct Loop {
    AioContext *ctx;
    bool stop; /* atomic */
    DpThread thread;
} Loop;

typedef struct Neighbours {
    Loop loop[3];
    AioBH *hop_bh[2]; /* hop_bh[i] runs in loop[i] */
    AioBH *ring_bh;   /* runs in loop[2] */
    int hops;         /* atomic; only the BH running changes it */
    int rings_run;    /* atomic */
} Neighbours;

static void *loop_thread(void *opaque)
{
    Loop *loop = opaque;

    while (!dp_atomic_load_acquire(&loop->stop)) {
        aio_poll(loop->ctx, true);
    }
    return NULL;
}

static void hop_cb(Neighbours *n, int side)
{
    int hops = dp_atomic_load_relaxed(&n->hops) + 1;

    dp_atomic_store_release(&n->hops, hops);
    if (hops < HOPS) {
        aio_bh_schedule(n->hop_bh[!side]);
    }
}

static void hop_to_a_cb(void *opaque)
{
    hop_cb(opaque, 0);
}

static void hop_to_b_cb(void *opaque)
{
    hop_cb(opaque, 1);
}

static void ring_cb(void *opaque)
{
    Neighbours *n = opaque;

    dp_atomic_fetch_add_release(&n->rings_run, 1);
}

static void *ringer_thread(void *opaque)
{
    Neighbours *n = opaque;
    int i;

    for (i = 0; i < RINGS; i++) {
        aio_bh_schedule(n->ring_bh);
        while (dp_atomic_load_acquire(&n->rings_run) == i) {
            g_thread_yield();
        }
    }
    return NULL;
}

static void test_neighbours_pass_bhs_across_threads(gconstpointer data)
{
    Neighbours n = {0};
    DpThread ringer;
    int i;

    for (i = 0; i < 3; i++) {
        n.loop[i].ctx = test_ctx_new(data);
    }
    g_assert_cmpuint(line_of(n.loop[2].ctx->doorbells_rung), ==,
                     line_of(n.loop[0].ctx->doorbells_rung));
    /* One loop busy-polls, the other sleeps: both wake-up paths. */
    aio_context_set_poll_params(n.loop[0].ctx, 32768, 0, 0, &error_abort);
    n.hop_bh[0] = aio_bh_new(n.loop[0].ctx, hop_to_a_cb, &n);
    n.hop_bh[1] = aio_bh_new(n.loop[1].ctx, hop_to_b_cb, &n);
    n.ring_bh = aio_bh_new(n.loop[2].ctx, ring_cb, &n);
    for (i = 0; i < 3; i++) {
        dp_thread_create(&n.loop[i].thread, "neighbour", loop_thread,
                         &n.loop[i]);
    }
    dp_thread_create(&ringer, "ringer", ringer_thread, &n);
    aio_bh_schedule(n.hop_bh[0]);

    while (dp_atomic_load_acquire(&n.hops) < HOPS) {
        g_usleep(1000);
    }
    dp_thread_join(&ringer);
    for (i = 0; i < 3; i++) {
        dp_atomic_store_release(&n.loop[i].stop, true);
        aio_notify(n.loop[i].ctx);
        dp_thread_join(&n.loop[i].thread);
    }
    g_assert_cmpint(n.hops, ==, HOPS);
    g_assert_cmpint(n.rings_run, ==, RINGS);

    aio_bh_delete(n.hop_bh[0]);
    aio_bh_delete(n.hop_bh[1]);
    aio_bh_delete(n.ring_bh);
    for (i = 0; i < 3; i++) {
        aio_context_unref(n.loop[i].ctx);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/aio/doorbell-line/words-fill-a-line-then-the-next",
                    test_words_fill_a_line_then_the_next);
    test_add_both("/doorbell-line/contexts-made-together-share-a-line",
                  test_contexts_made_together_share_a_line);
    test_add_both("/doorbell-line/neighbours-run-only-their-own-bhs",
                  test_neighbours_run_only_their_own_bhs);
    test_add_both("/doorbell-line/neighbours-pass-bhs-across-threads",
                  test_neighbours_pass_bhs_across_threads);
    return g_test_run();
}
