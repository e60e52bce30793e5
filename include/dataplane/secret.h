/*
 * Secrets: the "secret" object type (QEMU's), which holds a password or a
 * key for the things that need one (an RBD node's key-secret=), so that
 * the secret itself never appears in a --blockdev or blockdev-add.
 *
 *   --object secret,id=sec0,data=<text>[,format=raw|base64]
 *   --object secret,id=sec0,file=<path>[,format=raw|base64]
 *
 * The value is bytes: data or the whole content of file, decoded from
 * base64 with format=base64 (malformed base64 is an error).  A secret is
 * read when the thing using it is created (it keeps its own copy), so
 * deleting the object later changes nothing for it.  qom-get of "data"
 * reads as an empty string: secrets are not for reading back.  QEMU's
 * keyid/iv (secrets encrypted with another secret) are not supported.
 *
 * Threading: the object registry's rule, main loop thread only.
 */
#ifndef DATAPLANE_SECRET_H
#define DATAPLANE_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#include "dataplane/error.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

/* Registers the "secret" type (main_loop_init() does).  Idempotent. */
void secret_register_type(void);

/*
 * A copy of secret id's bytes (NUL-terminated beyond *len) or NULL and
 * "No secret with id 'x'" / "Object 'x' is not a secret".  Wipe and free
 * it with secret_free().
 */
char *secret_lookup(const char *id, size_t *len, Error **errp);
/* As secret_lookup(), as a string: bytes that contain a NUL are an
 * error. */
char *secret_lookup_as_utf8(const char *id, Error **errp);
/* As secret_lookup(), base64-encoded (what librados takes as a key). */
char *secret_lookup_as_base64(const char *id, Error **errp);
/* Overwrites the NUL-terminated s with zeroes and frees it; NULL is
 * fine. */
void secret_free(char *s);

DP_API_END

#endif /* DATAPLANE_SECRET_H */
