/*
 * The code of docs/iothreads.md, compiled and run.  Each ```c block of the
 * page is copied verbatim from this file, and the last test checks that
 * (so the page cannot drift from code that builds).
 */
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "dataplane/object.h"
#include "util/thread.h"

/* ---- rule 1: callbacks need no lock ---- */

typedef struct Ticker {
    AioTimer *timer;
    int ticks; /* only touched by on_tick(), in the context's thread */
    int limit;
    void (*done)(struct Ticker *t);
} Ticker;

static void on_tick(void *opaque)
{
    Ticker *t = opaque;

    if (++t->ticks < t->limit) {
        aio_timer_mod_ns(t->timer,
                         aio_clock_get_ns(AIO_CLOCK_REALTIME) + 100000);
    } else {
        aio_timer_free(t->timer);
        t->done(t);
    }
}

/* In ctx's thread, or with ctx acquired. */
static void ticker_start(AioContext *ctx, Ticker *t)
{
    t->timer = aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, on_tick, t);
    aio_timer_mod_ns(t->timer, aio_clock_get_ns(AIO_CLOCK_REALTIME) + 100000);
}

/* ---- rule 2: another thread acquires ---- */

/* Any thread but the IOThread's own. */
static void ticker_start_in(IOThread *iothread, Ticker *t)
{
    AioContext *ctx = iothread_get_aio_context(iothread);

    aio_context_acquire(ctx); /* kicks the thread out of aio_poll() */
    ticker_start(ctx, t);
    aio_context_release(ctx);
}

/* ---- rule 3: hand work across with a BH ---- */

typedef struct Request {
    AioContext *reply_ctx; /* where the answer goes */
    int input;
    int output;
    void (*reply)(struct Request *req); /* runs in reply_ctx */
} Request;

static void request_reply_bh(void *opaque)
{
    Request *req = opaque;

    req->reply(req);
}

/* Runs in the IOThread. */
static void request_work_bh(void *opaque)
{
    Request *req = opaque;

    req->output = req->input * 2;
    aio_bh_schedule_oneshot(req->reply_ctx, request_reply_bh, req);
}

/* Any thread, no lock. */
static void request_submit(IOThread *iothread, Request *req)
{
    aio_bh_schedule_oneshot(iothread_get_aio_context(iothread), request_work_bh,
                            req);
}

/* ---- rule 4: only the main loop holds several contexts ---- */

/* Main loop thread.  Every IOThread reads *shared in its callbacks. */
static void set_for_everyone(int *shared, int value)
{
    main_loop_stop_the_world(); /* bdrv_drain_all() first, with block I/O */
    *shared = value;            /* no IOThread runs a callback now */
    main_loop_resume_the_world();
}

/* ---- rule 5: register handlers from the context's own thread ---- */

typedef struct Watch {
    AioContext *ctx;
    int fd;
    IOHandler *on_readable;
    void *opaque;
} Watch;

/* Runs in w->ctx's thread. */
static void watch_attach_bh(void *opaque)
{
    Watch *w = opaque;

    aio_set_fd_handler(w->ctx, w->fd, w->on_readable, NULL, NULL, w->opaque);
}

/* Runs in w->ctx's thread. */
static void watch_detach_bh(void *opaque)
{
    Watch *w = opaque;

    aio_set_fd_handler(w->ctx, w->fd, NULL, NULL, NULL, NULL);
    close(w->fd); /* only now: the handler can no longer run */
    g_free(w);
}

/* Any thread. */
static void watch_start(AioContext *ctx, int fd, IOHandler *cb, void *opaque,
                        Watch **out)
{
    Watch *w = g_new0(Watch, 1);

    *w = (Watch){ctx, fd, cb, opaque};
    *out = w;
    aio_bh_schedule_oneshot(ctx, watch_attach_bh, w);
}

/* ---- GLib sources in an IOThread ---- */

/* Any thread but the IOThread's own.  fn(opaque) runs once, in it. */
static void run_in_iothread_via_glib(IOThread *iothread, GSourceFunc fn,
                                     void *opaque)
{
    AioContext *ctx = iothread_get_aio_context(iothread);
    GSource *idle = g_idle_source_new();

    g_source_set_callback(idle, fn, opaque, NULL);
    /* GLib's locks are invisible to ThreadSanitizer; attaching with the
     * context held orders our writes to *opaque before fn's reads in a
     * way it sees (the IOThread dispatches with the context held). */
    aio_context_acquire(ctx);
    g_source_attach(idle, iothread_get_g_main_context(iothread));
    aio_context_release(ctx);
    g_source_unref(idle);
}

/* ---- IOThreads as objects ---- */

/* Main loop thread.  What --object iothread,id=<id>,poll-max-ns=0 does. */
static IOThread *add_iothread(const char *id, Error **errp)
{
    g_autoptr(GHashTable) props = g_hash_table_new(g_str_hash, g_str_equal);
    Object *obj;

    g_hash_table_insert(props, "poll-max-ns", "0");
    obj = object_add("iothread", id, props, errp);
    return obj ? object_get_instance(obj) : NULL;
}

/* ======================================================================
 * The tests that run the snippets above.
 */

static void quit_bh(void *opaque)
{
    main_loop_quit();
}

/* Ticker done: tell the main loop (rule 3 again). */
static void ticker_done(Ticker *t)
{
    aio_bh_schedule_oneshot(main_loop_get_aio_context(), quit_bh, NULL);
}

static void test_docs_ticker_runs_in_main_loop_and_iothread(void)
{
    IOThread *it = iothread_new("ticker", NULL, &error_abort);
    Ticker in_main = {.limit = 5, .done = ticker_done};
    Ticker in_thread = {.limit = 5, .done = ticker_done};

    ticker_start(main_loop_get_aio_context(), &in_main);
    main_loop_run();
    g_assert_cmpint(in_main.ticks, ==, 5);

    ticker_start_in(it, &in_thread);
    main_loop_run();
    iothread_destroy(it); /* joins: in_thread is safe to read */
    g_assert_cmpint(in_thread.ticks, ==, 5);
}

static void request_done(Request *req)
{
    main_loop_quit();
}

static void test_docs_request_round_trip(void)
{
    IOThread *it = iothread_new("worker", NULL, &error_abort);
    Request req = {.reply_ctx = main_loop_get_aio_context(),
                   .input = 21,
                   .reply = request_done};

    request_submit(it, &req);
    main_loop_run();
    g_assert_cmpint(req.output, ==, 42);
    iothread_destroy(it);
}

typedef struct Reader {
    int shared_seen; /* written in the IOThread, read after stop */
    int *shared;
    AioBH *bh;
    bool stop;
} Reader;

static void reader_bh(void *opaque)
{
    Reader *r = opaque;

    r->shared_seen = *r->shared;
    if (!r->stop) {
        aio_bh_schedule(r->bh);
    }
}

static void test_docs_set_for_everyone(void)
{
    IOThread *it = iothread_new("reader", NULL, &error_abort);
    AioContext *ctx = iothread_get_aio_context(it);
    int shared = 0;
    Reader r = {.shared = &shared};
    int i;

    r.bh = aio_bh_new(ctx, reader_bh, &r);
    aio_bh_schedule(r.bh);
    for (i = 1; i <= 50; i++) {
        set_for_everyone(&shared, i);
    }
    main_loop_stop_the_world();
    r.stop = true;
    aio_bh_delete(r.bh);
    main_loop_resume_the_world();
    iothread_destroy(it);
    g_assert_cmpint(shared, ==, 50);
    g_assert_cmpint(r.shared_seen, <=, 50);
}

typedef struct Pipe {
    int fds[2];
    Watch *watch;
    char got;
} Pipe;

/* fd handler in the IOThread: read, then detach through a BH too. */
static void pipe_readable(void *opaque)
{
    Pipe *p = opaque;

    g_assert_cmpint(read(p->fds[0], &p->got, 1), ==, 1);
    aio_bh_schedule_oneshot(p->watch->ctx, watch_detach_bh, p->watch);
    aio_bh_schedule_oneshot(main_loop_get_aio_context(), quit_bh, NULL);
}

static void test_docs_watch_registered_from_another_thread(void)
{
    IOThread *it = iothread_new("watcher", NULL, &error_abort);
    Pipe p = {.got = 0};

    g_assert_cmpint(pipe(p.fds), ==, 0);
    watch_start(iothread_get_aio_context(it), p.fds[0], pipe_readable, &p,
                &p.watch);
    g_assert_cmpint(write(p.fds[1], "w", 1), ==, 1);
    main_loop_run();
    iothread_destroy(it); /* runs watch_detach_bh if it is still queued */
    close(p.fds[1]);
    g_assert_cmpint(p.got, ==, 'w');
}

typedef struct Hello {
    pid_t tid;
} Hello;

static gboolean say_hello(gpointer opaque)
{
    Hello *h = opaque;

    h->tid = dp_thread_get_tid();
    aio_bh_schedule_oneshot(main_loop_get_aio_context(), quit_bh, NULL);
    return G_SOURCE_REMOVE;
}

static void test_docs_glib_source_runs_in_iothread(void)
{
    IOThread *it = iothread_new("glib", NULL, &error_abort);
    pid_t tid = iothread_get_thread_id(it);
    Hello h = {0};

    run_in_iothread_via_glib(it, say_hello, &h);
    main_loop_run();
    iothread_destroy(it);
    g_assert_cmpint(h.tid, ==, tid);
}

static void test_docs_add_iothread_object(void)
{
    IOThread *it = add_iothread("obj-io", &error_abort);
    int64_t max_ns, grow, shrink;

    g_assert_nonnull(it);
    g_assert_true(iothread_find("obj-io") == it);
    aio_context_get_poll_params(iothread_get_aio_context(it), &max_ns, &grow,
                                &shrink);
    g_assert_cmpint(max_ns, ==, 0);
    g_assert_true(object_del("obj-io", &error_abort));
    g_assert_null(iothread_find("obj-io"));
}

/* Every ```c block of the page appears, verbatim, in this file. */
static void test_docs_page_code_is_this_code(void)
{
    g_autofree char *md = NULL;
    g_autofree char *src = NULL;
    const char *p;
    int blocks = 0;

    g_assert_true(g_file_get_contents(
        DATAPLANE_SOURCE_ROOT "/docs/iothreads.md", &md, NULL, NULL));
    g_assert_true(g_file_get_contents(DATAPLANE_SOURCE_ROOT
                                      "/tests/unit/test-docs-iothreads.c",
                                      &src, NULL, NULL));
    for (p = strstr(md, "```c\n"); p; p = strstr(p, "```c\n")) {
        const char *start = p + 5;
        const char *end = strstr(start, "```");
        g_autofree char *block = NULL;

        g_assert_nonnull(end);
        block = g_strndup(start, (gsize)(end - start));
        if (!strstr(src, block)) {
            g_error("docs/iothreads.md block %d is not in the test:\n%s",
                    blocks + 1, block);
        }
        blocks++;
        p = end + 3;
    }
    g_assert_cmpint(blocks, >=, 7);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    main_loop_init(&error_abort);
    g_test_add_func("/docs/iothreads/ticker-runs-in-main-loop-and-iothread",
                    test_docs_ticker_runs_in_main_loop_and_iothread);
    g_test_add_func("/docs/iothreads/request-round-trip",
                    test_docs_request_round_trip);
    g_test_add_func("/docs/iothreads/set-for-everyone",
                    test_docs_set_for_everyone);
    g_test_add_func("/docs/iothreads/watch-registered-from-another-thread",
                    test_docs_watch_registered_from_another_thread);
    g_test_add_func("/docs/iothreads/glib-source-runs-in-iothread",
                    test_docs_glib_source_runs_in_iothread);
    g_test_add_func("/docs/iothreads/add-iothread-object",
                    test_docs_add_iothread_object);
    g_test_add_func("/docs/iothreads/page-code-is-this-code",
                    test_docs_page_code_is_this_code);
    return g_test_run();
}
