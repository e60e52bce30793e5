/*
 * libFuzzer target over the whole server: each input is the byte stream a
 * client sends on one connection (handshake, options, requests), followed
 * by end-of-file.  The server runs in this thread (main loop; the exported
 * memory nodes stay in the main loop's context), so a run is
 * deterministic; the input ends when the server has closed the connection
 * and released it, so leaks and use-after-free of the close path show up
 * under ASan/LSan.  The corpus seeds a valid handshake so that mutations
 * reach the transmission phase.
 *
 * Built a second time with FUZZ_TLS (fuzz-nbd-server-tls): the server
 * then requires TLS (PSK credentials).  An input whose first byte is odd
 * is sent as is after that byte: the options refused before TLS,
 * NBD_OPT_STARTTLS and a TLS handshake over fuzzed bytes.  An even first
 * byte makes the harness negotiate TLS itself (STARTTLS, then a GnuTLS
 * client handshake, non-blocking, interleaved with the server's loop) and
 * send the rest inside TLS: the options after STARTTLS and the
 * transmission phase over a TLS session, where records decrypted ahead of
 * the socket must never stall a connection (the run would not end).
 * Seeds: corpus-server-tls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dataplane/block.h"
#include "dataplane/main-loop.h"
#include "dataplane/nbd.h"
#include "dataplane/tls-creds.h"
#include "tests/unit/block-test-util.h"

#ifdef FUZZ_TLS
#include <gnutls/gnutls.h>

#include "nbd/protocol.h"

#define FUZZ_PSK_USER "fuzz"
#define FUZZ_PSK_KEY "000102030405060708090a0b0c0d0e0f"
static gnutls_psk_client_credentials_t client_psk;
#endif

static char sock_path[108];

/* One connection's client end: plaintext, or a TLS session on fd. */
typedef struct Stream {
    int fd;
#ifdef FUZZ_TLS
    gnutls_session_t gs; /* NULL: plaintext */
#endif
} Stream;

/* Sends up to len bytes: how many went, 0 if the socket is full, -1 if
 * the server has hung up. */
static ssize_t stream_send(Stream *st, const uint8_t *p, size_t len)
{
    ssize_t n;

#ifdef FUZZ_TLS
    if (st->gs) {
        /* After GNUTLS_E_AGAIN the same call is repeated: the caller
         * passes the same bytes until they are taken. */
        n = gnutls_record_send(st->gs, p, MIN(len, 16384));
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            return 0;
        }
        return n < 0 ? -1 : n;
    }
#endif
    n = send(st->fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
        return errno == EAGAIN ? 0 : -1;
    }
    return n;
}

/* Reads and drops what the server sent; true at its end of stream. */
static bool stream_drain(Stream *st)
{
    uint8_t buf[65536];
    ssize_t n;

#ifdef FUZZ_TLS
    if (st->gs) {
        while ((n = gnutls_record_recv(st->gs, buf, sizeof(buf))) > 0) {
        }
        return n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED;
    }
#endif
    while ((n = recv(st->fd, buf, sizeof(buf), 0)) > 0) {
    }
    return n == 0 || (n < 0 && errno != EAGAIN);
}

#ifdef FUZZ_TLS
/*
 * Fixed-newstyle flags, NBD_OPT_STARTTLS, its reply, then a TLS client
 * handshake with the server's PSK, stepped with the server's loop.  False
 * if any of it fails (the server closes, the run just ends then).
 */
static bool stream_start_tls(Stream *st)
{
    uint8_t msg[4 + NBD_OPTION_HEADER_LEN];
    uint8_t in[NBD_SERVER_GREETING_LEN + NBD_OPT_REPLY_HEADER_LEN];
    size_t got = 0;
    int i, ret = GNUTLS_E_AGAIN;

    nbd_put_be32(msg, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    nbd_put_be64(msg + 4, NBD_OPTS_MAGIC);
    nbd_put_be32(msg + 12, NBD_OPT_STARTTLS);
    nbd_put_be32(msg + 16, 0);
    if (send(st->fd, msg, sizeof(msg), MSG_NOSIGNAL) != sizeof(msg)) {
        return false;
    }
    for (i = 0; i < 10000 && got < sizeof(in); i++) {
        ssize_t n = recv(st->fd, in + got, sizeof(in) - got, 0);

        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            return false;
        }
        got += n > 0 ? n : 0;
        main_loop_wait(false);
    }
    g_assert(got == sizeof(in));
    g_assert(nbd_get_be32(in + NBD_SERVER_GREETING_LEN + 12) == NBD_REP_ACK);
    g_assert(gnutls_init(&st->gs, GNUTLS_CLIENT | GNUTLS_NONBLOCK |
                                      GNUTLS_NO_SIGNAL) == 0);
    g_assert(gnutls_priority_set_direct(
                 st->gs, "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK", NULL) == 0);
    g_assert(gnutls_credentials_set(st->gs, GNUTLS_CRD_PSK, client_psk) == 0);
    gnutls_transport_set_int(st->gs, st->fd);
    for (i = 0; i < 10000 && ret == GNUTLS_E_AGAIN; i++) {
        ret = gnutls_handshake(st->gs);
        if (ret < 0 && !gnutls_error_is_fatal(ret)) {
            ret = GNUTLS_E_AGAIN;
            main_loop_wait(false);
        }
    }
    g_assert(ret != GNUTLS_E_AGAIN);
    return ret == 0;
}
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *dir = g_dir_make_tmp("nbd-fuzz-XXXXXX", NULL);

    g_assert_nonnull(dir);
    g_snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
    g_free(dir);
    main_loop_init(&error_abort);
    /* The nodes stay open for the whole run: the exports hold them. */
    test_open("driver=memory,node-name=f0,size=1M");
    test_open("driver=memory,node-name=f1,size=64k,read-only=on");
    {
        NbdServerOptions so = {0};
        g_autoptr(SocketAddress) addr = socket_address_new_unix(sock_path);
#ifdef FUZZ_TLS
        g_autofree char *psk_dir = g_path_get_dirname(sock_path);
        g_autofree char *keys = g_build_filename(psk_dir, "keys.psk", NULL);
        g_autoptr(GHashTable) props = g_hash_table_new(g_str_hash, g_str_equal);
        gnutls_datum_t key = {(unsigned char *)FUZZ_PSK_KEY,
                              strlen(FUZZ_PSK_KEY)};

        g_assert_true(g_file_set_contents(
            keys, FUZZ_PSK_USER ":" FUZZ_PSK_KEY "\n", -1, NULL));
        g_hash_table_insert(props, "dir", psk_dir);
        g_hash_table_insert(props, "endpoint", "server");
        g_assert(gnutls_psk_allocate_client_credentials(&client_psk) == 0);
        g_assert(gnutls_psk_set_client_credentials(
                     client_psk, FUZZ_PSK_USER, &key, GNUTLS_PSK_KEY_HEX) == 0);
        tls_creds_init();
        object_add("tls-creds-psk", "tls0", props, &error_abort);
        so.tls_creds = tls_creds_find("tls0", NULL, &error_abort);
#endif
        nbd_server_start(addr, &so, &error_abort);
    }
    nbd_export_add("e0", "f0", "disk", "fuzz", true, &error_abort);
    nbd_export_add("e1", "f1", "ro", NULL, false, &error_abort);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    Stream st = {0};
    size_t sent = 0;
    bool shut = false, eof = false;
    int i;

    st.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert(st.fd >= 0);
    strcpy(sun.sun_path, sock_path);
    /* A listening unix socket completes connect() from its backlog. */
    g_assert(connect(st.fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
    fcntl(st.fd, F_SETFL, O_NONBLOCK);
#ifdef FUZZ_TLS
    if (size > 0 && (data[0] & 1)) {
        data++, size--;
    } else if (size > 0 && (data++, size--, !stream_start_tls(&st))) {
        sent = size; /* refused: nothing more to send */
    }
#endif

    for (i = 0; i < 100000; i++) {
        if (sent < size) {
            ssize_t n = stream_send(&st, data + sent, size - sent);

            if (n < 0) {
                sent = size; /* the server has hung up */
            } else {
                sent += n;
            }
        }
        if (sent == size && !shut) {
#ifdef FUZZ_TLS
            if (st.gs) {
                /* One try at close_notify; then the socket's end. */
                gnutls_bye(st.gs, GNUTLS_SHUT_WR);
            }
#endif
            shutdown(st.fd, SHUT_WR);
            shut = true;
        }
        if (stream_drain(&st)) {
            eof = true;
        }
        if (eof && nbd_server_get_connection_count() == 0) {
            break;
        }
        main_loop_wait(false);
    }
    g_assert(eof && nbd_server_get_connection_count() == 0);
#ifdef FUZZ_TLS
    if (st.gs) {
        gnutls_deinit(st.gs);
    }
#endif
    close(st.fd);
    return 0;
}
