/*
 * Object properties at runtime: listing, get, set (typed or from the string
 * form), with QEMU's error sentences.  See include/dataplane/object.h.
 */
#include <string.h>

#include "aio/object-internal.h"

/* ---- properties ------------------------------------------------------- */

static const char *const type_prop_description = "the object's type";

GPtrArray *object_property_list(Object *obj)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    ObjectPropertyDesc *d;
    size_t i;

    object_registry_check_thread();
    d = g_new(ObjectPropertyDesc, 1);
    *d = (ObjectPropertyDesc){
        .name = "type",
        .type = OBJECT_VALUE_STR,
        .type_name = object_value_type_name(OBJECT_VALUE_STR),
        .read_only = true,
        .description = type_prop_description,
    };
    g_ptr_array_add(out, d);
    for (i = 0; obj->type->props && obj->type->props[i].name; i++) {
        const ObjectPropertyInfo *p = &obj->type->props[i];

        d = g_new(ObjectPropertyDesc, 1);
        *d = (ObjectPropertyDesc){
            .name = p->name,
            .type = p->type,
            .type_name = object_value_type_name(p->type),
            .read_only = object_property_info_is_read_only(p),
            .description = p->description,
        };
        g_ptr_array_add(out, d);
    }
    return out;
}

/* The property called name, or NULL and QEMU's "not found" sentence. */
static int find_prop(Object *obj, const char *name, Error **errp)
{
    int i = name ? object_type_prop_index(obj->type, name) : -1;

    if (i < 0) {
        error_setg(errp, "Property '%s.%s' not found", obj->type->name,
                   name ? name : "");
    }
    return i;
}

bool object_property_get(Object *obj, const char *name, ObjectValue *out,
                         Error **errp)
{
    const ObjectPropertyInfo *p;
    int i;

    object_registry_check_thread();
    if (name && strcmp(name, "type") == 0) {
        out->type = OBJECT_VALUE_STR;
        out->s = g_strdup(obj->type->name);
        return true;
    }
    i = find_prop(obj, name, errp);
    if (i < 0) {
        return false;
    }
    p = &obj->type->props[i];
    if (p->get) {
        memset(out, 0, sizeof(*out));
        out->type = p->type;
        p->get(obj->instance, out);
        g_assert(out->type == p->type);
        return true;
    }
    if (!obj->has_value[i]) {
        error_setg(errp, "Property '%s.%s' is not set", obj->type->name,
                   p->name);
        return false;
    }
    out->type = p->type;
    if (p->type == OBJECT_VALUE_STR) {
        out->s = g_strdup(obj->values[i].s);
    } else {
        *out = obj->values[i];
    }
    return true;
}

/* QEMU's type names in "Invalid parameter type" sentences. */
static const char *expected_name(ObjectValueType type)
{
    switch (type) {
    case OBJECT_VALUE_STR:
        return "string";
    case OBJECT_VALUE_INT:
        return "integer";
    case OBJECT_VALUE_BOOL:
        return "boolean";
    }
    g_assert_not_reached();
}

/* The writable property called name, or NULL and a sentence. */
static int find_writable_prop(Object *obj, const char *name, Error **errp)
{
    int i;

    if (name && strcmp(name, "type") == 0) {
        error_setg(errp, "Property '%s.type' is not writable", obj->type->name);
        return -1;
    }
    i = find_prop(obj, name, errp);
    if (i >= 0 && object_property_info_is_read_only(&obj->type->props[i])) {
        error_setg(errp, "Property '%s.%s' is not writable", obj->type->name,
                   name);
        return -1;
    }
    return i;
}

/* Range check, set hook, then the stored value for get-less properties. */
static bool set_prop(Object *obj, int i, const ObjectValue *value, Error **errp)
{
    const ObjectPropertyInfo *p = &obj->type->props[i];
    Error *err = NULL;

    if (p->type == OBJECT_VALUE_INT &&
        !object_prop_check_range(p, value->i, errp)) {
        return false;
    }
    if (!p->set(obj->instance, value, &err)) {
        g_assert(err);
        error_propagate(errp, err);
        return false;
    }
    if (!p->get) {
        object_value_clear(&obj->values[i]);
        obj->values[i] = *value;
        if (p->type == OBJECT_VALUE_STR) {
            obj->values[i].s = g_strdup(value->s);
        }
        obj->has_value[i] = true;
    }
    return true;
}

bool object_property_set(Object *obj, const char *name,
                         const ObjectValue *value, Error **errp)
{
    int i;

    object_registry_check_thread();
    i = find_writable_prop(obj, name, errp);
    if (i < 0) {
        return false;
    }
    if (value->type != obj->type->props[i].type ||
        (value->type == OBJECT_VALUE_STR && !value->s)) {
        error_setg(errp, "Invalid parameter type for '%s', expected: %s", name,
                   expected_name(obj->type->props[i].type));
        return false;
    }
    return set_prop(obj, i, value, errp);
}

bool object_property_parse(Object *obj, const char *name, const char *str,
                           Error **errp)
{
    ObjectValue v;
    bool ok;
    int i;

    object_registry_check_thread();
    i = find_writable_prop(obj, name, errp);
    if (i < 0) {
        return false;
    }
    if (!str) {
        error_setg(errp, "Parameter '%s' is missing", name);
        return false;
    }
    if (!object_value_parse(obj->type->props[i].type, name, str, &v, errp)) {
        return false;
    }
    ok = set_prop(obj, i, &v, errp);
    object_value_clear(&v);
    return ok;
}

/* Gets name and checks it has the wanted type. */
static bool get_typed(Object *obj, const char *name, ObjectValueType type,
                      ObjectValue *out, Error **errp)
{
    if (!object_property_get(obj, name, out, errp)) {
        return false;
    }
    if (out->type != type) {
        error_setg(errp, "Invalid parameter type for '%s', expected: %s", name,
                   expected_name(type));
        object_value_clear(out);
        return false;
    }
    return true;
}

bool object_property_get_int(Object *obj, const char *name, int64_t *out,
                             Error **errp)
{
    ObjectValue v;

    if (!get_typed(obj, name, OBJECT_VALUE_INT, &v, errp)) {
        return false;
    }
    *out = v.i;
    return true;
}

bool object_property_get_bool(Object *obj, const char *name, bool *out,
                              Error **errp)
{
    ObjectValue v;

    if (!get_typed(obj, name, OBJECT_VALUE_BOOL, &v, errp)) {
        return false;
    }
    *out = v.b;
    return true;
}

char *object_property_get_str(Object *obj, const char *name, Error **errp)
{
    ObjectValue v;

    if (!get_typed(obj, name, OBJECT_VALUE_STR, &v, errp)) {
        return NULL;
    }
    return v.s;
}

bool object_property_set_int(Object *obj, const char *name, int64_t i,
                             Error **errp)
{
    ObjectValue v = {.type = OBJECT_VALUE_INT, .i = i};

    return object_property_set(obj, name, &v, errp);
}

bool object_property_set_bool(Object *obj, const char *name, bool b,
                              Error **errp)
{
    ObjectValue v = {.type = OBJECT_VALUE_BOOL, .b = b};

    return object_property_set(obj, name, &v, errp);
}

bool object_property_set_str(Object *obj, const char *name, const char *s,
                             Error **errp)
{
    ObjectValue v = {.type = OBJECT_VALUE_STR, .s = (char *)s};

    return object_property_set(obj, name, &v, errp);
}
