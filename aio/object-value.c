/*
 * Property values of the object registry: parsing from the keyval string
 * form, formatting, names of the types.  See include/dataplane/object.h.
 *
 * The integer syntax follows QEMU's keyval (qemu_strtoi64 with base 0) with
 * one deliberate difference: a leading zero is rejected instead of meaning
 * octal, so "010" is an error here rather than silently 8.
 */
#include <inttypes.h>
#include <string.h>

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

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* [+-]? ( 0 | [1-9][0-9]* | 0[xX][0-9a-fA-F]+ ), within int64_t. */
static bool parse_int64(const char *s, int64_t *out)
{
    bool negative = false;
    unsigned base = 10;
    uint64_t limit, acc = 0;
    const char *p = s;

    if (*p == '+' || *p == '-') {
        negative = *p == '-';
        p++;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    } else if (p[0] == '0' && p[1] != '\0') {
        return false; /* leading zero: octal in QEMU, ambiguous here */
    }
    if (*p == '\0') {
        return false;
    }
    /* The magnitude of INT64_MIN is one more than INT64_MAX. */
    limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *p; p++) {
        int d = hex_digit(*p);

        if (d < 0 || (unsigned)d >= base) {
            return false;
        }
        if (acc > (limit - (uint64_t)d) / base) {
            return false; /* overflow */
        }
        acc = acc * base + (uint64_t)d;
    }
    if (negative) {
        *out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    } else {
        *out = (int64_t)acc;
    }
    return true;
}

/* The spellings QEMU's keyval accepts for a bool (case-sensitive). */
static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"on", "yes", "true"};
    static const char *const no[] = {"off", "no", "false"};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(yes); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
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
        if (!parse_int64(str, &out->i)) {
            out->i = 0;
            error_setg(errp, "Parameter '%s' expects integer", name);
            return false;
        }
        return true;
    case OBJECT_VALUE_BOOL:
        if (!parse_bool(str, &out->b)) {
            out->b = false;
            error_setg(errp, "Parameter '%s' expects 'on' or 'off'", name);
            return false;
        }
        return true;
    }
    g_assert_not_reached();
}
