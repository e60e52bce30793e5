/*
 * Authorization objects: the lookup, the check, and "authz-simple" (one
 * allowed identity); "authz-listfile" is in authz-listfile.c.  See
 * include/dataplane/authz.h.  Main loop thread only.
 */
#include <string.h>

#include "io/authz-int.h"

Authz *authz_find(const char *id, Object **obj, Error **errp)
{
    Object *o = object_find(id);

    if (!o) {
        error_setg(errp, "No authorization object with id '%s'", id);
        return NULL;
    }
    if (strcmp(object_get_type(o), "authz-simple") != 0 &&
        strcmp(object_get_type(o), "authz-listfile") != 0) {
        error_setg(errp,
                   "Object '%s' is not an authorization object (it is a %s)",
                   id, object_get_type(o));
        return NULL;
    }
    if (obj) {
        *obj = o;
    }
    return object_get_instance(o);
}

bool authz_is_allowed(Authz *authz, const char *identity, Error **errp)
{
    if (!identity) {
        error_setg(errp,
                   "The peer proved no identity (no client certificate?): "
                   "'%s' admits no anonymous client",
                   authz->id);
        return false;
    }
    if (authz->kind == AUTHZ_LISTFILE) {
        return authz_listfile_is_allowed(authz, identity, errp);
    }
    if (strcmp(identity, authz->identity) != 0) {
        error_setg(errp, "Identity '%s' is not allowed by '%s'", identity,
                   authz->id);
        return false;
    }
    return true;
}

static void *simple_create(const char *id, const ObjectProps *props,
                           Error **errp)
{
    Authz *a = g_new0(Authz, 1);

    a->kind = AUTHZ_SIMPLE;
    a->id = g_strdup(id);
    a->identity = g_strdup(object_props_get_str(props, "identity"));
    return a;
}

static bool simple_set_identity(void *instance, const ObjectValue *value,
                                Error **errp)
{
    Authz *a = instance;

    g_free(a->identity);
    a->identity = g_strdup(value->s);
    return true;
}

static void simple_destroy(void *instance)
{
    Authz *a = instance;

    g_free(a->id);
    g_free(a->identity);
    g_free(a);
}

static const ObjectPropertyInfo simple_props[] = {
    {"identity", OBJECT_VALUE_STR,
     "the identity allowed: a certificate's distinguished name or a PSK "
     "username",
     OBJECT_PROP_REQUIRED, .set = simple_set_identity},
    {NULL},
};

static const ObjectTypeInfo simple_type = {
    .name = "authz-simple",
    .description = "Authorization: allows exactly one identity",
    .props = simple_props,
    .create = simple_create,
    .destroy = simple_destroy,
};

void authz_init(void)
{
    object_type_register(&simple_type);
    authz_listfile_register();
}
