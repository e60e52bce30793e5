/* AioContext: notify protocol, nested poll, adaptive polling, idleness. */
#include <fcntl.h>
#include <stdlib.h>
#include <glib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "aio/aio-internal.h" /* white-box: notify_me, the notifier's fd */
#include "tests/unit/aio-test-util.h"
#include "tests/unit/test-util.h"
#include "util/clock.h"
#include "util/thread.h"
#include "util/atomic.h"

static uint64_t notify_writes(AioContext *ctx)
{
    AioContextStats stats;

    aio_context_get_stats(ctx, &stats);
    return stats.notify_writes;
}

/* Bounded wait until a thread has committed to block in aio_poll(ctx). */
static void wait_until_loop_blocks(AioContext *ctx)
{
    int i;

    for (i = 0; i < 10000000 && !dp_atomic_load_seq_cst(&ctx->notify_me); i++) {
        g_thread_yield();
    }
    g_assert_cmpint(dp_atomic_load_seq_cst(&ctx->notify_me), !=, 0);
}

static void nop_cb(void *opaque)
{
}

/* One blocking wait that ends a few microseconds later, by timer t.  The
 * timer may already be due by the time the notify of arming it is consumed:
 * then there is nothing to block for. */
static void short_block(AioContext *ctx, AioTimer *t)
{
    aio_timer_mod_ns(t, aio_clock_get_ns(AIO_CLOCK_REALTIME) + 10000);
    aio_poll(ctx, false); /* the notify of arming the timer */
    if (aio_timer_pending(t)) {
        aio_poll(ctx, true);
    }
}

/* Makes the polling window non-zero: blocking waits that end a few
 * microseconds later (a timer) are what polling could have covered, so each
 * one grows the window.  Bounded; no timing is asserted. */
static void grow_poll_window(AioContext *ctx)
{
    AioTimer *t =
        aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, nop_cb, NULL);
    int i;

    for (i = 0; i < 1000 && aio_context_get_poll_ns(ctx) == 0; i++) {
        short_block(ctx, t);
    }
    aio_timer_free(t);
    g_assert_cmpint(aio_context_get_poll_ns(ctx), >, 0);
}

/* ---- aio_notify ---- */

typedef struct Waker {
    AioContext *ctx;
    bool flag; /* atomic */
    int rounds;
} Waker;

static void *notify_when_blocked_thread(void *opaque)
{
    Waker *w = opaque;

    wait_until_loop_blocks(w->ctx);
    dp_atomic_store_release(&w->flag, true);
    aio_notify(w->ctx);
    return NULL;
}

static void test_notify_from_thread_wakes_blocking_poll(gconstpointer data)
{
    Waker w = {.ctx = test_ctx_new(data)};
    DpThread thread;
    int round;

    for (round = 0; round < 50; round++) {
        dp_atomic_store_relaxed(&w.flag, false);
        drain_then_poll_once(w.ctx);
        dp_thread_create(&thread, "notifier", notify_when_blocked_thread, &w);
        poll_until(w.ctx, &w.flag); /* hangs on a lost wake-up */
        dp_thread_join(&thread);
    }
    aio_context_unref(w.ctx);
}

static void
test_poll_nonblocking_on_idle_context_returns_false(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int i;

    for (i = 0; i < 10; i++) {
        g_assert_false(aio_poll(ctx, false));
    }
    /* A notify is a wake-up, not progress. */
    aio_notify(ctx);
    g_assert_false(aio_poll(ctx, true));
    g_assert_false(aio_poll(ctx, false));
    aio_context_unref(ctx);
}

static void notify_many_cb(void *opaque)
{
    AioContext *ctx = opaque;
    int i;

    for (i = 0; i < 1000; i++) {
        aio_notify(ctx);
    }
}

static void test_notify_from_loop_thread_writes_nothing(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    uint64_t before;
    int i;

    drain_then_poll_once(ctx);
    before = notify_writes(ctx);
    for (i = 0; i < 1000; i++) {
        aio_notify(ctx);
    }
    /* Also from inside a callback, while the loop is dispatching. */
    aio_bh_schedule_oneshot(ctx, notify_many_cb, ctx);
    g_assert_true(aio_poll(ctx, true));
    drain_then_poll_once(ctx);
    g_assert_cmpuint(notify_writes(ctx) - before, ==, 0);
    aio_context_unref(ctx);
}

static void *notify_many_thread(void *opaque)
{
    notify_many_cb(opaque);
    return NULL;
}

static void test_notify_from_thread_while_loop_not_blocked_writes_nothing(
    gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    DpThread thread;
    uint64_t before;

    drain_then_poll_once(ctx);
    before = notify_writes(ctx);
    /* Nobody is in aio_poll() while the thread notifies. */
    dp_thread_create(&thread, "notify-many", notify_many_thread, ctx);
    dp_thread_join(&thread);
    g_assert_cmpuint(notify_writes(ctx) - before, ==, 0);
    /* The notifies are not lost: the next blocking poll does not sleep. */
    g_assert_false(aio_poll(ctx, true));
    aio_context_unref(ctx);
}

static void *poll_once_thread(void *opaque)
{
    aio_poll(opaque, true);
    return NULL;
}

static void test_notify_while_blocked_writes_once(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    DpThread thread;
    uint64_t before;
    int round;

    drain_then_poll_once(ctx);
    before = notify_writes(ctx);
    for (round = 0; round < 20; round++) {
        dp_thread_create(&thread, "poll-once", poll_once_thread, ctx);
        wait_until_loop_blocks(ctx);
        aio_notify(ctx);
        dp_thread_join(&thread); /* returns only if the notify woke it */
    }
    g_assert_cmpuint(notify_writes(ctx) - before, ==, 20);
    aio_context_unref(ctx);
}

static void test_stale_notifier_wakeup_is_consumed(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int fd = event_notifier_get_fd(&ctx->notifier);

    drain_then_poll_once(ctx);
    /*
     * The eventfd write of an aio_notify() whose `notified` flag an earlier
     * wake-up already consumed (two threads notify; the loop wakes on the
     * first and accepts both flags before the second thread's write).  The
     * loop must clear it when it fires, or every later blocking aio_poll()
     * returns at once: a busy loop that costs a whole core.
     */
    event_notifier_set(&ctx->notifier);
    g_assert_false(aio_poll(ctx, true));
    g_assert_false(fd_readable(fd));
    aio_context_unref(ctx);
}

/* ---- nested aio_poll ---- */

typedef struct Nest {
    AioContext *ctx;
    AioBH *inner;
    int fds[2];
    bool inner_ran;
    bool fd_ran;
    bool outer_done;
    int inner_polls;
} Nest;

static void nest_inner_cb(void *opaque)
{
    Nest *n = opaque;

    n->inner_ran = true;
}

static void nest_outer_bh_cb(void *opaque)
{
    Nest *n = opaque;
    int i;

    aio_bh_schedule(n->inner);
    for (i = 0; i < 1000 && !n->inner_ran; i++) {
        aio_poll(n->ctx, true);
        n->inner_polls++;
    }
    n->outer_done = true;
}

static void test_nested_poll_runs_other_bh(gconstpointer data)
{
    Nest n = {.ctx = test_ctx_new(data)};
    AioBH *outer = aio_bh_new(n.ctx, nest_outer_bh_cb, &n);

    n.inner = aio_bh_new(n.ctx, nest_inner_cb, &n);
    aio_bh_schedule(outer);
    g_assert_true(aio_poll(n.ctx, false));
    g_assert_true(n.outer_done);
    g_assert_true(n.inner_ran);
    g_assert_cmpint(n.inner_polls, >=, 1);
    aio_bh_delete(outer);
    aio_bh_delete(n.inner);
    aio_context_unref(n.ctx);
}

static void nest_fd_read(void *opaque)
{
    Nest *n = opaque;
    char c;

    g_assert_cmpint(read(n->fds[0], &c, 1), ==, 1);
    n->fd_ran = true;
}

static void *nest_writer_thread(void *opaque)
{
    Nest *n = opaque;

    wait_until_loop_blocks(n->ctx);
    g_assert_cmpint(write(n->fds[1], "x", 1), ==, 1);
    return NULL;
}

static void nest_outer_fd_cb(void *opaque)
{
    Nest *n = opaque;
    DpThread thread;
    int i;

    /* The fd becomes readable while the nested poll sleeps. */
    dp_thread_create(&thread, "nest-writer", nest_writer_thread, n);
    for (i = 0; i < 1000 && !n->fd_ran; i++) {
        aio_poll(n->ctx, true);
    }
    dp_thread_join(&thread);
    n->outer_done = true;
}

static void test_nested_poll_dispatches_fd_event(gconstpointer data)
{
    Nest n = {.ctx = test_ctx_new(data)};

    g_assert_cmpint(pipe2(n.fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
    aio_set_fd_handler(n.ctx, n.fds[0], nest_fd_read, NULL, NULL, &n);
    drain_then_poll_once(n.ctx);
    aio_bh_schedule_oneshot(n.ctx, nest_outer_fd_cb, &n);
    g_assert_true(aio_poll(n.ctx, true));
    g_assert_true(n.outer_done);
    g_assert_true(n.fd_ran);
    aio_set_fd_handler(n.ctx, n.fds[0], NULL, NULL, NULL, NULL);
    drain_then_poll_once(n.ctx);
    close(n.fds[0]);
    close(n.fds[1]);
    aio_context_unref(n.ctx);
}

/* ---- adaptive polling ---- */

typedef struct Poller {
    AioContext *ctx;
    int fds[2]; /* fds[0] carries the io_poll handler; never readable */
    int calls;
    bool busy; /* return true (work found) every time */
} Poller;

static bool poller_poll(void *opaque)
{
    Poller *p = opaque;

    p->calls++;
    return p->busy;
}

static void poller_init(Poller *p, AioContext *ctx)
{
    p->ctx = ctx;
    p->calls = 0;
    p->busy = false;
    g_assert_cmpint(pipe2(p->fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
    aio_set_fd_handler(ctx, p->fds[0], NULL, NULL, poller_poll, p);
}

static void poller_cleanup(Poller *p)
{
    aio_set_fd_handler(p->ctx, p->fds[0], NULL, NULL, NULL, NULL);
    drain_then_poll_once(p->ctx);
    close(p->fds[0]);
    close(p->fds[1]);
}

static void
test_poll_handler_called_only_when_polling_enabled(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    AioTimer *t =
        aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, nop_cb, NULL);
    Poller p;
    int i;

    poller_init(&p, ctx);
    /* Off (the default for a bare context): short blocking waits, which
     * would grow a window, never call io_poll. */
    for (i = 0; i < 50; i++) {
        short_block(ctx, t);
    }
    g_assert_cmpint(aio_context_get_poll_ns(ctx), ==, 0);
    g_assert_cmpint(p.calls, ==, 0);

    g_assert_true(
        aio_context_set_poll_params(ctx, 1000000000, 0, 0, &error_abort));
    grow_poll_window(ctx);
    /* Bounded: a wait can be skipped when its timer is due before it. */
    for (i = 0; i < 1000 && p.calls == 0; i++) {
        short_block(ctx, t);
    }
    g_assert_cmpint(p.calls, >, 0);

    /* Off again: the window drops and io_poll is not called any more. */
    g_assert_true(aio_context_set_poll_params(ctx, 0, 0, 0, &error_abort));
    g_assert_cmpint(aio_context_get_poll_ns(ctx), ==, 0);
    p.calls = 0;
    for (i = 0; i < 50; i++) {
        short_block(ctx, t);
    }
    g_assert_cmpint(p.calls, ==, 0);
    aio_timer_free(t);
    poller_cleanup(&p);
    aio_context_unref(ctx);
}

/* ---- polling-mode hooks ---- */

typedef struct ModeNotifier {
    EventNotifier e;
    int begins;
    int ends;
    int polls;
    int polls_after_end; /* poll calls since the last end */
    bool in_mode;
    bool pending; /* work the poll function reports once */
} ModeNotifier;

#define MODE_OF(en) ((ModeNotifier *)(en))

static void mode_read(EventNotifier *e)
{
    event_notifier_test_and_clear(e);
}

static bool mode_poll(EventNotifier *e)
{
    ModeNotifier *m = MODE_OF(e);

    m->polls++;
    m->polls_after_end++;
    if (m->pending) {
        m->pending = false;
        return true;
    }
    return false;
}

static void mode_begin(EventNotifier *e)
{
    ModeNotifier *m = MODE_OF(e);

    g_assert_false(m->in_mode);
    m->in_mode = true;
    m->begins++;
}

static void mode_end(EventNotifier *e)
{
    ModeNotifier *m = MODE_OF(e);

    g_assert_true(m->in_mode);
    m->in_mode = false;
    m->ends++;
    m->polls_after_end = 0;
    /* Work that "arrived" while notifications were off. */
    m->pending = true;
}

static void test_poll_mode_hooks_bracket_busy_polling(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    AioTimer *t =
        aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, nop_cb, NULL);
    ModeNotifier m = {0};
    int i;

    g_assert_cmpint(event_notifier_init(&m.e, false), ==, 0);
    aio_set_event_notifier_poll(ctx, &m.e, mode_read, mode_poll, mode_begin,
                                mode_end);
    /* Polling off: never in polling mode. */
    for (i = 0; i < 20; i++) {
        short_block(ctx, t);
    }
    g_assert_cmpint(m.begins, ==, 0);
    g_assert_cmpint(m.ends, ==, 0);

    /* Polling on: begin when busy-polling starts; before the loop blocks,
     * end, then one more poll, which finds what came meanwhile and keeps
     * the loop from sleeping. */
    g_assert_true(
        aio_context_set_poll_params(ctx, 1000000000, 0, 0, &error_abort));
    grow_poll_window(ctx);
    for (i = 0; i < 1000 && m.ends == 0; i++) {
        short_block(ctx, t);
    }
    g_assert_cmpint(m.begins, >, 0);
    g_assert_cmpint(m.ends, >, 0);
    g_assert_cmpint(m.begins, >=, m.ends);
    g_assert_cmpint(m.begins - m.ends, <=, 1);

    /* Polling off again: a node still in polling mode is taken out of it
     * before the next sleep. */
    g_assert_true(aio_context_set_poll_params(ctx, 0, 0, 0, &error_abort));
    for (i = 0; i < 20; i++) {
        short_block(ctx, t);
    }
    g_assert_false(m.in_mode);
    g_assert_cmpint(m.begins, ==, m.ends);
    g_assert_cmpint(m.polls_after_end, >=, 1); /* the poll after the end */

    aio_set_event_notifier(ctx, &m.e, NULL, NULL);
    event_notifier_cleanup(&m.e);
    aio_timer_free(t);
    aio_context_unref(ctx);
}

static void
test_poll_window_grows_then_shrinks_after_long_block(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    AioTimer *t =
        aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, nop_cb, NULL);
    AioContextStats stats;
    int64_t window;
    int i;

    /* Waits shorter than 10 ms grow the window; longer ones shrink it. */
    g_assert_true(
        aio_context_set_poll_params(ctx, 10000000, 2, 2, &error_abort));
    grow_poll_window(ctx);
    /* Polling that finds nothing before the timer is a miss. */
    aio_context_get_stats(ctx, &stats);
    for (i = 0; i < 1000 && stats.poll_misses == 0; i++) {
        short_block(ctx, t);
        aio_context_get_stats(ctx, &stats);
    }
    g_assert_cmpuint(stats.poll_misses, >, 0);

    /* A 50 ms wait (the timer never fires early) is a long idle block:
     * shrink=2 halves the window... */
    window = aio_context_get_poll_ns(ctx);
    g_assert_cmpint(window, >, 0);
    aio_timer_mod_ns(t, aio_clock_get_ns(AIO_CLOCK_REALTIME) + 50000000);
    aio_poll(ctx, false);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(aio_context_get_poll_ns(ctx), ==, window / 2);

    /* ...and shrink=0 drops it to zero at once. */
    g_assert_true(
        aio_context_set_poll_params(ctx, 10000000, 2, 0, &error_abort));
    grow_poll_window(ctx);
    aio_timer_mod_ns(t, aio_clock_get_ns(AIO_CLOCK_REALTIME) + 50000000);
    aio_poll(ctx, false);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(aio_context_get_poll_ns(ctx), ==, 0);
    aio_timer_free(t);
    aio_context_unref(ctx);
}

typedef struct Pinger {
    AioContext *ctx;
    AioBH *bh;
    int runs;  /* atomic */
    bool stop; /* atomic */
} Pinger;

static void pinger_cb(void *opaque)
{
    Pinger *p = opaque;

    dp_atomic_fetch_add_release(&p->runs, 1);
}

static void *pinger_thread(void *opaque)
{
    Pinger *p = opaque;
    int i;

    /* One BH at a time, each scheduled once the previous one ran, so the
     * loop blocks in between and is woken from this thread. */
    for (i = 0; !dp_atomic_load_acquire(&p->stop); i++) {
        int j;

        aio_bh_schedule(p->bh);
        for (j = 0; j < 100000000 && dp_atomic_load_acquire(&p->runs) == i &&
                    !dp_atomic_load_acquire(&p->stop);
             j++) {
            g_thread_yield();
        }
    }
    return NULL;
}

static void test_poll_window_grows_on_cross_thread_wakeups(gconstpointer data)
{
    Pinger p = {.ctx = test_ctx_new(data)};
    DpThread thread;
    int i;

    /* Any wake-up within a second is one polling could have covered. */
    g_assert_true(
        aio_context_set_poll_params(p.ctx, 1000000000, 0, 0, &error_abort));
    drain_then_poll_once(p.ctx);
    p.bh = aio_bh_new(p.ctx, pinger_cb, &p);
    dp_thread_create(&thread, "pinger", pinger_thread, &p);
    for (i = 0; i < 10000 && aio_context_get_poll_ns(p.ctx) == 0; i++) {
        aio_poll(p.ctx, true);
    }
    dp_atomic_store_release(&p.stop, true);
    dp_thread_join(&thread);
    g_assert_cmpint(aio_context_get_poll_ns(p.ctx), >, 0);
    drain_then_poll_once(p.ctx);
    aio_bh_delete(p.bh);
    aio_context_unref(p.ctx);
}

typedef struct Plain {
    int fd;
    int reads;
} Plain;

static void plain_read(void *opaque)
{
    Plain *pl = opaque;
    char c;

    pl->reads++;
    g_assert_cmpint(read(pl->fd, &c, 1), ==, 1);
}

static void
test_busy_poll_handler_does_not_starve_fd_handler(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    Poller p;
    Plain pl = {0};
    int fds[2];
    int i;

    poller_init(&p, ctx);
    g_assert_true(
        aio_context_set_poll_params(ctx, 1000000000, 0, 0, &error_abort));
    grow_poll_window(ctx);
    g_assert_cmpint(pipe2(fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
    pl.fd = fds[0];
    aio_set_fd_handler(ctx, fds[0], plain_read, NULL, NULL, &pl);
    drain_then_poll_once(ctx);
    p.busy = true;
    p.calls = 0;
    g_assert_cmpint(write(fds[1], "x", 1), ==, 1);
    for (i = 0; i < 3 && pl.reads == 0; i++) {
        g_assert_true(aio_poll(ctx, true));
    }
    g_assert_cmpint(pl.reads, ==, 1);
    g_assert_cmpint(p.calls, >, 0);
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL);
    close(fds[0]);
    close(fds[1]);
    poller_cleanup(&p);
    aio_context_unref(ctx);
}

/* A wait ended by an fd without io_poll (a socket waiting on its client)
 * is one polling could not have shortened: it must not grow the window,
 * and it drops a grown one (shrink=0). */
static void test_poll_window_not_grown_by_fd_without_io_poll(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    Plain pl = {0};
    int fds[2];
    int i, j;

    g_assert_true(
        aio_context_set_poll_params(ctx, 10000000, 2, 0, &error_abort));
    g_assert_cmpint(pipe2(fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
    pl.fd = fds[0];
    aio_set_fd_handler(ctx, fds[0], plain_read, NULL, NULL, &pl);
    drain(ctx);
    for (i = 0; i < 20; i++) {
        g_assert_cmpint(write(fds[1], "x", 1), ==, 1);
        for (j = 0; j < 3 && pl.reads == i; j++) {
            aio_poll(ctx, true);
        }
        g_assert_cmpint(pl.reads, ==, i + 1);
        g_assert_cmpint(aio_context_get_poll_ns(ctx), ==, 0);
    }

    grow_poll_window(ctx);
    g_assert_cmpint(write(fds[1], "x", 1), ==, 1);
    for (j = 0; j < 3 && pl.reads == 20; j++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(pl.reads, ==, 21);
    g_assert_cmpint(aio_context_get_poll_ns(ctx), ==, 0);

    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL);
    drain(ctx);
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(ctx);
}

/* An io_poll handler that parks the loop mid-poll until the test lets it
 * go, so that a notify is known to arrive while the loop busy-polls. */
typedef struct Parker {
    AioContext *ctx;
    int fds[2];
    DpMutex lock;
    DpCond cond;
    bool park;    /* under lock: the next poll call parks */
    bool parked;  /* under lock */
    bool release; /* under lock */
} Parker;

static bool parker_poll(void *opaque)
{
    Parker *pk = opaque;

    dp_mutex_lock(&pk->lock);
    if (pk->park) {
        pk->park = false;
        pk->parked = true;
        dp_cond_broadcast(&pk->cond);
        while (!pk->release) {
            dp_cond_wait(&pk->cond, &pk->lock);
        }
    }
    dp_mutex_unlock(&pk->lock);
    return false;
}

static void *parked_poll_thread(void *opaque)
{
    Parker *pk = opaque;

    aio_poll(pk->ctx, true);
    return NULL;
}

static void test_notify_while_busy_polling_writes_nothing(gconstpointer data)
{
    Parker pk = {.ctx = test_ctx_new(data)};
    DpThread thread;
    uint64_t before;

    dp_mutex_init(&pk.lock);
    dp_cond_init(&pk.cond);
    g_assert_cmpint(pipe2(pk.fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
    aio_set_fd_handler(pk.ctx, pk.fds[0], NULL, NULL, parker_poll, &pk);
    g_assert_true(
        aio_context_set_poll_params(pk.ctx, 1000000000, 0, 0, &error_abort));
    grow_poll_window(pk.ctx);
    drain_then_poll_once(pk.ctx);
    before = notify_writes(pk.ctx);

    pk.park = true;
    dp_thread_create(&thread, "parked-poll", parked_poll_thread, &pk);
    dp_mutex_lock(&pk.lock);
    while (!pk.parked) {
        dp_cond_wait(&pk.cond, &pk.lock);
    }
    /* The loop spins (it sits in its io_poll handler): a notify is seen by
     * polling the notify flag and needs no eventfd write. */
    aio_notify(pk.ctx);
    pk.release = true;
    dp_cond_broadcast(&pk.cond);
    dp_mutex_unlock(&pk.lock);
    dp_thread_join(&thread); /* returns: polling saw the notify */
    g_assert_cmpuint(notify_writes(pk.ctx) - before, ==, 0);

    aio_set_fd_handler(pk.ctx, pk.fds[0], NULL, NULL, NULL, NULL);
    drain_then_poll_once(pk.ctx);
    close(pk.fds[0]);
    close(pk.fds[1]);
    dp_cond_destroy(&pk.cond);
    dp_mutex_destroy(&pk.lock);
    aio_context_unref(pk.ctx);
}

static void test_set_poll_params_rejects_bad_values(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int64_t max_ns, grow, shrink;
    Error *err = NULL;
    static const int64_t bad[][3] = {
        {-1, 0, 0},
        {1000, 1, 0},
        {1000, -2, 0},
        {1000, 0, -1},
    };
    size_t i;

    g_assert_true(aio_context_set_poll_params(ctx, 32768, 4, 3, &err));
    g_assert_null(err);
    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_false(aio_context_set_poll_params(ctx, bad[i][0], bad[i][1],
                                                   bad[i][2], &err));
        g_assert_nonnull(err);
        g_assert_nonnull(error_get_pretty(err));
        error_free(err);
        err = NULL;
        /* A rejected call changes nothing. */
        aio_context_get_poll_params(ctx, &max_ns, &grow, &shrink);
        g_assert_cmpint(max_ns, ==, 32768);
        g_assert_cmpint(grow, ==, 4);
        g_assert_cmpint(shrink, ==, 3);
    }
    g_assert_true(aio_context_set_poll_params(ctx, 0, 0, 0, &err));
    aio_context_get_poll_params(ctx, &max_ns, &grow, &shrink);
    g_assert_cmpint(max_ns, ==, 0);
    aio_context_unref(ctx);
}

/* ---- idle ---- */

/*
 * An idle loop sleeps in its system call and does not go round: counted in
 * iterations (AioContextStats) while the thread is seen asleep, over a
 * number of looks.  No CPU time and no duration is asserted; the looks only
 * give a loop that spins or wakes for nothing the chance to show it.
 */
typedef struct Idle {
    AioContext *ctx;
    bool stop; /* atomic */
    pid_t tid; /* atomic; 0 until the thread runs */
} Idle;

static void *idle_thread(void *opaque)
{
    Idle *id = opaque;

    dp_atomic_store_release(&id->tid, dp_thread_get_tid());
    while (!dp_atomic_load_acquire(&id->stop)) {
        aio_poll(id->ctx, true);
    }
    return NULL;
}

/* Whether thread tid sleeps in epoll_pwait2/epoll_wait/io_uring_enter. */
static bool thread_asleep(pid_t tid)
{
    g_autofree char *path =
        g_strdup_printf("/proc/self/task/%d/syscall", (int)tid);
    g_autofree char *text = NULL;
    long nr;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return false;
    }
    nr = strtol(text, NULL, 10);
    return nr == 441 || nr == 281 || nr == 232 || nr == 426;
}

static void run_idle(gconstpointer data, int64_t poll_max_ns, bool prime)
{
    Idle id = {.ctx = test_ctx_new(data)};
    AioContextStats asleep, later;
    DpThread thread;
    pid_t tid;
    int i;

    g_assert_true(
        aio_context_set_poll_params(id.ctx, poll_max_ns, 0, 0, &error_abort));
    if (prime) {
        grow_poll_window(id.ctx);
    }
    dp_thread_create(&thread, "idle-loop", idle_thread, &id);
    for (i = 0; i < 10000000 && !dp_atomic_load_acquire(&id.tid); i++) {
        g_thread_yield();
    }
    tid = dp_atomic_load_acquire(&id.tid);
    /* Bounded wait until it sleeps (after a polling window, if grown). */
    for (i = 0; i < 100000 && !thread_asleep(tid); i++) {
        g_usleep(100);
    }
    g_assert_true(thread_asleep(tid));
    aio_context_get_stats(id.ctx, &asleep);
    for (i = 0; i < 20; i++) {
        g_usleep(10 * 1000);
        g_assert_true(thread_asleep(tid));
    }
    aio_context_get_stats(id.ctx, &later);
    g_test_message("idle loop: %" G_GUINT64_FORMAT
                   " iterations, %" G_GUINT64_FORMAT
                   " eventfd writes while asleep",
                   later.iterations - asleep.iterations,
                   later.notify_writes - asleep.notify_writes);
    /* Not one iteration, not one wake-up while there was nothing to do. */
    g_assert_cmpuint(later.iterations, ==, asleep.iterations);
    g_assert_cmpuint(later.notify_writes, ==, asleep.notify_writes);
    dp_atomic_store_release(&id.stop, true);
    aio_notify(id.ctx);
    dp_thread_join(&thread);
    aio_context_unref(id.ctx);
}

static void test_idle_loop_uses_no_cpu_polling_off(gconstpointer data)
{
    run_idle(data, 0, false);
}

static void forever_bh(void *opaque)
{
    AioBH **bh = opaque;

    aio_bh_schedule(*bh);
}

/*
 * A BH that reschedules itself forever keeps every blocking aio_poll()
 * from sleeping; the loop may skip the fd harvest of such iterations, but
 * only a bounded number in a row: a ready fd is handled within
 * AIO_FD_SKIP_MAX + 1 iterations, and every iteration makes progress.
 * Once an fd was found ready the bound is AIO_FD_SKIP_MIN + 1 again.
 */
static void test_bh_chain_does_not_starve_fd_handler(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    AioBH *bh = aio_bh_new(ctx, forever_bh, &bh);
    Plain pl = {0};
    int fds[2];
    int i;

    g_assert_cmpint(pipe2(fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
    pl.fd = fds[0];
    aio_set_fd_handler(ctx, fds[0], plain_read, NULL, NULL, &pl);
    drain_then_poll_once(ctx);
    aio_bh_schedule(bh);
    for (i = 0; i < 2 * AIO_FD_SKIP_MAX; i++) {
        g_assert_true(aio_poll(ctx, true));
    }
    g_assert_cmpint(write(fds[1], "x", 1), ==, 1);
    for (i = 0; i < AIO_FD_SKIP_MAX + 1 && pl.reads == 0; i++) {
        g_assert_true(aio_poll(ctx, true));
    }
    g_assert_cmpint(pl.reads, ==, 1);
    /* The harvest found the pipe: the next one comes sooner. */
    g_assert_cmpint(write(fds[1], "y", 1), ==, 1);
    for (i = 0; i < AIO_FD_SKIP_MIN + 1 && pl.reads == 1; i++) {
        g_assert_true(aio_poll(ctx, true));
    }
    g_assert_cmpint(pl.reads, ==, 2);
    aio_bh_delete(bh);
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL);
    close(fds[0]);
    close(fds[1]);
    drain_then_poll_once(ctx);
    aio_context_unref(ctx);
}

static void test_idle_loop_uses_no_cpu_polling_on(gconstpointer data)
{
    /* Start from a grown window: it must shrink away while idle. */
    run_idle(data, 32768, true);
}

int main(int argc, char **argv)
{
    /* The kernel may delay a sleeping thread's timer by its timer slack
     * (50 us by default), which alone exceeds a 32 us polling window:
     * grow_poll_window() needs wake-ups that polling could have covered. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    g_test_init(&argc, &argv, NULL);
    test_add_both("/context/bh-chain-does-not-starve-fd-handler",
                  test_bh_chain_does_not_starve_fd_handler);
    test_add_both("/context/notify-from-thread-wakes-blocking-poll",
                  test_notify_from_thread_wakes_blocking_poll);
    test_add_both("/context/poll-nonblocking-on-idle-context-returns-false",
                  test_poll_nonblocking_on_idle_context_returns_false);
    test_add_both("/context/notify-from-loop-thread-writes-nothing",
                  test_notify_from_loop_thread_writes_nothing);
    test_add_both(
        "/context/notify-from-thread-while-loop-not-blocked-writes-nothing",
        test_notify_from_thread_while_loop_not_blocked_writes_nothing);
    test_add_both("/context/notify-while-blocked-writes-once",
                  test_notify_while_blocked_writes_once);
    test_add_both("/context/stale-notifier-wakeup-is-consumed",
                  test_stale_notifier_wakeup_is_consumed);
    test_add_both("/context/nested-poll-runs-other-bh",
                  test_nested_poll_runs_other_bh);
    test_add_both("/context/nested-poll-dispatches-fd-event",
                  test_nested_poll_dispatches_fd_event);
    test_add_both("/context/poll-handler-called-only-when-polling-enabled",
                  test_poll_handler_called_only_when_polling_enabled);
    test_add_both("/context/poll-mode-hooks-bracket-busy-polling",
                  test_poll_mode_hooks_bracket_busy_polling);
    test_add_both("/context/poll-window-grows-then-shrinks-after-long-block",
                  test_poll_window_grows_then_shrinks_after_long_block);
    test_add_both("/context/poll-window-grows-on-cross-thread-wakeups",
                  test_poll_window_grows_on_cross_thread_wakeups);
    test_add_both("/context/poll-window-not-grown-by-fd-without-io-poll",
                  test_poll_window_not_grown_by_fd_without_io_poll);
    test_add_both("/context/busy-poll-handler-does-not-starve-fd-handler",
                  test_busy_poll_handler_does_not_starve_fd_handler);
    test_add_both("/context/notify-while-busy-polling-writes-nothing",
                  test_notify_while_busy_polling_writes_nothing);
    test_add_both("/context/set-poll-params-rejects-bad-values",
                  test_set_poll_params_rejects_bad_values);
    test_add_both("/context/idle-loop-sleeps-without-iterating-polling-off",
                  test_idle_loop_uses_no_cpu_polling_off);
    test_add_both("/context/idle-loop-sleeps-without-iterating-polling-on",
                  test_idle_loop_uses_no_cpu_polling_on);
    return g_test_run();
}
