/*
 * Dispatch through many fds of which few are active, libevent's classic
 * `bench -n 10000 -a 100` method: 10,000 socketpairs are watched for
 * reading; 100 of them, spread evenly, get one byte; each read callback
 * consumes its byte and writes one to the next pair, until a fixed number
 * of writes has been made.  The loop is run one iteration at a time until
 * every byte written has been read.  Registration is not timed; one
 * untimed warm-up run precedes the timed ones.
 *
 * Figure: dispatch-100of10000, ns per event dispatched (total time of the
 * timed runs divided by the reads they made), lower is better.  "dataplane"
 * is the epoll backend, "dataplane-io_uring" the io_uring one.
 */
#include <errno.h>
#include <glib-unix.h>
#include <glib.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef HAVE_LIBUV
#include <uv.h>
#endif
#ifdef HAVE_LIBEVENT
#include <event2/event.h>
#endif

#include "bench/bench-util.h"
#include "dataplane/aio.h"

#define ACTIVE 100

/* The pairs and the state of one run, shared by every implementation. */
static int npipes;
static int *fds; /* pair i: fds[2i] is watched, fds[2i + 1] is written */
static long count, fired, writes_left;

/* The body every implementation's read callback runs for pair idx. */
static void on_readable(int idx)
{
    char ch;

    if (read(fds[2 * idx], &ch, 1) == 1) {
        count++;
    }
    if (writes_left > 0) {
        int widx = idx + 1 == npipes ? 0 : idx + 1;

        if (write(fds[2 * widx + 1], "e", 1) == 1) {
            writes_left--;
            fired++;
        }
    }
}

typedef void LoopOnceFn(void *loop);

/* One libevent-style run; returns its duration in ns. */
static int64_t run_once(LoopOnceFn *loop_once, void *loop, long writes)
{
    int space = npipes / ACTIVE;
    int64_t t0;
    int i;

    fired = 0;
    for (i = 0; i < ACTIVE; i++, fired++) {
        if (write(fds[2 * (i * space) + 1], "e", 1) != 1) {
            perror("write");
            exit(1);
        }
    }
    count = 0;
    writes_left = writes;
    t0 = clock_monotonic_ns();
    do {
        loop_once(loop);
    } while (count != fired);
    return clock_monotonic_ns() - t0;
}

/* Warm-up, then `runs` timed runs: ns per event over the timed ones. */
static double measure(LoopOnceFn *loop_once, void *loop, int runs, long writes)
{
    int64_t total = 0;
    long events = 0;
    int i;

    run_once(loop_once, loop, writes);
    for (i = 0; i < runs; i++) {
        total += run_once(loop_once, loop, writes);
        events += count;
    }
    return (double)total / (double)events;
}

/* ---- dataplane -------------------------------------------------------- */

static void dp_read(void *opaque)
{
    on_readable(GPOINTER_TO_INT(opaque));
}

static void dp_loop_once(void *loop)
{
    aio_poll(loop, true);
}

static double dp_dispatch(AioBackend backend, int runs, long writes)
{
    AioContext *ctx = aio_context_new_with_backend(backend, &error_abort);
    double ns;
    int i;

    for (i = 0; i < npipes; i++) {
        aio_set_fd_handler(ctx, fds[2 * i], dp_read, NULL, NULL,
                           GINT_TO_POINTER(i));
    }
    ns = measure(dp_loop_once, ctx, runs, writes);
    for (i = 0; i < npipes; i++) {
        aio_set_fd_handler(ctx, fds[2 * i], NULL, NULL, NULL, NULL);
    }
    while (aio_poll(ctx, false)) {
    }
    aio_context_unref(ctx);
    return ns;
}

/* ---- libevent --------------------------------------------------------- */

#ifdef HAVE_LIBEVENT
static void ev_read(evutil_socket_t fd, short what, void *opaque)
{
    on_readable(GPOINTER_TO_INT(opaque));
}

static void ev_loop_once(void *loop)
{
    event_base_loop(loop, EVLOOP_ONCE);
}

static double ev_dispatch(int runs, long writes)
{
    struct event_base *base = event_base_new();
    struct event **evs = g_new(struct event *, npipes);
    double ns;
    int i;

    for (i = 0; i < npipes; i++) {
        evs[i] = event_new(base, fds[2 * i], EV_READ | EV_PERSIST, ev_read,
                           GINT_TO_POINTER(i));
        event_add(evs[i], NULL);
    }
    ns = measure(ev_loop_once, base, runs, writes);
    for (i = 0; i < npipes; i++) {
        event_free(evs[i]);
    }
    g_free(evs);
    event_base_free(base);
    return ns;
}
#endif

/* ---- libuv ------------------------------------------------------------ */

#ifdef HAVE_LIBUV
static void libuv_read_cb(uv_poll_t *h, int status, int events)
{
    on_readable(GPOINTER_TO_INT(h->data));
}

static void libuv_loop_once(void *loop)
{
    uv_run(loop, UV_RUN_ONCE);
}

static double libuv_dispatch(int runs, long writes)
{
    uv_loop_t loop;
    uv_poll_t *polls = g_new(uv_poll_t, npipes);
    double ns;
    int i;

    uv_loop_init(&loop);
    for (i = 0; i < npipes; i++) {
        uv_poll_init(&loop, &polls[i], fds[2 * i]);
        polls[i].data = GINT_TO_POINTER(i);
        uv_poll_start(&polls[i], UV_READABLE, libuv_read_cb);
    }
    ns = measure(libuv_loop_once, &loop, runs, writes);
    for (i = 0; i < npipes; i++) {
        uv_close((uv_handle_t *)&polls[i], NULL);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    g_free(polls);
    return ns;
}
#endif

/* ---- GLib ------------------------------------------------------------- */

static gboolean glib_read(gint fd, GIOCondition cond, gpointer opaque)
{
    on_readable(GPOINTER_TO_INT(opaque));
    return G_SOURCE_CONTINUE;
}

static void glib_loop_once(void *loop)
{
    g_main_context_iteration(loop, TRUE);
}

static double glib_dispatch(int runs, long writes)
{
    GMainContext *ctx = g_main_context_new();
    GSource **srcs = g_new(GSource *, npipes);
    double ns;
    int i;

    for (i = 0; i < npipes; i++) {
        srcs[i] = g_unix_fd_source_new(fds[2 * i], G_IO_IN);
        g_source_set_callback(srcs[i], (GSourceFunc)(void (*)(void))glib_read,
                              GINT_TO_POINTER(i), NULL);
        g_source_attach(srcs[i], ctx);
    }
    ns = measure(glib_loop_once, ctx, runs, writes);
    for (i = 0; i < npipes; i++) {
        g_source_destroy(srcs[i]);
        g_source_unref(srcs[i]);
    }
    g_free(srcs);
    g_main_context_unref(ctx);
    return ns;
}

int main(int argc, char **argv)
{
    BenchOpts opts;
    char figure[64];
    int runs, r, i;
    long writes;

    bench_parse_args(argc, argv, &opts,
                     "dispatch through 100 active fds of 10,000 (dataplane, "
                     "libevent, libuv, GLib), as libevent's bench -n 10000 "
                     "-a 100");
    npipes = 10000;
    if (!bench_raise_nofile((rlim_t)npipes * 2 + 256)) {
        struct rlimit rl;

        getrlimit(RLIMIT_NOFILE, &rl);
        npipes = (int)((rl.rlim_cur - 256) / 2) / ACTIVE * ACTIVE;
        fprintf(stderr, "open-file limit %ld: using %d socketpairs\n",
                (long)rl.rlim_cur, npipes);
    }
    snprintf(figure, sizeof(figure), "dispatch-%dof%d", ACTIVE, npipes);
    /* libevent's bench makes 25 runs; 10 keep GLib's share of a full
     * bench/run to about a minute. */
    runs = opts.quick ? 3 : 10;
    writes = opts.quick ? 2000 : 10000;

    fds = g_new(int, 2 * npipes);
    for (i = 0; i < npipes; i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                       &fds[2 * i]) < 0) {
            perror("socketpair");
            return 1;
        }
    }
#ifndef HAVE_LIBEVENT
    bench_note(figure, "libevent",
               "built without libevent (libevent-dev missing)");
#endif
#ifndef HAVE_LIBUV
    bench_note(figure, "libuv", "built without libuv (libuv1-dev missing)");
#endif
    for (r = 0; r < opts.rounds; r++) {
        if (bench_wants(&opts, "dataplane")) {
            bench_report(figure, "dataplane",
                         dp_dispatch(AIO_BACKEND_EPOLL, runs, writes), "ns",
                         false);
            bench_report(figure, "dataplane-io_uring",
                         dp_dispatch(AIO_BACKEND_IO_URING, runs, writes), "ns",
                         false);
        }
#ifdef HAVE_LIBEVENT
        if (bench_wants(&opts, "libevent")) {
            bench_report(figure, "libevent", ev_dispatch(runs, writes), "ns",
                         false);
        }
#endif
#ifdef HAVE_LIBUV
        if (bench_wants(&opts, "libuv")) {
            bench_report(figure, "libuv", libuv_dispatch(runs, writes), "ns",
                         false);
        }
#endif
        if (bench_wants(&opts, "glib")) {
            bench_report(figure, "glib", glib_dispatch(runs, writes), "ns",
                         false);
        }
    }
    for (i = 0; i < 2 * npipes; i++) {
        close(fds[i]);
    }
    g_free(fds);
    return 0;
}
