/*
 * TLS sessions over non-blocking sockets.  See include/dataplane/tls-
 * session.h for the contract.
 *
 * GnuTLS talks to the socket only through this file's transport functions:
 *  - pull() serves GnuTLS from `in`, a read-ahead buffer refilled with one
 *    recv() of up to TLS_IN_SIZE bytes.  GnuTLS asks for a record's header,
 *    then its body; without the read-ahead every record would cost two
 *    system calls, and a client that sends each request as its own small
 *    record would cost two per request.
 *  - push() never touches the socket: it appends ciphertext to `out`, which
 *    out_flush() sends.  So GnuTLS never sees EAGAIN on a write (a record is
 *    either not made or made whole), and every record made by one writev or
 *    handshake step leaves in as few send() calls as the socket allows.
 *    writev stops making records while `out` holds TLS_OUT_HIGH bytes, which
 *    bounds it.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/x509.h>

#include "dataplane/tls-session.h"
#include "io/tls-creds-int.h"

#define TLS_IN_SIZE (64 * 1024)
#define TLS_OUT_HIGH (64 * 1024)
/* The largest plaintext of one record, before a peer asks for less. */
#define TLS_RECORD_MAX 16384
/* gnutls_handshake() calls per step for non-fatal results. */
#define TLS_HS_RETRIES 16

struct TlsSession {
    gnutls_session_t gs;
    TlsCreds *creds;
    int fd;
    char *hostname; /* client: the name the server's certificate carries */
    Authz *authz;   /* server: checked once at the end of the handshake */
    char *peer_name;

    /* Read-ahead: in[in_start..in_end) is ciphertext not yet pulled. */
    uint8_t *in;
    size_t in_start, in_end;
    bool sock_empty; /* the last recv() was short or EAGAIN */
    int in_err;      /* a socket error seen by pull(), as -errno */

    /* Ciphertext to send: out[out_start..out_len). */
    uint8_t *out;
    size_t out_start, out_len, out_cap;
    int out_err; /* sticky: a send or TLS error, as -errno */

    /* Gathers small plaintext pieces into one record. */
    uint8_t *stage;
    size_t record_max;

    /* Handshake. */
    AioContext *hs_ctx; /* non-NULL while it runs */
    TlsHandshakeFunc *hs_cb;
    void *hs_opaque;
    bool hs_proto_done; /* gnutls_handshake() returned 0 */
    bool hs_failed;     /* an error is queued: close once the alert is out */
    Error *hs_err;
    bool established;
    bool shut;
};

/* ---- transport ---------------------------------------------------------- */

static ssize_t pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
    TlsSession *s = ptr;
    size_t n;

    if (s->in_start == s->in_end) {
        ssize_t r;

        do {
            r = recv(s->fd, s->in, TLS_IN_SIZE, MSG_DONTWAIT);
        } while (r < 0 && errno == EINTR);
        if (r == 0) {
            s->sock_empty = true;
            return 0; /* EOF */
        }
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                s->sock_empty = true;
                gnutls_transport_set_errno(s->gs, EAGAIN);
            } else {
                s->in_err = -errno;
                gnutls_transport_set_errno(s->gs, errno);
            }
            return -1;
        }
        s->in_start = 0;
        s->in_end = r;
        s->sock_empty = r < TLS_IN_SIZE;
    }
    n = MIN(len, s->in_end - s->in_start);
    memcpy(buf, s->in + s->in_start, n);
    s->in_start += n;
    return n;
}

static ssize_t push(gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
    TlsSession *s = ptr;

    if (s->out_cap - s->out_len < len) {
        /* Reclaim what was sent, then grow if that is not enough. */
        if (s->out_start > 0) {
            memmove(s->out, s->out + s->out_start, s->out_len - s->out_start);
            s->out_len -= s->out_start;
            s->out_start = 0;
        }
        if (s->out_cap - s->out_len < len) {
            s->out_cap = MAX(s->out_cap * 2, s->out_len + len);
            s->out = g_realloc(s->out, s->out_cap);
        }
    }
    memcpy(s->out + s->out_len, buf, len);
    s->out_len += len;
    return len;
}

/* Sends out[]: 0 when empty, -EAGAIN, or the (sticky) -errno. */
static int out_flush(TlsSession *s)
{
    if (s->out_err) {
        return s->out_err;
    }
    while (s->out_start < s->out_len) {
        ssize_t n =
            send(s->fd, s->out + s->out_start, s->out_len - s->out_start,
                 MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return -EAGAIN;
            }
            s->out_err = -errno;
            return s->out_err;
        }
        s->out_start += n;
    }
    s->out_start = s->out_len = 0;
    return 0;
}

static size_t out_pending(const TlsSession *s)
{
    return s->out_len - s->out_start;
}

/* ---- life cycle --------------------------------------------------------- */

TlsSession *tls_session_new(TlsCreds *creds, int fd, const char *hostname,
                            Authz *authz, Error **errp)
{
    bool server = creds->endpoint == TLS_ENDPOINT_SERVER;
    unsigned flags = (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK;
    TlsSession *s;
    int ret;

    if (server) {
        /* No resumption: every connection proves its identity afresh. */
        flags |= GNUTLS_NO_TICKETS;
    }
    s = g_new0(TlsSession, 1);
    ret = gnutls_init(&s->gs, flags);
    if (ret < 0) {
        error_setg(errp, "Cannot start a TLS session: %s",
                   gnutls_strerror(ret));
        g_free(s);
        return NULL;
    }
    tls_creds_ref(creds);
    s->creds = creds;
    s->fd = fd;
    s->authz = server ? authz : NULL;
    s->hostname = server ? NULL : g_strdup(hostname);
    s->in = g_malloc(TLS_IN_SIZE);
    s->record_max = TLS_RECORD_MAX;

    ret = gnutls_priority_set(s->gs, creds->priority);
    if (ret >= 0 && creds->kind == TLS_CREDS_X509) {
        ret =
            gnutls_credentials_set(s->gs, GNUTLS_CRD_CERTIFICATE, creds->x509);
    } else if (ret >= 0) {
        ret = gnutls_credentials_set(s->gs, GNUTLS_CRD_PSK,
                                     server ? (void *)creds->psk_server
                                            : (void *)creds->psk_client);
    }
    if (ret >= 0 && !server && s->hostname) {
        ret = gnutls_server_name_set(s->gs, GNUTLS_NAME_DNS, s->hostname,
                                     strlen(s->hostname));
    }
    if (ret < 0) {
        error_setg(errp, "Cannot set up a TLS session: %s",
                   gnutls_strerror(ret));
        tls_session_free(s);
        return NULL;
    }
    if (creds->kind == TLS_CREDS_X509 && creds->verify_peer) {
        if (server) {
            gnutls_certificate_server_set_request(s->gs, GNUTLS_CERT_REQUIRE);
            /* Name no CA in the request: a client then sends the one
             * certificate it has, whoever issued it, and the verification
             * below, not the client's choice, decides. */
            gnutls_certificate_send_x509_rdn_sequence(s->gs, 1);
        }
        /* The handshake fails (with an alert to the peer) if the peer's
         * certificate does not verify against our CA (or, for a client
         * with a hostname, does not name the host). */
        gnutls_session_set_verify_cert(s->gs, s->hostname, 0);
    }
    /* The PSK server's key lookup finds the credentials here. */
    gnutls_session_set_ptr(s->gs, creds);
    gnutls_transport_set_ptr(s->gs, s);
    gnutls_transport_set_pull_function(s->gs, pull);
    gnutls_transport_set_push_function(s->gs, push);
    /* The caller bounds the handshake (an NBD server's handshake timer). */
    gnutls_handshake_set_timeout(s->gs, 0);
    return s;
}

void tls_session_free(TlsSession *s)
{
    if (!s) {
        return;
    }
    if (s->hs_ctx) {
        aio_set_fd_handler(s->hs_ctx, s->fd, NULL, NULL, NULL, NULL);
    }
    if (s->hs_err) {
        error_free(s->hs_err);
    }
    gnutls_deinit(s->gs);
    tls_creds_unref(s->creds);
    g_free(s->hostname);
    g_free(s->peer_name);
    g_free(s->in);
    g_free(s->out);
    g_free(s->stage);
    g_free(s);
}

/* ---- handshake ---------------------------------------------------------- */

/* The peer's identity, after the handshake (and GnuTLS's verification). */
static void find_peer_name(TlsSession *s)
{
    const gnutls_datum_t *certs;
    unsigned n = 0;
    gnutls_x509_crt_t crt;
    size_t len = 0;

    if (s->creds->kind == TLS_CREDS_PSK) {
        const char *user = s->creds->endpoint == TLS_ENDPOINT_SERVER
                               ? gnutls_psk_server_get_username(s->gs)
                               : NULL;

        s->peer_name = g_strdup(user);
        return;
    }
    certs = gnutls_certificate_get_peers(s->gs, &n);
    if (!certs || n == 0 || gnutls_x509_crt_init(&crt) < 0) {
        return;
    }
    if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0 &&
        gnutls_x509_crt_get_dn(crt, NULL, &len) ==
            GNUTLS_E_SHORT_MEMORY_BUFFER) {
        char *dn = g_malloc(len + 1);

        if (gnutls_x509_crt_get_dn(crt, dn, &len) >= 0) {
            dn[len] = '\0';
            s->peer_name = dn;
        } else {
            g_free(dn);
        }
    }
    gnutls_x509_crt_deinit(crt);
}

/* After a successful protocol handshake: what the credentials ask for. */
static bool check_peer(TlsSession *s, Error **errp)
{
    find_peer_name(s);
    if (s->creds->kind == TLS_CREDS_X509 && s->creds->verify_peer &&
        s->creds->endpoint == TLS_ENDPOINT_SERVER && !s->peer_name) {
        /* GNUTLS_CERT_REQUIRE makes this unreachable; kept as the rule. */
        error_setg(errp, "The TLS client sent no certificate");
        return false;
    }
    if (s->authz && !authz_is_allowed(s->authz, s->peer_name, errp)) {
        gnutls_alert_send(s->gs, GNUTLS_AL_FATAL, GNUTLS_A_ACCESS_DENIED);
        return false;
    }
    return true;
}

static void hs_readable(void *opaque);
static void hs_writable(void *opaque);

static void hs_finish(TlsSession *s)
{
    TlsHandshakeFunc *cb = s->hs_cb;
    void *opaque = s->hs_opaque;
    Error *err = s->hs_err;

    aio_set_fd_handler(s->hs_ctx, s->fd, NULL, NULL, NULL, NULL);
    s->hs_ctx = NULL;
    s->hs_err = NULL;
    s->established = !err;
    if (s->established) {
        s->record_max =
            MIN(gnutls_record_get_max_size(s->gs), (size_t)TLS_RECORD_MAX);
    }
    cb(opaque, err); /* may free s */
}

/* Records the failure; the alert GnuTLS queued goes out before the end. */
static void hs_fail(TlsSession *s, int ret, const char *what)
{
    s->hs_failed = true;
    if (ret < 0) {
        /* Tell the peer why, if GnuTLS has an alert for it. */
        gnutls_alert_send_appropriate(s->gs, ret);
        error_setg(&s->hs_err, "TLS handshake failed: %s%s%s",
                   gnutls_strerror(ret), what ? ": " : "", what ? what : "");
    }
}

/* Steps the handshake as far as the socket allows. */
static void hs_step(TlsSession *s)
{
    int ret;

    if (!s->hs_proto_done && !s->hs_failed) {
        int tries = TLS_HS_RETRIES;

        /* Non-fatal results (a warning alert) ask for another call; each
         * consumes input, but a bound keeps a step's work finite. */
        do {
            ret = gnutls_handshake(s->gs);
        } while (ret < 0 && ret != GNUTLS_E_AGAIN &&
                 !gnutls_error_is_fatal(ret) && --tries > 0);
        if (ret == 0) {
            s->hs_proto_done = true;
            if (!check_peer(s, &s->hs_err)) {
                s->hs_failed = true;
            }
        } else if (ret != GNUTLS_E_AGAIN) {
            const char *why = NULL;

            if (ret == GNUTLS_E_PULL_ERROR && s->in_err) {
                why = g_strerror(-s->in_err);
            }
            hs_fail(s, ret, why);
        }
    }
    ret = out_flush(s);
    if (ret == -EAGAIN && !s->hs_failed) {
        aio_set_fd_handler(s->hs_ctx, s->fd, NULL, hs_writable, NULL, s);
        return;
    }
    /* A failure's alert gets one try: a peer that does not read must not
     * keep the connection. */
    if (ret < 0 && ret != -EAGAIN && !s->hs_failed) {
        error_setg_errno(&s->hs_err, -ret, "TLS handshake failed");
        s->hs_failed = true;
    }
    if (s->hs_failed || s->hs_proto_done) {
        hs_finish(s);
        return;
    }
    aio_set_fd_handler(s->hs_ctx, s->fd, hs_readable, NULL, NULL, s);
}

static void hs_readable(void *opaque)
{
    hs_step(opaque);
}

static void hs_writable(void *opaque)
{
    hs_step(opaque);
}

void tls_session_handshake_start(TlsSession *s, AioContext *ctx,
                                 TlsHandshakeFunc *cb, void *opaque)
{
    g_assert(!s->hs_ctx && !s->established && !s->hs_proto_done);
    s->hs_ctx = ctx;
    s->hs_cb = cb;
    s->hs_opaque = opaque;
    /* A client speaks first; a server waits for the ClientHello.  Either
     * way the first step runs from the loop, never from here. */
    if (s->creds->endpoint == TLS_ENDPOINT_CLIENT) {
        aio_set_fd_handler(ctx, s->fd, NULL, hs_writable, NULL, s);
    } else {
        aio_set_fd_handler(ctx, s->fd, hs_readable, NULL, NULL, s);
    }
}

bool tls_session_handshake_in_progress(TlsSession *s)
{
    return s->hs_ctx != NULL;
}

const char *tls_session_get_peer_name(TlsSession *s)
{
    return s->peer_name;
}

/* ---- records ------------------------------------------------------------ */

ssize_t tls_session_read(TlsSession *s, void *buf, size_t len)
{
    g_assert(len > 0 && s->established);
    for (;;) {
        ssize_t r = gnutls_record_recv(s->gs, buf, len);

        if (r >= 0) {
            return r; /* 0: the peer's close_notify */
        }
        switch (r) {
        case GNUTLS_E_AGAIN:
            return s->in_err ? s->in_err : -EAGAIN;
        case GNUTLS_E_INTERRUPTED:
        case GNUTLS_E_WARNING_ALERT_RECEIVED:
            continue;
        case GNUTLS_E_PREMATURE_TERMINATION:
            /* EOF without close_notify: NBD's framing (NBD_CMD_DISC) says
             * where the stream ends, so this is no truncation attack. */
            return 0;
        default:
            /* Renegotiation requests and every fatal error end here. */
            return s->in_err ? s->in_err : -EPROTO;
        }
    }
}

bool tls_session_read_buffered(TlsSession *s)
{
    return s->in_start < s->in_end || gnutls_record_check_pending(s->gs) > 0;
}

bool tls_session_read_drained(TlsSession *s)
{
    return s->sock_empty && !tls_session_read_buffered(s);
}

/*
 * The next record's plaintext from iov, starting at (*idx, *off): straight
 * from the caller's memory when one piece fills a record, else gathered
 * into s->stage.  Returns its length (0: iov is exhausted).
 */
static size_t next_record(TlsSession *s, const struct iovec *iov, int niov,
                          int *idx, size_t *off, const uint8_t **data)
{
    size_t len = 0;

    while (*idx < niov && iov[*idx].iov_len == *off) {
        (*idx)++;
        *off = 0;
    }
    if (*idx == niov) {
        return 0;
    }
    if (iov[*idx].iov_len - *off >= s->record_max) {
        *data = (const uint8_t *)iov[*idx].iov_base + *off;
        *off += s->record_max;
        return s->record_max;
    }
    if (!s->stage) {
        s->stage = g_malloc(TLS_RECORD_MAX);
    }
    while (len < s->record_max && *idx < niov) {
        size_t take = MIN(s->record_max - len, iov[*idx].iov_len - *off);

        memcpy(s->stage + len, (const uint8_t *)iov[*idx].iov_base + *off,
               take);
        len += take;
        *off += take;
        if (*off == iov[*idx].iov_len) {
            (*idx)++;
            *off = 0;
        }
    }
    *data = s->stage;
    return len;
}

ssize_t tls_session_writev(TlsSession *s, const struct iovec *iov, int niov)
{
    size_t consumed = 0;
    size_t off = 0;
    int idx = 0;
    int ret;

    if (s->out_err) {
        return s->out_err;
    }
    g_assert(s->established && !s->shut);
    if (out_pending(s) >= TLS_OUT_HIGH) {
        ret = out_flush(s);
        if (ret < 0) {
            return ret;
        }
    }
    while (out_pending(s) < TLS_OUT_HIGH) {
        const uint8_t *data = NULL;
        size_t len = next_record(s, iov, niov, &idx, &off, &data);
        ssize_t r;

        if (len == 0) {
            break;
        }
        do {
            r = gnutls_record_send(s->gs, data, len);
        } while (r == GNUTLS_E_INTERRUPTED);
        if (r != (ssize_t)len) {
            /* push() never fails and len fits a record: a TLS error. */
            s->out_err = -EPROTO;
            break;
        }
        consumed += len;
    }
    ret = out_flush(s);
    if (consumed > 0) {
        return consumed; /* an error shows on the next call */
    }
    return ret < 0 ? ret : 0;
}

bool tls_session_write_pending(TlsSession *s)
{
    return out_pending(s) > 0 && !s->out_err;
}

int tls_session_flush(TlsSession *s)
{
    return out_flush(s);
}

void tls_session_shutdown(TlsSession *s)
{
    if (s->shut || !s->established) {
        return;
    }
    s->shut = true;
    /* push() never blocks, so this only queues the alert. */
    gnutls_bye(s->gs, GNUTLS_SHUT_WR);
    out_flush(s);
}
