/*
 * The echo server of examples/echo-server.c: accept in the main loop, one
 * IOThread per connection, handed over with a BH.
 *
 * Ownership: a connection belongs to its IOThread from the BH on; the
 * main loop never touches it again.  Shutdown asks each IOThread, with one
 * more BH, to close its connections; iothread_destroy() runs that BH before
 * the thread ends.
 */
/* pipe2, accept4: built outside the project too (tests/install). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "echo.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dataplane/iothread.h>
#include <dataplane/main-loop.h>

typedef struct EchoConn EchoConn;
typedef struct EchoWorker EchoWorker;

struct EchoConn {
    EchoWorker *worker;
    int fd;
    char buf[16384];
    size_t len; /* bytes in buf still to send back */
    size_t off; /* of which this many were sent */
    LIST_ENTRY(EchoConn) link;
};

struct EchoWorker {
    IOThread *iothread;
    AioContext *ctx;
    LIST_HEAD(, EchoConn) conns; /* the IOThread's only */
    unsigned accepted;           /* atomic: main loop writes, anyone reads */
};

struct EchoServer {
    int listen_fd;
    AioContext *main_ctx;
    EchoWorker *workers;
    int n_workers;
    int next; /* round robin */
};

static void conn_readable(void *opaque);
static void conn_writable(void *opaque);

/* In the connection's IOThread. */
static void conn_close(EchoConn *conn)
{
    aio_set_fd_handler(conn->worker->ctx, conn->fd, NULL, NULL, NULL, NULL);
    close(conn->fd);
    LIST_REMOVE(conn, link);
    g_free(conn);
}

/* Sends what is buffered; reading resumes only once it is all out, so a
 * client that does not read cannot make us buffer without bound. */
static void conn_flush(EchoConn *conn)
{
    while (conn->off < conn->len) {
        ssize_t n = send(conn->fd, conn->buf + conn->off, conn->len - conn->off,
                         MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            aio_set_fd_handler(conn->worker->ctx, conn->fd, NULL, conn_writable,
                               NULL, conn);
            return;
        }
        if (n < 0) {
            conn_close(conn);
            return;
        }
        conn->off += (size_t)n;
    }
    conn->len = conn->off = 0;
    aio_set_fd_handler(conn->worker->ctx, conn->fd, conn_readable, NULL, NULL,
                       conn);
}

static void conn_writable(void *opaque)
{
    conn_flush(opaque);
}

static void conn_readable(void *opaque)
{
    EchoConn *conn = opaque;
    ssize_t n;

    do {
        n = recv(conn->fd, conn->buf, sizeof(conn->buf), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) {
        return;
    }
    if (n <= 0) {
        conn_close(conn); /* end of stream or error */
        return;
    }
    conn->len = (size_t)n;
    conn->off = 0;
    conn_flush(conn);
}

/* BH in the IOThread: the connection is now this thread's. */
static void conn_attach_bh(void *opaque)
{
    EchoConn *conn = opaque;

    LIST_INSERT_HEAD(&conn->worker->conns, conn, link);
    aio_set_fd_handler(conn->worker->ctx, conn->fd, conn_readable, NULL, NULL,
                       conn);
}

/* BH in the IOThread at shutdown. */
static void worker_close_all_bh(void *opaque)
{
    EchoWorker *worker = opaque;

    while (!LIST_EMPTY(&worker->conns)) {
        conn_close(LIST_FIRST(&worker->conns));
    }
}

/* fd handler in the main loop. */
static void server_accept(void *opaque)
{
    EchoServer *server = opaque;
    EchoWorker *worker;
    EchoConn *conn;
    int fd;

    fd = accept4(server->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            error_report("accept: %s", g_strerror(errno));
        }
        return;
    }
    worker = &server->workers[server->next];
    server->next = (server->next + 1) % server->n_workers;
    conn = g_new0(EchoConn, 1);
    conn->worker = worker;
    conn->fd = fd;
    __atomic_fetch_add(&worker->accepted, 1, __ATOMIC_RELAXED);
    /* The hand-over: the BH publishes conn to the IOThread (the BH list's
     * release/acquire pair orders our writes before its reads). */
    aio_bh_schedule_oneshot(worker->ctx, conn_attach_bh, conn);
}

EchoServer *echo_server_new(int listen_fd, int n_iothreads, Error **errp)
{
    EchoServer *server;
    int i;

    if (n_iothreads < 1) {
        error_setg(errp, "the echo server needs at least one IOThread");
        return NULL;
    }
    if (fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK) < 0) {
        error_setg_errno(errp, errno,
                         "cannot make the listening socket "
                         "non-blocking");
        return NULL;
    }
    server = g_new0(EchoServer, 1);
    server->listen_fd = listen_fd;
    server->main_ctx = main_loop_get_aio_context();
    server->workers = g_new0(EchoWorker, n_iothreads);
    for (i = 0; i < n_iothreads; i++) {
        g_autofree char *id = g_strdup_printf("echo%d", i);
        EchoWorker *worker = &server->workers[i];

        worker->iothread = iothread_new(id, NULL, errp);
        if (!worker->iothread) {
            server->n_workers = i;
            server->listen_fd = -1;
            echo_server_free(server);
            return NULL;
        }
        worker->ctx = iothread_get_aio_context(worker->iothread);
        LIST_INIT(&worker->conns);
    }
    server->n_workers = n_iothreads;
    aio_set_fd_handler(server->main_ctx, listen_fd, server_accept, NULL, NULL,
                       server);
    return server;
}

void echo_server_free(EchoServer *server)
{
    int i;

    if (!server) {
        return;
    }
    if (server->listen_fd >= 0) {
        aio_set_fd_handler(server->main_ctx, server->listen_fd, NULL, NULL,
                           NULL, NULL);
        close(server->listen_fd);
    }
    for (i = 0; i < server->n_workers; i++) {
        EchoWorker *worker = &server->workers[i];

        aio_bh_schedule_oneshot(worker->ctx, worker_close_all_bh, worker);
        iothread_destroy(worker->iothread); /* runs that BH first */
    }
    g_free(server->workers);
    g_free(server);
}

unsigned echo_server_get_accepted(EchoServer *server, int i)
{
    g_assert(i >= 0 && i < server->n_workers);
    return __atomic_load_n(&server->workers[i].accepted, __ATOMIC_RELAXED);
}
