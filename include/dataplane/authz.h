/*
 * Authorization objects: who may use a service once TLS has said who they
 * are.  An identity is the distinguished name of an X.509 client
 * certificate as gnutls_x509_crt_get_dn() prints it ("C=GB,O=Example,
 * CN=laptop") or a PSK username.  The types, QEMU's:
 *
 *   --object authz-simple,id=auth0,identity=C=GB,,O=Example,,CN=laptop
 *
 * allows exactly one identity; identity can be changed at runtime
 * (qom-set), and the new value applies to the next check.
 *
 *   --object authz-listfile,id=auth1,filename=/etc/dataplane/acl.json
 *            [,refresh=on|off]
 *
 * reads QEMU's authz-list rules from a JSON file: {"policy": "deny",
 * "rules": [{"match": "C=GB,O=Example,CN=*", "policy": "allow", "format":
 * "glob"}, ...]}; the first rule that matches decides, else "policy"
 * (default deny).  With refresh=on (the default) the file is re-read when
 * it is rewritten (closed after writing, or renamed into place); one that
 * does not parse then denies everyone until it is fixed.
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
#include "dataplane/visibility.h"

DP_API_BEGIN

typedef struct Authz Authz;

/* Registers "authz-simple" and "authz-listfile" (tls_creds_init() calls
 * it).  Idempotent. */
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

DP_API_END

#endif /* DATAPLANE_AUTHZ_H */
