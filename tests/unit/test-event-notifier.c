/* EventNotifier semantics and aio_set_event_notifier() dispatch. */
#include <glib.h>

#include "tests/unit/aio-test-util.h"
#include "tests/unit/test-util.h"
#include "util/thread.h"
#include "util/atomic.h"

static void test_event_notifier_starts_clear(void)
{
    EventNotifier e;

    g_assert_cmpint(event_notifier_init(&e, false), ==, 0);
    g_assert_cmpint(event_notifier_get_fd(&e), >=, 0);
    g_assert_false(fd_readable(event_notifier_get_fd(&e)));
    g_assert_false(event_notifier_test_and_clear(&e));
    event_notifier_cleanup(&e);
}

static void test_event_notifier_init_active_is_set(void)
{
    EventNotifier e;

    g_assert_cmpint(event_notifier_init(&e, true), ==, 0);
    g_assert_true(fd_readable(event_notifier_get_fd(&e)));
    g_assert_true(event_notifier_test_and_clear(&e));
    g_assert_false(event_notifier_test_and_clear(&e));
    event_notifier_cleanup(&e);
}

static void test_event_notifier_set_many_times_clears_once(void)
{
    EventNotifier e;
    int i;

    g_assert_cmpint(event_notifier_init(&e, false), ==, 0);
    for (i = 0; i < 10; i++) {
        g_assert_cmpint(event_notifier_set(&e), ==, 0);
    }
    g_assert_true(fd_readable(event_notifier_get_fd(&e)));
    /* Counter-style: one test_and_clear takes every set. */
    g_assert_true(event_notifier_test_and_clear(&e));
    g_assert_false(fd_readable(event_notifier_get_fd(&e)));
    g_assert_false(event_notifier_test_and_clear(&e));
    event_notifier_cleanup(&e);
}

static void test_event_notifier_cleanup_twice_is_safe(void)
{
    EventNotifier e;

    g_assert_cmpint(event_notifier_init(&e, false), ==, 0);
    event_notifier_cleanup(&e);
    g_assert_cmpint(event_notifier_get_fd(&e), ==, -1);
    event_notifier_cleanup(&e);
}

/* ---- with an AioContext ---- */

typedef struct Notified {
    EventNotifier e;
    AioContext *ctx;
    int runs;
    bool clear;       /* call test_and_clear in the callback */
    bool remove_self; /* remove the notifier from its own callback */
    bool seen;        /* atomic, for the cross-thread test */
} Notified;

static Notified *from_e(EventNotifier *e)
{
    return (Notified *)((char *)e - offsetof(Notified, e));
}

static void notified_cb(EventNotifier *e)
{
    Notified *n = from_e(e);

    n->runs++;
    if (n->clear) {
        g_assert_true(event_notifier_test_and_clear(e));
    }
    if (n->remove_self) {
        aio_set_event_notifier(n->ctx, e, NULL, NULL);
    }
    dp_atomic_store_release(&n->seen, true);
}

static void test_aio_event_notifier_dispatch(gconstpointer data)
{
    Notified n = {.ctx = test_ctx_new(data), .clear = true};

    g_assert_cmpint(event_notifier_init(&n.e, false), ==, 0);
    aio_set_event_notifier(n.ctx, &n.e, notified_cb, NULL);
    drain(n.ctx);
    g_assert_cmpint(n.runs, ==, 0);

    event_notifier_set(&n.e);
    event_notifier_set(&n.e);
    g_assert_true(aio_poll(n.ctx, true));
    g_assert_cmpint(n.runs, ==, 1);
    drain(n.ctx);
    g_assert_cmpint(n.runs, ==, 1);

    event_notifier_set(&n.e);
    g_assert_true(aio_poll(n.ctx, true));
    g_assert_cmpint(n.runs, ==, 2);

    aio_set_event_notifier(n.ctx, &n.e, NULL, NULL);
    event_notifier_cleanup(&n.e);
    aio_context_unref(n.ctx);
}

static void test_aio_event_notifier_not_cleared_runs_again(gconstpointer data)
{
    Notified n = {.ctx = test_ctx_new(data)};

    g_assert_cmpint(event_notifier_init(&n.e, true), ==, 0);
    aio_set_event_notifier(n.ctx, &n.e, notified_cb, NULL);
    /* A callback that does not clear is called again: level-triggered. */
    g_assert_true(aio_poll(n.ctx, true));
    g_assert_true(aio_poll(n.ctx, true));
    g_assert_cmpint(n.runs, ==, 2);
    aio_set_event_notifier(n.ctx, &n.e, NULL, NULL);
    event_notifier_cleanup(&n.e);
    aio_context_unref(n.ctx);
}

static void test_aio_event_notifier_removal(gconstpointer data)
{
    Notified n = {.ctx = test_ctx_new(data), .clear = true};

    g_assert_cmpint(event_notifier_init(&n.e, false), ==, 0);
    aio_set_event_notifier(n.ctx, &n.e, notified_cb, NULL);
    aio_set_event_notifier(n.ctx, &n.e, NULL, NULL);
    event_notifier_set(&n.e);
    drain(n.ctx);
    g_assert_false(aio_poll(n.ctx, false));
    g_assert_cmpint(n.runs, ==, 0);
    /* Still set: nobody consumed it. */
    g_assert_true(event_notifier_test_and_clear(&n.e));
    event_notifier_cleanup(&n.e);
    aio_context_unref(n.ctx);
}

static void
test_aio_event_notifier_remove_self_from_callback(gconstpointer data)
{
    Notified n = {.ctx = test_ctx_new(data), .remove_self = true};

    g_assert_cmpint(event_notifier_init(&n.e, true), ==, 0);
    aio_set_event_notifier(n.ctx, &n.e, notified_cb, NULL);
    g_assert_true(aio_poll(n.ctx, true));
    g_assert_cmpint(n.runs, ==, 1);
    /* Still set, but removed: no more runs. */
    drain(n.ctx);
    g_assert_cmpint(n.runs, ==, 1);
    event_notifier_cleanup(&n.e);
    aio_context_unref(n.ctx);
}

static void *set_from_thread(void *opaque)
{
    Notified *n = opaque;

    g_assert_cmpint(event_notifier_set(&n->e), ==, 0);
    return NULL;
}

static void test_aio_event_notifier_set_from_thread(gconstpointer data)
{
    Notified n = {.ctx = test_ctx_new(data), .clear = true};
    DpThread thread;

    g_assert_cmpint(event_notifier_init(&n.e, false), ==, 0);
    aio_set_event_notifier(n.ctx, &n.e, notified_cb, NULL);
    drain(n.ctx);
    dp_thread_create(&thread, "en-set", set_from_thread, &n);
    poll_until(n.ctx, &n.seen);
    dp_thread_join(&thread);
    g_assert_cmpint(n.runs, ==, 1);
    aio_set_event_notifier(n.ctx, &n.e, NULL, NULL);
    event_notifier_cleanup(&n.e);
    aio_context_unref(n.ctx);
}

typedef struct Polled {
    EventNotifier e;
    int polls;
    int reads;
} Polled;

static bool polled_poll(EventNotifier *e)
{
    Polled *p = (Polled *)((char *)e - offsetof(Polled, e));

    p->polls++;
    return event_notifier_test_and_clear(e);
}

static void polled_read(EventNotifier *e)
{
    Polled *p = (Polled *)((char *)e - offsetof(Polled, e));

    p->reads++;
    event_notifier_test_and_clear(e);
}

static void nop_timer_cb(void *opaque)
{
}

static void
test_aio_event_notifier_poll_cb_used_when_polling(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    AioTimer *t = aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                                nop_timer_cb, NULL);
    Polled p = {0};
    int i;

    g_assert_cmpint(event_notifier_init(&p.e, false), ==, 0);
    aio_set_event_notifier(ctx, &p.e, polled_read, polled_poll);
    /* Polling on: a bounded number of short blocking waits (a timer a few
     * microseconds ahead) grows the window until the poll callback runs. */
    g_assert_true(
        aio_context_set_poll_params(ctx, 1000000000, 0, 0, &error_abort));
    for (i = 0; i < 1000 && p.polls == 0; i++) {
        aio_timer_mod_ns(t, aio_clock_get_ns(AIO_CLOCK_REALTIME) + 10000);
        aio_poll(ctx, false); /* consumes the notify of arming the timer */
        if (aio_timer_pending(t)) { /* else it fired already */
            aio_poll(ctx, true);
        }
    }
    aio_timer_free(t);
    g_assert_cmpint(p.polls, >, 0);

    /* Polling off: never called. */
    g_assert_true(aio_context_set_poll_params(ctx, 0, 0, 0, &error_abort));
    p.polls = 0;
    event_notifier_set(&p.e);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(p.reads, >=, 1);
    g_assert_cmpint(p.polls, ==, 0);

    aio_set_event_notifier(ctx, &p.e, NULL, NULL);
    event_notifier_cleanup(&p.e);
    aio_context_unref(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/event-notifier/starts-clear",
                    test_event_notifier_starts_clear);
    g_test_add_func("/event-notifier/init-active-is-set",
                    test_event_notifier_init_active_is_set);
    g_test_add_func("/event-notifier/set-many-times-clears-once",
                    test_event_notifier_set_many_times_clears_once);
    g_test_add_func("/event-notifier/cleanup-twice-is-safe",
                    test_event_notifier_cleanup_twice_is_safe);
    test_add_both("/event-notifier/dispatch", test_aio_event_notifier_dispatch);
    test_add_both("/event-notifier/not-cleared-runs-again",
                  test_aio_event_notifier_not_cleared_runs_again);
    test_add_both("/event-notifier/removal", test_aio_event_notifier_removal);
    test_add_both("/event-notifier/remove-self-from-callback",
                  test_aio_event_notifier_remove_self_from_callback);
    test_add_both("/event-notifier/set-from-thread",
                  test_aio_event_notifier_set_from_thread);
    test_add_both("/event-notifier/poll-cb-used-when-polling",
                  test_aio_event_notifier_poll_cb_used_when_polling);
    return g_test_run();
}
