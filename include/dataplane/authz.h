/*
 * Authorization objects: who may use a service once TLS has said who they
 * are.  The type, QEMU's:
 *
 *   --object authz-simple,id=auth0,identity=CN=laptop,O=Example,C=GB
 *
 * allows exactly one identity (the distinguished name of an X.509 client
 * certificate as gnutls_x509_crt_get_dn() prints it, "C=GB,O=Example,
 * CN=laptop", or a PSK username).  identity can be changed at runtime
 * (qom-set); the new value applies to the next check.
 *
 * A service names the object by id (the NBD server's tls-authz=) and
 * registers as its user (object_user_add), so that it is not deleted
 * underneath.
 *
 * Threading: main loop thread only (the object registry's thread; TLS
 * handshakes, where the checks happen, run there).
 */
#ifndef DATAPLANE_AUTHZ_H
#define DATAPLANE_AUTHZ_H

#include <stdbool.h>

#include "dataplane/error.h"
#include "dataplane/object.h"

typedef struct Authz Authz;

/* Registers "authz-simple" (tls_creds_init() calls it).  Idempotent. */
void authz_init(void);

/*
 * The authorization object id, with the object in *obj (may be NULL).
 * NULL and "No authorization object with id 'x'" or "Object 'x' is not an
 * authorization object".
 */
Authz *authz_find(const char *id, Object **obj, Error **errp);

/*
 * True if identity may pass.  False, with a sentence naming the identity
 * and the object, if it may not; a NULL identity (the peer proved none,
 * e.g. no client certificate) never passes.
 */
bool authz_is_allowed(Authz *authz, const char *identity, Error **errp);

#endif /* DATAPLANE_AUTHZ_H */
