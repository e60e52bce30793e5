/*
 * Object registry internals shared by aio/object*.c.  Not installed.
 *
 * Everything here runs in the registry's owner thread (the main loop), which
 * object_registry_check_thread() asserts; there is no lock.
 */
#ifndef DATAPLANE_AIO_OBJECT_INTERNAL_H
#define DATAPLANE_AIO_OBJECT_INTERNAL_H

#include <sys/queue.h>

#include "dataplane/object.h"

struct Object {
    char *id;
    const ObjectTypeInfo *type;
    void *instance;
    bool user_created; /* by object_add(): object_del() may delete it */
    /*
     * One slot per entry of type->props.  For creation properties without a
     * get hook, values[i] is what get returns (has_value[i] says whether
     * there is one); runtime sets update it.  Other slots stay unused.
     */
    ObjectValue *values;
    bool *has_value;
    GPtrArray *users; /* char *, object_user_add(); NULL when none yet */
    TAILQ_ENTRY(Object) link; /* registry.objects, in creation order */
};

struct ObjectProps {
    const ObjectTypeInfo *type;
    const ObjectValue *values;
    const bool *has_value;
    const bool *given;
};

/* Records the owner on first use; asserts the caller is the owner. */
void object_registry_check_thread(void);

/* Types (aio/object-type.c). */
/* The type called name, or NULL with "Invalid object type" in errp. */
const ObjectTypeInfo *object_type_lookup(const char *name, Error **errp);
size_t object_type_prop_count(const ObjectTypeInfo *type);
/* Index of the property in type->props, or -1. */
int object_type_prop_index(const ObjectTypeInfo *type, const char *name);
bool object_prop_is_creatable(const ObjectPropertyInfo *prop);
/* "<name> value must be in range [min, max]" when out of its range. */
bool object_prop_check_range(const ObjectPropertyInfo *prop, int64_t v,
                             Error **errp);

#endif /* DATAPLANE_AIO_OBJECT_INTERNAL_H */
