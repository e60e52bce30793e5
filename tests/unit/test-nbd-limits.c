/*
 * The NBD server's bounds on what a peer can make it hold: the server-wide
 * memory budget (nbd/budget.c: stalled clients wait, woken across threads,
 * the accounting returns to zero), the idle timeout, and TCP keepalive.
 * The main loop runs here, the exported node in an IOThread, and raw
 * clients in threads of their own (blocking sockets).
 */
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "dataplane/block.h"
#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "dataplane/nbd.h"
#include "nbd/budget.h"
#include "tests/nbd-raw-client.h"
#include "tests/unit/block-test-util.h"

typedef struct Fixture {
    char *dir;
    char *sock;
    IOThread *iothread;
    BlockDriverState *bs;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->dir = g_dir_make_tmp("nbd-limits-XXXXXX", NULL);
    f->sock = g_build_filename(f->dir, "sock", NULL);
    f->iothread = iothread_new("nbd-io", NULL, &error_abort);
    f->bs = test_open("driver=memory,node-name=m0,size=8M");
    g_assert_true(bdrv_set_aio_context(
        f->bs, iothread_get_aio_context(f->iothread), &error_abort));
}

/* Starts the server on f's unix socket, or on TCP 127.0.0.1 (port 0). */
static void start(Fixture *f, const NbdServerOptions *so, bool tcp)
{
    g_autoptr(SocketAddress) addr =
        tcp ? socket_address_new_inet("127.0.0.1", "0")
            : socket_address_new_unix(f->sock);

    g_assert_true(nbd_server_start(addr, so, &error_abort));
    g_assert_true(nbd_export_add("e0", "m0", "disk", NULL, true, &error_abort));
}

static void wait_connections(unsigned want)
{
    for (int i = 0; i < 100000 && nbd_server_get_connection_count() != want;
         i++) {
        main_loop_wait(true);
    }
    g_assert_cmpuint(nbd_server_get_connection_count(), ==, want);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    if (nbd_server_is_running()) {
        g_assert_true(nbd_server_stop(&error_abort));
    }
    wait_connections(0);
    while (main_loop_wait(false)) {
    }
    /* Whatever the clients did, every byte counted was given back. */
    g_assert_cmpuint(nbd_budget_get_used(), ==, 0);
    bdrv_unref(f->bs);
    iothread_destroy(f->iothread);
    g_remove(f->sock);
    g_rmdir(f->dir);
    g_free(f->sock);
    g_free(f->dir);
}

/* ---- client threads ------------------------------------------------------ */

typedef struct Client {
    GThread *thread;
    Fixture *f;
    int go;   /* atomic: the main thread lets a stalled client read */
    int step; /* atomic: how far the client is */
    int done; /* atomic */
} Client;

static Client *client_start(Fixture *f, GThreadFunc fn)
{
    Client *c = g_new0(Client, 1);

    c->f = f;
    c->thread = g_thread_new("client", fn, c);
    return c;
}

/* Runs the main loop until c has reached step (bounded). */
static void main_until(Client *c, int step)
{
    for (int i = 0; i < 1000000 && g_atomic_int_get(&c->step) < step; i++) {
        main_loop_wait(false);
        g_usleep(100);
    }
    g_assert_cmpint(g_atomic_int_get(&c->step), >=, step);
}

static void client_finish(Client *c)
{
    main_until(c, G_MAXINT);
    g_thread_join(c->thread);
    g_free(c);
}

static void client_done(Client *c)
{
    g_atomic_int_set(&c->step, G_MAXINT);
    g_main_context_wakeup(NULL);
}

enum { STALL_REQS = 16, STALL_LEN = 256 * 1024 };

/* Sends many READs and reads nothing until told to; then reads them all. */
static gpointer stalled_client(gpointer opaque)
{
    Client *c = opaque;
    int fd = raw_connect_path(c->f->sock);
    uint8_t *data = g_malloc(STALL_LEN);
    int rcvbuf = 4096;

    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", false, false);
    for (int i = 0; i < STALL_REQS; i++) {
        raw_request(fd, 0, NBD_CMD_READ, i, 0, STALL_LEN);
    }
    g_atomic_int_set(&c->step, 1);
    while (!g_atomic_int_get(&c->go)) {
        g_usleep(1000);
    }
    /* Each reply read frees memory, which must wake this client to read
     * its next requests (it is on the budget's waiting list). */
    for (int i = 0; i < STALL_REQS; i++) {
        uint64_t cookie;

        g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
        g_assert_true(raw_recv(fd, data, STALL_LEN));
    }
    g_free(data);
    close(fd);
    client_done(c);
    return NULL;
}

/* Round trips one at a time: the fairness rule lets each through. */
static gpointer polite_client(gpointer opaque)
{
    Client *c = opaque;
    int fd = raw_connect_path(c->f->sock);
    uint8_t data[4096];

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", false, false);
    for (int i = 0; i < 100; i++) {
        uint64_t cookie;

        raw_request(fd, 0, NBD_CMD_READ, i, 4096, sizeof(data));
        g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
        g_assert_cmpuint(cookie, ==, i);
        g_assert_true(raw_recv(fd, data, sizeof(data)));
    }
    close(fd);
    client_done(c);
    return NULL;
}

static void test_budget_stops_stalled_clients_and_wakes_them(Fixture *f,
                                                             gconstpointer d)
{
    NbdServerOptions so = NBD_SERVER_OPTIONS_DEFAULT;
    Client *a, *b, *p;

    so.max_buffer_size = 1024 * 1024;
    start(f, &so, false);
    a = client_start(f, stalled_client);
    b = client_start(f, stalled_client);
    main_until(a, 1);
    main_until(b, 1);
    /* Both stalled: while they hold memory past the budget, a third
     * client still gets every request through. */
    p = client_start(f, polite_client);
    client_finish(p);
    /* The budget held: the spent memory is at most the limit plus one
     * request per client (the clients' queues are far larger). */
    g_assert_cmpuint(nbd_budget_get_used(), <=,
                     so.max_buffer_size + 2 * STALL_LEN + 4096);
    g_atomic_int_set(&a->go, 1);
    g_atomic_int_set(&b->go, 1);
    client_finish(a);
    client_finish(b);
    wait_connections(0);
}

/* One reply, simple (CACHE's success) or a final structured chunk. */
static void read_any_reply(int fd, uint8_t *buf, size_t size)
{
    uint8_t h[NBD_STRUCTURED_REPLY_LEN];
    uint32_t len;

    g_assert_true(raw_recv(fd, h, 4));
    if (nbd_get_be32(h) == NBD_SIMPLE_REPLY_MAGIC) {
        g_assert_true(raw_recv(fd, h + 4, NBD_SIMPLE_REPLY_LEN - 4));
        g_assert_cmpuint(nbd_get_be32(h + 4), ==, 0);
        return;
    }
    g_assert_cmpuint(nbd_get_be32(h), ==, NBD_STRUCTURED_REPLY_MAGIC);
    g_assert_true(raw_recv(fd, h + 4, NBD_STRUCTURED_REPLY_LEN - 4));
    g_assert_true(nbd_get_be16(h + 4) & NBD_REPLY_FLAG_DONE);
    len = nbd_get_be32(h + 16);
    g_assert_cmpuint(len, <=, size);
    g_assert_true(raw_recv(fd, buf, len));
}

static gpointer unbudgeted_client(gpointer opaque)
{
    Client *c = opaque;
    int fd = raw_connect_path(c->f->sock);
    uint8_t *data = g_malloc(STALL_LEN + 64);

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", true, true);
    /* Every kind of request that holds memory, pipelined. */
    for (int i = 0; i < 8; i++) {
        raw_request(fd, 0, NBD_CMD_READ, 10 + i, 0, STALL_LEN);
        raw_request(fd, 0, NBD_CMD_CACHE, 20 + i, 0, 8 * 1024 * 1024);
        raw_request(fd, 0, NBD_CMD_BLOCK_STATUS, 30 + i, 0, 8 * 1024 * 1024);
    }
    for (int i = 0; i < 24; i++) {
        read_any_reply(fd, data, STALL_LEN + 64);
    }
    raw_request(fd, 0, NBD_CMD_DISC, 99, 0, 0);
    g_assert_true(raw_closed_by_server(fd));
    g_free(data);
    close(fd);
    client_done(c);
    return NULL;
}

static void
test_budget_counts_every_command_and_returns_to_zero(Fixture *f,
                                                     gconstpointer d)
{
    start(f, NULL, false);
    client_finish(client_start(f, unbudgeted_client));
    wait_connections(0);
    g_assert_cmpuint(nbd_budget_get_used(), ==, 0);
}

/* ---- idle ---------------------------------------------------------------- */

static gpointer idle_client(gpointer opaque)
{
    Client *c = opaque;
    int fd = raw_connect_path(c->f->sock);

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", false, false);
    /* Silent: the server must hang up (within the 10 s receive timeout). */
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
    client_done(c);
    return NULL;
}

static void test_idle_client_is_closed(Fixture *f, gconstpointer d)
{
    NbdServerOptions so = NBD_SERVER_OPTIONS_DEFAULT;

    so.idle_max_seconds = 1;
    start(f, &so, false);
    client_finish(client_start(f, idle_client));
    wait_connections(0);
}

/* ---- TCP keepalive ------------------------------------------------------- */

static int int_opt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);

    g_assert_cmpint(getsockopt(fd, level, name, &v, &len), ==, 0);
    return v;
}

static void test_tcp_clients_get_keepalive(Fixture *f, gconstpointer d)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct sockaddr_in mine;
    socklen_t len = sizeof(mine);
    int fd, server_fd = -1;

    start(f, NULL, true);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(nbd_server_get_port());
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&mine, &len), ==, 0);
    wait_connections(1);
    /* The server's end: the socket in this process whose peer is us. */
    for (int i = 0; i < 1024 && server_fd < 0; i++) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof(peer);

        if (i != fd && getpeername(i, (struct sockaddr *)&peer, &plen) == 0 &&
            peer.sin_family == AF_INET && peer.sin_port == mine.sin_port) {
            server_fd = i;
        }
    }
    g_assert_cmpint(server_fd, >=, 0);
    g_assert_cmpint(int_opt(server_fd, SOL_SOCKET, SO_KEEPALIVE), ==, 1);
    g_assert_cmpint(int_opt(server_fd, IPPROTO_TCP, TCP_KEEPIDLE), ==, 60);
    g_assert_cmpint(int_opt(server_fd, IPPROTO_TCP, TCP_KEEPINTVL), ==, 10);
    g_assert_cmpint(int_opt(server_fd, IPPROTO_TCP, TCP_KEEPCNT), ==, 6);
    g_assert_cmpint(int_opt(server_fd, IPPROTO_TCP, TCP_NODELAY), ==, 1);
    close(fd);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    main_loop_init(&error_abort);
#define T(name)                                                                \
    g_test_add("/nbd/limits/" #name, Fixture, NULL, fixture_setup,             \
               test_##name, fixture_teardown)
    T(budget_stops_stalled_clients_and_wakes_them);
    T(budget_counts_every_command_and_returns_to_zero);
    T(idle_client_is_closed);
    T(tcp_clients_get_keepalive);
#undef T
    return g_test_run();
}
