/*
 * Authorization objects' internals, shared by io/authz.c (the lookup,
 * authz-simple), io/authz-list.c (rule lists) and io/authz-listfile.c.
 * Not installed.  Main loop thread only, as the registry.
 */
#ifndef DATAPLANE_IO_AUTHZ_INT_H
#define DATAPLANE_IO_AUTHZ_INT_H

#include "dataplane/authz.h"

typedef struct AuthzList AuthzList;
typedef struct AuthzListFile AuthzListFile;

typedef enum AuthzKind {
    AUTHZ_SIMPLE,
    AUTHZ_LISTFILE,
} AuthzKind;

struct Authz {
    AuthzKind kind;
    char *id;
    char *identity;    /* authz-simple */
    AuthzListFile *lf; /* authz-listfile */
};

/* Files of rules are read whole, and none is larger. */
#define AUTHZ_LIST_FILE_MAX (1024 * 1024)

/*
 * QEMU's authz-list document: {"policy": "allow"|"deny" (default deny),
 * "rules": [{"match": "<identity or pattern>", "policy": "allow"|"deny",
 * "format": "exact"|"glob" (default exact)}, ...]}.  Unknown members are
 * errors.  where names the source in errors.
 */
AuthzList *authz_list_parse(const char *json, const char *where, Error **errp);
void authz_list_free(AuthzList *list);
/* The first rule that matches decides, else the default policy.  *rule is
 * the deciding rule's number from 1, or 0 for the default. */
bool authz_list_allows(const AuthzList *list, const char *identity,
                       size_t *rule);

void authz_listfile_register(void);
bool authz_listfile_is_allowed(Authz *authz, const char *identity,
                               Error **errp);

#endif /* DATAPLANE_IO_AUTHZ_INT_H */
