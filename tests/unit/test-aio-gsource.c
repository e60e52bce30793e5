/* The AioContext as a GSource: fds, BHs, timers and wake-ups inside GLib. */
#include <glib.h>
#include <unistd.h>

#include "tests/unit/aio-test-util.h"
#include "util/thread.h"
#include "util/atomic.h"

typedef struct Fixture {
    AioContext *ctx;
    GMainContext *gctx;
    GSource *source;
} Fixture;

static void fixture_init(Fixture *f, gconstpointer data)
{
    f->ctx = test_ctx_new(data);
    f->gctx = g_main_context_new();
    f->source = aio_get_g_source(f->ctx);
    g_source_attach(f->source, f->gctx);
}

static void fixture_destroy(Fixture *f)
{
    g_source_destroy(f->source);
    g_source_unref(f->source);
    g_main_context_unref(f->gctx);
    aio_context_unref(f->ctx);
}

/* Iterates (blocking) until *flag is set; bounded. */
static void iterate_until(GMainContext *gctx, const bool *flag)
{
    int i;

    for (i = 0; i < 100000 && !dp_atomic_load_acquire(flag); i++) {
        g_main_context_iteration(gctx, TRUE);
    }
    g_assert_true(dp_atomic_load_acquire(flag));
}

typedef struct Pipe {
    int fds[2];
    bool read;
} Pipe;

static void pipe_read_cb(void *opaque)
{
    Pipe *p = opaque;
    char c;

    g_assert_cmpint(read(p->fds[0], &c, 1), ==, 1);
    dp_atomic_store_release(&p->read, true);
}

/*
 * Each readiness is reported again and again: with io_uring the one-shot
 * poll is re-armed after every event, and that re-arm must reach the
 * kernel before GLib sleeps on the ring fd (prepare flushes it).
 */
static void test_gsource_runs_fd_handler_every_time(gconstpointer data)
{
    Fixture f;
    Pipe p = {.read = false};
    int round;

    fixture_init(&f, data);
    g_assert_cmpint(pipe(p.fds), ==, 0);
    g_main_context_iteration(f.gctx, FALSE);
    aio_set_fd_handler(f.ctx, p.fds[0], pipe_read_cb, NULL, NULL, &p);
    for (round = 0; round < 5; round++) {
        p.read = false;
        g_assert_cmpint(write(p.fds[1], "x", 1), ==, 1);
        iterate_until(f.gctx, &p.read);
    }
    aio_set_fd_handler(f.ctx, p.fds[0], NULL, NULL, NULL, NULL);
    close(p.fds[0]);
    close(p.fds[1]);
    fixture_destroy(&f);
}

static void set_flag_cb(void *opaque)
{
    dp_atomic_store_release((bool *)opaque, true);
}

static void test_gsource_runs_timer(gconstpointer data)
{
    Fixture f;
    bool fired = false;
    AioTimer *t;

    fixture_init(&f, data);
    t = aio_timer_new(f.ctx, AIO_CLOCK_REALTIME, AIO_SCALE_MS, set_flag_cb,
                      &fired);
    aio_timer_mod(t, aio_clock_get_ns(AIO_CLOCK_REALTIME) / AIO_SCALE_MS + 2);
    iterate_until(f.gctx, &fired);
    aio_timer_free(t);
    fixture_destroy(&f);
}

typedef struct Remote {
    AioContext *ctx;
    bool ran;
} Remote;

static void *schedule_from_thread(void *opaque)
{
    Remote *r = opaque;

    aio_bh_schedule_oneshot(r->ctx, set_flag_cb, &r->ran);
    return NULL;
}

/* A BH from another thread must wake a GLib loop asleep in g_poll(): the
 * source counts in notify_me while GLib sleeps.  Many rounds, so the
 * schedule lands before, during and after the sleep. */
static void test_gsource_bh_from_thread_wakes_glib(gconstpointer data)
{
    Fixture f;
    int round;

    fixture_init(&f, data);
    for (round = 0; round < 200; round++) {
        Remote r = {f.ctx, false};
        DpThread t;

        dp_thread_create(&t, "scheduler", schedule_from_thread, &r);
        iterate_until(f.gctx, &r.ran);
        dp_thread_join(&t);
    }
    fixture_destroy(&f);
}

static gboolean idle_count(gpointer opaque)
{
    (*(int *)opaque)++;
    return G_SOURCE_REMOVE;
}

static void test_gsource_runs_beside_other_sources(gconstpointer data)
{
    Fixture f;
    GSource *idle = g_idle_source_new();
    bool bh_ran = false;
    int idles = 0;
    int i;

    fixture_init(&f, data);
    g_source_set_callback(idle, idle_count, &idles, NULL);
    g_source_attach(idle, f.gctx);
    g_source_unref(idle);
    aio_bh_schedule_oneshot(f.ctx, set_flag_cb, &bh_ran);
    for (i = 0; i < 100 && (!bh_ran || idles == 0); i++) {
        g_main_context_iteration(f.gctx, TRUE);
    }
    g_assert_true(bh_ran);
    g_assert_cmpint(idles, ==, 1);
    fixture_destroy(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    test_add_both("/gsource/runs-fd-handler-every-time",
                  test_gsource_runs_fd_handler_every_time);
    test_add_both("/gsource/runs-timer", test_gsource_runs_timer);
    test_add_both("/gsource/bh-from-thread-wakes-glib",
                  test_gsource_bh_from_thread_wakes_glib);
    test_add_both("/gsource/runs-beside-other-sources",
                  test_gsource_runs_beside_other_sources);
    return g_test_run();
}
