/*
 * Object types: registration and checking of a type's property table, the
 * type list, and the accessors a create hook reads its properties with.
 * See include/dataplane/object.h.
 */
#include <inttypes.h>
#include <string.h>

#include "aio/object-internal.h"

/* name -> const ObjectTypeInfo *; owner thread.  Lives as long as the
 * process: types are declarations, object_registry_cleanup() keeps them. */
static GHashTable *types;

const ObjectTypeInfo *object_type_lookup(const char *name, Error **errp)
{
    const ObjectTypeInfo *type =
        types && name ? g_hash_table_lookup(types, name) : NULL;

    if (!type) {
        error_setg(errp, "Invalid object type '%s'", name ? name : "");
    }
    return type;
}

/* ---- types ------------------------------------------------------------ */

size_t object_type_prop_count(const ObjectTypeInfo *type)
{
    size_t n = 0;

    while (type->props && type->props[n].name) {
        n++;
    }
    return n;
}

bool object_prop_is_creatable(const ObjectPropertyInfo *prop)
{
    return prop->flags & (OBJECT_PROP_CREATE | OBJECT_PROP_REQUIRED);
}

bool object_property_info_is_read_only(const ObjectPropertyInfo *prop)
{
    return (prop->flags & OBJECT_PROP_READONLY) || !prop->set;
}

int object_type_prop_index(const ObjectTypeInfo *type, const char *name)
{
    size_t i;

    for (i = 0; type->props && type->props[i].name; i++) {
        if (strcmp(type->props[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

const ObjectPropertyInfo *object_type_find_property(const ObjectTypeInfo *type,
                                                    const char *name)
{
    int i = object_type_prop_index(type, name);

    return i < 0 ? NULL : &type->props[i];
}

bool object_prop_check_range(const ObjectPropertyInfo *prop, int64_t v,
                             Error **errp)
{
    if ((prop->flags & OBJECT_PROP_RANGE) && (v < prop->min || v > prop->max)) {
        /* QEMU's sentence for its iothread poll parameters. */
        error_setg(errp, "%s value must be in range [%" PRId64 ", %" PRId64 "]",
                   prop->name, prop->min, prop->max);
        return false;
    }
    return true;
}

/* A malformed type is a programming error: say what is wrong and abort. */
static void type_check(const ObjectTypeInfo *info)
{
    const unsigned known = OBJECT_PROP_CREATE | OBJECT_PROP_REQUIRED |
                           OBJECT_PROP_READONLY | OBJECT_PROP_RANGE;
    size_t i, j;

    if (!info->name || !*info->name) {
        g_error("object_type_register: a type needs a name");
    }
    if (info->create && !info->destroy) {
        g_error("object type '%s': user-creatable but no destroy hook",
                info->name);
    }
    for (i = 0; info->props && info->props[i].name; i++) {
        const ObjectPropertyInfo *p = &info->props[i];
        Error *err = NULL;
        ObjectValue v;

        if (strcmp(p->name, "type") == 0) {
            g_error("object type '%s': property name 'type' is reserved",
                    info->name);
        }
        for (j = 0; j < i; j++) {
            if (strcmp(info->props[j].name, p->name) == 0) {
                g_error("object type '%s': property '%s' declared twice",
                        info->name, p->name);
            }
        }
        if (p->type > OBJECT_VALUE_BOOL || (p->flags & ~known)) {
            g_error("property '%s.%s': bad type or flags", info->name, p->name);
        }
        if ((p->flags & OBJECT_PROP_RANGE) &&
            (p->type != OBJECT_VALUE_INT || p->min > p->max)) {
            g_error("property '%s.%s': bad range", info->name, p->name);
        }
        if (!object_prop_is_creatable(p) && (!p->get || p->default_value)) {
            g_error("property '%s.%s': runtime-only needs a get hook and no "
                    "default",
                    info->name, p->name);
        }
        if ((p->flags & OBJECT_PROP_REQUIRED) && p->default_value) {
            g_error("property '%s.%s': required with a default", info->name,
                    p->name);
        }
        if (p->default_value) {
            if (!object_value_parse(p->type, p->name, p->default_value, &v,
                                    &err) ||
                (p->type == OBJECT_VALUE_INT &&
                 !object_prop_check_range(p, v.i, &err))) {
                g_error("property '%s.%s': default: %s", info->name, p->name,
                        error_get_pretty(err));
            }
            object_value_clear(&v);
        }
    }
}

void object_type_register(const ObjectTypeInfo *info)
{
    const ObjectTypeInfo *old;

    object_registry_check_thread();
    if (!types) {
        types = g_hash_table_new(g_str_hash, g_str_equal);
    }
    type_check(info);
    old = g_hash_table_lookup(types, info->name);
    if (old == info) {
        return;
    }
    if (old) {
        g_error("object type '%s' registered twice", info->name);
    }
    g_hash_table_insert(types, (gpointer)info->name, (gpointer)info);
}

const ObjectTypeInfo *object_type_find(const char *name)
{
    object_registry_check_thread();
    return object_type_lookup(name, NULL);
}

static gint type_cmp(gconstpointer a, gconstpointer b)
{
    const ObjectTypeInfo *ta = *(const ObjectTypeInfo *const *)a;
    const ObjectTypeInfo *tb = *(const ObjectTypeInfo *const *)b;

    return strcmp(ta->name, tb->name);
}

GPtrArray *object_type_list(bool creatable_only)
{
    GPtrArray *out = g_ptr_array_new();
    GHashTableIter it;
    gpointer value;

    object_registry_check_thread();
    if (types) {
        g_hash_table_iter_init(&it, types);
        while (g_hash_table_iter_next(&it, NULL, &value)) {
            const ObjectTypeInfo *t = value;

            if (!creatable_only || t->create) {
                g_ptr_array_add(out, value);
            }
        }
    }
    g_ptr_array_sort(out, type_cmp);
    return out;
}

/* ---- creation properties ---------------------------------------------- */

/*
 * The index of creation property name.  Asking for something the type does
 * not declare is a bug in its create hook: checked even under NDEBUG, since
 * the index is used right after.
 */
static int props_index_any(const ObjectProps *props, const char *name)
{
    int i = object_type_prop_index(props->type, name);

    if (i < 0 || !object_prop_is_creatable(&props->type->props[i])) {
        g_error("object type '%s' has no creation property '%s'",
                props->type->name, name);
    }
    return i;
}

static int props_index(const ObjectProps *props, const char *name,
                       ObjectValueType type)
{
    int i = props_index_any(props, name);

    if (props->type->props[i].type != type) {
        g_error("property '%s.%s' is not of type %s", props->type->name, name,
                object_value_type_name(type));
    }
    return i;
}

bool object_props_has(const ObjectProps *props, const char *name)
{
    return props->given[props_index_any(props, name)];
}

int64_t object_props_get_int(const ObjectProps *props, const char *name)
{
    int i = props_index(props, name, OBJECT_VALUE_INT);

    return props->has_value[i] ? props->values[i].i : 0;
}

bool object_props_get_bool(const ObjectProps *props, const char *name)
{
    int i = props_index(props, name, OBJECT_VALUE_BOOL);

    return props->has_value[i] ? props->values[i].b : false;
}

const char *object_props_get_str(const ObjectProps *props, const char *name)
{
    int i = props_index(props, name, OBJECT_VALUE_STR);

    return props->has_value[i] ? props->values[i].s : NULL;
}
