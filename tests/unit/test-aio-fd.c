/* fd handlers: readiness, hang-up/error, removal and changes during dispatch,
 * changes from other threads, fd number reuse, no leaked fds. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aio/aio-internal.h" /* white-box: ctx->notify_me */
#include "tests/unit/aio-test-util.h"
#include "tests/unit/test-util.h"
#include "util/thread.h"
#include "util/atomic.h"

static void make_pipe(int fds[2])
{
    g_assert_cmpint(pipe2(fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
}

static void write_byte(int fd)
{
    g_assert_cmpint(write(fd, "x", 1), ==, 1);
}

typedef struct Reader {
    AioContext *ctx;
    int fd;
    int reads;
    int writes;
    ssize_t last_read; /* result of the handler's read(): 1, 0 (EOF), -errno */
    bool consume;      /* read the byte (else leave it: level-triggered) */
    bool remove_self;
} Reader;

static void reader_read(void *opaque)
{
    Reader *r = opaque;
    char c;

    r->reads++;
    if (r->consume) {
        ssize_t n = read(r->fd, &c, 1);

        r->last_read = n < 0 ? -errno : n;
    }
    if (r->remove_self) {
        aio_set_fd_handler(r->ctx, r->fd, NULL, NULL, NULL, NULL);
    }
}

static void reader_write(void *opaque)
{
    Reader *r = opaque;

    r->writes++;
}

static void test_fd_read_handler_runs_when_readable(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int fds[2];
    Reader r = {.ctx = ctx, .consume = true};

    make_pipe(fds);
    r.fd = fds[0];
    aio_set_fd_handler(ctx, fds[0], reader_read, NULL, NULL, &r);
    drain(ctx);
    g_assert_cmpint(r.reads, ==, 0);

    write_byte(fds[1]);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(r.reads, ==, 1);
    g_assert_cmpint(r.last_read, ==, 1);
    drain(ctx);
    g_assert_cmpint(r.reads, ==, 1);

    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL);
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(ctx);
}

static void test_fd_read_handler_is_level_triggered(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int fds[2];
    Reader r = {.ctx = ctx, .consume = false};
    int i;

    make_pipe(fds);
    r.fd = fds[0];
    aio_set_fd_handler(ctx, fds[0], reader_read, NULL, NULL, &r);
    write_byte(fds[1]);
    /* Data left unread keeps the handler coming. */
    for (i = 1; i <= 3; i++) {
        g_assert_true(aio_poll(ctx, true));
        g_assert_cmpint(r.reads, ==, i);
    }
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL);
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(ctx);
}

static void test_fd_socketpair_read_and_write(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int sv[2];
    Reader a = {.ctx = ctx, .consume = true};
    Reader b = {.ctx = ctx};

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), ==,
                    0);
    a.fd = sv[0];
    b.fd = sv[1];
    aio_set_fd_handler(ctx, sv[0], reader_read, NULL, NULL, &a);
    /* A connected socket with room in its buffer is writable at once. */
    aio_set_fd_handler(ctx, sv[1], NULL, reader_write, NULL, &b);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(b.writes, >=, 1);
    g_assert_cmpint(a.reads, ==, 0);

    /* No longer interested in writability: the handler stops. */
    aio_set_fd_handler(ctx, sv[1], NULL, NULL, NULL, NULL);
    drain(ctx);
    b.writes = 0;
    drain(ctx);
    g_assert_cmpint(b.writes, ==, 0);

    write_byte(sv[1]);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(a.reads, ==, 1);
    g_assert_cmpint(a.last_read, ==, 1);

    aio_set_fd_handler(ctx, sv[0], NULL, NULL, NULL, NULL);
    close(sv[0]);
    close(sv[1]);
    aio_context_unref(ctx);
}

static void test_fd_write_handler_runs_when_writable(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int fds[2];
    Reader r = {.ctx = ctx};
    char buf[4096] = {0};
    char sink[4096];
    int i;

    make_pipe(fds);
    r.fd = fds[1];
    /* Fill the pipe: not writable, the handler must not run. */
    for (i = 0; i < 100000 && write(fds[1], buf, sizeof(buf)) > 0; i++) {
    }
    g_assert_cmpint(errno, ==, EAGAIN);
    aio_set_fd_handler(ctx, fds[1], NULL, reader_write, NULL, &r);
    drain(ctx);
    g_assert_cmpint(r.writes, ==, 0);

    /* Draining the reader's side makes it writable. */
    for (i = 0; i < 100000 && read(fds[0], sink, sizeof(sink)) > 0; i++) {
    }
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(r.writes, >=, 1);

    aio_set_fd_handler(ctx, fds[1], NULL, NULL, NULL, NULL);
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(ctx);
}

static void test_fd_hangup_reaches_read_handler(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int fds[2];
    Reader r = {.ctx = ctx, .consume = true};

    make_pipe(fds);
    r.fd = fds[0];
    aio_set_fd_handler(ctx, fds[0], reader_read, NULL, NULL, &r);
    drain(ctx);
    close(fds[1]); /* the writer goes away: hang-up, read() says EOF */
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(r.reads, >=, 1);
    g_assert_cmpint(r.last_read, ==, 0);
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL);
    close(fds[0]);
    aio_context_unref(ctx);
}

static void test_fd_socket_hangup_reaches_read_handler(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int sv[2];
    Reader r = {.ctx = ctx, .consume = true};

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), ==,
                    0);
    r.fd = sv[0];
    aio_set_fd_handler(ctx, sv[0], reader_read, NULL, NULL, &r);
    drain(ctx);
    g_assert_cmpint(shutdown(sv[1], SHUT_WR), ==, 0); /* peer half-close */
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(r.reads, >=, 1);
    g_assert_cmpint(r.last_read, ==, 0);
    aio_set_fd_handler(ctx, sv[0], NULL, NULL, NULL, NULL);
    close(sv[0]);
    close(sv[1]);
    aio_context_unref(ctx);
}

static void test_fd_error_reaches_read_handler(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int fds[2];
    Reader r = {.ctx = ctx};

    make_pipe(fds);
    r.fd = fds[1];
    /* The write end of a pipe whose reader is gone reports an error; a
     * handler that only asked for reads still hears about it. */
    aio_set_fd_handler(ctx, fds[1], reader_read, NULL, NULL, &r);
    drain(ctx);
    g_assert_cmpint(r.reads, ==, 0);
    close(fds[0]);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(r.reads, >=, 1);
    aio_set_fd_handler(ctx, fds[1], NULL, NULL, NULL, NULL);
    close(fds[1]);
    aio_context_unref(ctx);
}

static void test_fd_null_handlers_remove(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int fds[2];
    Reader r = {.ctx = ctx};

    make_pipe(fds);
    r.fd = fds[0];
    aio_set_fd_handler(ctx, fds[0], reader_read, NULL, NULL, &r);
    write_byte(fds[1]);
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL);
    drain(ctx);
    g_assert_cmpint(r.reads, ==, 0);
    /* Removing what is not registered is harmless. */
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL);
    aio_set_fd_handler(ctx, fds[1], NULL, NULL, NULL, NULL);
    drain(ctx);
    g_assert_false(aio_poll(ctx, false));
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(ctx);
}

/* ---- changes from inside callbacks ---- */

static void test_fd_remove_self_from_callback(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int fds[2];
    Reader r = {.ctx = ctx, .remove_self = true};

    make_pipe(fds);
    r.fd = fds[0];
    aio_set_fd_handler(ctx, fds[0], reader_read, reader_write, NULL, &r);
    write_byte(fds[1]);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(r.reads, ==, 1);
    /* The byte is still there, but nobody listens any more. */
    drain(ctx);
    g_assert_cmpint(r.reads, ==, 1);
    g_assert_cmpint(r.writes, ==, 0);
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(ctx);
}

/* Two ready fds; whichever handler runs first removes or replaces the other,
 * whose pending event must then be dropped (and its node not touched after
 * being freed: ASan checks). */
typedef struct Pair {
    AioContext *ctx;
    int fd[2];
    int runs[2];
    int replacement_runs;
    bool replace; /* replace the other's handler instead of removing it */
} Pair;

static void pair_replacement_read(void *opaque)
{
    Pair *p = opaque;
    char c;

    /* Installed on the fd whose handler did not run. */
    p->replacement_runs++;
    g_assert_cmpint(read(p->fd[p->runs[0] ? 1 : 0], &c, 1), ==, 1);
}

static void pair_read(Pair *p, int me)
{
    int other = 1 - me;

    p->runs[me]++;
    if (p->replace) {
        aio_set_fd_handler(p->ctx, p->fd[other], pair_replacement_read, NULL,
                           NULL, p);
    } else {
        aio_set_fd_handler(p->ctx, p->fd[other], NULL, NULL, NULL, NULL);
    }
    aio_set_fd_handler(p->ctx, p->fd[me], NULL, NULL, NULL, NULL);
}

static void pair_read0(void *opaque)
{
    pair_read(opaque, 0);
}

static void pair_read1(void *opaque)
{
    pair_read(opaque, 1);
}

static void run_pair(gconstpointer data, bool replace)
{
    AioContext *ctx = test_ctx_new(data);
    int a[2], b[2];
    Pair p = {.ctx = ctx, .replace = replace};

    make_pipe(a);
    make_pipe(b);
    p.fd[0] = a[0];
    p.fd[1] = b[0];
    aio_set_fd_handler(ctx, a[0], pair_read0, NULL, NULL, &p);
    aio_set_fd_handler(ctx, b[0], pair_read1, NULL, NULL, &p);
    drain(ctx);
    write_byte(a[1]);
    write_byte(b[1]);
    /* Make sure both are reported by one wait. */
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(p.runs[0] + p.runs[1], ==, 1);
    drain(ctx);
    g_assert_cmpint(p.runs[0] + p.runs[1], ==, 1);
    if (replace) {
        /* The replacement runs for the level-triggered, still-ready fd. */
        g_assert_cmpint(p.replacement_runs, ==, 1);
        aio_set_fd_handler(ctx, p.runs[0] ? b[0] : a[0], NULL, NULL, NULL,
                           NULL);
    } else {
        g_assert_cmpint(p.replacement_runs, ==, 0);
    }
    drain(ctx);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    aio_context_unref(ctx);
}

static void test_fd_remove_other_ready_handler_from_callback(gconstpointer data)
{
    run_pair(data, false);
}

static void test_fd_change_other_ready_handler_from_callback(gconstpointer data)
{
    run_pair(data, true);
}

typedef struct Switcher {
    AioContext *ctx;
    int fd;
    int first_runs;
    int second_runs;
} Switcher;

static void switcher_second(void *opaque)
{
    Switcher *s = opaque;
    char c;

    s->second_runs++;
    g_assert_cmpint(read(s->fd, &c, 1), ==, 1);
}

static void switcher_first(void *opaque)
{
    Switcher *s = opaque;

    s->first_runs++;
    /* Replace our own handler without reading: the new one gets the data. */
    aio_set_fd_handler(s->ctx, s->fd, switcher_second, NULL, NULL, s);
}

static void test_fd_change_own_handler_from_callback(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int fds[2];
    Switcher s = {.ctx = ctx};
    int i;

    make_pipe(fds);
    s.fd = fds[0];
    aio_set_fd_handler(ctx, fds[0], switcher_first, NULL, NULL, &s);
    write_byte(fds[1]);
    for (i = 0; i < 100 && s.second_runs == 0; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(s.first_runs, ==, 1);
    g_assert_cmpint(s.second_runs, ==, 1);
    drain(ctx);
    g_assert_cmpint(s.first_runs, ==, 1);
    g_assert_cmpint(s.second_runs, ==, 1);
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL);
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(ctx);
}

/* A handler that adds a handler for another fd, which then runs too. */
typedef struct Adder {
    AioContext *ctx;
    int fd_a, fd_b;
    Reader b;
    int runs;
} Adder;

static void adder_read(void *opaque)
{
    Adder *a = opaque;
    char c;

    a->runs++;
    g_assert_cmpint(read(a->fd_a, &c, 1), ==, 1);
    aio_set_fd_handler(a->ctx, a->fd_b, reader_read, NULL, NULL, &a->b);
}

static void test_fd_add_handler_from_callback(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int a[2], b[2];
    Adder ad = {.ctx = ctx};
    int i;

    make_pipe(a);
    make_pipe(b);
    ad.fd_a = a[0];
    ad.fd_b = b[0];
    ad.b = (Reader){.ctx = ctx, .fd = b[0], .consume = true};
    write_byte(b[1]);
    aio_set_fd_handler(ctx, a[0], adder_read, NULL, NULL, &ad);
    write_byte(a[1]);
    for (i = 0; i < 100 && ad.b.reads == 0; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(ad.runs, ==, 1);
    g_assert_cmpint(ad.b.reads, ==, 1);
    aio_set_fd_handler(ctx, a[0], NULL, NULL, NULL, NULL);
    aio_set_fd_handler(ctx, b[0], NULL, NULL, NULL, NULL);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    aio_context_unref(ctx);
}

/* ---- changes from other threads ---- */

typedef struct CrossAdd {
    AioContext *ctx;
    int fd;
    bool ran; /* atomic */
} CrossAdd;

static void cross_read(void *opaque)
{
    CrossAdd *c = opaque;

    dp_atomic_store_release(&c->ran, true);
    aio_set_fd_handler(c->ctx, c->fd, NULL, NULL, NULL, NULL);
}

static void wait_until_loop_blocks(AioContext *ctx)
{
    int i;

    /* White-box: notify_me is non-zero once aio_poll() commits to block. */
    for (i = 0; i < 10000000 && !dp_atomic_load_seq_cst(&ctx->notify_me); i++) {
        g_thread_yield();
    }
}

static void *cross_add_thread(void *opaque)
{
    CrossAdd *c = opaque;

    wait_until_loop_blocks(c->ctx);
    aio_set_fd_handler(c->ctx, c->fd, cross_read, NULL, NULL, c);
    return NULL;
}

static void test_fd_add_from_thread_wakes_blocked_loop(gconstpointer data)
{
    CrossAdd c = {.ctx = test_ctx_new(data)};
    DpThread thread;
    int fds[2];
    int round;

    make_pipe(fds);
    c.fd = fds[0];
    write_byte(fds[1]); /* readable before the handler exists */
    for (round = 0; round < 20; round++) {
        dp_atomic_store_relaxed(&c.ran, false);
        drain(c.ctx);
        dp_thread_create(&thread, "fd-add", cross_add_thread, &c);
        /* A lost wake-up would leave this blocked forever. */
        poll_until(c.ctx, &c.ran);
        dp_thread_join(&thread);
    }
    drain(c.ctx);
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(c.ctx);
}

typedef struct CrossRemove {
    AioContext *ctx;
    int fd;
    bool removed; /* atomic */
    int reads;
} CrossRemove;

static void cross_remove_read(void *opaque)
{
    CrossRemove *c = opaque;
    char c_;

    c->reads++;
    g_assert_cmpint(read(c->fd, &c_, 1), ==, 1);
}

static void *cross_remove_thread(void *opaque)
{
    CrossRemove *c = opaque;

    wait_until_loop_blocks(c->ctx);
    aio_set_fd_handler(c->ctx, c->fd, NULL, NULL, NULL, NULL);
    /* The removal notified the loop, which may have woken and gone back
     * to sleep before seeing the flag: wake it once more. */
    dp_atomic_store_release(&c->removed, true);
    aio_notify(c->ctx);
    return NULL;
}

static void test_fd_remove_from_thread_while_blocked(gconstpointer data)
{
    CrossRemove c = {.ctx = test_ctx_new(data)};
    DpThread thread;
    int fds[2];
    int round;

    make_pipe(fds);
    c.fd = fds[0];
    for (round = 0; round < 20; round++) {
        dp_atomic_store_relaxed(&c.removed, false);
        aio_set_fd_handler(c.ctx, fds[0], cross_remove_read, NULL, NULL, &c);
        drain(c.ctx);
        dp_thread_create(&thread, "fd-remove", cross_remove_thread, &c);
        poll_until(c.ctx, &c.removed);
        dp_thread_join(&thread);
        /* Removed while the loop slept: data arriving now is not seen. */
        write_byte(fds[1]);
        drain(c.ctx);
        g_assert_cmpint(c.reads, ==, round);
        /* Re-adding it sees the byte. */
        aio_set_fd_handler(c.ctx, fds[0], cross_remove_read, NULL, NULL, &c);
        g_assert_true(aio_poll(c.ctx, true));
        g_assert_cmpint(c.reads, ==, round + 1);
        aio_set_fd_handler(c.ctx, fds[0], NULL, NULL, NULL, NULL);
    }
    drain(c.ctx);
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(c.ctx);
}

/* ---- fd numbers and fd leaks ---- */

static void test_fd_closed_and_reused_number(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int old_fds[2], new_fds[2];
    Reader old_r = {.ctx = ctx};
    Reader new_r = {.ctx = ctx, .consume = true};
    int fd;

    make_pipe(old_fds);
    old_r.fd = old_fds[0];
    aio_set_fd_handler(ctx, old_fds[0], reader_read, NULL, NULL, &old_r);
    drain(ctx);
    /* Close without removing first, then get the same number again. */
    fd = old_fds[0];
    close(old_fds[0]);
    close(old_fds[1]);
    make_pipe(new_fds);
    if (new_fds[0] != fd) {
        g_assert_cmpint(dup2(new_fds[0], fd), ==, fd);
        close(new_fds[0]);
        new_fds[0] = fd;
    }
    new_r.fd = fd;
    /* Registering the number again replaces the stale registration. */
    aio_set_fd_handler(ctx, fd, reader_read, NULL, NULL, &new_r);
    drain(ctx);
    write_byte(new_fds[1]);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(new_r.reads, ==, 1);
    g_assert_cmpint(new_r.last_read, ==, 1);
    drain(ctx);
    g_assert_cmpint(old_r.reads, ==, 0);
    aio_set_fd_handler(ctx, fd, NULL, NULL, NULL, NULL);
    drain(ctx);
    close(new_fds[0]);
    close(new_fds[1]);
    aio_context_unref(ctx);
}

/* White-box: nodes on the handler list, deleted ones included (the
 * context's own notifier is one).  Deleted nodes must be freed once no
 * walk or backend request refers to them, not when the context dies. */
static int count_handler_nodes(AioContext *ctx)
{
    AioHandler *node;
    int n = 0;

    dp_mutex_lock(&ctx->list_lock);
    for (node = ctx->handlers; node; node = node->next) {
        n++;
    }
    dp_mutex_unlock(&ctx->list_lock);
    return n;
}

/* A handler that closes its fd without removing itself, then is removed:
 * nothing may be leaked or touched after free (ASan/LSan check). */
typedef struct Closer {
    int fd;
    int runs;
} Closer;

static void closer_read(void *opaque)
{
    Closer *c = opaque;

    c->runs++;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static void test_fd_closed_inside_handler_then_removed(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    int fds[2];
    Closer c;
    int fd;
    int i;

    make_pipe(fds);
    fd = fds[0];
    c.fd = fds[0];
    c.runs = 0;
    aio_set_fd_handler(ctx, fd, closer_read, NULL, NULL, &c);
    write_byte(fds[1]);
    for (i = 0; i < 5; i++) {
        aio_poll(ctx, false);
    }
    g_assert_cmpint(c.runs, >=, 1);
    aio_set_fd_handler(ctx, fd, NULL, NULL, NULL, NULL);
    drain(ctx);
    aio_poll(ctx, false);
    g_assert_cmpint(count_handler_nodes(ctx), ==, 1);
    close(fds[1]);
    aio_context_unref(ctx);
}

static void test_fd_add_remove_cycles_leave_no_fd(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    Reader r = {.ctx = ctx, .consume = true};
    int before;
    int i;

    drain(ctx);
    before = count_open_fds();
    for (i = 0; i < 1000; i++) {
        int fds[2];

        make_pipe(fds);
        r.fd = fds[0];
        aio_set_fd_handler(ctx, fds[0], reader_read, NULL, NULL, &r);
        if (i % 2) {
            write_byte(fds[1]);
        }
        aio_poll(ctx, false);
        aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL);
        if (i % 3 == 0) {
            aio_poll(ctx, false);
        }
        close(fds[0]);
        close(fds[1]);
    }
    drain(ctx);
    aio_poll(ctx, false);
    g_assert_cmpint(count_handler_nodes(ctx), ==, 1);
    g_assert_cmpint(r.reads, ==, 500);
    g_assert_cmpint(count_open_fds(), ==, before);
    aio_context_unref(ctx);
}

static bool never_poll(void *opaque)
{
    (*(int *)opaque)++;
    return false;
}

static void nop_timer(void *opaque)
{
    *(bool *)opaque = true;
}

static void
test_fd_poll_only_handler_on_hung_up_fd_lets_loop_sleep(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    bool fired = false;
    AioTimer *t =
        aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_MS, nop_timer, &fired);
    int polls = 0;
    int fds[2];
    int iterations;

    /* A handler with only io_poll asks the kernel for nothing, so even a
     * hung-up fd (which poll()/epoll report whatever was asked) must not
     * wake the loop: it sleeps until its timer. */
    make_pipe(fds);
    close(fds[1]);
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, never_poll, &polls);
    drain(ctx);
    aio_timer_mod(t, aio_clock_get_ns(AIO_CLOCK_REALTIME) / AIO_SCALE_MS + 20);
    aio_poll(ctx, false);
    for (iterations = 0; iterations < 1000 && !fired; iterations++) {
        aio_poll(ctx, true);
    }
    g_assert_true(fired);
    g_assert_cmpint(iterations, <=, 2);
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL);
    drain(ctx);
    close(fds[0]);
    aio_timer_free(t);
    aio_context_unref(ctx);
}

static void
test_fd_switch_between_poll_only_and_read_handler(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    Reader r = {.ctx = ctx};
    int polls = 0;
    int fds[2];
    int round;

    make_pipe(fds);
    r.fd = fds[0];
    write_byte(fds[1]); /* readable throughout */
    for (round = 1; round <= 3; round++) {
        aio_set_fd_handler(ctx, fds[0], NULL, NULL, never_poll, &polls);
        drain(ctx);
        g_assert_cmpint(r.reads, ==, round - 1);
        /* Gaining a read handler starts watching the fd... */
        aio_set_fd_handler(ctx, fds[0], reader_read, NULL, NULL, &r);
        g_assert_true(aio_poll(ctx, true));
        g_assert_cmpint(r.reads, ==, round);
    }
    /* ...and losing it stops. */
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, never_poll, &polls);
    drain(ctx);
    g_assert_cmpint(r.reads, ==, 3);
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL);
    drain(ctx);
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(ctx);
}

#define MANY_FDS 400

static void test_fd_many_ready_fds_all_dispatched(gconstpointer data)
{
    AioContext *ctx = test_ctx_new(data);
    Reader *r = g_new0(Reader, MANY_FDS);
    int(*fds)[2] = g_malloc(sizeof(int[2]) * MANY_FDS);
    int total = 0;
    int i;

    /* More ready fds than one wait reports (and, on io_uring, than the
     * submission ring holds): every one is dispatched, once. */
    for (i = 0; i < MANY_FDS; i++) {
        make_pipe(fds[i]);
        r[i] = (Reader){
            .ctx = ctx, .fd = fds[i][0], .consume = true, .remove_self = true};
        aio_set_fd_handler(ctx, fds[i][0], reader_read, NULL, NULL, &r[i]);
        write_byte(fds[i][1]);
    }
    for (i = 0; i < 100 && total < MANY_FDS; i++) {
        int j;

        aio_poll(ctx, true);
        for (total = 0, j = 0; j < MANY_FDS; j++) {
            total += r[j].reads;
        }
    }
    g_assert_cmpint(total, ==, MANY_FDS);
    for (i = 0; i < MANY_FDS; i++) {
        g_assert_cmpint(r[i].reads, ==, 1);
        g_assert_cmpint(r[i].last_read, ==, 1);
    }
    drain(ctx);
    aio_poll(ctx, false);
    g_assert_cmpint(count_handler_nodes(ctx), ==, 1);
    for (i = 0; i < MANY_FDS; i++) {
        close(fds[i][0]);
        close(fds[i][1]);
    }
    g_free(fds);
    g_free(r);
    aio_context_unref(ctx);
}

/* ---- churn from another thread ---- */

#define CHURN_FDS 4
#define CHURN_OPS 3000

typedef struct Churn {
    AioContext *ctx;
    int fds[CHURN_FDS][2];
    int runs[2]; /* per callback, loop thread only */
    bool done;   /* atomic */
} Churn;

static Churn *churn_of(void *opaque, int which)
{
    return (Churn *)((char *)opaque - offsetof(Churn, runs[which]));
}

static void churn_read_a(void *opaque)
{
    churn_of(opaque, 0)->runs[0]++;
}

static void churn_read_b(void *opaque)
{
    churn_of(opaque, 1)->runs[1]++;
}

static void *churn_thread(void *opaque)
{
    Churn *c = opaque;
    GRand *rand = g_rand_new_with_seed(7);
    int i;

    /* Add, replace and remove handlers of always-readable fds while the
     * loop dispatches them: every change must cancel or re-arm cleanly. */
    for (i = 0; i < CHURN_OPS; i++) {
        int fd = c->fds[g_rand_int_range(rand, 0, CHURN_FDS)][0];

        switch (g_rand_int_range(rand, 0, 3)) {
        case 0:
            aio_set_fd_handler(c->ctx, fd, churn_read_a, NULL, NULL,
                               &c->runs[0]);
            break;
        case 1:
            aio_set_fd_handler(c->ctx, fd, churn_read_b, NULL, NULL,
                               &c->runs[1]);
            break;
        default:
            aio_set_fd_handler(c->ctx, fd, NULL, NULL, NULL, NULL);
            break;
        }
        if (i % 64 == 0) {
            g_thread_yield();
        }
    }
    for (i = 0; i < CHURN_FDS; i++) {
        aio_set_fd_handler(c->ctx, c->fds[i][0], NULL, NULL, NULL, NULL);
    }
    g_rand_free(rand);
    dp_atomic_store_release(&c->done, true);
    aio_notify(c->ctx);
    return NULL;
}

static void test_fd_handler_churn_from_thread(gconstpointer data)
{
    Churn c = {.ctx = test_ctx_new(data)};
    DpThread thread;
    int i;

    for (i = 0; i < CHURN_FDS; i++) {
        make_pipe(c.fds[i]);
        write_byte(c.fds[i][1]); /* never read: readable throughout */
    }
    dp_thread_create(&thread, "fd-churn", churn_thread, &c);
    /* The loop spins while handlers are registered (the fds stay
     * readable), hence a bound far above poll_until()'s. */
    for (i = 0; i < 50000000 && !dp_atomic_load_acquire(&c.done); i++) {
        aio_poll(c.ctx, true);
    }
    g_assert_true(dp_atomic_load_acquire(&c.done));
    dp_thread_join(&thread);
    drain(c.ctx);
    aio_poll(c.ctx, false);
    /* Every replaced or removed node has been freed, none is left armed. */
    g_assert_cmpint(count_handler_nodes(c.ctx), ==, 1);
    g_test_message("runs: %d + %d", c.runs[0], c.runs[1]);
    for (i = 0; i < CHURN_FDS; i++) {
        close(c.fds[i][0]);
        close(c.fds[i][1]);
    }
    aio_context_unref(c.ctx);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    g_test_init(&argc, &argv, NULL);
    test_add_both("/fd/read-handler-runs-when-readable",
                  test_fd_read_handler_runs_when_readable);
    test_add_both("/fd/read-handler-is-level-triggered",
                  test_fd_read_handler_is_level_triggered);
    test_add_both("/fd/socketpair-read-and-write",
                  test_fd_socketpair_read_and_write);
    test_add_both("/fd/write-handler-runs-when-writable",
                  test_fd_write_handler_runs_when_writable);
    test_add_both("/fd/hangup-reaches-read-handler",
                  test_fd_hangup_reaches_read_handler);
    test_add_both("/fd/socket-hangup-reaches-read-handler",
                  test_fd_socket_hangup_reaches_read_handler);
    test_add_both("/fd/error-reaches-read-handler",
                  test_fd_error_reaches_read_handler);
    test_add_both("/fd/null-handlers-remove", test_fd_null_handlers_remove);
    test_add_both("/fd/remove-self-from-callback",
                  test_fd_remove_self_from_callback);
    test_add_both("/fd/remove-other-ready-handler-from-callback",
                  test_fd_remove_other_ready_handler_from_callback);
    test_add_both("/fd/change-other-ready-handler-from-callback",
                  test_fd_change_other_ready_handler_from_callback);
    test_add_both("/fd/change-own-handler-from-callback",
                  test_fd_change_own_handler_from_callback);
    test_add_both("/fd/add-handler-from-callback",
                  test_fd_add_handler_from_callback);
    test_add_both("/fd/add-from-thread-wakes-blocked-loop",
                  test_fd_add_from_thread_wakes_blocked_loop);
    test_add_both("/fd/remove-from-thread-while-blocked",
                  test_fd_remove_from_thread_while_blocked);
    test_add_both("/fd/closed-and-reused-number",
                  test_fd_closed_and_reused_number);
    test_add_both("/fd/closed-inside-handler-then-removed",
                  test_fd_closed_inside_handler_then_removed);
    test_add_both("/fd/add-remove-cycles-leave-no-fd",
                  test_fd_add_remove_cycles_leave_no_fd);
    test_add_both("/fd/poll-only-handler-on-hung-up-fd-lets-loop-sleep",
                  test_fd_poll_only_handler_on_hung_up_fd_lets_loop_sleep);
    test_add_both("/fd/switch-between-poll-only-and-read-handler",
                  test_fd_switch_between_poll_only_and_read_handler);
    test_add_both("/fd/many-ready-fds-all-dispatched",
                  test_fd_many_ready_fds_all_dispatched);
    test_add_both("/fd/handler-churn-from-thread",
                  test_fd_handler_churn_from_thread);
    return g_test_run();
}
