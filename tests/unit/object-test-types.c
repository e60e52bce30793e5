/* The object types and fixture of the registry tests; see the header. */
#include <string.h>

#include "tests/unit/object-test-types.h"

int widgets_live;
int widgets_created;
GPtrArray *destroy_order;
WidgetSeen seen;

static void *widget_create(const char *id, const ObjectProps *props,
                           Error **errp)
{
    Widget *w;

    g_free(seen.name);
    g_free(seen.label);
    seen.size = object_props_get_int(props, "size");
    seen.poll_max_ns = object_props_get_int(props, "poll-max-ns");
    seen.verbose = object_props_get_bool(props, "verbose");
    seen.name = g_strdup(object_props_get_str(props, "name"));
    seen.label = g_strdup(object_props_get_str(props, "label"));
    seen.has_name = object_props_has(props, "name");
    seen.has_poll = object_props_has(props, "poll-max-ns");
    seen.has_label = object_props_has(props, "label");

    if (strcmp(object_props_get_str(props, "name"), "fail") == 0) {
        error_setg(errp, "widget '%s' refused to start", id);
        return NULL;
    }
    if (strcmp(object_props_get_str(props, "name"), "steal-id") == 0) {
        /* Re-entrant use of the registry: takes this object's own id. */
        GHashTable *p = g_hash_table_new(g_str_hash, g_str_equal);

        g_hash_table_insert(p, "size", "1");
        g_assert_nonnull(object_add("test-widget", id, p, &error_abort));
        g_hash_table_unref(p);
    }
    w = g_new0(Widget, 1);
    w->id = g_strdup(id);
    w->size = object_props_get_int(props, "size");
    w->name = g_strdup(object_props_get_str(props, "name"));
    w->verbose = object_props_get_bool(props, "verbose");
    w->poll_max_ns = object_props_get_int(props, "poll-max-ns");
    widgets_live++;
    widgets_created++;
    return w;
}

static bool widget_can_delete(void *instance, Error **errp)
{
    Widget *w = instance;

    if (w->busy_silent) {
        return false;
    }
    if (w->busy_with) {
        error_setg(errp, "test-widget '%s' is in use by %s", w->id,
                   w->busy_with);
        return false;
    }
    return true;
}

static void widget_destroy(void *instance)
{
    Widget *w = instance;

    if (destroy_order) {
        g_ptr_array_add(destroy_order, g_strdup(w->id));
    }
    widgets_live--;
    g_free(w->id);
    g_free(w->name);
    g_free(w->busy_with);
    g_free(w);
}

static bool widget_set_size(void *instance, const ObjectValue *v, Error **errp)
{
    Widget *w = instance;

    g_assert_cmpint(v->type, ==, OBJECT_VALUE_INT);
    if (v->i == 13) {
        error_setg(errp, "size 13 is unlucky");
        return false;
    }
    w->size = v->i;
    w->set_calls++;
    return true;
}

static bool widget_set_verbose(void *instance, const ObjectValue *v,
                               Error **errp)
{
    Widget *w = instance;

    w->verbose = v->b;
    w->set_calls++;
    return true;
}

static void widget_get_poll(void *instance, ObjectValue *out)
{
    out->i = ((Widget *)instance)->poll_max_ns;
}

static bool widget_set_poll(void *instance, const ObjectValue *v, Error **errp)
{
    Widget *w = instance;

    w->poll_max_ns = v->i;
    w->set_calls++;
    return true;
}

static void widget_get_counter(void *instance, ObjectValue *out)
{
    out->i = ((Widget *)instance)->counter;
}

static bool widget_set_label(void *instance, const ObjectValue *v, Error **errp)
{
    ((Widget *)instance)->set_calls++;
    return true;
}

static const ObjectPropertyInfo widget_props[] = {
    {.name = "size",
     .type = OBJECT_VALUE_INT,
     .description = "number of things",
     .flags = OBJECT_PROP_REQUIRED | OBJECT_PROP_RANGE,
     .min = 1,
     .max = 1000,
     .set = widget_set_size},
    {.name = "name",
     .type = OBJECT_VALUE_STR,
     .description = "a name",
     .flags = OBJECT_PROP_CREATE | OBJECT_PROP_READONLY,
     .default_value = "anon"},
    {.name = "verbose",
     .type = OBJECT_VALUE_BOOL,
     .description = "chatty or not",
     .flags = OBJECT_PROP_CREATE,
     .default_value = "off",
     .set = widget_set_verbose},
    {.name = "poll-max-ns",
     .type = OBJECT_VALUE_INT,
     .description = "poll window",
     .flags = OBJECT_PROP_CREATE | OBJECT_PROP_RANGE,
     .min = 0,
     .max = INT64_MAX,
     .default_value = "32768",
     .get = widget_get_poll,
     .set = widget_set_poll},
    {.name = "counter",
     .type = OBJECT_VALUE_INT,
     .description = "events seen",
     .get = widget_get_counter},
    {.name = "label",
     .type = OBJECT_VALUE_STR,
     .flags = OBJECT_PROP_CREATE,
     .set = widget_set_label},
    {NULL},
};

const ObjectTypeInfo widget_type = {
    .name = "test-widget",
    .description = "a widget for tests",
    .props = widget_props,
    .create = widget_create,
    .can_delete = widget_can_delete,
    .destroy = widget_destroy,
};

static void loop_get_thread_id(void *instance, ObjectValue *out)
{
    out->i = ((Loop *)instance)->thread_id;
}

static const ObjectPropertyInfo loop_props[] = {
    {.name = "thread-id",
     .type = OBJECT_VALUE_INT,
     .description = "kernel thread id",
     .get = loop_get_thread_id},
    {.name = "aio-max-batch",
     .type = OBJECT_VALUE_INT,
     .flags = OBJECT_PROP_CREATE | OBJECT_PROP_RANGE,
     .min = 0,
     .max = INT64_MAX,
     .default_value = "0"},
    {NULL},
};

const ObjectTypeInfo loop_type = {
    .name = "test-loop",
    .props = loop_props,
};

/* ---- fixture and helpers ----------------------------------------------- */

void fixture_setup(Fixture *f, gconstpointer data)
{
    widgets_live = 0;
    widgets_created = 0;
    object_type_register(&widget_type);
    object_type_register(&loop_type);
}

void fixture_teardown(Fixture *f, gconstpointer data)
{
    object_registry_cleanup();
    g_assert_cmpint(widgets_live, ==, 0);
    g_clear_pointer(&seen.name, g_free);
    g_clear_pointer(&seen.label, g_free);
    g_clear_pointer(&destroy_order, g_ptr_array_unref);
}

/* A props table from "k1", "v1", "k2", "v2", ..., NULL (strings borrowed). */
GHashTable *props_new(const char *first, ...)
{
    GHashTable *h = g_hash_table_new(g_str_hash, g_str_equal);
    const char *k = first;
    va_list ap;

    va_start(ap, first);
    while (k) {
        const char *v = va_arg(ap, const char *);

        g_hash_table_insert(h, (gpointer)k, (gpointer)v);
        k = va_arg(ap, const char *);
    }
    va_end(ap);
    return h;
}

/* object_add of a test-widget with the given props; returns the object. */
Object *add_widget(const char *id, const char *first, ...)
{
    GHashTable *h = g_hash_table_new(g_str_hash, g_str_equal);
    const char *k = first;
    Object *obj;
    va_list ap;

    va_start(ap, first);
    while (k) {
        g_hash_table_insert(h, (gpointer)k, va_arg(ap, char *));
        k = va_arg(ap, const char *);
    }
    va_end(ap);
    obj = object_add("test-widget", id, h, &error_abort);
    g_hash_table_unref(h);
    return obj;
}

/* Asserts that object_add fails with exactly the sentence want. */
void assert_add_fails(const char *type, const char *id, GHashTable *h,
                      const char *want)
{
    Error *err = NULL;

    g_assert_null(object_add(type, id, h, &err));
    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==, want);
    error_free(err);
}

void assert_error(Error *err, const char *want)
{
    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==, want);
    error_free(err);
}
