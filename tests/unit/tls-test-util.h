/*
 * TLS helpers for unit tests: credentials made by tests/tls-certs.sh
 * (certtool, psktool) in a scratch directory, credentials objects made
 * from them, and a TLS proxy: a thread that speaks TLS to a server on one
 * socket (GnuTLS directly, blocking, independent of io/tls-session.c) and
 * relays plaintext to the other end of a socketpair, so that the raw NBD
 * client of tests/nbd-raw-client.h works unchanged over TLS.
 *
 * Thread-safety: tls_test_* functions run in the test's main thread; the
 * proxy runs in its own thread.
 */
#ifndef DATAPLANE_TESTS_TLS_TEST_UTIL_H
#define DATAPLANE_TESTS_TLS_TEST_UTIL_H

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane/object.h"
#include "dataplane/tls-creds.h"

#ifndef TLS_CERTS_SCRIPT
#error "meson defines TLS_CERTS_SCRIPT (tests/tls-certs.sh)"
#endif

/* A scratch directory holding what tests/tls-certs.sh makes; g_free() it
 * after tls_test_certs_remove(). */
static G_GNUC_UNUSED char *tls_test_certs_make(void)
{
    char *dir = g_dir_make_tmp("tls-test-XXXXXX", NULL);
    char *argv[] = {"sh", TLS_CERTS_SCRIPT, dir, NULL};
    g_autofree char *err = NULL;
    int status = -1;

    g_assert_nonnull(dir);
    g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
                               NULL, NULL, &err, &status, NULL));
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_error("tests/tls-certs.sh failed (is gnutls-bin installed?): %s",
                err);
    }
    return dir;
}

static G_GNUC_UNUSED void tls_test_rmtree(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *name;

    if (d) {
        while ((name = g_dir_read_name(d))) {
            g_autofree char *p = g_build_filename(path, name, NULL);

            tls_test_rmtree(p);
        }
        g_dir_close(d);
        g_rmdir(path);
    } else {
        g_remove(path);
    }
}

/*
 * Creates object id of type ("tls-creds-x509", "tls-creds-psk") from
 * "k=v,k=v" (dir= relative to certs).  Returns its TlsCreds, or NULL with
 * *errp set.
 */
static G_GNUC_UNUSED TlsCreds *tls_test_creds(const char *certs,
                                              const char *type, const char *id,
                                              const char *kv, Error **errp)
{
    g_autoptr(GHashTable) props =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_auto(GStrv) parts = g_strsplit(kv, ",", -1);
    char **p;

    for (p = parts; *p && **p; p++) {
        char *eq = strchr(*p, '=');
        char *k, *v;

        g_assert_nonnull(eq);
        k = g_strndup(*p, eq - *p);
        v = !strcmp(k, "dir") ? g_build_filename(certs, eq + 1, NULL)
                              : g_strdup(eq + 1);
        g_hash_table_insert(props, k, v);
    }
    if (!object_add(type, id, props, errp)) {
        return NULL;
    }
    return tls_creds_find(id, NULL, &error_abort);
}

/* ---- the proxy ------------------------------------------------------------
 */

typedef struct TlsProxy {
    GThread *thread;
    int tls_fd;   /* to the server; blocking */
    int plain_fd; /* the proxy's end of the socketpair */
    gnutls_session_t gs;
    gnutls_certificate_credentials_t x509;
    gnutls_psk_client_credentials_t psk;
    int handshake_ret; /* atomic; 1 while running */
    GMutex lock;
    GCond cond;
} TlsProxy;

/* gnutls_record_send() takes at most one record at a time. */
static bool tls_proxy_send_all(gnutls_session_t gs, const uint8_t *buf,
                               size_t len)
{
    while (len > 0) {
        ssize_t n = gnutls_record_send(gs, buf, len);

        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= n;
    }
    return true;
}

static gpointer tls_proxy_run(gpointer opaque)
{
    TlsProxy *p = opaque;
    uint8_t buf[65536];
    int ret;

    do {
        ret = gnutls_handshake(p->gs);
    } while (ret < 0 && !gnutls_error_is_fatal(ret));
    g_mutex_lock(&p->lock);
    g_atomic_int_set(&p->handshake_ret, ret);
    g_cond_broadcast(&p->cond);
    g_mutex_unlock(&p->lock);
    if (ret < 0) {
        close(p->plain_fd); /* the test's end reads EOF */
        p->plain_fd = -1;
        return NULL;
    }
    for (;;) {
        struct pollfd pfd[2] = {
            {.fd = p->tls_fd, .events = POLLIN},
            {.fd = p->plain_fd, .events = POLLIN},
        };

        if (gnutls_record_check_pending(p->gs) == 0 && poll(pfd, 2, -1) < 0) {
            break;
        }
        if (gnutls_record_check_pending(p->gs) > 0 ||
            (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = gnutls_record_recv(p->gs, buf, sizeof(buf));

            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                continue;
            }
            if (n <= 0 || send(p->plain_fd, buf, n, MSG_NOSIGNAL) != n) {
                break;
            }
        }
        if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(p->plain_fd, buf, sizeof(buf), 0);

            if (n <= 0) {
                /* The test closed its end: say goodbye properly. */
                gnutls_bye(p->gs, GNUTLS_SHUT_WR);
                break;
            }
            if (!tls_proxy_send_all(p->gs, buf, n)) {
                break;
            }
        }
    }
    shutdown(p->plain_fd, SHUT_RDWR);
    return NULL;
}

/*
 * Starts a TLS client on fd (a socket to the server, right after the
 * server's NBD_OPT_STARTTLS reply; the proxy takes it over and closes it).
 * creds_dir holds ca-cert.pem and optionally client-cert.pem and
 * client-key.pem; or psk_file and psk_user give a PSK client.  Returns the
 * fd the test talks plaintext on; *proxy must be passed to
 * tls_proxy_finish() after closing that fd.
 */
static G_GNUC_UNUSED int tls_proxy_start(int fd, const char *creds_dir,
                                         const char *psk_user,
                                         const char *psk_hexkey,
                                         TlsProxy **proxy)
{
    TlsProxy *p = g_new0(TlsProxy, 1);
    struct timeval tv = {.tv_sec = 10};
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==,
                    0);
    /* The test's end times out as raw_connect_path()'s sockets do. */
    setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    p->tls_fd = fd;
    p->plain_fd = sv[0];
    p->handshake_ret = 1;
    g_mutex_init(&p->lock);
    g_cond_init(&p->cond);
    /* NO_SIGNAL: a server that refuses the client may close before the
     * client's last handshake write, which must fail with EPIPE, not kill
     * the test (SIGPIPE stays fatal elsewhere: the server must not raise
     * it, so the tests do not ignore it). */
    g_assert_cmpint(gnutls_init(&p->gs, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL), ==,
                    0);
    if (creds_dir) {
        g_autofree char *ca = g_build_filename(creds_dir, "ca-cert.pem", NULL);
        g_autofree char *cert =
            g_build_filename(creds_dir, "client-cert.pem", NULL);
        g_autofree char *key =
            g_build_filename(creds_dir, "client-key.pem", NULL);

        g_assert_cmpint(gnutls_certificate_allocate_credentials(&p->x509), ==,
                        0);
        g_assert_cmpint(gnutls_certificate_set_x509_trust_file(
                            p->x509, ca, GNUTLS_X509_FMT_PEM),
                        >, 0);
        if (g_file_test(cert, G_FILE_TEST_EXISTS)) {
            g_assert_cmpint(gnutls_certificate_set_x509_key_file(
                                p->x509, cert, key, GNUTLS_X509_FMT_PEM),
                            >=, 0);
        }
        g_assert_cmpint(gnutls_set_default_priority(p->gs), ==, 0);
        g_assert_cmpint(
            gnutls_credentials_set(p->gs, GNUTLS_CRD_CERTIFICATE, p->x509), ==,
            0);
        gnutls_session_set_verify_cert(p->gs, "localhost", 0);
    } else {
        gnutls_datum_t k = {(unsigned char *)psk_hexkey, strlen(psk_hexkey)};

        g_assert_cmpint(gnutls_psk_allocate_client_credentials(&p->psk), ==, 0);
        g_assert_cmpint(gnutls_psk_set_client_credentials(p->psk, psk_user, &k,
                                                          GNUTLS_PSK_KEY_HEX),
                        ==, 0);
        g_assert_cmpint(gnutls_priority_set_direct(
                            p->gs, "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK", NULL),
                        ==, 0);
        g_assert_cmpint(gnutls_credentials_set(p->gs, GNUTLS_CRD_PSK, p->psk),
                        ==, 0);
    }
    gnutls_transport_set_int(p->gs, fd);
    p->thread = g_thread_new("tls-proxy", tls_proxy_run, p);
    *proxy = p;
    return sv[1];
}

/* Waits for the proxy's handshake: true if it succeeded. */
static G_GNUC_UNUSED bool tls_proxy_handshake_ok(TlsProxy *p)
{
    g_mutex_lock(&p->lock);
    while (g_atomic_int_get(&p->handshake_ret) == 1) {
        g_cond_wait(&p->cond, &p->lock);
    }
    g_mutex_unlock(&p->lock);
    return g_atomic_int_get(&p->handshake_ret) == 0;
}

/* After the test closed its plaintext fd: joins and frees the proxy. */
static G_GNUC_UNUSED void tls_proxy_finish(TlsProxy *p)
{
    g_thread_join(p->thread);
    if (p->plain_fd >= 0) {
        close(p->plain_fd);
    }
    close(p->tls_fd);
    gnutls_deinit(p->gs);
    if (p->x509) {
        gnutls_certificate_free_credentials(p->x509);
    }
    if (p->psk) {
        gnutls_psk_free_client_credentials(p->psk);
    }
    g_mutex_clear(&p->lock);
    g_cond_clear(&p->cond);
    g_free(p);
}

#endif /* DATAPLANE_TESTS_TLS_TEST_UTIL_H */
