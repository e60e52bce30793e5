/*
 * Help text for object types, in the shape QEMU prints for "-object help"
 * and "-object <type>,help", so that people and scripts used to it find the
 * same lines here.  See include/dataplane/object.h.
 */
#include <string.h>

#include "aio/object-internal.h"

char *object_type_help_list(void)
{
    GPtrArray *types = object_type_list(true);
    GString *out = g_string_new("List of user creatable objects:\n");
    guint i;

    for (i = 0; i < types->len; i++) {
        const ObjectTypeInfo *t = g_ptr_array_index(types, i);

        g_string_append_printf(out, "  %s\n", t->name);
    }
    g_ptr_array_unref(types);
    return g_string_free(out, FALSE);
}

static gint prop_name_cmp(gconstpointer a, gconstpointer b)
{
    const ObjectPropertyInfo *pa = *(const ObjectPropertyInfo *const *)a;
    const ObjectPropertyInfo *pb = *(const ObjectPropertyInfo *const *)b;

    return strcmp(pa->name, pb->name);
}

char *object_type_help(const char *type_name, Error **errp)
{
    const ObjectTypeInfo *type;
    GPtrArray *props;
    GString *out;
    size_t i;

    object_registry_check_thread();
    type = object_type_lookup(type_name, errp);
    if (!type) {
        return NULL;
    }
    props = g_ptr_array_new();
    for (i = 0; type->props && type->props[i].name; i++) {
        if (object_prop_is_creatable(&type->props[i])) {
            g_ptr_array_add(props, (gpointer)&type->props[i]);
        }
    }
    g_ptr_array_sort(props, prop_name_cmp);

    out = g_string_new(NULL);
    g_string_append_printf(out, "%s options:\n", type->name);
    for (i = 0; i < props->len; i++) {
        const ObjectPropertyInfo *p = g_ptr_array_index(props, i);
        size_t start = out->len;

        g_string_append_printf(out, "  %s=<%s>", p->name,
                               object_value_type_name(p->type));
        if (p->description) {
            /* Descriptions line up in a column, as in QEMU's help. */
            while (out->len - start < 24) {
                g_string_append_c(out, ' ');
            }
            g_string_append_printf(out, " - %s", p->description);
        }
        if (p->default_value) {
            g_string_append_printf(out, " (default: %s)", p->default_value);
        }
        g_string_append_c(out, '\n');
    }
    g_ptr_array_unref(props);
    return g_string_free(out, FALSE);
}
