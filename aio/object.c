/*
 * The object registry: objects at /objects/<id>, object_add/del, registered
 * instances, paths, users, cleanup.  Types are in object-type.c, runtime
 * properties in object-property.c, values in object-value.c.  See
 * include/dataplane/object.h for the model and the error sentences.
 *
 * All state lives in `registry` and belongs to one thread, the owner (the
 * main loop); there is no lock, and object_registry_check_thread() checks the
 * rule at every entry point.  Hooks run from inside registry calls, so
 * every function leaves the registry consistent before calling a hook,
 * and re-checks what a hook could have changed (object_add re-checks the
 * id after the create hook).
 */
#include <pthread.h>
#include <string.h>

#include "dataplane/input.h"
#include "aio/object-internal.h"

static struct {
    GHashTable *by_id; /* id (Object's own string) -> Object * */
    TAILQ_HEAD(ObjectList, Object) objects;
    bool has_owner;
    pthread_t owner;
} registry = {
    .objects = TAILQ_HEAD_INITIALIZER(registry.objects),
};

/* ---- the owner thread ------------------------------------------------- */

void object_registry_check_thread(void)
{
    if (!registry.has_owner) {
        registry.owner = pthread_self();
        registry.has_owner = true;
    }
    /* The registry has no lock: only the main loop thread may use it.  Kept
     * under NDEBUG too: one comparison, and a race here is silent. */
    if (!pthread_equal(registry.owner, pthread_self())) {
        g_error("object registry used outside its owner thread (the main "
                "loop)");
    }
}

void object_registry_set_owner_thread(void)
{
    registry.owner = pthread_self();
    registry.has_owner = true;
}

static void registry_init_tables(void)
{
    if (!registry.by_id) {
        registry.by_id = g_hash_table_new(g_str_hash, g_str_equal);
    }
}

/* ---- objects ---------------------------------------------------------- */

/* A new, unlinked object with one value slot per property, all unset. */
static Object *object_alloc(const ObjectTypeInfo *type, const char *id)
{
    size_t i, n = object_type_prop_count(type);
    Object *obj = g_new0(Object, 1);

    obj->id = g_strdup(id);
    obj->type = type;
    obj->values = g_new0(ObjectValue, n);
    obj->has_value = g_new0(bool, n);
    for (i = 0; i < n; i++) {
        obj->values[i].type = type->props[i].type;
    }
    return obj;
}

static void object_free(Object *obj)
{
    size_t i, n = object_type_prop_count(obj->type);

    for (i = 0; i < n; i++) {
        object_value_clear(&obj->values[i]);
    }
    g_free(obj->values);
    g_free(obj->has_value);
    if (obj->users) {
        g_ptr_array_unref(obj->users);
    }
    g_free(obj->id);
    g_free(obj);
}

static void object_link(Object *obj)
{
    g_hash_table_insert(registry.by_id, obj->id, obj);
    TAILQ_INSERT_TAIL(&registry.objects, obj, link);
}

static void object_unlink(Object *obj)
{
    g_hash_table_remove(registry.by_id, obj->id);
    TAILQ_REMOVE(&registry.objects, obj, link);
}

static bool id_check(const char *id, Error **errp)
{
    if (!input_check_id("id", id, errp)) {
        return false;
    }
    if (g_hash_table_contains(registry.by_id, id)) {
        error_setg(errp, "Duplicate ID '%s' for object", id);
        return false;
    }
    return true;
}

static void set_defaults(Object *obj)
{
    size_t i;

    for (i = 0; obj->type->props && obj->type->props[i].name; i++) {
        const ObjectPropertyInfo *p = &obj->type->props[i];

        if (object_prop_is_creatable(p) && p->default_value) {
            /* Checked at registration: cannot fail. */
            object_value_parse(p->type, p->name, p->default_value,
                               &obj->values[i], &error_abort);
            obj->has_value[i] = true;
        }
    }
}

/*
 * Fills obj's value slots from the user's strings, in table order, then
 * rejects keys that are no creation property (the lowest such key by name,
 * so that the sentence does not depend on hash order).
 */
static bool parse_creation_props(Object *obj, GHashTable *strings, bool *given,
                                 Error **errp)
{
    const ObjectTypeInfo *type = obj->type;
    const char *unexpected = NULL;
    size_t i;

    for (i = 0; type->props && type->props[i].name; i++) {
        const ObjectPropertyInfo *p = &type->props[i];
        const char *str;

        if (!object_prop_is_creatable(p)) {
            continue;
        }
        str = strings ? g_hash_table_lookup(strings, p->name) : NULL;
        if (!str) {
            if (p->flags & OBJECT_PROP_REQUIRED) {
                error_setg(errp, "Parameter '%s' is missing", p->name);
                return false;
            }
            continue;
        }
        object_value_clear(&obj->values[i]); /* drop the default */
        obj->has_value[i] = false;
        if (!object_value_parse(p->type, p->name, str, &obj->values[i], errp)) {
            return false;
        }
        obj->has_value[i] = true;
        given[i] = true;
        if (p->type == OBJECT_VALUE_INT &&
            !object_prop_check_range(p, obj->values[i].i, errp)) {
            return false;
        }
    }

    if (strings) {
        GHashTableIter it;
        gpointer key;

        g_hash_table_iter_init(&it, strings);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
            const ObjectPropertyInfo *p = object_type_find_property(type, key);

            if ((!p || !object_prop_is_creatable(p)) &&
                (!unexpected || strcmp(key, unexpected) < 0)) {
                unexpected = key;
            }
        }
    }
    if (unexpected) {
        error_setg(errp, "Parameter '%s' is unexpected", unexpected);
        return false;
    }
    return true;
}

Object *object_add(const char *type_name, const char *id, GHashTable *props,
                   Error **errp)
{
    const ObjectTypeInfo *type;
    ObjectProps create_props;
    Error *err = NULL;
    Object *obj;
    bool *given;
    void *instance;

    object_registry_check_thread();
    registry_init_tables();
    type = object_type_lookup(type_name, errp);
    if (!type) {
        return NULL;
    }
    if (!type->create) {
        error_setg(errp, "object type '%s' isn't supported by object-add",
                   type->name);
        return NULL;
    }
    if (!id_check(id, errp)) {
        return NULL;
    }

    obj = object_alloc(type, id);
    set_defaults(obj);
    given = g_new0(bool, object_type_prop_count(type));
    if (!parse_creation_props(obj, props, given, errp)) {
        goto fail;
    }

    create_props = (ObjectProps){
        .type = type,
        .values = obj->values,
        .has_value = obj->has_value,
        .given = given,
    };
    instance = type->create(obj->id, &create_props, &err);
    if (!instance) {
        /* Every failure must say why (nbdkit's rule at its plugin edge). */
        g_assert(err);
        error_propagate(errp, err);
        goto fail;
    }
    /* The hook ran arbitrary code: the id may have been taken meanwhile. */
    if (g_hash_table_contains(registry.by_id, id)) {
        type->destroy(instance);
        error_setg(errp, "Duplicate ID '%s' for object", id);
        goto fail;
    }

    obj->instance = instance;
    obj->user_created = true;
    object_link(obj);
    g_free(given);
    return obj;

fail:
    g_free(given);
    object_free(obj);
    return NULL;
}

Object *object_add_opts(GHashTable *opts, Error **errp)
{
    const char *type, *id;
    GHashTable *props;
    GHashTableIter it;
    gpointer key, value;
    Object *obj;

    object_registry_check_thread();
    type = opts ? g_hash_table_lookup(opts, "qom-type") : NULL;
    id = opts ? g_hash_table_lookup(opts, "id") : NULL;
    if (!type) {
        error_setg(errp, "Parameter 'qom-type' is missing");
        return NULL;
    }
    if (!id) {
        error_setg(errp, "Parameter 'id' is missing");
        return NULL;
    }
    /* Borrows the strings of opts. */
    props = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_iter_init(&it, opts);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        if (strcmp(key, "qom-type") != 0 && strcmp(key, "id") != 0) {
            g_hash_table_insert(props, key, value);
        }
    }
    obj = object_add(type, id, props, errp);
    g_hash_table_unref(props);
    return obj;
}

/* The id in a qom-* path, or NULL if path names no object. */
static const char *path_to_id(const char *path)
{
    const char *id = path;

    if (g_str_has_prefix(path, "/objects/")) {
        id = path + strlen("/objects/");
    } else if (g_str_has_prefix(path, "objects/")) {
        id = path + strlen("objects/");
    }
    if (!*id || strchr(id, '/')) {
        return NULL;
    }
    return id;
}

static Object *lookup_path(const char *path)
{
    const char *id = path ? path_to_id(path) : NULL;

    if (!id || !registry.by_id) {
        return NULL;
    }
    return g_hash_table_lookup(registry.by_id, id);
}

bool object_del(const char *id, Error **errp)
{
    Object *obj;
    Error *err = NULL;

    object_registry_check_thread();
    obj = lookup_path(id);
    if (!obj) {
        error_setg(errp, "object '%s' not found", id ? id : "");
        return false;
    }
    if (!obj->user_created) {
        error_setg(errp, "%s is not a user-creatable object", obj->id);
        return false;
    }
    if (obj->users && obj->users->len > 0) {
        error_setg(errp, "%s '%s' is in use by %s", obj->type->name, obj->id,
                   (const char *)g_ptr_array_index(obj->users, 0));
        return false;
    }
    if (obj->type->can_delete && !obj->type->can_delete(obj->instance, &err)) {
        if (err) {
            error_propagate(errp, err);
        } else {
            error_setg(errp, "object '%s' is in use, can not be deleted",
                       obj->id);
        }
        return false;
    }
    /* Unlinked before destroy, so the hook never finds a half-dead object. */
    object_unlink(obj);
    obj->type->destroy(obj->instance);
    object_free(obj);
    return true;
}

Object *object_register_instance(const char *type_name, const char *id,
                                 void *instance, Error **errp)
{
    const ObjectTypeInfo *type;
    Object *obj;

    object_registry_check_thread();
    registry_init_tables();
    type = object_type_lookup(type_name, errp);
    if (!type) {
        return NULL;
    }
    if (!id_check(id, errp)) {
        return NULL;
    }
    obj = object_alloc(type, id);
    set_defaults(obj);
    obj->instance = instance;
    object_link(obj);
    return obj;
}

void object_unregister(Object *obj)
{
    object_registry_check_thread();
    if (obj->user_created) {
        g_error("object_unregister: '%s' was made by object_add(); use "
                "object_del()",
                obj->id);
    }
    object_unlink(obj);
    object_free(obj);
}

Object *object_find(const char *id)
{
    object_registry_check_thread();
    if (!id || !registry.by_id) {
        return NULL;
    }
    return g_hash_table_lookup(registry.by_id, id);
}

Object *object_resolve(const char *path, Error **errp)
{
    Object *obj;

    object_registry_check_thread();
    obj = lookup_path(path);
    if (!obj) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found",
                  path ? path : "");
    }
    return obj;
}

void *object_find_instance(const char *id, const char *type)
{
    Object *obj = object_find(id);

    if (!obj || strcmp(obj->type->name, type) != 0) {
        return NULL;
    }
    return obj->instance;
}

void *object_get_instance(Object *obj)
{
    object_registry_check_thread();
    return obj->instance;
}

const char *object_get_id(Object *obj)
{
    object_registry_check_thread();
    return obj->id;
}

const char *object_get_type(Object *obj)
{
    object_registry_check_thread();
    return obj->type->name;
}

const ObjectTypeInfo *object_get_type_info(Object *obj)
{
    object_registry_check_thread();
    return obj->type;
}

char *object_get_path(Object *obj)
{
    object_registry_check_thread();
    return g_strdup_printf("/objects/%s", obj->id);
}

bool object_is_user_created(Object *obj)
{
    object_registry_check_thread();
    return obj->user_created;
}

static void object_info_free(gpointer p)
{
    ObjectInfo *info = p;

    g_free(info->id);
    g_free(info->type);
    g_free(info);
}

static gint object_info_cmp(gconstpointer a, gconstpointer b)
{
    const ObjectInfo *ia = *(const ObjectInfo *const *)a;
    const ObjectInfo *ib = *(const ObjectInfo *const *)b;

    return strcmp(ia->id, ib->id);
}

GPtrArray *object_list(void)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(object_info_free);
    Object *obj;

    object_registry_check_thread();
    TAILQ_FOREACH(obj, &registry.objects, link)
    {
        ObjectInfo *info = g_new(ObjectInfo, 1);

        info->id = g_strdup(obj->id);
        info->type = g_strdup(obj->type->name);
        g_ptr_array_add(out, info);
    }
    g_ptr_array_sort(out, object_info_cmp);
    return out;
}

/* ---- qom-list --------------------------------------------------------- */

static void qom_entry_free(gpointer p)
{
    ObjectQomEntry *e = p;

    g_free(e->name);
    g_free(e->type);
    g_free(e);
}

static void qom_entry_add(GPtrArray *out, const char *name, char *type)
{
    ObjectQomEntry *e = g_new(ObjectQomEntry, 1);

    e->name = g_strdup(name);
    e->type = type;
    g_ptr_array_add(out, e);
}

GPtrArray *object_qom_list(const char *path, Error **errp)
{
    GPtrArray *out;
    Object *obj;

    object_registry_check_thread();
    out = g_ptr_array_new_with_free_func(qom_entry_free);
    if (path && strcmp(path, "/") == 0) {
        qom_entry_add(out, "type", g_strdup("string"));
        qom_entry_add(out, "objects", g_strdup("child<container>"));
    } else if (path && (strcmp(path, "/objects") == 0 ||
                        strcmp(path, "/objects/") == 0 ||
                        strcmp(path, "objects") == 0)) {
        GPtrArray *objects = object_list();
        guint i;

        qom_entry_add(out, "type", g_strdup("string"));
        for (i = 0; i < objects->len; i++) {
            ObjectInfo *info = g_ptr_array_index(objects, i);

            qom_entry_add(out, info->id,
                          g_strdup_printf("child<%s>", info->type));
        }
        g_ptr_array_unref(objects);
    } else if ((obj = lookup_path(path)) != NULL) {
        GPtrArray *props = object_property_list(obj);
        guint i;

        for (i = 0; i < props->len; i++) {
            ObjectPropertyDesc *p = g_ptr_array_index(props, i);

            qom_entry_add(out, p->name,
                          g_strdup(object_value_type_qom_name(p->type)));
        }
        g_ptr_array_unref(props);
    } else {
        g_ptr_array_unref(out);
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found",
                  path ? path : "");
        return NULL;
    }
    return out;
}

/* ---- users ------------------------------------------------------------ */

void object_user_add(Object *obj, const char *user)
{
    object_registry_check_thread();
    if (!obj->users) {
        obj->users = g_ptr_array_new_with_free_func(g_free);
    }
    g_ptr_array_add(obj->users, g_strdup(user));
}

void object_user_remove(Object *obj, const char *user)
{
    guint i;

    object_registry_check_thread();
    for (i = 0; obj->users && i < obj->users->len; i++) {
        if (strcmp(g_ptr_array_index(obj->users, i), user) == 0) {
            /* Keeps the order: the oldest user is the one named. */
            g_ptr_array_remove_index(obj->users, i);
            return;
        }
    }
    g_error("object '%s' has no user %s", obj->id, user);
}

/* ---- the registry ----------------------------------------------------- */

void object_registry_cleanup(void)
{
    Object *obj;

    object_registry_check_thread();
    /* One at a time from the newest, so that a destroy hook that deletes or
     * unregisters other objects leaves the walk valid, and objects made
     * later (which may use earlier ones) go first. */
    while ((obj = TAILQ_LAST(&registry.objects, ObjectList)) != NULL) {
        object_unlink(obj);
        if (obj->user_created) {
            obj->type->destroy(obj->instance);
        }
        object_free(obj);
    }
    if (registry.by_id) {
        g_hash_table_unref(registry.by_id);
        registry.by_id = NULL;
    }
    registry.has_owner = false;
}
