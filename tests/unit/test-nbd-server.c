/*
 * The NBD server in-process: the main loop runs here, a memory node lives
 * in an IOThread, and a raw client runs in a thread of its own (blocking
 * sockets).  Covers the export API, moves of the node while requests are
 * in flight, and the close paths (export deletion, server stop), so that
 * the sanitizer runs of the unit suite see the server's threads.
 */
#include <glib.h>
#include <glib/gstdio.h>

#include "dataplane/block.h"
#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "dataplane/nbd.h"
#include "tests/unit/block-test-util.h"
#include "tests/nbd-raw-client.h"
#include "tests/unit/nbd-client-thread.h"
#include "util/clock.h"
#include "util/thread.h"

typedef struct Fixture {
    char *dir;
    char *sock;
    IOThread *iothread;
    BlockDriverState *bs;
    BlockDriverState *ro;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    NbdServerOptions opts = {.max_connections = 10,
                             .handshake_max_seconds = 10};
    SocketAddress *addr;

    f->dir = g_dir_make_tmp("nbd-server-XXXXXX", NULL);
    f->sock = g_build_filename(f->dir, "sock", NULL);
    f->iothread = iothread_new("nbd-io", NULL, &error_abort);
    f->bs = test_open("driver=memory,node-name=m0,size=8M");
    f->ro = test_open("driver=memory,node-name=m1,size=1M,read-only=on");
    g_assert_true(bdrv_set_aio_context(
        f->bs, iothread_get_aio_context(f->iothread), &error_abort));
    addr = socket_address_new_unix(f->sock);
    g_assert_true(nbd_server_start(addr, &opts, &error_abort));
    socket_address_free(addr);
    g_assert_true(
        nbd_export_add("e0", "m0", "disk", "memory", true, &error_abort));
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    if (nbd_server_is_running()) {
        g_assert_true(nbd_server_stop(&error_abort));
    }
    wait_connections(0);
    /* Exports release their nodes from main-loop BHs. */
    while (main_loop_wait(false)) {
    }
    bdrv_unref(f->bs);
    bdrv_unref(f->ro);
    iothread_destroy(f->iothread);
    g_remove(f->sock);
    g_rmdir(f->dir);
    g_free(f->sock);
    g_free(f->dir);
}

/* ---- export API --------------------------------------------------------- */

static void test_export_add_refuses_bad_arguments(Fixture *f,
                                                  gconstpointer data)
{
    Error *err = NULL;

    g_assert_false(nbd_export_add("e1", "nosuch", NULL, NULL, false, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "nosuch"));
    g_clear_pointer(&err, error_free);
    g_assert_false(nbd_export_add("e0", "m1", "other", NULL, false, &err));
    g_clear_pointer(&err, error_free);
    g_assert_false(nbd_export_add("e1", "m1", "disk", NULL, false, &err));
    g_clear_pointer(&err, error_free);
    g_assert_false(nbd_export_add("e1", "m1", NULL, NULL, true, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "read-only"));
    g_clear_pointer(&err, error_free);
    g_assert_true(nbd_export_add("e1", "m1", NULL, NULL, false, &err));
    g_assert_false(nbd_export_del("nosuch", NBD_EXPORT_DEL_SAFE, &err));
    g_clear_pointer(&err, error_free);
    g_assert_true(nbd_export_del("e1", NBD_EXPORT_DEL_SAFE, &error_abort));
}

static void count_export(const NbdExportInfo *info, void *opaque)
{
    GString *s = opaque;

    g_string_append_printf(s, "%s=%s:%s:%s:%d;", info->id, info->name,
                           info->node_name, info->description, info->writable);
}

static void test_export_list_shows_exports(Fixture *f, gconstpointer data)
{
    GString *s = g_string_new("");

    g_assert_true(nbd_export_add("e1", "m1", NULL, NULL, false, &error_abort));
    nbd_export_foreach(count_export, s);
    g_assert_cmpstr(s->str, ==, "e0=disk:m0:memory:1;e1=m1:m1:(null):0;");
    g_string_free(s, TRUE);
}

static void test_server_start_twice_refused(Fixture *f, gconstpointer data)
{
    g_autoptr(SocketAddress) same = socket_address_new_unix(f->sock);
    g_autoptr(SocketAddress) tcp = socket_address_new_inet("127.0.0.1", "0");
    Error *err = NULL;

    g_assert_false(nbd_server_start(same, NULL, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "NBD server already running");
    g_clear_pointer(&err, error_free);
    g_assert_false(nbd_server_start(tcp, NULL, &err));
    g_clear_pointer(&err, error_free);
}

static void test_server_start_keeps_a_regular_file(Fixture *f,
                                                   gconstpointer data)
{
    char *path = g_build_filename(f->dir, "file", NULL);
    g_autoptr(SocketAddress) addr = socket_address_new_unix(path);
    Error *err = NULL;

    g_assert_true(nbd_server_stop(&error_abort));
    g_assert_true(g_file_set_contents(path, "keep", -1, NULL));
    g_assert_false(nbd_server_start(addr, NULL, &err));
    error_free(err);
    g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
    g_remove(path);
    g_free(path);
}

/* ---- transmission in the IOThread -------------------------------------- */

static void rw_client(ClientThread *ct)
{
    int fd = raw_connect_path(ct->f->sock);
    uint8_t data[4096], back[4096];
    uint64_t cookie;

    memset(data, 0x3c, sizeof(data));
    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", false, false);
    raw_request(fd, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 1, 8192, sizeof(data));
    raw_send(fd, data, sizeof(data));
    g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
    raw_request(fd, 0, NBD_CMD_READ, 2, 8192, sizeof(back));
    g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
    g_assert_cmpuint(cookie, ==, 2);
    g_assert_true(raw_recv(fd, back, sizeof(back)));
    g_assert_cmpmem(back, sizeof(back), data, sizeof(data));
    raw_request(fd, 0, NBD_CMD_DISC, 3, 0, 0);
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
}

static void test_write_then_read_back_from_iothread(Fixture *f,
                                                    gconstpointer data)
{
    client_finish(client_start(f, rw_client));
    wait_connections(0);
}

/* QD1: one 512-byte read at a time, each sent once the last reply is in. */
enum { QD1_READS = 2000 };

static void qd1_client(ClientThread *ct)
{
    int fd = raw_connect_path(ct->f->sock);
    uint8_t back[512];
    uint64_t cookie;
    int i;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", false, false);
    for (i = 0; i < QD1_READS; i++) {
        raw_request(fd, 0, NBD_CMD_READ, i, (uint64_t)(i % 64) * 512,
                    sizeof(back));
        g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
        g_assert_cmpuint(cookie, ==, i);
        g_assert_true(raw_recv(fd, back, sizeof(back)));
    }
    close(fd);
}

/*
 * With x-poll-sockets the IOThread busy-polls the socket of an active
 * connection: a client that sends its next request within the polling
 * window finds the loop awake, so most requests cost no sleep.  Without a
 * poll function on the socket every request would end a sleep (a wait
 * polling cannot see end shrinks the window), so sleeps would be about one
 * per request.  Counts only: the window (1 s) covers any think time of the
 * client.
 */
static void test_active_connection_is_busy_polled(Fixture *f,
                                                  gconstpointer data)
{
    AioContext *ctx = iothread_get_aio_context(f->iothread);
    NbdServerOptions opts = NBD_SERVER_OPTIONS_DEFAULT;
    AioContextStats before, after;
    SocketAddress *addr;

    g_assert_true(nbd_server_stop(&error_abort));
    opts.poll_sockets = true;
    addr = socket_address_new_unix(f->sock);
    g_assert_true(nbd_server_start(addr, &opts, &error_abort));
    socket_address_free(addr);
    g_assert_true(
        nbd_export_add("e0", "m0", "disk", "memory", true, &error_abort));
    g_assert_true(
        aio_context_set_poll_params(ctx, 1000000000, 0, 0, &error_abort));
    aio_context_get_stats(ctx, &before);
    client_finish(client_start(f, qd1_client));
    wait_connections(0);
    aio_context_get_stats(ctx, &after);
    g_assert_cmpuint(after.poll_hits - before.poll_hits, >, QD1_READS / 2);
    g_assert_cmpuint(after.sleeps - before.sleeps, <, QD1_READS / 2);
    g_assert_true(aio_context_set_poll_params(ctx, 0, 0, 0, &error_abort));
}

/* Writes then reads, many in flight at a time, checking every reply. */
static void moving_client(ClientThread *ct)
{
    enum { ROUNDS = 40, DEPTH = 32, BS = 4096 };
    int fd = raw_connect_path(ct->f->sock);
    uint8_t *req = g_malloc(DEPTH * (NBD_REQUEST_LEN + BS));
    uint8_t data[BS];
    int r, i;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", true, false);
    client_step(ct, 1);
    for (r = 0; r < ROUNDS; r++) {
        size_t len = 0;

        /* DEPTH writes in one send, then DEPTH reads of the same. */
        for (i = 0; i < DEPTH; i++) {
            uint8_t *h = req + len;

            nbd_put_be32(h, NBD_REQUEST_MAGIC);
            nbd_put_be16(h + 4, 0);
            nbd_put_be16(h + 6, NBD_CMD_WRITE);
            nbd_put_be64(h + 8, i);
            nbd_put_be64(h + 16, (uint64_t)i * BS);
            nbd_put_be32(h + 24, BS);
            memset(h + NBD_REQUEST_LEN, r * DEPTH + i, BS);
            len += NBD_REQUEST_LEN + BS;
        }
        raw_send(fd, req, len);
        for (i = 0; i < DEPTH; i++) {
            uint64_t cookie;

            g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
        }
        for (i = 0; i < DEPTH; i++) {
            raw_request(fd, 0, NBD_CMD_READ, 1000 + i, (uint64_t)i * BS, BS);
        }
        for (i = 0; i < DEPTH; i++) {
            Chunk c;
            uint64_t n;

            raw_chunk(fd, &c);
            g_assert_cmpuint(c.type, ==, NBD_REPLY_TYPE_OFFSET_DATA);
            n = c.cookie - 1000;
            g_assert_cmpuint(n, <, DEPTH);
            memset(data, (int)(r * DEPTH + n) & 0xff, BS);
            g_assert_cmpmem(c.payload + 8, c.len - 8, data, BS);
            g_free(c.payload);
        }
        client_step(ct, 2 + r);
    }
    g_free(req);
    close(fd);
}

static void test_connection_follows_node_moves_under_io(Fixture *f,
                                                        gconstpointer data)
{
    ClientThread *ct = client_start(f, moving_client);
    AioContext *io = iothread_get_aio_context(f->iothread);
    AioContext *main_ctx = main_loop_get_aio_context();
    int moves = 0;

    main_until_step(ct, 1);
    while (!g_atomic_int_get(&ct->done) && moves < 10000) {
        AioContext *to = bdrv_get_aio_context(f->bs) == io ? main_ctx : io;

        g_assert_true(bdrv_set_aio_context(f->bs, to, &error_abort));
        moves++;
        main_loop_wait(false);
    }
    g_test_message("%d moves", moves);
    g_assert_cmpint(moves, >, 1);
    client_finish(ct);
    wait_connections(0);
    /* The node ends where the test found it: teardown expects no more. */
    bdrv_set_aio_context(f->bs, io, &error_abort);
}

/* ---- drained sections --------------------------------------------------- */

static void drained_client(ClientThread *ct)
{
    int fd = raw_connect_path(ct->f->sock);
    uint8_t b[NBD_SIMPLE_REPLY_LEN];
    uint64_t cookie;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", false, false);
    client_step(ct, 1);
    /* The main thread has begun a drained section: send a flush. */
    client_wait_step(ct, 2);
    raw_request(fd, 0, NBD_CMD_FLUSH, 7, 0, 0);
    client_step(ct, 3);
    client_wait_step(ct, 4);
    /* The IOThread has run several iterations with the request readable:
     * had it read it, the reply would be here. */
    g_assert_cmpint(recv(fd, b, sizeof(b), MSG_DONTWAIT), ==, -1);
    g_assert_cmpint(errno, ==, EAGAIN);
    client_step(ct, 5);
    /* The section ends: the request is served. */
    g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
    g_assert_cmpuint(cookie, ==, 7);
    close(fd);
}

static void test_drained_section_holds_new_requests(Fixture *f,
                                                    gconstpointer data)
{
    ClientThread *ct = client_start(f, drained_client);
    AioContext *io = iothread_get_aio_context(f->iothread);
    int i;

    main_until_step(ct, 1);
    wait_connections(1);
    bdrv_drained_begin(f->bs);
    client_step(ct, 2);
    main_until_step(ct, 3);
    /* Each acquire kicks the IOThread out of aio_poll and waits for the
     * iteration to end: after a few, a readable fd would have been read. */
    for (i = 0; i < 8; i++) {
        aio_context_acquire(io);
        aio_context_release(io);
    }
    client_step(ct, 4);
    main_until_step(ct, 5);
    bdrv_drained_end(f->bs);
    client_finish(ct);
    wait_connections(0);
}

/* ---- multi-threaded exports -------------------------------------------- */

/* Like moving_client, on export "mq" and on a region of its own. */
static void mq_client(ClientThread *ct)
{
    enum { ROUNDS = 30, DEPTH = 32, BS = 4096 };
    int fd = raw_connect_path(ct->f->sock);
    uint64_t base = (uint64_t)ct->index * DEPTH * BS;
    uint8_t *req = g_malloc(DEPTH * (NBD_REQUEST_LEN + BS));
    uint8_t data[BS];
    int r, i;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "mq", true, false);
    client_step(ct, 1);
    /* Until every client is attached (the main thread checks the
     * spread). */
    client_wait_step(ct, 2);
    for (r = 0; r < ROUNDS; r++) {
        size_t len = 0;

        for (i = 0; i < DEPTH; i++) {
            uint8_t *h = req + len;

            nbd_put_be32(h, NBD_REQUEST_MAGIC);
            nbd_put_be16(h + 4, 0);
            nbd_put_be16(h + 6, NBD_CMD_WRITE);
            nbd_put_be64(h + 8, i);
            nbd_put_be64(h + 16, base + (uint64_t)i * BS);
            nbd_put_be32(h + 24, BS);
            memset(h + NBD_REQUEST_LEN, ct->index * 64 + r + i, BS);
            len += NBD_REQUEST_LEN + BS;
        }
        raw_send(fd, req, len);
        for (i = 0; i < DEPTH; i++) {
            uint64_t cookie;

            g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
        }
        /* A flush on this connection, then reads. */
        raw_request(fd, 0, NBD_CMD_FLUSH, 999, 0, 0);
        {
            uint64_t cookie;

            g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
        }
        for (i = 0; i < DEPTH; i++) {
            raw_request(fd, 0, NBD_CMD_READ, 1000 + i, base + (uint64_t)i * BS,
                        BS);
        }
        for (i = 0; i < DEPTH; i++) {
            Chunk c;
            uint64_t n;

            raw_chunk(fd, &c);
            g_assert_cmpuint(c.type, ==, NBD_REPLY_TYPE_OFFSET_DATA);
            n = c.cookie - 1000;
            g_assert_cmpuint(n, <, DEPTH);
            memset(data, (int)(ct->index * 64 + r + n) & 0xff, BS);
            g_assert_cmpmem(c.payload + 8, c.len - 8, data, BS);
            g_free(c.payload);
        }
    }
    g_free(req);
    raw_request(fd, 0, NBD_CMD_DISC, 3, 0, 0);
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
}

typedef struct Spread {
    unsigned n;
    unsigned per[4];
} Spread;

static void spread_of_mq(const NbdExportInfo *info, void *opaque)
{
    Spread *sp = opaque;
    unsigned i;

    if (strcmp(info->id, "e1") != 0) {
        return;
    }
    sp->n = info->n_contexts;
    for (i = 0; i < info->n_contexts && i < 4; i++) {
        sp->per[i] = info->context_connections[i];
    }
}

/*
 * Four clients on an export over two IOThreads: spread two and two, each
 * submitting from its own IOThread, while the node's home moves between
 * the IOThreads and the main loop and drained sections come and go.
 */
static void test_multi_threaded_export_under_moves(Fixture *f,
                                                   gconstpointer data)
{
    IOThread *io2 = iothread_new("nbd-io2", NULL, &error_abort);
    AioContext *ctxs[2] = {iothread_get_aio_context(f->iothread),
                           iothread_get_aio_context(io2)};
    AioContext *homes[3] = {ctxs[1], main_loop_get_aio_context(), ctxs[0]};
    ClientThread *ct[4];
    Spread sp = {0};
    bool all_done = false;
    int moves = 0;
    int i;
    NbdExportConfig cfg = {.id = "e1",
                           .node_name = "m0",
                           .name = "mq",
                           .writable = true,
                           .ctxs = ctxs,
                           .n_ctxs = 2};

    g_assert_true(nbd_export_add_config(&cfg, &error_abort));
    for (i = 0; i < 4; i++) {
        ct[i] = client_start_index(f, mq_client, i);
    }
    for (i = 0; i < 4; i++) {
        main_until_step(ct[i], 1);
    }
    wait_connections(4);
    nbd_export_foreach(spread_of_mq, &sp);
    g_assert_cmpuint(sp.n, ==, 2);
    g_assert_cmpuint(sp.per[0], ==, 2);
    g_assert_cmpuint(sp.per[1], ==, 2);
    for (i = 0; i < 4; i++) {
        client_step(ct[i], 2);
    }
    while (!all_done && moves < 10000) {
        g_assert_true(
            bdrv_set_aio_context(f->bs, homes[moves % 3], &error_abort));
        if (moves % 4 == 1) {
            bdrv_drained_begin(f->bs);
            g_assert_cmpuint(bdrv_get_in_flight(f->bs), ==, 0);
            bdrv_drained_end(f->bs);
        }
        moves++;
        main_loop_wait(false);
        all_done = true;
        for (i = 0; i < 4; i++) {
            all_done &= g_atomic_int_get(&ct[i]->done);
        }
    }
    g_test_message("%d moves", moves);
    for (i = 0; i < 4; i++) {
        client_finish(ct[i]);
    }
    wait_connections(0);
    g_assert_true(nbd_export_del("e1", NBD_EXPORT_DEL_SAFE, &error_abort));
    while (main_loop_wait(false)) {
    }
    g_assert_true(bdrv_set_aio_context(f->bs, ctxs[0], &error_abort));
    iothread_destroy(io2);
}

/* ---- close paths -------------------------------------------------------- */

static void held_client(ClientThread *ct)
{
    int fd = raw_connect_path(ct->f->sock);

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", false, false);
    client_step(ct, 1);
    /* The main thread deletes the export: the server hangs up. */
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
}

static void test_export_del_safe_refuses_hard_drops(Fixture *f,
                                                    gconstpointer data)
{
    ClientThread *ct = client_start(f, held_client);
    Error *err = NULL;

    main_until_step(ct, 1);
    wait_connections(1);
    g_assert_false(nbd_export_del("e0", NBD_EXPORT_DEL_SAFE, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "in use"));
    error_free(err);
    g_assert_true(nbd_export_del("e0", NBD_EXPORT_DEL_HARD, &error_abort));
    client_finish(ct);
    wait_connections(0);
}

static void stop_client(ClientThread *ct)
{
    int a = raw_connect_path(ct->f->sock);
    int b = raw_connect_path(ct->f->sock);

    raw_greet(a, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(a, "disk", true, false);
    raw_greet(b, NBD_FLAG_C_FIXED_NEWSTYLE); /* b stays in the handshake */
    client_step(ct, 1);
    g_assert_true(raw_closed_by_server(a));
    g_assert_true(raw_closed_by_server(b));
    close(a);
    close(b);
}

static void test_server_stop_drops_every_client(Fixture *f, gconstpointer data)
{
    ClientThread *ct = client_start(f, stop_client);

    main_until_step(ct, 1);
    wait_connections(2);
    g_assert_true(nbd_server_stop(&error_abort));
    client_finish(ct);
    wait_connections(0);
    g_assert_false(nbd_server_is_running());
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    main_loop_init(&error_abort);
#define T(name)                                                                \
    g_test_add("/nbd/server/" #name, Fixture, NULL, fixture_setup,             \
               test_##name, fixture_teardown)
    T(export_add_refuses_bad_arguments);
    T(export_list_shows_exports);
    T(server_start_twice_refused);
    T(server_start_keeps_a_regular_file);
    T(write_then_read_back_from_iothread);
    T(active_connection_is_busy_polled);
    T(connection_follows_node_moves_under_io);
    T(drained_section_holds_new_requests);
    T(multi_threaded_export_under_moves);
    T(export_del_safe_refuses_hard_drops);
    T(server_stop_drops_every_client);
#undef T
    return g_test_run();
}
