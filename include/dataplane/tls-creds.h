/*
 * TLS credentials: the object types "tls-creds-x509" and "tls-creds-psk"
 * (QEMU's names and properties), which TLS sessions (tls-session.h) are
 * made from.
 *
 *   --object tls-creds-x509,id=tls0,dir=/etc/pki/dataplane,endpoint=server
 *            [,verify-peer=on|off][,sanity-check=on|off][,priority=...]
 *   --object tls-creds-psk,id=tls1,dir=/etc/dataplane/psk,endpoint=server
 *            [,username=...][,priority=...]
 *
 * Files, read once when the object is created (a change on disk needs a new
 * object), each a regular file of at most 1 MiB:
 *   x509, endpoint=server: ca-cert.pem, server-cert.pem, server-key.pem;
 *                          optional ca-crl.pem and dh-params.pem.
 *   x509, endpoint=client: ca-cert.pem; optional client-cert.pem with
 *                          client-key.pem, ca-crl.pem.
 *   psk: keys.psk, lines "<username>:<hex key>" as psktool writes them;
 *        optional dh-params.pem (server).
 * A missing or unreadable file, a file that does not parse, a key that
 * does not match its certificate, and (sanity-check=on, the default) a
 * certificate outside its validity period, a CA certificate that is not a
 * CA, or a server or client certificate that the CA did not issue or whose
 * key purpose forbids its role, fail the creation with a sentence naming
 * the file.
 *
 * verify-peer (x509 only, default on, as in QEMU): a server requires a
 * client certificate issued by its CA; a client checks the server's
 * certificate (and host name, when the session has one).
 *
 * A TlsCreds is reference-counted: the object holds one reference, and
 * every session made from it holds one, so deleting the object while
 * connections still close in the background is safe.  Users of an object
 * (an NBD server) register with object_user_add(), so that object-del is
 * refused while they run.
 *
 * Threading: tls_creds_init() and tls_creds_find() run in the main loop
 * thread (the object registry's); the rest are safe from any thread (a
 * TlsCreds never changes after creation).
 */
#ifndef DATAPLANE_TLS_CREDS_H
#define DATAPLANE_TLS_CREDS_H

#include <stdbool.h>

#include "dataplane/error.h"
#include "dataplane/object.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

typedef struct TlsCreds TlsCreds;

typedef enum TlsEndpoint {
    TLS_ENDPOINT_CLIENT, /* QEMU's default */
    TLS_ENDPOINT_SERVER,
} TlsEndpoint;

/* Registers "tls-creds-x509", "tls-creds-psk" and "authz-simple".
 * Idempotent.  Main loop thread. */
void tls_creds_init(void);

/*
 * The credentials of object id, with the object in *obj (may be NULL) for
 * object_user_add().  NULL and "No TLS credentials with id 'x'" when there
 * is no such object, "Object 'x' is not TLS credentials" when it has
 * another type.  Main loop thread.
 */
TlsCreds *tls_creds_find(const char *id, Object **obj, Error **errp);

/* Any thread. */
void tls_creds_ref(TlsCreds *creds);
void tls_creds_unref(TlsCreds *creds);
TlsEndpoint tls_creds_get_endpoint(const TlsCreds *creds);
/* The object id it was created with. */
const char *tls_creds_get_id(const TlsCreds *creds);
/* "x509" or "psk". */
const char *tls_creds_get_kind_name(const TlsCreds *creds);

DP_API_END

#endif /* DATAPLANE_TLS_CREDS_H */
