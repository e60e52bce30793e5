/*
 * event-loop-demo: one AioContext at work for about three seconds.
 *
 * The main thread runs the loop.  A producer thread hands it work the two
 * ways another thread may: it writes messages into a pipe (an fd handler
 * reads them) and it schedules bottom halves (aio_bh_schedule_oneshot, safe
 * from any thread without a lock).  A periodic timer ticks in the loop, and
 * a one-shot timer ends the demo.  Every callback prints what it sees and in
 * which thread it runs.
 *
 * Usage: event-loop-demo [epoll|io_uring]
 *
 * It uses only the installed API (<dataplane/...> and GLib), so it builds
 * against an installed libdataplane with pkg-config alone.
 */
/* pipe2, accept4: built outside the project too (tests/install). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dataplane/aio.h>

#define DEMO_NS (3 * 1000000000LL)   /* how long the demo runs */
#define TICK_MS 500                  /* the periodic timer */
#define PRODUCE_NS (400 * 1000000LL) /* the producer's pace */

typedef struct Demo {
    AioContext *ctx;
    int pipe_fds[2];
    int64_t start_ns;
    GThread *loop_thread;

    AioTimer *tick;
    AioTimer *end;
    int ticks;
    int messages;
    int bhs;
    bool done; /* loop thread only */

    /* The producer: stop is set by the loop thread, under lock. */
    GThread *producer;
    GMutex lock;
    GCond cond;
    bool stop;
} Demo;

typedef struct BatchNote {
    Demo *demo;
    int batch;
} BatchNote;

static void say(Demo *d, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Prints one line stamped with the time since start and the thread. */
static void say(Demo *d, const char *fmt, ...)
{
    va_list ap;

    printf("[%5" PRId64 " ms] %-8s ",
           (aio_clock_get_ns(AIO_CLOCK_REALTIME) - d->start_ns) / 1000000,
           g_thread_self() == d->loop_thread ? "loop" : "producer");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* ---- callbacks: all run in the loop thread ---- */

static void pipe_readable(void *opaque)
{
    Demo *d = opaque;
    char buf[256];
    ssize_t n;

    /* Read what is there; the handler is called again if more arrives. */
    n = read(d->pipe_fds[0], buf, sizeof(buf) - 1);
    if (n > 0) {
        char *line;
        char *save = NULL;

        buf[n] = '\0';
        for (line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            d->messages++;
            say(d, "fd handler: read \"%s\" from the pipe", line);
        }
    } else if (n == 0) {
        say(d, "fd handler: the producer closed the pipe");
        aio_set_fd_handler(d->ctx, d->pipe_fds[0], NULL, NULL, NULL, NULL);
    }
}

static void batch_bh(void *opaque)
{
    BatchNote *note = opaque;
    Demo *d = note->demo;

    d->bhs++;
    say(d, "bottom half: batch %d handed over by the producer", note->batch);
    g_free(note);
}

static void tick_cb(void *opaque)
{
    Demo *d = opaque;

    d->ticks++;
    say(d, "timer: tick %d", d->ticks);
    /* Periodic: re-arm relative to the previous deadline, so ticks do not
     * drift by the time each callback takes. */
    aio_timer_mod_ns(d->tick, d->start_ns + (int64_t)(d->ticks + 1) * TICK_MS *
                                                AIO_SCALE_MS);
}

static void end_cb(void *opaque)
{
    Demo *d = opaque;

    say(d, "timer: %lld s are up, stopping", DEMO_NS / 1000000000);
    d->done = true;
}

/* ---- the producer thread ---- */

static void *producer_main(void *opaque)
{
    Demo *d = opaque;
    /* GLib's condition variables wait on its monotonic clock, in us. */
    int64_t next = g_get_monotonic_time();
    int batch;

    for (batch = 1;; batch++) {
        char msg[64];
        BatchNote *note = g_new(BatchNote, 1);
        int len = snprintf(msg, sizeof(msg), "message %d\n", batch);

        say(d, "writes message %d and schedules batch %d", batch, batch);
        if (write(d->pipe_fds[1], msg, (size_t)len) != len) {
            say(d, "pipe write failed: %s", strerror(errno));
        }
        note->demo = d;
        note->batch = batch;
        aio_bh_schedule_oneshot(d->ctx, batch_bh, note);

        /* Pace the producer; wake at once when asked to stop. */
        next += PRODUCE_NS / 1000;
        g_mutex_lock(&d->lock);
        while (!d->stop && g_cond_wait_until(&d->cond, &d->lock, next)) {
        }
        if (d->stop) {
            g_mutex_unlock(&d->lock);
            break;
        }
        g_mutex_unlock(&d->lock);
    }
    close(d->pipe_fds[1]);
    return NULL;
}

int main(int argc, char **argv)
{
    AioBackend backend = AIO_BACKEND_EPOLL;
    Error *err = NULL;
    Demo d = {0};
    int i;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 ||
        (argc == 2 && !aio_backend_parse(argv[1], &backend, &err))) {
        if (err) {
            error_report_err(err);
        }
        fprintf(stderr, "usage: %s [epoll|io_uring]\n", argv[0]);
        return 2;
    }
    d.ctx = aio_context_new_with_backend(backend, &err);
    if (!d.ctx) {
        error_report_err(err);
        return 1;
    }
    if (pipe2(d.pipe_fds, O_CLOEXEC) < 0 ||
        fcntl(d.pipe_fds[0], F_SETFL, O_NONBLOCK) < 0) {
        perror("pipe");
        return 1;
    }
    d.start_ns = aio_clock_get_ns(AIO_CLOCK_REALTIME);
    d.loop_thread = g_thread_self();
    g_mutex_init(&d.lock);
    g_cond_init(&d.cond);
    say(&d, "event loop on the %s backend; running for %lld s",
        aio_backend_name(backend), DEMO_NS / 1000000000);

    aio_set_fd_handler(d.ctx, d.pipe_fds[0], pipe_readable, NULL, NULL, &d);
    d.tick =
        aio_timer_new(d.ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, tick_cb, &d);
    aio_timer_mod_ns(d.tick, d.start_ns + TICK_MS * AIO_SCALE_MS);
    d.end = aio_timer_new(d.ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS, end_cb, &d);
    aio_timer_mod_ns(d.end, d.start_ns + DEMO_NS);
    d.producer = g_thread_new("producer", producer_main, &d);

    /* The loop: sleep until something happens, run it, repeat. */
    while (!d.done) {
        aio_poll(d.ctx, true);
    }

    /* Stop the producer (it closes its end of the pipe), then run what it
     * handed over before it saw the request, and tidy up. */
    g_mutex_lock(&d.lock);
    d.stop = true;
    g_cond_signal(&d.cond);
    g_mutex_unlock(&d.lock);
    g_thread_join(d.producer);
    for (i = 0; i < 100 && aio_poll(d.ctx, false); i++) {
    }
    aio_set_fd_handler(d.ctx, d.pipe_fds[0], NULL, NULL, NULL, NULL);
    aio_poll(d.ctx, false);
    close(d.pipe_fds[0]);
    aio_timer_free(d.tick);
    aio_timer_free(d.end);
    aio_context_unref(d.ctx);
    g_cond_clear(&d.cond);
    g_mutex_clear(&d.lock);
    printf("done: %d timer ticks, %d pipe messages, %d bottom halves\n",
           d.ticks, d.messages, d.bhs);
    return 0;
}
