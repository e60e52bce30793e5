/*
 * The NBD server with TLS required, in-process: the main loop runs here, a
 * memory node lives in an IOThread, and a raw client thread speaks plain
 * NBD until NBD_OPT_STARTTLS, then through a TLS proxy (GnuTLS used
 * directly, see tls-test-util.h).  Covers what a client may do before TLS,
 * the STARTTLS exchange, failed and stalled TLS handshakes, authorization,
 * and I/O while the node moves between contexts.
 */
#include <glib.h>
#include <glib/gstdio.h>

#include "dataplane/block.h"
#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "dataplane/nbd.h"
#include "tests/nbd-raw-client.h"
#include "tests/unit/block-test-util.h"
#include "tests/unit/nbd-client-thread.h"
#include "tests/unit/tls-test-util.h"

static char *certs;

struct Fixture {
    char *dir;
    char *sock;
    IOThread *iothread;
    BlockDriverState *bs;
    const char *mode; /* "x509", "psk", "authz", "timeout" */
    char *psk_key;    /* alice's, hex */
};

static char *alice_key(void)
{
    g_autofree char *path = g_build_filename(certs, "psk", "keys.psk", NULL);
    g_autofree char *text = NULL;
    char *p, *nl;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    p = strstr(text, "alice:");
    g_assert_nonnull(p);
    p += strlen("alice:");
    nl = strchr(p, '\n');
    return g_strndup(p, nl ? nl - p : (long)strlen(p));
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(SocketAddress) addr = NULL;
    NbdServerOptions so = NBD_SERVER_OPTIONS_DEFAULT;
    TlsCreds *creds;
    Authz *authz = NULL;

    f->mode = data;
    f->dir = g_dir_make_tmp("nbd-tls-XXXXXX", NULL);
    f->sock = g_build_filename(f->dir, "sock", NULL);
    f->iothread = iothread_new("nbd-io", NULL, &error_abort);
    f->bs = test_open("driver=memory,node-name=m0,size=8M");
    g_assert_true(bdrv_set_aio_context(
        f->bs, iothread_get_aio_context(f->iothread), &error_abort));
    if (!strcmp(f->mode, "psk")) {
        creds = tls_test_creds(certs, "tls-creds-psk", "tls0",
                               "dir=psk,endpoint=server", &error_abort);
        f->psk_key = alice_key();
    } else {
        creds = tls_test_creds(certs, "tls-creds-x509", "tls0",
                               "dir=server,endpoint=server", &error_abort);
    }
    if (!strcmp(f->mode, "authz")) {
        g_autoptr(GHashTable) props = g_hash_table_new(g_str_hash, g_str_equal);

        g_hash_table_insert(props, "identity",
                            "C=GB,O=Dataplane Test,CN=client1");
        object_add("authz-simple", "auth0", props, &error_abort);
        authz = authz_find("auth0", NULL, &error_abort);
    }
    so.tls_creds = creds;
    so.tls_authz = authz;
    so.max_connections = 10;
    so.handshake_max_seconds = !strcmp(f->mode, "timeout") ? 1 : 10;
    addr = socket_address_new_unix(f->sock);
    g_assert_true(nbd_server_start(addr, &so, &error_abort));
    g_assert_true(
        nbd_export_add("e0", "m0", "disk", "memory", true, &error_abort));
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    if (nbd_server_is_running()) {
        g_assert_true(nbd_server_stop(&error_abort));
    }
    wait_connections(0);
    while (main_loop_wait(false)) {
    }
    object_registry_cleanup();
    main_loop_register_object();
    bdrv_unref(f->bs);
    iothread_destroy(f->iothread);
    g_remove(f->sock);
    g_rmdir(f->dir);
    g_free(f->sock);
    g_free(f->dir);
    g_free(f->psk_key);
}

/* ---- the client side ------------------------------------------------------
 */

/* Connects and greets: a plaintext fd in option haggling. */
static int plain_connect(Fixture *f)
{
    int fd = raw_connect_path(f->sock);

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    return fd;
}

static uint32_t opt_reply_type(int fd, uint32_t opt, const void *data,
                               uint32_t len)
{
    OptReply r;

    raw_opt(fd, opt, data, len);
    raw_opt_reply(fd, &r);
    g_assert_cmpuint(r.opt, ==, opt);
    return r.type;
}

/* STARTTLS, then a TLS proxy with the credentials in certs/<dir> (NULL:
 * the fixture's PSK key).  Returns the plaintext fd, or -1 if the TLS
 * handshake failed (the proxy is finished then). */
static int tls_connect(Fixture *f, const char *dir, TlsProxy **proxy)
{
    int fd = plain_connect(f);
    g_autofree char *path = dir ? g_build_filename(certs, dir, NULL) : NULL;
    int pfd;

    g_assert_cmpuint(opt_reply_type(fd, NBD_OPT_STARTTLS, NULL, 0), ==,
                     NBD_REP_ACK);
    pfd = tls_proxy_start(fd, path, "alice", f->psk_key, proxy);
    if (!tls_proxy_handshake_ok(*proxy)) {
        close(pfd);
        tls_proxy_finish(*proxy);
        *proxy = NULL;
        return -1;
    }
    return pfd;
}

static const char *client_dir(Fixture *f)
{
    return !strcmp(f->mode, "psk") ? NULL : "client";
}

/* One write and its read back, then NBD_CMD_DISC. */
static void rw_and_disconnect(int fd, uint8_t pattern)
{
    uint8_t data[4096], back[4096];
    uint64_t cookie;

    memset(data, pattern, sizeof(data));
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
}

/* ---- before TLS ------------------------------------------------------------
 */

static void before_tls_client(ClientThread *ct)
{
    static const uint32_t opts[] = {
        NBD_OPT_LIST,
        NBD_OPT_INFO,
        NBD_OPT_GO,
        NBD_OPT_STRUCTURED_REPLY,
        NBD_OPT_LIST_META_CONTEXT,
        NBD_OPT_SET_META_CONTEXT,
        99,
    };
    int fd = plain_connect(ct->f);
    GByteArray *go = go_payload("disk", NULL, 0);
    g_autofree char *client = g_build_filename(certs, "client", NULL);
    TlsProxy *proxy;
    size_t i;
    int pfd;

    /* Everything but STARTTLS and ABORT: TLS required, nothing told. */
    for (i = 0; i < G_N_ELEMENTS(opts); i++) {
        g_assert_cmpuint(opt_reply_type(fd, opts[i], go->data, go->len), ==,
                         NBD_REP_ERR_TLS_REQD);
    }
    g_byte_array_unref(go);
    g_assert_cmpuint(opt_reply_type(fd, NBD_OPT_STARTTLS, "x", 1), ==,
                     NBD_REP_ERR_INVALID);
    /* After all that, STARTTLS still works, and so does the export. */
    g_assert_cmpuint(opt_reply_type(fd, NBD_OPT_STARTTLS, NULL, 0), ==,
                     NBD_REP_ACK);
    pfd = tls_proxy_start(fd, client, NULL, NULL, &proxy);
    g_assert_true(tls_proxy_handshake_ok(proxy));
    /* Inside TLS, a second STARTTLS is refused. */
    g_assert_cmpuint(opt_reply_type(pfd, NBD_OPT_STARTTLS, NULL, 0), ==,
                     NBD_REP_ERR_INVALID);
    raw_go(pfd, "disk", false, false);
    rw_and_disconnect(pfd, 0x5a);
    close(pfd);
    tls_proxy_finish(proxy);
}

static void test_only_starttls_is_served_before_tls(Fixture *f,
                                                    gconstpointer data)
{
    client_finish(client_start(f, before_tls_client));
    wait_connections(0);
}

static void export_name_client(ClientThread *ct)
{
    int fd = plain_connect(ct->f);

    raw_opt(fd, NBD_OPT_EXPORT_NAME, "disk", 4);
    /* It cannot be answered with an error: the server hangs up. */
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
}

static void test_export_name_before_tls_closes(Fixture *f, gconstpointer data)
{
    client_finish(client_start(f, export_name_client));
    wait_connections(0);
}

static void abort_client(ClientThread *ct)
{
    int fd = plain_connect(ct->f);

    g_assert_cmpuint(opt_reply_type(fd, NBD_OPT_ABORT, NULL, 0), ==,
                     NBD_REP_ACK);
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
}

static void test_abort_before_tls_is_served(Fixture *f, gconstpointer data)
{
    client_finish(client_start(f, abort_client));
    wait_connections(0);
}

static void injecting_client(ClientThread *ct)
{
    int fd = plain_connect(ct->f);
    uint8_t msg[NBD_OPTION_HEADER_LEN + 16];
    OptReply r;

    /* STARTTLS and, in the same send, bytes a man in the middle could have
     * added: the server must not take them as if they came over TLS. */
    nbd_put_be64(msg, NBD_OPTS_MAGIC);
    nbd_put_be32(msg + 8, NBD_OPT_STARTTLS);
    nbd_put_be32(msg + 12, 0);
    memset(msg + NBD_OPTION_HEADER_LEN, 0x16, 16);
    raw_send(fd, msg, sizeof(msg));
    raw_opt_reply(fd, &r);
    g_assert_cmpuint(r.type, ==, NBD_REP_ACK);
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
}

static void test_data_after_starttls_before_its_reply_drops(Fixture *f,
                                                            gconstpointer data)
{
    client_finish(client_start(f, injecting_client));
    wait_connections(0);
}

/* ---- the TLS handshake -----------------------------------------------------
 */

static void bad_handshake_client(ClientThread *ct)
{
    TlsProxy *proxy;
    int good = tls_connect(ct->f, "client", &proxy);
    int bad = plain_connect(ct->f);
    uint8_t junk[512];

    g_assert_cmpint(good, >=, 0);
    raw_go(good, "disk", false, false);
    client_step(ct, 1);
    /* Another client fails its TLS handshake... */
    g_assert_cmpuint(opt_reply_type(bad, NBD_OPT_STARTTLS, NULL, 0), ==,
                     NBD_REP_ACK);
    memset(junk, 0xee, sizeof(junk));
    raw_send(bad, junk, sizeof(junk));
    g_assert_true(raw_closed_by_server(bad));
    close(bad);
    client_step(ct, 2);
    client_wait_step(ct, 3);
    /* ...and the first one goes on. */
    rw_and_disconnect(good, 0x17);
    close(good);
    tls_proxy_finish(proxy);
}

static void
test_failed_handshake_closes_only_that_connection(Fixture *f,
                                                  gconstpointer data)
{
    ClientThread *ct = client_start(f, bad_handshake_client);

    main_until_step(ct, 2);
    wait_connections(1);
    client_step(ct, 3);
    client_finish(ct);
    wait_connections(0);
}

static void stalled_client(ClientThread *ct)
{
    int fd = plain_connect(ct->f);
    /* The first bytes of a TLS record header (a handshake record), and
     * then nothing. */
    static const uint8_t partial[] = {0x16, 0x03, 0x01};

    g_assert_cmpuint(opt_reply_type(fd, NBD_OPT_STARTTLS, NULL, 0), ==,
                     NBD_REP_ACK);
    raw_send(fd, partial, sizeof(partial));
    client_step(ct, 1);
    /* handshake-max-seconds=1 here; raw_closed_by_server waits up to
     * 10 s, and the counter below says which of the two happened. */
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
}

static void
test_stalled_tls_handshake_hits_the_handshake_timeout(Fixture *f,
                                                      gconstpointer data)
{
    ClientThread *ct = client_start(f, stalled_client);

    main_until_step(ct, 1);
    client_finish(ct);
    wait_connections(0);
}

/*
 * A client the server must refuse: its TLS handshake fails, or (TLS 1.3:
 * the client has finished its part before the server has checked its
 * certificate) the server closes right after it, serving nothing.
 */
static void assert_refused(Fixture *f, const char *dir)
{
    TlsProxy *proxy;
    int fd = tls_connect(f, dir, &proxy);

    if (fd >= 0) {
        uint8_t opt[NBD_OPTION_HEADER_LEN], b[64];
        ssize_t n;

        /* An option the server would answer had it accepted the client
         * (the proxy may have closed already: no SIGPIPE, no check). */
        nbd_put_be64(opt, NBD_OPTS_MAGIC);
        nbd_put_be32(opt + 8, NBD_OPT_LIST);
        nbd_put_be32(opt + 12, 0);
        send(fd, opt, sizeof(opt), MSG_NOSIGNAL);
        n = recv(fd, b, sizeof(b), 0);
        /* No answer: the end of the stream (or a reset). */
        g_assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
        close(fd);
        tls_proxy_finish(proxy);
    }
}

static void wrong_cert_client(ClientThread *ct)
{
    TlsProxy *proxy;

    /* No certificate, a certificate from another CA: refused. */
    assert_refused(ct->f, "client-nocert");
    assert_refused(ct->f, "client-otherca");
    /* A client that does not trust the server gives up itself. */
    g_assert_cmpint(tls_connect(ct->f, "client-wrongca", &proxy), ==, -1);
}

static void
test_clients_without_the_right_certificate_are_refused(Fixture *f,
                                                       gconstpointer data)
{
    client_finish(client_start(f, wrong_cert_client));
    wait_connections(0);
}

static void authz_client(ClientThread *ct)
{
    TlsProxy *proxy;
    int fd;

    /* CN=client2 is from the right CA, but auth0 allows client1 only. */
    assert_refused(ct->f, "client2");
    fd = tls_connect(ct->f, "client", &proxy);
    g_assert_cmpint(fd, >=, 0);
    raw_go(fd, "disk", false, false);
    rw_and_disconnect(fd, 0x33);
    close(fd);
    tls_proxy_finish(proxy);
}

static void test_authz_admits_only_its_identity(Fixture *f, gconstpointer data)
{
    client_finish(client_start(f, authz_client));
    wait_connections(0);
}

/* ---- transmission
 * ------------------------------------------------------------ */

static void psk_client(ClientThread *ct)
{
    TlsProxy *proxy;
    int fd = tls_connect(ct->f, NULL, &proxy);

    g_assert_cmpint(fd, >=, 0);
    raw_go(fd, "disk", false, false);
    rw_and_disconnect(fd, 0x44);
    close(fd);
    tls_proxy_finish(proxy);
}

static void test_psk_client_reads_and_writes(Fixture *f, gconstpointer data)
{
    client_finish(client_start(f, psk_client));
    wait_connections(0);
}

static void pipelining_client(ClientThread *ct)
{
    TlsProxy *proxy;
    int fd = tls_connect(ct->f, client_dir(ct->f), &proxy);
    GByteArray *go = go_payload("disk", NULL, 0);
    uint8_t buf[NBD_OPTION_HEADER_LEN + 64 + 3 * NBD_REQUEST_LEN];
    size_t len = 0;
    OptReply r;
    int i;

    g_assert_cmpint(fd, >=, 0);
    /* GO and three reads in one write: the requests arrive decrypted
     * together with GO, before the server has entered transmission. */
    nbd_put_be64(buf, NBD_OPTS_MAGIC);
    nbd_put_be32(buf + 8, NBD_OPT_GO);
    nbd_put_be32(buf + 12, go->len);
    memcpy(buf + NBD_OPTION_HEADER_LEN, go->data, go->len);
    len = NBD_OPTION_HEADER_LEN + go->len;
    for (i = 0; i < 3; i++) {
        uint8_t *h = buf + len;

        nbd_put_be32(h, NBD_REQUEST_MAGIC);
        nbd_put_be16(h + 4, 0);
        nbd_put_be16(h + 6, NBD_CMD_READ);
        nbd_put_be64(h + 8, 10 + i);
        nbd_put_be64(h + 16, 0);
        nbd_put_be32(h + 24, 512);
        len += NBD_REQUEST_LEN;
    }
    g_byte_array_unref(go);
    raw_send(fd, buf, len);
    do {
        raw_opt_reply(fd, &r);
    } while (r.type == NBD_REP_INFO);
    g_assert_cmpuint(r.type, ==, NBD_REP_ACK);
    for (i = 0; i < 3; i++) {
        uint8_t data[512];
        uint64_t cookie;

        g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
        g_assert_cmpuint(cookie, ==, 10 + i);
        g_assert_true(raw_recv(fd, data, sizeof(data)));
    }
    /* And requests in separate records, sent back to back. */
    for (i = 0; i < 3; i++) {
        raw_request(fd, 0, NBD_CMD_READ, 20 + i, 0, 512);
    }
    for (i = 0; i < 3; i++) {
        uint8_t data[512];
        uint64_t cookie;

        g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
        g_assert_cmpuint(cookie, ==, 20 + i);
        g_assert_true(raw_recv(fd, data, sizeof(data)));
    }
    raw_request(fd, 0, NBD_CMD_DISC, 3, 0, 0);
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
    tls_proxy_finish(proxy);
}

static void test_requests_pipelined_after_go_are_served(Fixture *f,
                                                        gconstpointer data)
{
    client_finish(client_start(f, pipelining_client));
    wait_connections(0);
}

/* Writes then reads, DEPTH in flight, 256 KiB and 4 KiB mixed, checking
 * every byte, while the main thread moves the node. */
static void moving_client(ClientThread *ct)
{
    enum { ROUNDS = 24, DEPTH = 16 };
    TlsProxy *proxy;
    int fd = tls_connect(ct->f, client_dir(ct->f), &proxy);
    int r, i;

    g_assert_cmpint(fd, >=, 0);
    raw_go(fd, "disk", true, false);
    client_step(ct, 1);
    for (r = 0; r < ROUNDS; r++) {
        uint32_t bs = (r % 2) ? 256 * 1024 : 4096;
        GByteArray *req = g_byte_array_new();
        uint8_t *expect = g_malloc(bs);

        for (i = 0; i < DEPTH; i++) {
            uint8_t h[NBD_REQUEST_LEN];
            uint8_t *payload = g_malloc(bs);

            nbd_put_be32(h, NBD_REQUEST_MAGIC);
            nbd_put_be16(h + 4, 0);
            nbd_put_be16(h + 6, NBD_CMD_WRITE);
            nbd_put_be64(h + 8, i);
            nbd_put_be64(h + 16, (uint64_t)i * bs % (8 << 20));
            nbd_put_be32(h + 24, bs);
            memset(payload, r * DEPTH + i, bs);
            g_byte_array_append(req, h, sizeof(h));
            g_byte_array_append(req, payload, bs);
            g_free(payload);
        }
        raw_send(fd, req->data, req->len);
        g_byte_array_unref(req);
        for (i = 0; i < DEPTH; i++) {
            uint64_t cookie;

            /* Writes succeed with simple replies, as the spec allows. */
            g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
        }
        for (i = 0; i < DEPTH; i++) {
            raw_request(fd, 0, NBD_CMD_READ, 1000 + i,
                        (uint64_t)i * bs % (8 << 20), bs);
        }
        for (i = 0; i < DEPTH; i++) {
            Chunk c;
            uint64_t n;

            raw_chunk(fd, &c);
            g_assert_cmpuint(c.type, ==, NBD_REPLY_TYPE_OFFSET_DATA);
            n = c.cookie - 1000;
            g_assert_cmpuint(n, <, DEPTH);
            memset(expect, (int)(r * DEPTH + n) & 0xff, bs);
            g_assert_cmpmem(c.payload + 8, c.len - 8, expect, bs);
            g_free(c.payload);
        }
        g_free(expect);
        client_step(ct, 2 + r);
    }
    raw_request(fd, 0, NBD_CMD_DISC, 3, 0, 0);
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
    tls_proxy_finish(proxy);
}

static void test_tls_connection_follows_node_moves_under_io(Fixture *f,
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
        /* A drained section too: the session must keep its buffered
         * records across it. */
        bdrv_drained_begin(f->bs);
        main_loop_wait(false);
        bdrv_drained_end(f->bs);
        main_loop_wait(false);
    }
    g_test_message("%d moves", moves);
    g_assert_cmpint(moves, >, 1);
    client_finish(ct);
    wait_connections(0);
    bdrv_set_aio_context(f->bs, io, &error_abort);
}

/* ---- configuration
 * ------------------------------------------------------------- */

static void plain_policy_client(ClientThread *ct)
{
    int fd = plain_connect(ct->f);

    g_assert_cmpuint(opt_reply_type(fd, NBD_OPT_STARTTLS, NULL, 0), ==,
                     NBD_REP_ERR_POLICY);
    raw_go(fd, "disk", false, false);
    rw_and_disconnect(fd, 0x21);
    close(fd);
}

static void test_start_refuses_tls_that_cannot_work(Fixture *f,
                                                    gconstpointer data)
{
    g_autoptr(GHashTable) props = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(SocketAddress) addr = socket_address_new_unix(f->sock);
    NbdServerOptions so = NBD_SERVER_OPTIONS_DEFAULT;
    Error *err = NULL;
    TlsCreds *cli;
    Authz *a;

    cli = tls_test_creds(certs, "tls-creds-x509", "cli",
                         "dir=client,endpoint=client", &error_abort);
    g_hash_table_insert(props, "identity", "x");
    object_add("authz-simple", "a1", props, &error_abort);
    a = authz_find("a1", NULL, &error_abort);
    g_assert_true(nbd_server_stop(&error_abort));
    wait_connections(0);
    so.tls_creds = cli;
    g_assert_false(nbd_server_start(addr, &so, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "endpoint=server"));
    g_clear_pointer(&err, error_free);
    so.tls_creds = NULL;
    so.tls_authz = a;
    g_assert_false(nbd_server_start(addr, &so, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "needs tls-creds"));
    g_clear_pointer(&err, error_free);
    g_assert_false(nbd_server_is_running());
    /* A stopped server forgot its TLS: the next start is plaintext, and
     * STARTTLS gets NBD_REP_ERR_POLICY there. */
    g_assert_true(nbd_server_start(addr, NULL, &error_abort));
    g_assert_true(nbd_export_add("e0", "m0", "disk", NULL, true, &error_abort));
    client_finish(client_start(f, plain_policy_client));
    wait_connections(0);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    main_loop_init(&error_abort);
    tls_creds_init();
    certs = tls_test_certs_make();
#define T(name, mode)                                                          \
    g_test_add("/nbd/tls/" mode "/" #name, Fixture, mode, fixture_setup,       \
               test_##name, fixture_teardown)
    T(only_starttls_is_served_before_tls, "x509");
    T(export_name_before_tls_closes, "x509");
    T(abort_before_tls_is_served, "x509");
    T(data_after_starttls_before_its_reply_drops, "x509");
    T(failed_handshake_closes_only_that_connection, "x509");
    T(stalled_tls_handshake_hits_the_handshake_timeout, "timeout");
    T(clients_without_the_right_certificate_are_refused, "x509");
    T(authz_admits_only_its_identity, "authz");
    T(psk_client_reads_and_writes, "psk");
    T(requests_pipelined_after_go_are_served, "x509");
    T(requests_pipelined_after_go_are_served, "psk");
    T(tls_connection_follows_node_moves_under_io, "x509");
    T(start_refuses_tls_that_cannot_work, "x509");
#undef T
    ret = g_test_run();
    tls_test_rmtree(certs);
    g_free(certs);
    return ret;
}
