/*
 * Bottom halves: scheduling, coalescing, cancel, delete, oneshot, threads.
 *
 * Every test runs twice per backend: under /bh/ with BHs made by
 * aio_bh_new() on doorbells (the usual case), and under /bh-stack/ in a
 * context whose doorbells are all taken, so that they go through the
 * stack the oneshots use.
 */
#include <glib.h>
#include <stdlib.h>

#include "aio/aio-internal.h"
#include "tests/unit/aio-test-util.h"
#include "util/thread.h"
#include "util/atomic.h"

/* Test data: the backend, plus this bit for the /bh-stack/ variant. */
#define ON_STACK 0x100

static void never_cb(void *opaque)
{
    g_assert_not_reached();
}

/* The fillers that hold the doorbells of /bh-stack/ contexts. */
static GHashTable *fillers;

static AioContext *bh_ctx_new(gconstpointer data)
{
    int flags = GPOINTER_TO_INT(data);
    AioContext *ctx = test_ctx_new(GINT_TO_POINTER(flags & ~ON_STACK));
    GPtrArray *held;
    int i;

    if (!(flags & ON_STACK)) {
        return ctx;
    }
    /* The context's own BHs (aio_defer) may hold a few already. */
    held = g_ptr_array_new();
    for (i = 0; i < AIO_DOORBELLS; i++) {
        g_ptr_array_add(held, aio_bh_new(ctx, never_cb, NULL));
    }
    if (!fillers) {
        fillers = g_hash_table_new(NULL, NULL);
    }
    g_hash_table_insert(fillers, ctx, held);
    return ctx;
}

static void bh_ctx_unref(AioContext *ctx)
{
    GPtrArray *held = fillers ? g_hash_table_lookup(fillers, ctx) : NULL;
    guint i;

    if (held) {
        for (i = 0; i < held->len; i++) {
            aio_bh_delete(g_ptr_array_index(held, i));
        }
        g_ptr_array_free(held, true);
        g_hash_table_remove(fillers, ctx);
    }
    aio_context_unref(ctx);
}

typedef struct Counter {
    int runs;
    AioBH *bh;
    int reschedule_times;
} Counter;

static void count_cb(void *opaque)
{
    Counter *c = opaque;

    c->runs++;
    if (c->reschedule_times > 0) {
        c->reschedule_times--;
        aio_bh_schedule(c->bh);
    }
}

static void test_bh_runs_in_poll(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    Counter c = {0};
    AioBH *bh = aio_bh_new(ctx, count_cb, &c);

    g_assert_false(aio_poll(ctx, false));
    aio_bh_schedule(bh);
    g_assert_cmpint(c.runs, ==, 0);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(c.runs, ==, 1);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(c.runs, ==, 1);
    aio_bh_delete(bh);
    bh_ctx_unref(ctx);
}

static void test_bh_schedule_twice_runs_once(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    Counter c = {0};
    AioBH *bh = aio_bh_new(ctx, count_cb, &c);

    aio_bh_schedule(bh);
    aio_bh_schedule(bh);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(c.runs, ==, 1);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(c.runs, ==, 1);
    aio_bh_delete(bh);
    bh_ctx_unref(ctx);
}

static void test_bh_reschedule_self_runs_in_later_iteration(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    Counter c = {.reschedule_times = 3};

    c.bh = aio_bh_new(ctx, count_cb, &c);
    aio_bh_schedule(c.bh);
    /* Each aio_poll() returns after one run, though the BH is scheduled. */
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(c.runs, ==, 1);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(c.runs, ==, 2);
    g_assert_true(aio_poll(ctx, true));
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(c.runs, ==, 4);
    g_assert_false(aio_poll(ctx, false));
    aio_bh_delete(c.bh);
    bh_ctx_unref(ctx);
}

static void test_bh_cancel(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    Counter c = {0};
    AioBH *bh = aio_bh_new(ctx, count_cb, &c);

    aio_bh_schedule(bh);
    aio_bh_cancel(bh);
    aio_poll(ctx, false);
    g_assert_cmpint(c.runs, ==, 0);
    /* A cancelled BH can be scheduled again. */
    aio_bh_schedule(bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(c.runs, ==, 1);
    aio_bh_delete(bh);
    bh_ctx_unref(ctx);
}

static void test_bh_delete_scheduled_never_runs(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    Counter c = {0};
    AioBH *bh = aio_bh_new(ctx, count_cb, &c);

    aio_bh_schedule(bh);
    aio_bh_delete(bh); /* freed by the next poll (ASan checks) */
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(c.runs, ==, 0);
    bh_ctx_unref(ctx);
}

/* A callback's view of another BH of its context, and its own runs. */
typedef struct Other {
    AioBH *victim;
    int runs;
} Other;

static void delete_other_cb(void *opaque)
{
    Other *d = opaque;

    d->runs++;
    aio_bh_delete(d->victim);
    d->victim = NULL;
}

static void test_bh_delete_other_from_callback(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    Counter c = {0};
    Other d = {0};
    AioBH *first = aio_bh_new(ctx, delete_other_cb, &d);

    d.victim = aio_bh_new(ctx, count_cb, &c);
    aio_bh_schedule(first);
    aio_bh_schedule(d.victim); /* queued behind first, then deleted by it */
    aio_poll(ctx, false);
    g_assert_cmpint(d.runs, ==, 1);
    g_assert_cmpint(c.runs, ==, 0);
    aio_bh_delete(first);
    bh_ctx_unref(ctx);
}

static void self_delete_cb(void *opaque)
{
    AioBH **bh = opaque;

    aio_bh_delete(*bh);
    *bh = NULL;
}

static void test_bh_delete_self_from_callback(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    AioBH *bh = aio_bh_new(ctx, self_delete_cb, &bh);

    aio_bh_schedule(bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_null(bh);
    bh_ctx_unref(ctx);
}

static void test_bh_oneshot_runs_once(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    Counter c = {0};

    aio_bh_schedule_oneshot(ctx, count_cb, &c);
    aio_bh_schedule_oneshot(ctx, count_cb, &c);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(c.runs, ==, 2);
    g_assert_false(aio_poll(ctx, false));
    bh_ctx_unref(ctx);
}

static GArray *order_log;

static void log_order_cb(void *opaque)
{
    int v = GPOINTER_TO_INT(opaque);

    g_array_append_val(order_log, v);
}

static void test_bh_run_in_schedule_order(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    int i;

    order_log = g_array_new(false, false, sizeof(int));
    for (i = 0; i < 10; i++) {
        aio_bh_schedule_oneshot(ctx, log_order_cb, GINT_TO_POINTER(i));
    }
    aio_poll(ctx, false);
    g_assert_cmpuint(order_log->len, ==, 10);
    for (i = 0; i < 10; i++) {
        g_assert_cmpint(g_array_index(order_log, int, i), ==, i);
    }
    g_array_free(order_log, true);
    bh_ctx_unref(ctx);
}

static void test_bh_unref_frees_pending_oneshots(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    Counter c = {0};

    /* Never run: the context goes away first.  LeakSanitizer checks. */
    aio_bh_schedule_oneshot(ctx, count_cb, &c);
    bh_ctx_unref(ctx);
    g_assert_cmpint(c.runs, ==, 0);
}

static void test_bh_delete_pending_then_unref_frees_it(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    Counter c = {0};
    AioBH *bh = aio_bh_new(ctx, count_cb, &c);

    /* Deleted while queued and never polled: the context frees it when it
     * goes away (LeakSanitizer checks). */
    aio_bh_schedule(bh);
    aio_bh_delete(bh);
    bh_ctx_unref(ctx);
    g_assert_cmpint(c.runs, ==, 0);
}

typedef struct Resched {
    AioContext *ctx;
    AioBH *bh;
    int runs;
} Resched;

static void resched_in_nested_cb(void *opaque)
{
    Resched *r = opaque;

    /* Scheduling itself, then polling from inside its own callback: the
     * nested poll runs it again (once), and the outer call still returns. */
    r->runs++;
    if (r->runs == 1) {
        aio_bh_schedule(r->bh);
        g_assert_true(aio_poll(r->ctx, false));
        g_assert_cmpint(r->runs, ==, 2);
    }
}

static void test_bh_rescheduled_and_polled_from_own_callback(gconstpointer data)
{
    Resched r = {.ctx = bh_ctx_new(data)};

    r.bh = aio_bh_new(r.ctx, resched_in_nested_cb, &r);
    aio_bh_schedule(r.bh);
    g_assert_true(aio_poll(r.ctx, false));
    g_assert_cmpint(r.runs, ==, 2);
    g_assert_false(aio_poll(r.ctx, false));
    aio_bh_delete(r.bh);
    bh_ctx_unref(r.ctx);
}

/* ---- many threads ---- */

#define STRESS_THREADS 4
#define STRESS_TOTAL 1000000
#define STRESS_PER_THREAD (STRESS_TOTAL / STRESS_THREADS)

typedef struct Stress {
    AioContext *ctx;
    guint8 *seen;   /* one byte per BH id: how often it ran */
    int total_runs; /* only the loop thread touches it */
} Stress;

typedef struct StressItem {
    Stress *s;
    int id;
} StressItem;

typedef struct StressThread {
    Stress *s;
    int first_id;
    StressItem *items;
} StressThread;

static void stress_cb(void *opaque)
{
    StressItem *item = opaque;

    item->s->seen[item->id]++;
    item->s->total_runs++;
}

static void *stress_thread(void *opaque)
{
    StressThread *t = opaque;
    int i;

    for (i = 0; i < STRESS_PER_THREAD; i++) {
        StressItem *item = &t->items[i];

        item->s = t->s;
        item->id = t->first_id + i;
        aio_bh_schedule_oneshot(t->s->ctx, stress_cb, item);
    }
    return NULL;
}

static void test_bh_schedule_from_4_threads_exactly_once(gconstpointer data)
{
    Stress s = {.ctx = bh_ctx_new(data)};
    StressThread t[STRESS_THREADS];
    DpThread threads[STRESS_THREADS];
    int i;

    s.seen = g_malloc0(STRESS_TOTAL);
    for (i = 0; i < STRESS_THREADS; i++) {
        t[i].s = &s;
        t[i].first_id = i * STRESS_PER_THREAD;
        t[i].items = g_new(StressItem, STRESS_PER_THREAD);
        dp_thread_create(&threads[i], "bh-stress", stress_thread, &t[i]);
    }
    /* Bounded: every iteration either runs BHs or sleeps until a notify. */
    for (i = 0; i < 10 * STRESS_TOTAL && s.total_runs < STRESS_TOTAL; i++) {
        aio_poll(s.ctx, true);
    }
    for (i = 0; i < STRESS_THREADS; i++) {
        dp_thread_join(&threads[i]);
    }
    while (aio_poll(s.ctx, false)) {
    }
    g_assert_cmpint(s.total_runs, ==, STRESS_TOTAL);
    for (i = 0; i < STRESS_TOTAL; i++) {
        if (s.seen[i] != 1) {
            g_error("BH %d ran %d times", i, s.seen[i]);
        }
    }
    for (i = 0; i < STRESS_THREADS; i++) {
        g_free(t[i].items);
    }
    g_free(s.seen);
    bh_ctx_unref(s.ctx);
}

/* One long-lived BH, scheduled from another thread each time it has run:
 * every schedule after a run must lead to exactly one more run. */
typedef struct PingPong {
    AioBH *bh;
    int runs; /* atomic */
} PingPong;

static void pingpong_cb(void *opaque)
{
    PingPong *p = opaque;

    dp_atomic_fetch_add_release(&p->runs, 1);
}

static void *pingpong_thread(void *opaque)
{
    PingPong *p = opaque;
    int i;

    for (i = 0; i < 2000; i++) {
        aio_bh_schedule(p->bh);
        while (dp_atomic_load_acquire(&p->runs) == i) {
            g_thread_yield();
        }
    }
    return NULL;
}

static void test_bh_schedule_from_thread_wakes_loop(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    PingPong p = {0};
    DpThread thread;
    int i;

    p.bh = aio_bh_new(ctx, pingpong_cb, &p);
    dp_thread_create(&thread, "bh-pingpong", pingpong_thread, &p);
    for (i = 0; i < 100000 && dp_atomic_load_acquire(&p.runs) < 2000; i++) {
        aio_poll(ctx, true); /* would hang forever on a lost wake-up */
    }
    dp_thread_join(&thread);
    g_assert_cmpint(p.runs, ==, 2000);
    aio_bh_delete(p.bh);
    bh_ctx_unref(ctx);
}

/*
 * The loop thread frees its context as soon as a BH from another thread has
 * run; the scheduling thread may still be inside aio_bh_schedule() then
 * (its notify).  ASan reports a use after free if scheduling does not keep
 * the context alive until it is done with it.
 */
typedef struct FreeAfterRun {
    AioContext *ctx;
    bool ran; /* atomic */
} FreeAfterRun;

static void free_after_run_cb(void *opaque)
{
    FreeAfterRun *f = opaque;

    dp_atomic_store_release(&f->ran, true);
}

static void *free_after_run_thread(void *opaque)
{
    FreeAfterRun *f = opaque;

    aio_bh_schedule_oneshot(f->ctx, free_after_run_cb, f);
    return NULL;
}

static void test_bh_schedule_keeps_context_alive_until_done(gconstpointer data)
{
    int i;

    for (i = 0; i < 300; i++) {
        FreeAfterRun f = {.ctx = bh_ctx_new(data)};
        DpThread thread;

        dp_thread_create(&thread, "bh-free", free_after_run_thread, &f);
        poll_until(f.ctx, &f.ran);
        bh_ctx_unref(f.ctx); /* the owner's reference: maybe the last */
        dp_thread_join(&thread);
    }
}

/*
 * A callback that waits in a nested aio_poll() for a BH scheduled right
 * behind it (taken by the outer aio_poll() in the same batch) sees it run:
 * a nested poll finishes the outer batch.  Otherwise a drain in a BH could
 * wait forever for a completion BH queued behind it.
 */
typedef struct NestedWait {
    AioContext *ctx;
    bool behind_ran;
    int polls; /* nested polls the waiter needed */
} NestedWait;

static void behind_cb(void *opaque)
{
    ((NestedWait *)opaque)->behind_ran = true;
}

static void waiter_cb(void *opaque)
{
    NestedWait *w = opaque;

    while (!w->behind_ran && w->polls < 10) {
        aio_poll(w->ctx, false);
        w->polls++;
    }
}

static void test_bh_nested_poll_runs_bh_queued_behind(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    NestedWait w = {.ctx = ctx};

    aio_bh_schedule_oneshot(ctx, waiter_cb, &w);
    aio_bh_schedule_oneshot(ctx, behind_cb, &w);
    g_assert_true(aio_poll(ctx, false));
    g_assert_true(w.behind_ran);
    g_assert_cmpint(w.polls, ==, 1);
    /* Nothing ran twice, nothing is left. */
    g_assert_false(aio_poll(ctx, false));
    bh_ctx_unref(ctx);
}

/*
 * A callback that cancels a BH scheduled in the same pass (already taken
 * off the doorbell word or the stack, not run yet): it does not run.
 */
static void cancel_other_cb(void *opaque)
{
    Other *co = opaque;

    co->runs++;
    aio_bh_cancel(co->victim);
}

static void test_bh_cancel_other_from_callback(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    Counter c = {0};
    Other co = {0};
    AioBH *first = aio_bh_new(ctx, cancel_other_cb, &co);

    co.victim = aio_bh_new(ctx, count_cb, &c);
    aio_bh_schedule(first);
    aio_bh_schedule(co.victim);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(co.runs, ==, 1);
    g_assert_cmpint(c.runs, ==, 0);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(c.runs, ==, 0);
    aio_bh_delete(first);
    aio_bh_delete(co.victim);
    bh_ctx_unref(ctx);
}

/*
 * A BH deleted while scheduled leaves nothing behind for the next BH made
 * in the context (which may get the same doorbell): that one runs only
 * when it is scheduled itself.
 */
static void test_bh_new_after_delete_scheduled_is_idle(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    Counter old_c = {0};
    Counter new_c = {0};
    AioBH *old_bh = aio_bh_new(ctx, count_cb, &old_c);
    AioBH *new_bh;

    aio_bh_schedule(old_bh);
    aio_bh_delete(old_bh);
    new_bh = aio_bh_new(ctx, count_cb, &new_c);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(new_c.runs, ==, 0);
    aio_bh_schedule(new_bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(new_c.runs, ==, 1);
    g_assert_cmpint(old_c.runs, ==, 0);
    aio_bh_delete(new_bh);
    bh_ctx_unref(ctx);
}

/*
 * More BHs than a context has doorbells: the rest use the stack, and all
 * of them run once per scheduling, whichever way they came.  Deleting
 * frees doorbells for later BHs.
 */
static void test_bh_more_than_doorbells(gconstpointer data)
{
    enum { N = AIO_DOORBELLS + 16 };
    AioContext *ctx = bh_ctx_new(data);
    Counter c[N] = {{0}};
    AioBH *bh[N];
    int round;
    int i;

    for (i = 0; i < N; i++) {
        bh[i] = aio_bh_new(ctx, count_cb, &c[i]);
    }
    for (round = 1; round <= 3; round++) {
        for (i = 0; i < N; i++) {
            aio_bh_schedule(bh[i]);
            aio_bh_schedule(bh[i]);
        }
        g_assert_true(aio_poll(ctx, false));
        for (i = 0; i < N; i++) {
            g_assert_cmpint(c[i].runs, ==, round);
        }
        g_assert_false(aio_poll(ctx, false));
    }
    /* Free half, make new ones in their place, run everything again. */
    for (i = 0; i < N; i += 2) {
        aio_bh_delete(bh[i]);
        c[i].runs = 0;
        bh[i] = aio_bh_new(ctx, count_cb, &c[i]);
    }
    for (i = 0; i < N; i++) {
        aio_bh_schedule(bh[i]);
    }
    g_assert_true(aio_poll(ctx, false));
    for (i = 0; i < N; i++) {
        g_assert_cmpint(c[i].runs, ==, i % 2 ? 4 : 1);
    }
    for (i = 0; i < N; i++) {
        aio_bh_delete(bh[i]);
    }
    bh_ctx_unref(ctx);
}

/*
 * The owner may delete its BHs after the context is gone (a device torn
 * down after its IOThread): that frees them and touches nothing else
 * (AddressSanitizer checks).
 */
static void test_bh_delete_after_context_gone(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    Counter c = {0};
    AioBH *idle = aio_bh_new(ctx, count_cb, &c);
    AioBH *rung = aio_bh_new(ctx, count_cb, &c);

    aio_bh_schedule(rung);
    bh_ctx_unref(ctx);
    aio_bh_delete(rung);
    aio_bh_delete(idle);
    g_assert_cmpint(c.runs, ==, 0);
}

/* As nested-poll-runs-bh-queued-behind, with BHs made by aio_bh_new(). */
static void test_bh_nested_poll_runs_long_lived_bh_behind(gconstpointer data)
{
    AioContext *ctx = bh_ctx_new(data);
    NestedWait w = {.ctx = ctx};
    AioBH *waiter = aio_bh_new(ctx, waiter_cb, &w);
    AioBH *behind = aio_bh_new(ctx, behind_cb, &w);

    aio_bh_schedule(waiter);
    aio_bh_schedule(behind);
    g_assert_true(aio_poll(ctx, false));
    g_assert_true(w.behind_ran);
    g_assert_cmpint(w.polls, ==, 1);
    g_assert_false(aio_poll(ctx, false));
    aio_bh_delete(waiter);
    aio_bh_delete(behind);
    bh_ctx_unref(ctx);
}

/* Registers fn for both backends, with doorbells and on the stack. */
static void add_bh_test(const char *name, GTestDataFunc fn)
{
    static const AioBackend backends[] = {AIO_BACKEND_EPOLL,
                                          AIO_BACKEND_IO_URING};
    size_t i;
    int stack;

    for (i = 0; i < G_N_ELEMENTS(backends); i++) {
        for (stack = 0; stack < 2; stack++) {
            char *path =
                g_strdup_printf("/aio/%s/%s/%s", aio_backend_name(backends[i]),
                                stack ? "bh-stack" : "bh", name);

            g_test_add_data_func(
                path, GINT_TO_POINTER(backends[i] | (stack ? ON_STACK : 0)),
                test_backend_available(backends[i]) ? fn
                                                    : test_backend_unavailable);
            g_free(path);
        }
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    add_bh_test("runs-in-poll", test_bh_runs_in_poll);
    add_bh_test("schedule-twice-runs-once", test_bh_schedule_twice_runs_once);
    add_bh_test("reschedule-self-runs-in-later-iteration",
                test_bh_reschedule_self_runs_in_later_iteration);
    add_bh_test("cancel", test_bh_cancel);
    add_bh_test("cancel-other-from-callback",
                test_bh_cancel_other_from_callback);
    add_bh_test("delete-scheduled-never-runs",
                test_bh_delete_scheduled_never_runs);
    add_bh_test("new-after-delete-scheduled-is-idle",
                test_bh_new_after_delete_scheduled_is_idle);
    add_bh_test("delete-other-from-callback",
                test_bh_delete_other_from_callback);
    add_bh_test("delete-self-from-callback", test_bh_delete_self_from_callback);
    add_bh_test("delete-after-context-gone", test_bh_delete_after_context_gone);
    add_bh_test("more-than-doorbells", test_bh_more_than_doorbells);
    add_bh_test("oneshot-runs-once", test_bh_oneshot_runs_once);
    add_bh_test("run-in-schedule-order", test_bh_run_in_schedule_order);
    add_bh_test("unref-frees-pending-oneshots",
                test_bh_unref_frees_pending_oneshots);
    add_bh_test("delete-pending-then-unref-frees-it",
                test_bh_delete_pending_then_unref_frees_it);
    add_bh_test("rescheduled-and-polled-from-own-callback",
                test_bh_rescheduled_and_polled_from_own_callback);
    add_bh_test("schedule-from-4-threads-exactly-once",
                test_bh_schedule_from_4_threads_exactly_once);
    add_bh_test("schedule-from-thread-wakes-loop",
                test_bh_schedule_from_thread_wakes_loop);
    add_bh_test("nested-poll-runs-bh-queued-behind",
                test_bh_nested_poll_runs_bh_queued_behind);
    add_bh_test("nested-poll-runs-long-lived-bh-behind",
                test_bh_nested_poll_runs_long_lived_bh_behind);
    add_bh_test("schedule-keeps-context-alive-until-done",
                test_bh_schedule_keeps_context_alive_until_done);
    return g_test_run();
}
