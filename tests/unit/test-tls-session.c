/*
 * TLS sessions (io/tls-session.c) over a socketpair: a server session and
 * a client session made from credentials objects, both handshakes driven by
 * one AioContext in this thread.  Covers who may connect (CA, client
 * certificates, PSK keys, authz), the identity each side sees, and the
 * record layer's buffering contract (reads decrypted ahead, writes gathered
 * and held while the socket is full).
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane/aio.h"
#include "dataplane/authz.h"
#include "dataplane/tls-session.h"
#include "tests/unit/test-util.h"
#include "tests/unit/tls-test-util.h"

static char *certs;

typedef struct Pair {
    AioContext *ctx;
    int fd[2]; /* 0: server's, 1: client's */
    TlsSession *srv, *cli;
    bool srv_done, cli_done;
    Error *srv_err, *cli_err;
} Pair;

static void srv_done(void *opaque, Error *err)
{
    Pair *p = opaque;

    p->srv_done = true;
    p->srv_err = err;
}

static void cli_done(void *opaque, Error *err)
{
    Pair *p = opaque;

    p->cli_done = true;
    p->cli_err = err;
}

/* Object ids are per test: the registry is cleaned up after each. */
static TlsCreds *creds(const char *type, const char *id, const char *kv)
{
    return tls_test_creds(certs, type, id, kv, &error_abort);
}

/* Runs both handshakes to their ends (bounded). */
static void pair_handshake(Pair *p, TlsCreds *sc, TlsCreds *cc, Authz *authz)
{
    int i;

    p->ctx = aio_context_new(&error_abort);
    g_assert_cmpint(socketpair(AF_UNIX,
                               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                               p->fd),
                    ==, 0);
    p->srv = tls_session_new(sc, p->fd[0], NULL, authz, &error_abort);
    p->cli = tls_session_new(cc, p->fd[1], "localhost", NULL, &error_abort);
    tls_session_handshake_start(p->srv, p->ctx, srv_done, p);
    tls_session_handshake_start(p->cli, p->ctx, cli_done, p);
    /* Neither callback runs inside the start call. */
    g_assert_false(p->srv_done || p->cli_done);
    for (i = 0; i < 10000 && !(p->srv_done && p->cli_done); i++) {
        aio_poll(p->ctx, true);
        /* A side that failed closes its socket, as a server would, so
         * that the other side's handshake ends too. */
        if (p->srv_done && p->srv_err && p->fd[0] >= 0) {
            close(p->fd[0]);
            p->fd[0] = -1;
        }
        if (p->cli_done && p->cli_err && p->fd[1] >= 0) {
            close(p->fd[1]);
            p->fd[1] = -1;
        }
    }
    g_assert_true(p->srv_done && p->cli_done);
}

static void pair_free(Pair *p)
{
    tls_session_free(p->srv);
    tls_session_free(p->cli);
    if (p->fd[0] >= 0) {
        close(p->fd[0]);
    }
    if (p->fd[1] >= 0) {
        close(p->fd[1]);
    }
    g_clear_pointer(&p->srv_err, error_free);
    g_clear_pointer(&p->cli_err, error_free);
    aio_context_unref(p->ctx);
}

static void assert_ok(Pair *p)
{
    if (p->srv_err || p->cli_err) {
        g_error("handshake: server %s, client %s",
                p->srv_err ? error_get_pretty(p->srv_err) : "ok",
                p->cli_err ? error_get_pretty(p->cli_err) : "ok");
    }
}

static TlsCreds *x509_server(const char *kv)
{
    g_autofree char *all = g_strconcat("dir=server,endpoint=server,", kv, NULL);

    return creds("tls-creds-x509", "srv", all);
}

static TlsCreds *x509_client(const char *dir)
{
    /* client-otherca's certificate is not from its CA: skip the check
     * that would refuse it here, so that the server sees it. */
    g_autofree char *kv = g_strdup_printf(
        "dir=%s,endpoint=client%s", dir,
        !strcmp(dir, "client-otherca") ? ",sanity-check=off" : "");

    return creds("tls-creds-x509", "cli", kv);
}

/* ---- who may connect --------------------------------------------------------
 */

static void test_x509_client_with_certificate_is_accepted(void)
{
    Pair p = {0};

    pair_handshake(&p, x509_server(""), x509_client("client"), NULL);
    assert_ok(&p);
    /* The server sees the client's DN, in the form authz-simple takes. */
    g_assert_cmpstr(tls_session_get_peer_name(p.srv), ==,
                    "C=GB,O=Dataplane Test,CN=client1");
    pair_free(&p);
}

static void test_client_that_does_not_trust_the_server_fails(void)
{
    Pair p = {0};

    pair_handshake(&p, x509_server(""), x509_client("client-wrongca"), NULL);
    g_assert_nonnull(p.cli_err);
    g_assert_nonnull(p.srv_err);
    pair_free(&p);
}

static void test_verify_peer_refuses_a_client_without_certificate(void)
{
    Pair p = {0};

    pair_handshake(&p, x509_server(""), x509_client("client-nocert"), NULL);
    g_assert_nonnull(p.srv_err);
    g_test_message("server: %s", error_get_pretty(p.srv_err));
    pair_free(&p);
}

static void test_verify_peer_refuses_a_certificate_from_another_ca(void)
{
    Pair p = {0};

    pair_handshake(&p, x509_server(""), x509_client("client-otherca"), NULL);
    g_assert_nonnull(p.srv_err);
    g_test_message("server: %s", error_get_pretty(p.srv_err));
    pair_free(&p);
}

static void test_verify_peer_off_accepts_a_client_without_certificate(void)
{
    Pair p = {0};

    pair_handshake(&p, x509_server("verify-peer=off"),
                   x509_client("client-nocert"), NULL);
    assert_ok(&p);
    g_assert_null(tls_session_get_peer_name(p.srv));
    pair_free(&p);
}

static void test_psk_user_with_the_right_key_is_accepted(void)
{
    Pair p = {0};

    pair_handshake(&p, creds("tls-creds-psk", "srv", "dir=psk,endpoint=server"),
                   creds("tls-creds-psk", "cli",
                         "dir=psk-alice,endpoint=client,username=alice"),
                   NULL);
    assert_ok(&p);
    g_assert_cmpstr(tls_session_get_peer_name(p.srv), ==, "alice");
    pair_free(&p);
}

static void test_psk_wrong_key_fails(void)
{
    Pair p = {0};

    pair_handshake(&p, creds("tls-creds-psk", "srv", "dir=psk,endpoint=server"),
                   creds("tls-creds-psk", "cli",
                         "dir=psk-wrong,endpoint=client,username=alice"),
                   NULL);
    g_assert_nonnull(p.srv_err);
    g_assert_nonnull(p.cli_err);
    pair_free(&p);
}

static void test_psk_unknown_user_fails(void)
{
    Pair p = {0};

    /* The server's file lists alice only. */
    pair_handshake(
        &p, creds("tls-creds-psk", "srv", "dir=psk-alice,endpoint=server"),
        creds("tls-creds-psk", "cli", "dir=psk,endpoint=client,username=bob"),
        NULL);
    g_assert_nonnull(p.srv_err);
    pair_free(&p);
}

static Authz *authz(const char *identity)
{
    g_autoptr(GHashTable) props = g_hash_table_new(g_str_hash, g_str_equal);

    g_hash_table_insert(props, "identity", (gpointer)identity);
    g_assert_nonnull(object_add("authz-simple", "az", props, &error_abort));
    return authz_find("az", NULL, &error_abort);
}

static void test_authz_allows_its_identity_only(void)
{
    Pair p = {0}, q = {0};
    Authz *a = authz("C=GB,O=Dataplane Test,CN=client1");
    TlsCreds *sc = x509_server("");

    pair_handshake(&p, sc, x509_client("client"), a);
    assert_ok(&p);
    pair_free(&p);
    g_assert_true(object_del("cli", &error_abort));
    pair_handshake(&q, sc, x509_client("client2"), a);
    g_assert_nonnull(q.srv_err);
    g_assert_nonnull(strstr(error_get_pretty(q.srv_err), "CN=client2"));
    pair_free(&q);
}

static void test_authz_with_psk_checks_the_username(void)
{
    Pair p = {0};
    Authz *a = authz("bob");

    pair_handshake(
        &p, creds("tls-creds-psk", "srv", "dir=psk,endpoint=server"),
        creds("tls-creds-psk", "cli", "dir=psk,endpoint=client,username=alice"),
        a);
    g_assert_nonnull(p.srv_err);
    g_assert_nonnull(strstr(error_get_pretty(p.srv_err), "'alice'"));
    pair_free(&p);
}

static void test_authz_refuses_a_client_that_proved_no_identity(void)
{
    Pair p = {0};
    Authz *a = authz("C=GB,O=Dataplane Test,CN=client1");

    pair_handshake(&p, x509_server("verify-peer=off"),
                   x509_client("client-nocert"), a);
    g_assert_nonnull(p.srv_err);
    pair_free(&p);
}

static void test_garbage_instead_of_a_client_hello_fails(void)
{
    Pair p = {0};
    TlsCreds *sc = x509_server("");
    int i;

    p.ctx = aio_context_new(&error_abort);
    g_assert_cmpint(socketpair(AF_UNIX,
                               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                               p.fd),
                    ==, 0);
    p.srv = tls_session_new(sc, p.fd[0], NULL, NULL, &error_abort);
    tls_session_handshake_start(p.srv, p.ctx, srv_done, &p);
    g_assert_cmpint(write(p.fd[1], "GET / HTTP/1.0\r\n\r\n", 18), ==, 18);
    for (i = 0; i < 1000 && !p.srv_done; i++) {
        aio_poll(p.ctx, true);
    }
    g_assert_true(p.srv_done);
    g_assert_nonnull(p.srv_err);
    pair_free(&p);
}

static void test_free_during_handshake_removes_its_handler(void)
{
    Pair p = {0};
    TlsCreds *sc = x509_server("");

    p.ctx = aio_context_new(&error_abort);
    g_assert_cmpint(socketpair(AF_UNIX,
                               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                               p.fd),
                    ==, 0);
    p.srv = tls_session_new(sc, p.fd[0], NULL, NULL, &error_abort);
    tls_session_handshake_start(p.srv, p.ctx, srv_done, &p);
    g_assert_true(tls_session_handshake_in_progress(p.srv));
    tls_session_free(p.srv);
    p.srv = NULL;
    /* The fd turns readable: no handler is left to run. */
    g_assert_cmpint(write(p.fd[1], "x", 1), ==, 1);
    aio_poll(p.ctx, false);
    g_assert_false(p.srv_done);
    pair_free(&p);
}

/* ---- records ----------------------------------------------------------------
 */

static void pair_x509(Pair *p)
{
    pair_handshake(p, x509_server(""), x509_client("client"), NULL);
    assert_ok(p);
}

/* Reads exactly len bytes from s (polling p's sockets). */
static void read_all(TlsSession *s, uint8_t *buf, size_t len)
{
    size_t got = 0;
    int spins = 0;

    while (got < len) {
        ssize_t n = tls_session_read(s, buf + got, len - got);

        if (n == -EAGAIN) {
            g_assert_cmpint(++spins, <, 1000000);
            continue;
        }
        g_assert_cmpint(n, >, 0);
        got += n;
    }
}

static void test_small_pieces_are_gathered_into_few_records(void)
{
    enum { N = 1000 };
    Pair p = {0};
    struct iovec iov[N];
    uint8_t *back = g_malloc(N * 7);
    uint8_t src[N][7];
    int queued = 0;
    ssize_t n;
    int i;

    pair_x509(&p);
    for (i = 0; i < N; i++) {
        memset(src[i], i & 0xff, 7);
        iov[i].iov_base = src[i];
        iov[i].iov_len = 7;
    }
    n = tls_session_writev(p.cli, iov, N);
    g_assert_cmpint(n, ==, N * 7);
    g_assert_false(tls_session_write_pending(p.cli));
    /* One record costs ~30 bytes of framing and tag; a record per piece
     * would put over 29,000 bytes on the wire. */
    g_assert_cmpint(ioctl(p.fd[0], FIONREAD, &queued), ==, 0);
    g_assert_cmpint(queued, <, N * 7 + 256);
    read_all(p.srv, back, N * 7);
    for (i = 0; i < N; i++) {
        g_assert_cmpint(back[i * 7], ==, i & 0xff);
        g_assert_cmpint(back[i * 7 + 6], ==, i & 0xff);
    }
    g_free(back);
    pair_free(&p);
}

static void test_records_decrypted_ahead_are_reported_buffered(void)
{
    Pair p = {0};
    uint8_t b[3];
    int i;

    pair_x509(&p);
    /* Three writes: three records, all in the socket at once. */
    for (i = 0; i < 3; i++) {
        struct iovec iov = {"abc", 3};

        g_assert_cmpint(tls_session_writev(p.cli, &iov, 1), ==, 3);
    }
    g_assert_cmpint(tls_session_read(p.srv, b, 1), ==, 1);
    /* One recv() took every record: the fd is empty, the session is not. */
    g_assert_false(fd_readable(p.fd[0]));
    g_assert_true(tls_session_read_buffered(p.srv));
    g_assert_false(tls_session_read_drained(p.srv));
    for (i = 0; i < 8; i++) {
        if (tls_session_read(p.srv, b, 1) != 1) {
            break;
        }
    }
    g_assert_cmpint(i, ==, 8);
    g_assert_false(tls_session_read_buffered(p.srv));
    g_assert_true(tls_session_read_drained(p.srv));
    g_assert_cmpint(tls_session_read(p.srv, b, 1), ==, -EAGAIN);
    pair_free(&p);
}

static void test_a_full_socket_holds_ciphertext_until_flushed(void)
{
    enum { LEN = 8 * 1024 * 1024 };
    Pair p = {0};
    uint8_t *src = g_malloc(LEN), *back = g_malloc(LEN);
    size_t sent = 0, got = 0;
    int blocked = 0, i;

    pair_x509(&p);
    for (i = 0; i < LEN; i++) {
        src[i] = (uint8_t)(i * 7 + (i >> 13));
    }
    while (got < LEN) {
        /* Write until the socket is full, then read what it holds. */
        while (sent < LEN) {
            struct iovec iov = {src + sent, LEN - sent};
            ssize_t n = tls_session_writev(p.cli, &iov, 1);

            if (n == -EAGAIN) {
                blocked++;
                g_assert_true(tls_session_write_pending(p.cli));
                break;
            }
            g_assert_cmpint(n, >, 0);
            sent += n;
        }
        if (tls_session_write_pending(p.cli)) {
            int r = tls_session_flush(p.cli);

            g_assert_true(r == 0 || r == -EAGAIN);
        }
        while (got < LEN) {
            ssize_t n = tls_session_read(p.srv, back + got, LEN - got);

            if (n == -EAGAIN) {
                break;
            }
            g_assert_cmpint(n, >, 0);
            got += n;
        }
    }
    /* 8 MiB does not fit a socketpair's buffers: the socket was full. */
    g_assert_cmpint(blocked, >, 0);
    g_assert_false(tls_session_write_pending(p.cli));
    g_assert_cmpmem(src, LEN, back, LEN);
    g_free(src);
    g_free(back);
    pair_free(&p);
}

static void test_close_notify_and_plain_eof_both_end_the_stream(void)
{
    Pair p = {0};
    uint8_t b[4];

    pair_x509(&p);
    tls_session_shutdown(p.cli);
    g_assert_cmpint(tls_session_read(p.srv, b, sizeof(b)), ==, 0);
    pair_free(&p);

    memset(&p, 0, sizeof(p));
    object_registry_cleanup();
    pair_x509(&p);
    /* An NBD client may close after NBD_CMD_DISC without close_notify. */
    close(p.fd[1]);
    p.fd[1] = -1;
    g_assert_cmpint(tls_session_read(p.srv, b, sizeof(b)), ==, 0);
    pair_free(&p);
}

static void test_garbage_after_the_handshake_is_a_protocol_error(void)
{
    Pair p = {0};
    uint8_t junk[64], b[4];

    pair_x509(&p);
    memset(junk, 0x17, sizeof(junk)); /* application data type, bad MAC */
    g_assert_cmpint(write(p.fd[1], junk, sizeof(junk)), ==, sizeof(junk));
    g_assert_cmpint(tls_session_read(p.srv, b, sizeof(b)), ==, -EPROTO);
    pair_free(&p);
}

/* Each test, then the objects it made go. */
static void run_and_clean(gconstpointer fn)
{
    ((void (*)(void))fn)();
    object_registry_cleanup();
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    tls_creds_init();
    certs = tls_test_certs_make();
#define T(name, fn) g_test_add_data_func(name, (gconstpointer)fn, run_and_clean)
    T("/tls-session/x509/client-with-certificate-is-accepted",
      test_x509_client_with_certificate_is_accepted);
    T("/tls-session/x509/client-that-does-not-trust-the-server-fails",
      test_client_that_does_not_trust_the_server_fails);
    T("/tls-session/x509/verify-peer-refuses-client-without-certificate",
      test_verify_peer_refuses_a_client_without_certificate);
    T("/tls-session/x509/verify-peer-refuses-certificate-from-another-ca",
      test_verify_peer_refuses_a_certificate_from_another_ca);
    T("/tls-session/x509/verify-peer-off-accepts-client-without-certificate",
      test_verify_peer_off_accepts_a_client_without_certificate);
    T("/tls-session/psk/right-key-is-accepted",
      test_psk_user_with_the_right_key_is_accepted);
    T("/tls-session/psk/wrong-key-fails", test_psk_wrong_key_fails);
    T("/tls-session/psk/unknown-user-fails", test_psk_unknown_user_fails);
    T("/tls-session/authz/allows-its-identity-only",
      test_authz_allows_its_identity_only);
    T("/tls-session/authz/psk-checks-the-username",
      test_authz_with_psk_checks_the_username);
    T("/tls-session/authz/refuses-client-that-proved-no-identity",
      test_authz_refuses_a_client_that_proved_no_identity);
    T("/tls-session/handshake/garbage-instead-of-client-hello-fails",
      test_garbage_instead_of_a_client_hello_fails);
    T("/tls-session/handshake/free-during-handshake-removes-its-handler",
      test_free_during_handshake_removes_its_handler);
    T("/tls-session/records/small-pieces-gathered",
      test_small_pieces_are_gathered_into_few_records);
    T("/tls-session/records/decrypted-ahead-reported-buffered",
      test_records_decrypted_ahead_are_reported_buffered);
    T("/tls-session/records/full-socket-holds-ciphertext",
      test_a_full_socket_holds_ciphertext_until_flushed);
    T("/tls-session/records/close-notify-and-plain-eof-end-the-stream",
      test_close_notify_and_plain_eof_both_end_the_stream);
    T("/tls-session/records/garbage-after-handshake-is-protocol-error",
      test_garbage_after_the_handshake_is_a_protocol_error);
    ret = g_test_run();
    tls_test_rmtree(certs);
    g_free(certs);
    return ret;
}
