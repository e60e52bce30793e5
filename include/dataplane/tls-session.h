/*
 * TLS sessions (GnuTLS) over a non-blocking socket, driven by an
 * AioContext.
 *
 * A session wraps a connected socket it does not own (the caller closes
 * the fd, after tls_session_free()).  It never blocks: the handshake is
 * stepped by fd readiness in an AioContext (tls_session_handshake_start),
 * and afterwards reads and writes return -EAGAIN when the socket has
 * nothing or takes nothing, like recv() and sendmsg() with MSG_DONTWAIT.
 *
 * Buffering, which callers must know about:
 *  - Reads.  The session reads the socket in large pieces (up to 64 KiB)
 *    and decrypts one TLS record at a time, so bytes may be waiting inside
 *    the session while the fd is not readable.  After a read, either
 *    tls_session_read_buffered() says more can be read without waiting for
 *    the fd, or the socket itself must become readable again.
 *    tls_session_read_drained() is true when the last read found the socket
 *    empty (a short read or EAGAIN) and nothing is buffered: waiting for
 *    the fd is then the right thing, not another read.
 *  - Writes.  tls_session_writev() encrypts the plaintext of many iovecs
 *    into records of up to 16 KiB (small pieces are gathered into one
 *    record) and sends the ciphertext of a whole call with one send() per
 *    64 KiB, so a batch of replies stays one flush.  Ciphertext the socket
 *    did not take stays in the session (at most 64 KiB plus one record):
 *    while tls_session_write_pending() is true the caller waits for the fd
 *    to become writable and calls tls_session_flush().
 *
 * Threading: a session belongs to one thread at a time, the thread of the
 * AioContext that serves its connection; it holds no reference to any
 * context outside a handshake, so a connection that moves to another
 * IOThread takes its session with it.  Hand-offs between threads must be
 * ordered by the caller (an AioContext lock or a BH).  The handshake's
 * authorization check reads the registry's authz object, so
 * tls_session_handshake_start() on a server session with an Authz runs in
 * the main loop thread.
 */
#ifndef DATAPLANE_TLS_SESSION_H
#define DATAPLANE_TLS_SESSION_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "dataplane/aio.h"
#include "dataplane/authz.h"
#include "dataplane/error.h"
#include "dataplane/tls-creds.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

typedef struct TlsSession TlsSession;

/*
 * A session on socket fd (connected, O_NONBLOCK) for creds' endpoint; it
 * takes a reference on creds.  hostname (client only, may be NULL): the
 * name the server's certificate must carry.  authz (server only, may be
 * NULL): checked against the peer's identity at the end of the handshake;
 * it must stay valid until the handshake has finished.  NULL and an Error
 * if GnuTLS refuses to set the session up.
 */
TlsSession *tls_session_new(TlsCreds *creds, int fd, const char *hostname,
                            Authz *authz, Error **errp);
/* Frees the session (cancelling a handshake in progress); fd stays open. */
void tls_session_free(TlsSession *s);

/*
 * Called once when the handshake has finished: err NULL on success, else
 * why it failed (the callee owns err).  It runs in the handshake's
 * AioContext, never inside tls_session_handshake_start(); the session's
 * fd handlers are removed by then.  The callee may free the session.
 */
typedef void TlsHandshakeFunc(void *opaque, Error *err);

/*
 * Runs the handshake in ctx (the calling thread's): registers fd handlers
 * for the session's fd there (the caller must have none registered on that
 * fd until cb runs) and steps the handshake on readiness.  Success means
 * the peer proved the identity the credentials ask for: a certificate from
 * the CA when verify-peer is on, the key of a listed PSK user, and passing
 * the Authz if there is one.  There is no timeout here: the caller bounds
 * the handshake (an NBD server's handshake timer).
 */
void tls_session_handshake_start(TlsSession *s, AioContext *ctx,
                                 TlsHandshakeFunc *cb, void *opaque);
/* True between tls_session_handshake_start() and its callback. */
bool tls_session_handshake_in_progress(TlsSession *s);

/*
 * The peer's identity after a successful handshake: the distinguished
 * name of its X.509 certificate ("C=GB,O=Example,CN=laptop") or its PSK
 * username; NULL if it proved none (no client certificate with
 * verify-peer=off).  Valid until tls_session_free().
 */
const char *tls_session_get_peer_name(TlsSession *s);

/*
 * Decrypts up to len (> 0) bytes into buf: > 0 bytes read; 0 at the end of the
 * stream (the peer's close_notify, or the socket's EOF: NBD clients close
 * without close_notify after NBD_CMD_DISC); -EAGAIN when more must come
 * from the socket; -EPROTO (a TLS error: bad record, renegotiation
 * attempt, ...) or another -errno (the socket's) when the connection is
 * unusable.
 */
ssize_t tls_session_read(TlsSession *s, void *buf, size_t len);
/* Bytes may be read now without the fd becoming readable. */
bool tls_session_read_buffered(TlsSession *s);
/* The last read found the socket empty and nothing is buffered. */
bool tls_session_read_drained(TlsSession *s);

/*
 * Encrypts the plaintext of iov[0..niov) (or a prefix of it) and sends what
 * the socket takes.  Returns the plaintext bytes consumed (> 0, or 0 when
 * niov holds no bytes): they may be freed or reused at once, their
 * ciphertext is in the socket or in the session.  -EAGAIN when nothing could
 * be taken because earlier ciphertext still waits for the socket; another
 * -errno (-EPROTO for a TLS error) when the connection is unusable.
 */
ssize_t tls_session_writev(TlsSession *s, const struct iovec *iov, int niov);
/* Ciphertext is waiting for the socket to become writable. */
bool tls_session_write_pending(TlsSession *s);
/* Sends waiting ciphertext: 0 when all is sent, -EAGAIN, or -errno. */
int tls_session_flush(TlsSession *s);

/*
 * Queues the TLS close_notify alert and tries to send what is waiting,
 * without blocking (best effort: a peer that reads nothing more loses
 * nothing by missing it).  No writes after this.
 */
void tls_session_shutdown(TlsSession *s);

DP_API_END

#endif /* DATAPLANE_TLS_SESSION_H */
