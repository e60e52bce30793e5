/*
 * Threadlets under load and races: a million submit_aio items from four
 * threads, submitters sharing one context, cancel racing pick-up, a random
 * mix of every operation.  Each
 * item must run and complete exactly once (bitmaps), and TSan must stay
 * quiet (the whole file runs under it in CI, at full counts).
 */

#include <errno.h>
#include <glib.h>
#include <sched.h>

#include "dataplane/threadlet.h"
#include "tests/unit/threadlet-test-util.h"
#include "util/atomic.h"
#include "util/thread.h"

/* Full counts under TSan as well: the whole file runs there in ~5 s. */
#define STRESS_ITEMS 1000000
#define RACE_ROUNDS 20000
#define STRESS_THREADS 4
#define STRESS_WINDOW 512 /* in flight per submitter thread */

/*
 * Cancel straight after submit, while idle threads race to pick the item up.
 * Whatever cancel answers must be true: CANCELLED means fn never ran and done
 * got -ECANCELED; otherwise fn ran once and done got its result.  done runs
 * exactly once either way.
 */
static void test_cancel_racing_pickup_never_runs_twice_or_loses(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    ThreadletQueue *q = threadlet_queue_new("race", 4, 4);
    AioItem *items = g_new0(AioItem, RACE_ROUNDS);
    int *answers = g_new(int, RACE_ROUNDS);
    int done = 0;
    int cancelled = 0;
    int i;

    for (i = 0; i < RACE_ROUNDS; i++) {
        ThreadletWork *w;

        items[i].fn_ret = i;
        items[i].done_counter = &done;
        w = threadlet_submit_aio_to_queue(q, ctx, item_fn, &items[i], item_done,
                                          &items[i]);
        if (i % 3 == 1) {
            sched_yield(); /* vary the window between submit and cancel */
        }
        answers[i] = threadlet_cancel(w);
        if (i % 64 == 63) {
            aio_poll(ctx, false);
        }
    }
    poll_until_count(ctx, &done, RACE_ROUNDS);
    for (i = 0; i < RACE_ROUNDS; i++) {
        AioItem *it = &items[i];

        g_assert_cmpint(it->done_runs, ==, 1);
        if (answers[i] == THREADLET_CANCELLED) {
            cancelled++;
            g_assert_cmpint(dp_atomic_load_seq_cst(&it->fn_runs), ==, 0);
            g_assert_cmpint(it->done_ret, ==, -ECANCELED);
        } else {
            g_assert_true(answers[i] == THREADLET_RUNNING ||
                          answers[i] == THREADLET_DONE);
            g_assert_cmpint(dp_atomic_load_seq_cst(&it->fn_runs), ==, 1);
            g_assert_cmpint(it->done_ret, ==, i);
        }
    }
    g_assert_cmpuint(stats_of(q).cancelled, ==, (uint64_t)cancelled);
    g_assert_cmpuint(stats_of(q).completed, ==,
                     (uint64_t)(RACE_ROUNDS - cancelled));
    g_test_message("%d of %d cancelled before pick-up", cancelled, RACE_ROUNDS);
    threadlet_queue_destroy(q);
    g_free(items);
    g_free(answers);
    aio_context_unref(ctx);
}

typedef struct RaceWork {
    ThreadletWork work;
    int runs; /* atomic */
} RaceWork;

static void race_work_func(ThreadletWork *work)
{
    RaceWork *rw = container_of(work, RaceWork, work);

    dp_atomic_fetch_add_seq_cst(&rw->runs, 1);
}

/* The same race for plain work: CANCELLED means func never runs, anything
 * else means it runs exactly once. */
static void test_cancel_racing_pickup_plain_work(void)
{
    ThreadletQueue *q = threadlet_queue_new("race-plain", 4, 4);
    RaceWork *items = g_new0(RaceWork, RACE_ROUNDS);
    int *answers = g_new(int, RACE_ROUNDS);
    int cancelled = 0;
    int i;

    for (i = 0; i < RACE_ROUNDS; i++) {
        items[i].work.func = race_work_func;
        threadlet_submit_to_queue(q, &items[i].work);
        if (i % 3 == 1) {
            sched_yield();
        }
        answers[i] = threadlet_cancel(&items[i].work);
        cancelled += answers[i] == THREADLET_CANCELLED;
    }
    wait_completed(q, RACE_ROUNDS - cancelled);
    for (i = 0; i < RACE_ROUNDS; i++) {
        int runs = dp_atomic_load_seq_cst(&items[i].runs);

        g_assert_cmpint(runs, ==, answers[i] == THREADLET_CANCELLED ? 0 : 1);
        g_assert_cmpint(threadlet_cancel(&items[i].work), ==,
                        answers[i] == THREADLET_CANCELLED ? THREADLET_CANCELLED
                                                          : THREADLET_DONE);
    }
    threadlet_queue_destroy(q);
    g_free(items);
    g_free(answers);
}

/* ---- stress ------------------------------------------------------------- */

typedef struct Stress {
    ThreadletQueue *q;
    uint64_t *fn_bits;   /* set by fn, atomic */
    uint64_t *done_bits; /* set by done, atomic */
    int base;
    int count;
    AioContext *ctx;
    int done; /* this submitter's done count, its own thread only */
    int dup;  /* doubles seen, atomic */
    pthread_t self;
    int wrong_thread;
} Stress;

typedef struct StressItem {
    Stress *s;
    int index;
} StressItem;

static bool set_bit_once(uint64_t *bits, int index)
{
    uint64_t mask = 1ULL << (index % 64);

    return !(dp_atomic_fetch_or_seq_cst(&bits[index / 64], mask) & mask);
}

static int stress_fn(void *arg)
{
    StressItem *it = arg;

    if (!set_bit_once(it->s->fn_bits, it->index)) {
        dp_atomic_fetch_add_seq_cst(&it->s->dup, 1);
    }
    return it->index;
}

static void stress_done(void *opaque, int ret)
{
    StressItem *it = opaque;
    Stress *s = it->s;

    if (ret != it->index || !set_bit_once(s->done_bits, it->index)) {
        dp_atomic_fetch_add_seq_cst(&s->dup, 1);
    }
    if (!pthread_equal(pthread_self(), s->self)) {
        s->wrong_thread++;
    }
    s->done++;
    g_free(it);
}

static void *stress_thread(void *opaque)
{
    Stress *s = opaque;
    int submitted = 0;
    int steps = 0;

    s->self = pthread_self();
    while (s->done < s->count && steps++ < 50 * STRESS_ITEMS) {
        while (submitted < s->count && submitted - s->done < STRESS_WINDOW) {
            StressItem *it = g_new(StressItem, 1);

            it->s = s;
            it->index = s->base + submitted++;
            threadlet_submit_aio_to_queue(s->q, s->ctx, stress_fn, it,
                                          stress_done, it);
        }
        aio_poll(s->ctx, true);
    }
    return NULL;
}

static void test_million_items_from_4_threads_complete_exactly_once(void)
{
    ThreadletQueue *q = threadlet_queue_new("stress", 0, 4);
    int words = (STRESS_ITEMS + 63) / 64;
    uint64_t *fn_bits = g_new0(uint64_t, words);
    uint64_t *done_bits = g_new0(uint64_t, words);
    Stress s[STRESS_THREADS];
    DpThread threads[STRESS_THREADS];
    int per = STRESS_ITEMS / STRESS_THREADS;
    int i;

    for (i = 0; i < STRESS_THREADS; i++) {
        s[i] = (Stress){
            .q = q,
            .fn_bits = fn_bits,
            .done_bits = done_bits,
            .base = i * per,
            .count = i == STRESS_THREADS - 1 ? STRESS_ITEMS - i * per : per,
            .ctx = aio_context_new(&error_abort)};
        dp_thread_create(&threads[i], "tl-stress", stress_thread, &s[i]);
    }
    for (i = 0; i < STRESS_THREADS; i++) {
        dp_thread_join(&threads[i]);
        g_assert_cmpint(s[i].done, ==, s[i].count);
        g_assert_cmpint(dp_atomic_load_seq_cst(&s[i].dup), ==, 0);
        g_assert_cmpint(s[i].wrong_thread, ==, 0);
        g_assert_false(aio_poll(s[i].ctx, false));
        aio_context_unref(s[i].ctx);
    }
    for (i = 0; i < STRESS_ITEMS; i++) {
        uint64_t mask = 1ULL << (i % 64);

        if (!(fn_bits[i / 64] & mask) || !(done_bits[i / 64] & mask)) {
            g_error("item %d: fn ran %d, done ran %d", i,
                    !!(fn_bits[i / 64] & mask), !!(done_bits[i / 64] & mask));
        }
    }
    g_assert_cmpuint(stats_of(q).completed, ==, STRESS_ITEMS);
    g_test_message("%d items in %" G_GUINT64_FORMAT " completion batches",
                   STRESS_ITEMS, stats_of(q).completion_batches);
    threadlet_queue_destroy(q);
    g_free(fn_bits);
    g_free(done_bits);
}

/*
 * Four threads submit into one context that a fifth thread runs: the
 * per-context record is created, shared, emptied and freed again while
 * the submitters race, and every done still runs once, in the loop thread.
 */
#define SHARED_ITEMS 200000

typedef struct SharedLoop {
    AioContext *ctx;
    ThreadletQueue *q;
    uint64_t *bits;
    pthread_t loop_thread;
    int done;       /* loop thread only */
    int errors;     /* loop thread only */
    int next_index; /* atomic */
} SharedLoop;

typedef struct SharedItem {
    SharedLoop *sl;
    int index;
} SharedItem;

static int shared_fn(void *arg)
{
    SharedItem *it = arg;

    return it->index;
}

static void shared_done(void *opaque, int ret)
{
    SharedItem *it = opaque;
    SharedLoop *sl = it->sl;

    if (ret != it->index || !set_bit_once(sl->bits, it->index) ||
        !pthread_equal(pthread_self(), sl->loop_thread)) {
        sl->errors++;
    }
    sl->done++;
    g_free(it);
}

static void *shared_submitter(void *opaque)
{
    SharedLoop *sl = opaque;
    int i;

    for (i = 0; i < SHARED_ITEMS / STRESS_THREADS; i++) {
        SharedItem *it = g_new(SharedItem, 1);

        it->sl = sl;
        it->index = dp_atomic_fetch_add_seq_cst(&sl->next_index, 1);
        threadlet_submit_aio_to_queue(sl->q, sl->ctx, shared_fn, it,
                                      shared_done, it);
        if (i % 256 == 255) {
            sched_yield(); /* let the record go idle now and then */
        }
    }
    return NULL;
}

static void *shared_loop(void *opaque)
{
    SharedLoop *sl = opaque;
    int steps;

    for (steps = 0; steps < 50 * SHARED_ITEMS && sl->done < SHARED_ITEMS;
         steps++) {
        aio_poll(sl->ctx, true);
    }
    return NULL;
}

static void test_submitters_sharing_one_context_complete_exactly_once(void)
{
    SharedLoop sl = {0};
    DpThread loop, subs[STRESS_THREADS];
    int i;

    sl.ctx = aio_context_new(&error_abort);
    sl.q = threadlet_queue_new("shared", 0, 4);
    sl.bits = g_new0(uint64_t, (SHARED_ITEMS + 63) / 64);
    dp_thread_create(&loop, "tl-shared-loop", shared_loop, &sl);
    sl.loop_thread = loop.t;
    for (i = 0; i < STRESS_THREADS; i++) {
        dp_thread_create(&subs[i], "tl-shared-sub", shared_submitter, &sl);
    }
    for (i = 0; i < STRESS_THREADS; i++) {
        dp_thread_join(&subs[i]);
    }
    dp_thread_join(&loop);
    g_assert_cmpint(sl.done, ==, SHARED_ITEMS);
    g_assert_cmpint(sl.errors, ==, 0);
    for (i = 0; i < SHARED_ITEMS; i++) {
        g_assert_true(sl.bits[i / 64] & (1ULL << (i % 64)));
    }
    g_assert_false(aio_poll(sl.ctx, false));
    threadlet_queue_destroy(sl.q);
    g_free(sl.bits);
    aio_context_unref(sl.ctx);
}

/*
 * A random mix of submits, cancels, polls, limit and timeout changes (seeded
 * from the test seed, so a failure replays with the same --seed).  The
 * invariants: each done runs once; CANCELLED means fn never ran and done
 * got -ECANCELED; successive cancels of one item only move forward
 * (RUNNING may become DONE, nothing becomes CANCELLED later); the
 * queue's counters agree.
 */
#define RANDOM_OPS 20000

typedef struct RandItem {
    int fn_runs; /* atomic */
    int index;
    int done_runs;
    int done_ret;
    int last_answer; /* -1: never cancelled */
    ThreadletWork *handle;
} RandItem;

static int rand_fn(void *arg)
{
    RandItem *it = arg;

    dp_atomic_fetch_add_seq_cst(&it->fn_runs, 1);
    if (it->index % 7 == 0) {
        sched_yield(); /* stay RUNNING for a while */
    }
    return it->index;
}

static void rand_done(void *opaque, int ret)
{
    RandItem *it = opaque;

    it->done_runs++;
    it->done_ret = ret;
    it->handle = NULL; /* no longer valid */
}

static bool answer_may_follow(int prev, int next)
{
    switch (prev) {
    case -1:
        return true;
    case THREADLET_CANCELLED:
        return next == THREADLET_CANCELLED;
    case THREADLET_RUNNING:
        return next == THREADLET_RUNNING || next == THREADLET_DONE;
    default:
        return next == THREADLET_DONE;
    }
}

static void test_random_operations_keep_the_invariants(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    ThreadletQueue *q = threadlet_queue_new("random", 1, 3);
    RandItem *items = g_new0(RandItem, RANDOM_OPS);
    GRand *rand = g_rand_new_with_seed(g_test_rand_int());
    int submitted = 0;
    int cancelled = 0;
    int delivered;
    int op, i;

    for (op = 0; op < RANDOM_OPS; op++) {
        int dice = g_rand_int_range(rand, 0, 100);

        if (dice < 50) {
            RandItem *it = &items[submitted];

            it->index = submitted++;
            it->last_answer = -1;
            it->handle = threadlet_submit_aio_to_queue(q, ctx, rand_fn, it,
                                                       rand_done, it);
        } else if (dice < 70 && submitted > 0) {
            RandItem *it = &items[g_rand_int_range(rand, 0, submitted)];
            int answer;

            if (!it->handle) {
                continue; /* done has run: the handle is gone */
            }
            answer = threadlet_cancel(it->handle);
            g_assert_true(answer_may_follow(it->last_answer, answer));
            it->last_answer = answer;
        } else if (dice < 85) {
            aio_poll(ctx, false);
        } else if (dice < 95) {
            int max = g_rand_int_range(rand, 1, 7);

            g_assert_true(threadlet_queue_set_limits(
                q, g_rand_int_range(rand, 0, max + 1), max, &error_abort));
        } else {
            threadlet_queue_set_idle_timeout_ns(
                q, g_rand_int_range(rand, 1000, 10000000));
        }
    }

    for (i = 0; i < WAIT_STEPS; i++) {
        delivered = 0;
        for (op = 0; op < submitted; op++) {
            delivered += items[op].done_runs;
        }
        if (delivered == submitted) {
            break;
        }
        aio_poll(ctx, true);
    }
    g_assert_cmpint(delivered, ==, submitted);
    for (i = 0; i < submitted; i++) {
        RandItem *it = &items[i];

        g_assert_cmpint(it->done_runs, ==, 1);
        if (it->last_answer == THREADLET_CANCELLED) {
            cancelled++;
            g_assert_cmpint(dp_atomic_load_seq_cst(&it->fn_runs), ==, 0);
            g_assert_cmpint(it->done_ret, ==, -ECANCELED);
        } else {
            g_assert_cmpint(dp_atomic_load_seq_cst(&it->fn_runs), ==, 1);
            g_assert_cmpint(it->done_ret, ==, i);
        }
    }
    g_assert_cmpuint(stats_of(q).cancelled, ==, (uint64_t)cancelled);
    g_assert_cmpuint(stats_of(q).completed, ==,
                     (uint64_t)(submitted - cancelled));
    g_test_message("%d submitted, %d cancelled", submitted, cancelled);
    threadlet_queue_destroy(q);
    g_rand_free(rand);
    g_free(items);
    aio_context_unref(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/threadlet/cancel/racing-pickup-exactly-once",
                    test_cancel_racing_pickup_never_runs_twice_or_loses);
    g_test_add_func("/threadlet/cancel/racing-pickup-plain-work",
                    test_cancel_racing_pickup_plain_work);
    g_test_add_func("/threadlet/stress/million-from-4-threads-exactly-once",
                    test_million_items_from_4_threads_complete_exactly_once);
    g_test_add_func("/threadlet/stress/shared-context-exactly-once",
                    test_submitters_sharing_one_context_complete_exactly_once);
    g_test_add_func("/threadlet/stress/random-operations-keep-invariants",
                    test_random_operations_keep_the_invariants);
    return g_test_run();
}
