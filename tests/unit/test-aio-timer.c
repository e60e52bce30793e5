/* Timers: ordering, arm/re-arm/delete, clocks and scales, wake-ups, heap. */
#include <glib.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "aio/aio-internal.h" /* white-box: ctx->notify_me */
#include "tests/unit/aio-test-util.h"
#include "util/thread.h"
#include "util/atomic.h"

/* ---- firing order ---- */

typedef struct OrderItem {
    AioTimer *timer;
    GArray *log;
    int id;
} OrderItem;

static void order_cb(void *opaque)
{
    OrderItem *item = opaque;

    g_array_append_val(item->log, item->id);
}

#define ORDER_N 500

static void test_timer_fires_in_deadline_order(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    GArray *log = g_array_new(false, false, sizeof(int));
    OrderItem items[ORDER_N];
    int64_t deadline[ORDER_N];
    int64_t now = aio_clock_get_ns(AIO_CLOCK_REALTIME);
    GRand *rand = g_rand_new_with_seed(42);
    int i;

    /* Distinct deadlines, all already due, armed in random order: only the
     * heap decides the firing order. */
    for (i = 0; i < ORDER_N; i++) {
        deadline[i] = now - 1000000000 +
                      (int64_t)g_rand_int_range(rand, 0, 1000000) * 1000 + i;
        items[i] = (OrderItem){.log = log, .id = i};
        items[i].timer = aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                                       order_cb, &items[i]);
        aio_timer_mod_ns(items[i].timer, deadline[i]);
    }
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpuint(log->len, ==, ORDER_N);
    for (i = 1; i < ORDER_N; i++) {
        int prev = g_array_index(log, int, i - 1);
        int cur = g_array_index(log, int, i);

        g_assert_cmpint(deadline[prev], <, deadline[cur]);
    }
    for (i = 0; i < ORDER_N; i++) {
        aio_timer_free(items[i].timer);
    }
    g_rand_free(rand);
    g_array_free(log, true);
    aio_context_unref(ctx);
}

static void test_timer_equal_deadlines_fire_in_arming_order(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    GArray *log = g_array_new(false, false, sizeof(int));
    OrderItem items[64];
    int64_t when = aio_clock_get_ns(AIO_CLOCK_REALTIME) - 1;
    int i;

    for (i = 0; i < 64; i++) {
        items[i] = (OrderItem){.log = log, .id = i};
        items[i].timer = aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                                       order_cb, &items[i]);
    }
    /* Arm in a scrambled order; that order is the firing order. */
    for (i = 0; i < 64; i++) {
        aio_timer_mod_ns(items[(i * 37) % 64].timer, when);
    }
    aio_poll(ctx, false);
    g_assert_cmpuint(log->len, ==, 64);
    for (i = 0; i < 64; i++) {
        g_assert_cmpint(g_array_index(log, int, i), ==, (i * 37) % 64);
    }
    for (i = 0; i < 64; i++) {
        aio_timer_free(items[i].timer);
    }
    g_array_free(log, true);
    aio_context_unref(ctx);
}

/* ---- arm, delete, re-arm ---- */

static void count_cb(void *opaque)
{
    (*(int *)opaque)++;
}

static void test_timer_del_prevents_firing(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int runs = 0;
    AioTimer *t =
        aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, count_cb, &runs);

    aio_timer_mod_ns(t, 0); /* due at once */
    g_assert_true(aio_timer_pending(t));
    aio_timer_del(t);
    g_assert_false(aio_timer_pending(t));
    g_assert_cmpint(aio_timer_expire_time(t), ==, -1);
    drain_then_poll_once(ctx);
    g_assert_cmpint(runs, ==, 0);
    aio_timer_del(t); /* deleting an unarmed timer is harmless */
    aio_timer_free(t);
    aio_context_unref(ctx);
}

static void test_timer_rearm_moves_deadline(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int runs = 0;
    AioTimer *t =
        aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, count_cb, &runs);
    int64_t now = aio_clock_get_ns(AIO_CLOCK_REALTIME);

    /* Far future, then due: the second arming replaces the first. */
    aio_timer_mod_ns(t, now + 3600 * G_GINT64_CONSTANT(1000000000));
    aio_timer_mod_ns(t, now - 1);
    g_assert_cmpint(aio_timer_expire_time(t), ==, now - 1);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(runs, ==, 1);
    g_assert_false(aio_timer_pending(t));

    /* Due, then far future: it must not fire now, and it stays armed. */
    aio_timer_mod_ns(t, now - 1);
    aio_timer_mod_ns(t, now + 3600 * G_GINT64_CONSTANT(1000000000));
    drain_then_poll_once(ctx);
    g_assert_cmpint(runs, ==, 1);
    g_assert_true(aio_timer_pending(t));
    aio_timer_free(t);
    aio_context_unref(ctx);
}

typedef struct SelfFree {
    AioTimer *timer;
    int runs;
} SelfFree;

static void self_free_cb(void *opaque)
{
    SelfFree *s = opaque;

    s->runs++;
    aio_timer_free(s->timer);
    s->timer = NULL;
}

static void test_timer_free_from_own_callback(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    SelfFree s = {0};
    int other_runs = 0;
    AioTimer *other = aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                                    count_cb, &other_runs);

    s.timer =
        aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, self_free_cb, &s);
    aio_timer_mod_ns(s.timer, 1);
    aio_timer_mod_ns(other, 2); /* fires after it, in the same poll */
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(s.runs, ==, 1);
    g_assert_null(s.timer);
    g_assert_cmpint(other_runs, ==, 1);
    aio_timer_free(other);
    aio_context_unref(ctx);
}

typedef struct Rearm {
    AioTimer *timer;
    int runs;
} Rearm;

static void rearm_in_past_cb(void *opaque)
{
    Rearm *r = opaque;

    r->runs++;
    aio_timer_mod_ns(r->timer, 0);
}

static void
test_timer_rearm_in_past_from_callback_lets_poll_return(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    Rearm r = {0};
    int i;

    r.timer = aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                            rearm_in_past_cb, &r);
    aio_timer_mod_ns(r.timer, 0);
    /* Each poll runs it once and returns, although it is always due. */
    for (i = 1; i <= 5; i++) {
        g_assert_true(aio_poll(ctx, i % 2 == 0));
        g_assert_cmpint(r.runs, ==, i);
    }
    aio_timer_free(r.timer);
    aio_context_unref(ctx);
}

typedef struct Killer {
    AioTimer *victim;
    bool free_it;
    int runs;
} Killer;

static void killer_cb(void *opaque)
{
    Killer *k = opaque;

    k->runs++;
    if (k->free_it) {
        aio_timer_free(k->victim);
    } else {
        aio_timer_del(k->victim);
    }
    k->victim = NULL;
}

static void run_killer(gconstpointer data, bool free_it)
{
    AioContext *ctx = test_ctx_new(data);
    Killer k = {.free_it = free_it};
    int victim_runs = 0;
    AioTimer *killer =
        aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, killer_cb, &k);
    AioTimer *victim = aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                                     count_cb, &victim_runs);

    /* Both due; the killer fires first and disarms (or frees) the victim,
     * which must then not fire in the same run. */
    k.victim = victim;
    aio_timer_mod_ns(killer, 1);
    aio_timer_mod_ns(victim, 2);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(k.runs, ==, 1);
    g_assert_cmpint(victim_runs, ==, 0);
    drain_then_poll_once(ctx);
    g_assert_cmpint(victim_runs, ==, 0);
    if (!free_it) {
        g_assert_false(aio_timer_pending(victim));
        aio_timer_free(victim);
    }
    aio_timer_free(killer);
    aio_context_unref(ctx);
}

static void test_timer_del_other_due_timer_from_callback(gconstpointer data)
{
    run_killer(data, false);
}

static void test_timer_free_other_due_timer_from_callback(gconstpointer data)
{
    run_killer(data, true);
}

typedef struct NestedTimer {
    AioContext *ctx;
    AioTimer *inner;
    bool inner_fired;
    bool outer_done;
} NestedTimer;

static void nested_inner_cb(void *opaque)
{
    ((NestedTimer *)opaque)->inner_fired = true;
}

static void nested_outer_cb(void *opaque)
{
    NestedTimer *n = opaque;
    int i;

    /* A callback that waits, in a nested poll, for a timer it arms. */
    aio_timer_mod_ns(n->inner, aio_clock_get_ns(AIO_CLOCK_REALTIME) + 1000000);
    for (i = 0; i < 1000 && !n->inner_fired; i++) {
        aio_poll(n->ctx, true);
    }
    n->outer_done = true;
}

static void test_timer_nested_poll_from_timer_callback(gconstpointer data)
{
    NestedTimer n = {.ctx = test_ctx_new(data)};
    AioTimer *outer = aio_timer_new(n.ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                                    nested_outer_cb, &n);

    n.inner = aio_timer_new(n.ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                            nested_inner_cb, &n);
    aio_timer_mod_ns(outer, 0);
    g_assert_true(aio_poll(n.ctx, false));
    g_assert_true(n.outer_done);
    g_assert_true(n.inner_fired);
    aio_timer_free(outer);
    aio_timer_free(n.inner);
    aio_context_unref(n.ctx);
}

/* ---- clocks and scales ---- */

static void test_timer_host_clock(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int runs = 0;
    AioTimer *t =
        aio_timer_new(ctx, AIO_CLOCK_HOST, AIO_SCALE_MS, count_cb, &runs);
    int64_t now_ms = aio_clock_get_ns(AIO_CLOCK_HOST) / AIO_SCALE_MS;
    int i;

    /* The host clock is wall-clock time, far ahead of the monotonic one:
     * a deadline an hour ahead on it must not fire. */
    g_assert_cmpint(aio_clock_get_ns(AIO_CLOCK_HOST), >,
                    aio_clock_get_ns(AIO_CLOCK_REALTIME));
    aio_timer_mod(t, now_ms + 3600 * 1000);
    drain_then_poll_once(ctx);
    g_assert_cmpint(runs, ==, 0);

    aio_timer_mod(t, now_ms + 5);
    for (i = 0; i < 1000 && runs == 0; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(runs, ==, 1);
    g_assert_cmpint(aio_clock_get_ns(AIO_CLOCK_HOST), >=,
                    (now_ms + 5) * AIO_SCALE_MS);
    aio_timer_free(t);
    aio_context_unref(ctx);
}

static void test_timer_scales(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    GArray *log = g_array_new(false, false, sizeof(int));
    OrderItem item_ns = {.log = log, .id = 0};
    OrderItem item_us = {.log = log, .id = 1};
    OrderItem item_ms = {.log = log, .id = 2};
    AioTimer *ns = aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                                 order_cb, &item_ns);
    AioTimer *us = aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_US,
                                 order_cb, &item_us);
    AioTimer *ms = aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_MS,
                                 order_cb, &item_ms);
    int64_t base_ms =
        aio_clock_get_ns(AIO_CLOCK_REALTIME) / AIO_SCALE_MS + 3600 * 1000;

    /* The same instant in three units. */
    aio_timer_mod(ns, base_ms * 1000000);
    aio_timer_mod(us, base_ms * 1000);
    aio_timer_mod(ms, base_ms);
    g_assert_cmpint(aio_timer_expire_time(ns), ==, base_ms * 1000000);
    g_assert_cmpint(aio_timer_expire_time(us), ==, base_ms * 1000);
    g_assert_cmpint(aio_timer_expire_time(ms), ==, base_ms);

    /* mod_ns takes ns whatever the scale; expire_time answers in scale,
     * rounded down. */
    aio_timer_mod_ns(ms, base_ms * AIO_SCALE_MS + 999999);
    g_assert_cmpint(aio_timer_expire_time(ms), ==, base_ms);
    aio_timer_mod_ns(us, base_ms * AIO_SCALE_MS + 1999);
    g_assert_cmpint(aio_timer_expire_time(us), ==, base_ms * 1000 + 1);

    /* "1" is 1 ns, 1 us and 1 ms after boot: all due, and armed in the
     * reverse order they must fire in, since deadlines compare in ns. */
    aio_timer_mod(ms, 1);
    aio_timer_mod(us, 1);
    aio_timer_mod(ns, 1);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpuint(log->len, ==, 3);
    g_assert_cmpint(g_array_index(log, int, 0), ==, 0);
    g_assert_cmpint(g_array_index(log, int, 1), ==, 1);
    g_assert_cmpint(g_array_index(log, int, 2), ==, 2);
    g_array_free(log, true);
    aio_timer_free(ns);
    aio_timer_free(us);
    aio_timer_free(ms);
    aio_context_unref(ctx);
}

/* ---- blocking ---- */

typedef struct Fired {
    bool fired;
    int64_t deadline;
    int64_t fired_at;
} Fired;

static void fired_cb(void *opaque)
{
    Fired *f = opaque;

    f->fired_at = aio_clock_get_ns(AIO_CLOCK_REALTIME);
    f->fired = true;
}

static void
test_timer_blocking_poll_returns_after_timer_fired(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    Fired f = {0};
    AioTimer *t =
        aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, fired_cb, &f);

    drain_then_poll_once(ctx);
    f.deadline = aio_clock_get_ns(AIO_CLOCK_REALTIME) + 20 * 1000000;
    aio_timer_mod_ns(t, f.deadline);
    drain_then_poll_once(ctx);
    /* One blocking call: it sleeps until the deadline and runs the timer,
     * never returning early with nothing done. */
    g_assert_true(aio_poll(ctx, true));
    g_assert_true(f.fired);
    g_assert_cmpint(f.fired_at, >=, f.deadline);
    aio_timer_free(t);
    aio_context_unref(ctx);
}

static void nop_read(void *opaque)
{
}

static void test_timer_blocking_poll_after_handler_removal_sleeps_until_timer(
    gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    Fired f = {0};
    AioTimer *t =
        aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, fired_cb, &f);
    int fds[2];

    g_assert_cmpint(pipe(fds), ==, 0);
    aio_set_fd_handler(ctx, fds[0], nop_read, NULL, NULL, NULL);
    drain_then_poll_once(ctx);
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL);
    f.deadline = aio_clock_get_ns(AIO_CLOCK_REALTIME) + 20 * 1000000;
    aio_timer_mod_ns(t, f.deadline);
    aio_poll(ctx, false); /* the notify of the two changes above */
    /* The backend's own bookkeeping (cancelling the old poll) is no event. */
    g_assert_true(aio_poll(ctx, true));
    g_assert_true(f.fired);
    aio_timer_free(t);
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(ctx);
}

typedef struct Interrupter {
    AioContext *ctx;
    pthread_t loop_thread;
    int signals;
} Interrupter;

static void on_sigusr1(int sig)
{
}

static void *interrupter_thread(void *opaque)
{
    Interrupter *in = opaque;
    int i;

    /* Interrupt the sleeping loop a few times; each try waits (bounded)
     * until the loop has committed to block. */
    for (in->signals = 0; in->signals < 5; in->signals++) {
        for (i = 0;
             i < 10000000 && !dp_atomic_load_seq_cst(&in->ctx->notify_me);
             i++) {
            g_thread_yield();
        }
        pthread_kill(in->loop_thread, SIGUSR1);
        g_usleep(1000); /* spacing between signals, not synchronisation */
    }
    return NULL;
}

static void
test_timer_blocking_poll_interrupted_by_signal_sleeps_on(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    Interrupter in = {.ctx = ctx, .loop_thread = pthread_self()};
    struct sigaction sa = {.sa_handler = on_sigusr1};
    struct sigaction old_sa;
    Fired f = {0};
    AioTimer *t =
        aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, fired_cb, &f);
    DpThread thread;

    /* A signal (or io_uring task work) interrupting the wait is not an
     * event: the blocking poll goes on sleeping until its timer. */
    g_assert_cmpint(sigaction(SIGUSR1, &sa, &old_sa), ==, 0);
    drain_then_poll_once(ctx);
    f.deadline = aio_clock_get_ns(AIO_CLOCK_REALTIME) + 100 * 1000000;
    aio_timer_mod_ns(t, f.deadline);
    drain_then_poll_once(ctx);
    dp_thread_create(&thread, "interrupter", interrupter_thread, &in);
    g_assert_true(aio_poll(ctx, true));
    g_assert_true(f.fired);
    g_assert_cmpint(f.fired_at, >=, f.deadline);
    dp_thread_join(&thread);
    g_assert_cmpint(sigaction(SIGUSR1, &old_sa, NULL), ==, 0);
    aio_timer_free(t);
    aio_context_unref(ctx);
}

typedef struct CrossArm {
    AioContext *ctx;
    AioTimer *timer;
    Fired f;
} CrossArm;

static void *cross_arm_thread(void *opaque)
{
    CrossArm *c = opaque;
    int i;

    /* Wait (bounded) until the loop sleeps with no timer at all. */
    for (i = 0; i < 10000000 && !dp_atomic_load_seq_cst(&c->ctx->notify_me);
         i++) {
        g_thread_yield();
    }
    aio_timer_mod_ns(c->timer, aio_clock_get_ns(AIO_CLOCK_REALTIME) + 1000000);
    return NULL;
}

static void cross_fired_cb(void *opaque)
{
    Fired *f = opaque;

    dp_atomic_store_release(&f->fired, true);
}

static void test_timer_armed_from_thread_wakes_sleeping_loop(gconstpointer data)
{
    CrossArm c = {.ctx = test_ctx_new(data)};
    DpThread thread;

    c.timer = aio_timer_new(c.ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                            cross_fired_cb, &c.f);
    drain_then_poll_once(c.ctx);
    dp_thread_create(&thread, "timer-arm", cross_arm_thread, &c);
    /* Without a notify from aio_timer_mod, the loop would sleep forever. */
    poll_until(c.ctx, &c.f.fired);
    dp_thread_join(&thread);
    aio_timer_free(c.timer);
    aio_context_unref(c.ctx);
}

/* ---- heap stress against a model ---- */

#define HEAP_N 10000
#define HEAP_OPS 100000

typedef struct HeapItem {
    AioTimer *timer;
    GArray *log;
    int id;
    int64_t expire;   /* model: -1 when unarmed */
    uint64_t arm_seq; /* model: order of the last arming */
} HeapItem;

static void heap_cb(void *opaque)
{
    HeapItem *h = opaque;

    g_array_append_val(h->log, h->id);
}

static HeapItem *heap_items; /* for the sort below */

static int heap_model_cmp(gconstpointer a, gconstpointer b)
{
    const HeapItem *x = &heap_items[*(const int *)a];
    const HeapItem *y = &heap_items[*(const int *)b];

    if (x->expire != y->expire) {
        return x->expire < y->expire ? -1 : 1;
    }
    return x->arm_seq < y->arm_seq ? -1 : x->arm_seq > y->arm_seq;
}

static void test_timer_heap_stress_matches_model(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    GArray *log = g_array_new(false, false, sizeof(int));
    GArray *expected = g_array_new(false, false, sizeof(int));
    HeapItem *items = g_new0(HeapItem, HEAP_N);
    GRand *rand = g_rand_new_with_seed(1234);
    /* All deadlines lie in the past (so one poll fires every armed timer),
     * in a narrow range so that equal deadlines are common. */
    int64_t base = aio_clock_get_ns(AIO_CLOCK_REALTIME) - 1000000000;
    uint64_t seq = 0;
    int i;

    for (i = 0; i < HEAP_N; i++) {
        items[i] = (HeapItem){.log = log, .id = i, .expire = -1};
        items[i].timer = aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                                       heap_cb, &items[i]);
    }
    for (i = 0; i < HEAP_OPS; i++) {
        HeapItem *h = &items[g_rand_int_range(rand, 0, HEAP_N)];

        if (g_rand_int_range(rand, 0, 3) == 0) {
            aio_timer_del(h->timer);
            h->expire = -1;
        } else {
            h->expire = base + g_rand_int_range(rand, 0, 5000);
            h->arm_seq = seq++;
            aio_timer_mod_ns(h->timer, h->expire);
        }
        if (i % 1000 == 0) {
            HeapItem *p = &items[g_rand_int_range(rand, 0, HEAP_N)];

            g_assert_cmpint(aio_timer_pending(p->timer), ==, p->expire >= 0);
            g_assert_cmpint(aio_timer_expire_time(p->timer), ==, p->expire);
        }
    }
    for (i = 0; i < HEAP_N; i++) {
        g_assert_cmpint(aio_timer_pending(items[i].timer), ==,
                        items[i].expire >= 0);
        g_assert_cmpint(aio_timer_expire_time(items[i].timer), ==,
                        items[i].expire);
        if (items[i].expire >= 0) {
            g_array_append_val(expected, i);
        }
    }
    heap_items = items;
    g_array_sort(expected, heap_model_cmp);

    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpuint(log->len, ==, expected->len);
    for (i = 0; i < (int)log->len; i++) {
        if (g_array_index(log, int, i) != g_array_index(expected, int, i)) {
            g_error("firing #%d: timer %d, model says %d", i,
                    g_array_index(log, int, i),
                    g_array_index(expected, int, i));
        }
    }
    for (i = 0; i < HEAP_N; i++) {
        g_assert_false(aio_timer_pending(items[i].timer));
        aio_timer_free(items[i].timer);
    }
    g_rand_free(rand);
    g_free(items);
    g_array_free(expected, true);
    g_array_free(log, true);
    aio_context_unref(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    test_add_both("/timer/fires-in-deadline-order",
                  test_timer_fires_in_deadline_order);
    test_add_both("/timer/equal-deadlines-fire-in-arming-order",
                  test_timer_equal_deadlines_fire_in_arming_order);
    test_add_both("/timer/del-prevents-firing", test_timer_del_prevents_firing);
    test_add_both("/timer/rearm-moves-deadline",
                  test_timer_rearm_moves_deadline);
    test_add_both("/timer/free-from-own-callback",
                  test_timer_free_from_own_callback);
    test_add_both("/timer/rearm-in-past-from-callback-lets-poll-return",
                  test_timer_rearm_in_past_from_callback_lets_poll_return);
    test_add_both("/timer/del-other-due-timer-from-callback",
                  test_timer_del_other_due_timer_from_callback);
    test_add_both("/timer/free-other-due-timer-from-callback",
                  test_timer_free_other_due_timer_from_callback);
    test_add_both("/timer/nested-poll-from-timer-callback",
                  test_timer_nested_poll_from_timer_callback);
    test_add_both("/timer/host-clock", test_timer_host_clock);
    test_add_both("/timer/scales", test_timer_scales);
    test_add_both("/timer/blocking-poll-returns-after-timer-fired",
                  test_timer_blocking_poll_returns_after_timer_fired);
    test_add_both(
        "/timer/blocking-poll-after-handler-removal-sleeps-until-timer",
        test_timer_blocking_poll_after_handler_removal_sleeps_until_timer);
    test_add_both("/timer/blocking-poll-interrupted-by-signal-sleeps-on",
                  test_timer_blocking_poll_interrupted_by_signal_sleeps_on);
    test_add_both("/timer/armed-from-thread-wakes-sleeping-loop",
                  test_timer_armed_from_thread_wakes_sleeping_loop);
    test_add_both("/timer/heap-stress-matches-model",
                  test_timer_heap_stress_matches_model);
    return g_test_run();
}
