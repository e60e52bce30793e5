/*
 * Property values of the object registry: parsing from the keyval string
 * form (dataplane/input.h, the project's one syntax), formatting, names of
 * the types.  See include/dataplane/object.h.
 */
#include <inttypes.h>

#include "dataplane/input.h"
#include "dataplane/object.h"

void object_value_clear(ObjectValue *v)
{
    if (v->type == OBJECT_VALUE_STR) {
        g_free(v->s);
        v->s = NULL;
    } else if (v->type == OBJECT_VALUE_INT) {
        v->i = 0;
    } else {
        v->b = false;
    }
}

const char *object_value_type_name(ObjectValueType type)
{
    switch (type) {
    case OBJECT_VALUE_STR:
        return "str";
    case OBJECT_VALUE_INT:
        return "int";
    case OBJECT_VALUE_BOOL:
        return "bool";
    }
    g_assert_not_reached();
}

const char *object_value_type_qom_name(ObjectValueType type)
{
    return type == OBJECT_VALUE_STR ? "string" : object_value_type_name(type);
}

char *object_value_to_string(const ObjectValue *v)
{
    switch (v->type) {
    case OBJECT_VALUE_STR:
        return g_strdup(v->s ? v->s : "");
    case OBJECT_VALUE_INT:
        return g_strdup_printf("%" PRId64, v->i);
    case OBJECT_VALUE_BOOL:
        return g_strdup(v->b ? "true" : "false");
    }
    g_assert_not_reached();
}

bool object_value_parse(ObjectValueType type, const char *name, const char *str,
                        ObjectValue *out, Error **errp)
{
    out->type = type;
    switch (type) {
    case OBJECT_VALUE_STR:
        out->s = g_strdup(str);
        return true;
    case OBJECT_VALUE_INT:
        out->i = 0;
        return input_parse_int(name, str, INT64_MIN, INT64_MAX, &out->i, errp);
    case OBJECT_VALUE_BOOL:
        out->b = false;
        return input_parse_bool(name, str, &out->b, errp);
    }
    g_assert_not_reached();
}
