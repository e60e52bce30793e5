/* The adaptive-polling policy (aio/poll-window.c): the window rule, the
 * wake-up estimate, and a real context sampling its own wake-up. */
#include <glib.h>

#include "aio/aio-internal.h" /* white-box: notify_me */
#include "aio/poll-window.h"
#include "util/atomic.h"
#include "util/thread.h"

#define MAX_NS 32768

static const AioPollParams qemu_defaults = {.max_ns = MAX_NS};

/* In another thread: once ctx's loop has committed to sleep, wakes it. */
static void *notify_when_blocked(void *opaque)
{
    AioContext *ctx = opaque;
    int i;

    for (i = 0; i < 10000000 && !dp_atomic_load_seq_cst(&ctx->notify_me); i++) {
        g_thread_yield();
    }
    aio_notify(ctx);
    return NULL;
}

/* Runs first: the estimate is process-wide and starts at zero. */
static void test_sleeping_wakeup_is_sampled(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    DpThread thread;
    int i;

    g_assert_cmpint(aio_wake_latency_ns(), ==, 0);
    /* Polling on (so waits are measured) with a window that stays tiny. */
    g_assert_true(aio_context_set_poll_params(ctx, 1, 0, 0, &error_abort));
    while (aio_poll(ctx, false)) {
    }
    for (i = 0; i < 100 && aio_wake_latency_ns() == 0; i++) {
        dp_thread_create(&thread, "notifier", notify_when_blocked, ctx);
        aio_poll(ctx, true); /* returns once the notify woke it */
        dp_thread_join(&thread);
    }
    /* An eventfd write and a sleeping thread's return take time. */
    g_assert_cmpint(aio_wake_latency_ns(), >, 0);
    aio_context_unref(ctx);
}

static void test_wake_estimate_is_a_clamped_moving_average(void)
{
    int64_t before = aio_wake_latency_ns();
    int64_t est;

    g_assert_cmpint(before, >, 0); /* the test above ran */
    aio_wake_latency_sample(-5);   /* a clock going backwards: ignored */
    g_assert_cmpint(aio_wake_latency_ns(), ==, before);
    /* Samples of a constant converge to it. */
    for (int i = 0; i < 200; i++) {
        aio_wake_latency_sample(20000);
    }
    est = aio_wake_latency_ns();
    g_assert_cmpint(est, >=, 19900);
    g_assert_cmpint(est, <=, 20000);
    /* One sample moves the average by an eighth of the difference. */
    aio_wake_latency_sample(est + 8000);
    g_assert_cmpint(aio_wake_latency_ns(), ==, est + 1000);
    /* A ten-second sample (a descheduled thread) counts as 1 ms. */
    est = aio_wake_latency_ns();
    aio_wake_latency_sample(10000000000LL);
    g_assert_cmpint(aio_wake_latency_ns(), ==, est + (1000000 - est) / 8);
}

static void test_window_rule(void)
{
    AioPollParams halve = {.max_ns = MAX_NS, .shrink = 2};
    AioPollParams grow4 = {.max_ns = MAX_NS, .grow = 4};
    AioPollParams off = {.max_ns = 0};

    /* Polling off: no window. */
    g_assert_cmpint(aio_poll_window_next(&off, 8000, 100, true, 0), ==, 0);
    /* A wait within the window: unchanged. */
    g_assert_cmpint(aio_poll_window_next(&qemu_defaults, 8000, 8000, true, 0),
                    ==, 8000);
    /* Waits polling could have covered grow it: 0 -> 4 us -> x2 (or
     * x poll-grow), never past poll-max-ns. */
    g_assert_cmpint(aio_poll_window_next(&qemu_defaults, 0, 10000, true, 0), ==,
                    AIO_POLL_NS_START);
    g_assert_cmpint(aio_poll_window_next(&qemu_defaults, 4000, 10000, true, 0),
                    ==, 8000);
    g_assert_cmpint(aio_poll_window_next(&grow4, 4000, 10000, true, 0), ==,
                    16000);
    g_assert_cmpint(
        aio_poll_window_next(&qemu_defaults, 16384 + 8192, MAX_NS, true, 0), ==,
        MAX_NS);
    /* Longer than poll-max-ns with no wake-up cost known: shrink (to zero
     * with poll-shrink 0, divided otherwise). */
    g_assert_cmpint(
        aio_poll_window_next(&qemu_defaults, 16000, MAX_NS + 1, true, 0), ==,
        0);
    g_assert_cmpint(aio_poll_window_next(&halve, 16000, MAX_NS + 1, true, 0),
                    ==, 8000);
    /* A wait polling could not have seen end shrinks, however short. */
    g_assert_cmpint(
        aio_poll_window_next(&qemu_defaults, 16000, 20000, false, 20000), ==,
        0);
    g_assert_cmpint(aio_poll_window_next(&halve, 16000, 20000, false, 0), ==,
                    8000);
}

static void test_wakeup_cost_extends_reach(void)
{
    /* A 50 us wait of which 22 us was the sleeping wake-up: polling would
     * have seen the event after 28 us, so the window grows... */
    g_assert_cmpint(
        aio_poll_window_next(&qemu_defaults, 16384, 50000, true, 22000), ==,
        MAX_NS);
    g_assert_cmpint(aio_poll_window_next(&qemu_defaults, 0, 50000, true, 22000),
                    ==, AIO_POLL_NS_START);
    /* ...but a wait longer than poll-max-ns plus the wake-up shrinks it. */
    g_assert_cmpint(
        aio_poll_window_next(&qemu_defaults, 16384, 56000, true, 22000), ==, 0);
    /* The wake-up cost at most doubles the reach. */
    g_assert_cmpint(
        aio_poll_window_next(&qemu_defaults, 16384, 2 * MAX_NS, true, 1000000),
        ==, MAX_NS);
    g_assert_cmpint(aio_poll_window_next(&qemu_defaults, 16384, 2 * MAX_NS + 1,
                                         true, 1000000),
                    ==, 0);
    /* A negative estimate is no estimate. */
    g_assert_cmpint(
        aio_poll_window_next(&qemu_defaults, 16384, MAX_NS + 1, true, -7), ==,
        0);
}

/*
 * Two loops handing work to each other.  While the peer sleeps, our work
 * comes back after its wake-up (22 us here); if our window is shorter we
 * sleep too, and the wait we measure is both wake-ups, 44 us, longer than
 * poll-max-ns.  Judged by the wait alone the window never leaves zero
 * after one hiccup; with our wake-up taken off it grows until it covers
 * the peer's, after which the hand-off is polled.
 */
static int64_t ping_pong_window(int64_t wake_estimate)
{
    const int64_t wake = 22000, answer_after = wake;
    int64_t window = 0;
    int i;

    for (i = 0; i < 10; i++) {
        if (window >= answer_after) {
            break; /* polling caught it: no adjustment */
        }
        window = aio_poll_window_next(&qemu_defaults, window,
                                      answer_after + wake, true, wake_estimate);
    }
    return window;
}

static void test_ping_pong_recovers_from_zero(void)
{
    g_assert_cmpint(ping_pong_window(0), ==, 0);
    g_assert_cmpint(ping_pong_window(22000), >=, 22000);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/poll-window/sleeping-wakeup-is-sampled",
                    test_sleeping_wakeup_is_sampled);
    g_test_add_func("/poll-window/wake-estimate-is-a-clamped-moving-average",
                    test_wake_estimate_is_a_clamped_moving_average);
    g_test_add_func("/poll-window/window-rule", test_window_rule);
    g_test_add_func("/poll-window/wakeup-cost-extends-reach",
                    test_wakeup_cost_extends_reach);
    g_test_add_func("/poll-window/ping-pong-recovers-from-zero",
                    test_ping_pong_recovers_from_zero);
    return g_test_run();
}
