/*
 * The object registry: object_add and its error sentences, object_del,
 * users, registered instances, paths, listing, qom-list, the owner thread
 * and cleanup.  Types and fixture: object-test-types.h.
 */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "dataplane/input.h"
#include "tests/unit/object-test-types.h"
#include "util/thread.h"

/* ---- object_add -------------------------------------------------------- */

static void test_add_creates_object_at_objects_path(Fixture *f, gconstpointer d)
{
    Object *obj = add_widget("w0", "size", "5", NULL);
    char *path = object_get_path(obj);
    Widget *w = object_get_instance(obj);

    g_assert_true(object_find("w0") == obj);
    g_assert_cmpstr(object_get_id(obj), ==, "w0");
    g_assert_cmpstr(object_get_type(obj), ==, "test-widget");
    g_assert_true(object_get_type_info(obj) == &widget_type);
    g_assert_cmpstr(path, ==, "/objects/w0");
    g_assert_true(object_is_user_created(obj));
    g_assert_cmpstr(w->id, ==, "w0");
    g_assert_cmpint(widgets_live, ==, 1);
    g_free(path);
}

static void test_add_hands_parsed_values_to_create(Fixture *f, gconstpointer d)
{
    add_widget("w0", "size", "0x1f", "name", "disk", "verbose", "yes",
               "poll-max-ns", "-0", "label", "", NULL);
    g_assert_cmpint(seen.size, ==, 31);
    g_assert_cmpstr(seen.name, ==, "disk");
    g_assert_true(seen.verbose);
    g_assert_cmpint(seen.poll_max_ns, ==, 0);
    g_assert_true(seen.has_name);
    g_assert_true(seen.has_poll);
    g_assert_true(seen.has_label);
    g_assert_cmpstr(seen.label, ==, "");
}

/* The registry reads values as the command line and QEMU do
 * (dataplane/input.h): octal "010", and the short bools y/n. */
static void test_add_reads_values_with_qemu_syntax(Fixture *f, gconstpointer d)
{
    add_widget("w0", "size", "010", "verbose", "y", "poll-max-ns", " 0x10",
               NULL);
    g_assert_cmpint(seen.size, ==, 8);
    g_assert_true(seen.verbose);
    g_assert_cmpint(seen.poll_max_ns, ==, 16);
}

static void test_add_fills_defaults_for_absent_props(Fixture *f,
                                                     gconstpointer d)
{
    add_widget("w0", "size", "7", NULL);
    g_assert_cmpint(seen.size, ==, 7);
    g_assert_cmpstr(seen.name, ==, "anon");
    g_assert_false(seen.verbose);
    g_assert_cmpint(seen.poll_max_ns, ==, 32768);
    g_assert_false(seen.has_name);
    g_assert_false(seen.has_poll);
    /* No default and not given: the accessor says NULL. */
    g_assert_false(seen.has_label);
    g_assert_null(seen.label);
}

static void test_add_null_props_means_none(Fixture *f, gconstpointer d)
{
    assert_add_fails("test-widget", "w0", NULL, "Parameter 'size' is missing");
}

static void test_add_unknown_type_fails(Fixture *f, gconstpointer d)
{
    GHashTable *h = props_new("size", "1", NULL);

    assert_add_fails("foo", "x0", h, "Invalid object type 'foo'");
    g_assert_null(object_find("x0"));
    g_hash_table_unref(h);
}

static void test_add_non_creatable_type_fails(Fixture *f, gconstpointer d)
{
    assert_add_fails("test-loop", "l0", NULL,
                     "object type 'test-loop' isn't supported by object-add");
    g_assert_null(object_find("l0"));
}

static void test_add_invalid_id_fails(Fixture *f, gconstpointer d)
{
    static const char *const bad[] = {"",    "1abc", "-x",  "_x", ".x",
                                      "a b", "a/b",  "a,b", "é",  "a=b"};
    GHashTable *h = props_new("size", "1", NULL);
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_false(input_id_wellformed(bad[i]));
        assert_add_fails("test-widget", bad[i], h,
                         "Parameter 'id' expects an identifier");
    }
    g_assert_cmpint(widgets_created, ==, 0);
    g_hash_table_unref(h);
}

static void
test_id_rule_accepts_letters_digits_dash_dot_underscore(Fixture *f,
                                                        gconstpointer d)
{
    g_assert_true(input_id_wellformed("a"));
    g_assert_true(input_id_wellformed("Z"));
    g_assert_true(input_id_wellformed("io0"));
    g_assert_true(input_id_wellformed("a-b.c_d9"));
    add_widget("a-b.c_d9", "size", "1", NULL);
    g_assert_nonnull(object_find("a-b.c_d9"));
}

static void test_add_without_id_fails(Fixture *f, gconstpointer d)
{
    assert_add_fails("test-widget", NULL, NULL, "Parameter 'id' is missing");
}

static void test_add_duplicate_id_fails_and_keeps_first(Fixture *f,
                                                        gconstpointer d)
{
    Object *first = add_widget("io0", "size", "1", NULL);
    GHashTable *h = props_new("size", "2", NULL);

    assert_add_fails("test-widget", "io0", h, "Duplicate ID 'io0' for object");
    g_assert_true(object_find("io0") == first);
    g_assert_cmpint(prop_get_int(first, "size"), ==, 1);
    g_assert_cmpint(widgets_created, ==, 1);
    g_hash_table_unref(h);
}

static void test_add_int_junk_fails(Fixture *f, gconstpointer d)
{
    static const char *const junk[] = {"",    "abc", "12abc", "08", "12 ",
                                       "1.5", "0x",  "0xg",   "+",  "-",
                                       "1e3", "5k",  "--1"};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(junk); i++) {
        GHashTable *h = props_new("size", junk[i], NULL);

        assert_add_fails("test-widget", "w0", h,
                         "Parameter 'size' expects integer");
        g_hash_table_unref(h);
    }
    g_assert_cmpint(widgets_created, ==, 0);
}

static void test_add_int_overflow_fails(Fixture *f, gconstpointer d)
{
    static const char *const big[] = {
        "9223372036854775808", "-9223372036854775809", "0x8000000000000000",
        "99999999999999999999999"};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(big); i++) {
        GHashTable *h = props_new("size", "1", "poll-max-ns", big[i], NULL);

        assert_add_fails("test-widget", "w0", h,
                         "Parameter 'poll-max-ns' expects integer");
        g_hash_table_unref(h);
    }
}

static void test_add_bool_junk_fails(Fixture *f, gconstpointer d)
{
    static const char *const junk[] = {"", "ON", "1", "0", "Y", "enable"};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(junk); i++) {
        GHashTable *h = props_new("size", "1", "verbose", junk[i], NULL);

        assert_add_fails("test-widget", "w0", h,
                         "Parameter 'verbose' expects 'on' or 'off'");
        g_hash_table_unref(h);
    }
}

static void test_add_out_of_range_fails(Fixture *f, gconstpointer d)
{
    GHashTable *low = props_new("size", "0", NULL);
    GHashTable *high = props_new("size", "1001", NULL);
    GHashTable *neg = props_new("size", "1", "poll-max-ns", "-1", NULL);

    assert_add_fails("test-widget", "w0", low,
                     "size value must be in range [1, 1000]");
    assert_add_fails("test-widget", "w0", high,
                     "size value must be in range [1, 1000]");
    assert_add_fails(
        "test-widget", "w0", neg,
        "poll-max-ns value must be in range [0, 9223372036854775807]");
    g_assert_cmpint(widgets_created, ==, 0);
    g_hash_table_unref(low);
    g_hash_table_unref(high);
    g_hash_table_unref(neg);
}

static void test_add_range_bounds_are_inclusive(Fixture *f, gconstpointer d)
{
    add_widget("w1", "size", "1", NULL);
    add_widget("w2", "size", "1000", "poll-max-ns", "9223372036854775807",
               NULL);
    g_assert_cmpint(prop_get_int(object_find("w1"), "size"), ==, 1);
    g_assert_cmpint(prop_get_int(object_find("w2"), "size"), ==, 1000);
    g_assert_cmpint(prop_get_int(object_find("w2"), "poll-max-ns"), ==,
                    INT64_MAX);
}

static void test_add_missing_required_fails(Fixture *f, gconstpointer d)
{
    GHashTable *h = props_new("name", "x", NULL);

    assert_add_fails("test-widget", "w0", h, "Parameter 'size' is missing");
    g_hash_table_unref(h);
}

static void test_add_unknown_property_fails(Fixture *f, gconstpointer d)
{
    GHashTable *h = props_new("size", "1", "bar", "1", NULL);
    GHashTable *two = props_new("size", "1", "zzz", "1", "bar", "1", NULL);
    GHashTable *dotted = props_new("size", "1", "foo.bar", "1", NULL);

    assert_add_fails("test-widget", "w0", h, "Parameter 'bar' is unexpected");
    /* With several, the first by name: the sentence is reproducible. */
    assert_add_fails("test-widget", "w0", two, "Parameter 'bar' is unexpected");
    assert_add_fails("test-widget", "w0", dotted,
                     "Parameter 'foo.bar' is unexpected");
    g_assert_cmpint(widgets_created, ==, 0);
    g_hash_table_unref(h);
    g_hash_table_unref(two);
    g_hash_table_unref(dotted);
}

static void test_add_runtime_only_property_is_unexpected(Fixture *f,
                                                         gconstpointer d)
{
    GHashTable *h = props_new("size", "1", "counter", "3", NULL);
    GHashTable *type = props_new("size", "1", "type", "x", NULL);

    assert_add_fails("test-widget", "w0", h,
                     "Parameter 'counter' is unexpected");
    assert_add_fails("test-widget", "w0", type,
                     "Parameter 'type' is unexpected");
    g_hash_table_unref(h);
    g_hash_table_unref(type);
}

static void test_add_reports_bad_value_before_unexpected_key(Fixture *f,
                                                             gconstpointer d)
{
    GHashTable *h = props_new("size", "x", "bar", "1", NULL);

    assert_add_fails("test-widget", "w0", h,
                     "Parameter 'size' expects integer");
    g_hash_table_unref(h);
}

static void test_add_create_hook_error_propagates(Fixture *f, gconstpointer d)
{
    GHashTable *h = props_new("size", "1", "name", "fail", NULL);

    assert_add_fails("test-widget", "w0", h, "widget 'w0' refused to start");
    g_assert_null(object_find("w0"));
    g_assert_cmpint(widgets_live, ==, 0);
    g_hash_table_unref(h);
}

static void test_add_id_taken_by_create_hook_fails(Fixture *f, gconstpointer d)
{
    GHashTable *h = props_new("size", "5", "name", "steal-id", NULL);
    Object *obj;

    assert_add_fails("test-widget", "w0", h, "Duplicate ID 'w0' for object");
    /* The object the hook made stays; the refused instance was destroyed. */
    obj = object_find("w0");
    g_assert_nonnull(obj);
    g_assert_cmpint(prop_get_int(obj, "size"), ==, 1);
    g_assert_cmpint(widgets_live, ==, 1);
    g_hash_table_unref(h);
}

static void test_add_opts_takes_type_and_id_from_table(Fixture *f,
                                                       gconstpointer d)
{
    GHashTable *h =
        props_new("qom-type", "test-widget", "id", "w0", "size", "9", NULL);
    Object *obj = object_add_opts(h, &error_abort);

    g_assert_true(object_find("w0") == obj);
    g_assert_cmpint(prop_get_int(obj, "size"), ==, 9);
    g_hash_table_unref(h);
}

static void test_add_opts_without_type_or_id_fails(Fixture *f, gconstpointer d)
{
    GHashTable *no_type = props_new("id", "w0", "size", "9", NULL);
    GHashTable *no_id = props_new("qom-type", "test-widget", "size", "9", NULL);
    Error *err = NULL;

    g_assert_null(object_add_opts(no_type, &err));
    assert_error(err, "Parameter 'qom-type' is missing");
    err = NULL;
    g_assert_null(object_add_opts(no_id, &err));
    assert_error(err, "Parameter 'id' is missing");
    g_hash_table_unref(no_type);
    g_hash_table_unref(no_id);
}

/* ---- object_del -------------------------------------------------------- */

static void test_del_destroys_instance(Fixture *f, gconstpointer d)
{
    add_widget("w0", "size", "1", NULL);
    g_assert_true(object_del("w0", &error_abort));
    g_assert_null(object_find("w0"));
    g_assert_cmpint(widgets_live, ==, 0);
    /* The id is free again. */
    add_widget("w0", "size", "2", NULL);
    g_assert_cmpint(prop_get_int(object_find("w0"), "size"), ==, 2);
}

static void test_del_unknown_id_fails(Fixture *f, gconstpointer d)
{
    Error *err = NULL;

    g_assert_false(object_del("nope", &err));
    assert_error(err, "object 'nope' not found");
}

static void test_del_accepts_path(Fixture *f, gconstpointer d)
{
    add_widget("w0", "size", "1", NULL);
    add_widget("w1", "size", "1", NULL);
    g_assert_true(object_del("/objects/w0", &error_abort));
    g_assert_true(object_del("objects/w1", &error_abort));
    g_assert_cmpint(widgets_live, ==, 0);
}

static void test_del_refused_by_can_delete_keeps_object(Fixture *f,
                                                        gconstpointer d)
{
    Object *obj = add_widget("io0", "size", "1", NULL);
    Widget *w = object_get_instance(obj);
    Error *err = NULL;

    w->busy_with = g_strdup("export 'exp0'");
    g_assert_false(object_del("io0", &err));
    assert_error(err, "test-widget 'io0' is in use by export 'exp0'");
    g_assert_true(object_find("io0") == obj);
    g_assert_cmpint(widgets_live, ==, 1);

    g_clear_pointer(&w->busy_with, g_free);
    g_assert_true(object_del("io0", &error_abort));
}

static void
test_del_refused_without_error_gets_default_sentence(Fixture *f,
                                                     gconstpointer d)
{
    Object *obj = add_widget("io0", "size", "1", NULL);
    Error *err = NULL;

    ((Widget *)object_get_instance(obj))->busy_silent = true;
    g_assert_false(object_del("io0", &err));
    assert_error(err, "object 'io0' is in use, can not be deleted");
    ((Widget *)object_get_instance(obj))->busy_silent = false;
}

static void test_del_refused_while_object_has_users(Fixture *f, gconstpointer d)
{
    Object *obj = add_widget("io0", "size", "1", NULL);
    Error *err = NULL;

    object_user_add(obj, "export 'exp0'");
    object_user_add(obj, "export 'exp1'");
    g_assert_false(object_del("io0", &err));
    assert_error(err, "test-widget 'io0' is in use by export 'exp0'");

    object_user_remove(obj, "export 'exp0'");
    err = NULL;
    g_assert_false(object_del("io0", &err));
    assert_error(err, "test-widget 'io0' is in use by export 'exp1'");

    object_user_remove(obj, "export 'exp1'");
    g_assert_true(object_del("io0", &error_abort));
}

static void test_user_added_twice_needs_two_removes(Fixture *f, gconstpointer d)
{
    Object *obj = add_widget("io0", "size", "1", NULL);

    object_user_add(obj, "export 'exp0'");
    object_user_add(obj, "export 'exp0'");
    object_user_remove(obj, "export 'exp0'");
    g_assert_false(object_del("io0", NULL));
    object_user_remove(obj, "export 'exp0'");
    g_assert_true(object_del("io0", &error_abort));
}

static void test_user_remove_of_absent_user_aborts(Fixture *f, gconstpointer d)
{
    if (g_test_subprocess()) {
        Object *obj = add_widget("io0", "size", "1", NULL);

        object_user_remove(obj, "export 'exp0'");
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*has no user export 'exp0'*");
}

static void test_del_of_registered_instance_fails(Fixture *f, gconstpointer d)
{
    Loop loop = {.thread_id = 42};
    Object *obj =
        object_register_instance("test-loop", "main-loop", &loop, &error_abort);
    Error *err = NULL;

    g_assert_false(object_del("main-loop", &err));
    assert_error(err, "main-loop is not a user-creatable object");
    g_assert_true(object_find("main-loop") == obj);
}

/* ---- registered instances ----------------------------------------------- */

static void test_register_instance_exposes_properties(Fixture *f,
                                                      gconstpointer d)
{
    Loop loop = {.thread_id = 4242};
    Object *obj =
        object_register_instance("test-loop", "main-loop", &loop, &error_abort);

    g_assert_false(object_is_user_created(obj));
    g_assert_true(object_get_instance(obj) == &loop);
    g_assert_cmpint(prop_get_int(obj, "thread-id"), ==, 4242);
    /* Creation properties of such an object read as their default. */
    g_assert_cmpint(prop_get_int(obj, "aio-max-batch"), ==, 0);
    loop.thread_id = 7;
    g_assert_cmpint(prop_get_int(obj, "thread-id"), ==, 7);
}

static void test_register_instance_checks_type_and_id(Fixture *f,
                                                      gconstpointer d)
{
    Loop loop = {0};
    Error *err = NULL;

    g_assert_null(object_register_instance("nope", "x", &loop, &err));
    assert_error(err, "Invalid object type 'nope'");
    err = NULL;
    g_assert_null(object_register_instance("test-loop", "9x", &loop, &err));
    assert_error(err, "Parameter 'id' expects an identifier");
    add_widget("w0", "size", "1", NULL);
    err = NULL;
    g_assert_null(object_register_instance("test-loop", "w0", &loop, &err));
    assert_error(err, "Duplicate ID 'w0' for object");
}

static void test_unregister_removes_without_hooks(Fixture *f, gconstpointer d)
{
    Loop loop = {0};
    Object *obj =
        object_register_instance("test-loop", "l0", &loop, &error_abort);

    object_unregister(obj);
    g_assert_null(object_find("l0"));
    /* The id may be reused. */
    object_register_instance("test-loop", "l0", &loop, &error_abort);
}

/* ---- lookup and paths -------------------------------------------------- */

static void test_resolve_accepts_qom_paths(Fixture *f, gconstpointer d)
{
    Object *obj = add_widget("io0", "size", "1", NULL);

    g_assert_true(object_resolve("/objects/io0", &error_abort) == obj);
    g_assert_true(object_resolve("objects/io0", &error_abort) == obj);
    g_assert_true(object_resolve("io0", &error_abort) == obj);
}

static void test_resolve_of_missing_path_fails(Fixture *f, gconstpointer d)
{
    static const char *const bad[] = {
        "/objects/nope", "nope",           "/objects/", "/objects",
        "/io0",          "/objects/io0/x", ""};
    size_t i;

    add_widget("io0", "size", "1", NULL);
    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        Error *err = NULL;
        char *want = g_strdup_printf("Device '%s' not found", bad[i]);

        g_assert_null(object_resolve(bad[i], &err));
        g_assert_nonnull(err);
        g_assert_cmpint(error_get_class(err), ==, ERROR_CLASS_DEVICE_NOT_FOUND);
        assert_error(err, want);
        g_free(want);
    }
}

static void test_find_takes_ids_only(Fixture *f, gconstpointer d)
{
    add_widget("io0", "size", "1", NULL);
    g_assert_nonnull(object_find("io0"));
    g_assert_null(object_find("/objects/io0"));
    g_assert_null(object_find("io1"));
    g_assert_null(object_find(NULL));
}

static void test_find_instance_checks_type(Fixture *f, gconstpointer d)
{
    Object *obj = add_widget("io0", "size", "1", NULL);

    g_assert_true(object_find_instance("io0", "test-widget") ==
                  object_get_instance(obj));
    g_assert_null(object_find_instance("io0", "iothread"));
    g_assert_null(object_find_instance("io1", "test-widget"));
}

/* ---- listing ----------------------------------------------------------- */

static void test_list_gives_ids_and_types_sorted(Fixture *f, gconstpointer d)
{
    Loop loop = {0};
    GPtrArray *list;
    ObjectInfo *info;

    list = object_list();
    g_assert_cmpuint(list->len, ==, 0);
    g_ptr_array_unref(list);

    add_widget("zeta", "size", "1", NULL);
    object_register_instance("test-loop", "main-loop", &loop, &error_abort);
    add_widget("alpha", "size", "1", NULL);
    list = object_list();
    g_assert_cmpuint(list->len, ==, 3);
    info = g_ptr_array_index(list, 0);
    g_assert_cmpstr(info->id, ==, "alpha");
    g_assert_cmpstr(info->type, ==, "test-widget");
    info = g_ptr_array_index(list, 1);
    g_assert_cmpstr(info->id, ==, "main-loop");
    g_assert_cmpstr(info->type, ==, "test-loop");
    info = g_ptr_array_index(list, 2);
    g_assert_cmpstr(info->id, ==, "zeta");
    g_ptr_array_unref(list);
}

static void test_property_list_describes_each_property(Fixture *f,
                                                       gconstpointer d)
{
    static const struct {
        const char *name, *type;
        bool read_only;
    } want[] = {
        {"type", "str", true},         {"size", "int", false},
        {"name", "str", true},         {"verbose", "bool", false},
        {"poll-max-ns", "int", false}, {"counter", "int", true},
        {"label", "str", false},
    };
    Object *obj = add_widget("w0", "size", "1", NULL);
    GPtrArray *list = object_property_list(obj);
    size_t i;

    g_assert_cmpuint(list->len, ==, G_N_ELEMENTS(want));
    for (i = 0; i < G_N_ELEMENTS(want); i++) {
        ObjectPropertyDesc *p = g_ptr_array_index(list, i);

        g_assert_cmpstr(p->name, ==, want[i].name);
        g_assert_cmpstr(p->type_name, ==, want[i].type);
        g_assert_cmpstr(object_value_type_name(p->type), ==, want[i].type);
        g_assert_cmpint(p->read_only, ==, want[i].read_only);
    }
    g_assert_cmpstr(
        ((ObjectPropertyDesc *)g_ptr_array_index(list, 1))->description, ==,
        "number of things");
    g_assert_null(
        ((ObjectPropertyDesc *)g_ptr_array_index(list, 6))->description);
    g_ptr_array_unref(list);
}

static void test_type_list_gives_types_and_creation_props(Fixture *f,
                                                          gconstpointer d)
{
    GPtrArray *all = object_type_list(false);
    GPtrArray *creatable = object_type_list(true);
    const ObjectTypeInfo *t;
    const ObjectPropertyInfo *p;

    g_assert_cmpuint(all->len, ==, 2);
    g_assert_true(g_ptr_array_index(all, 0) == &loop_type);
    g_assert_true(g_ptr_array_index(all, 1) == &widget_type);
    g_assert_cmpuint(creatable->len, ==, 1);
    t = g_ptr_array_index(creatable, 0);
    g_assert_cmpstr(t->name, ==, "test-widget");
    g_assert_true(object_type_find("test-widget") == &widget_type);
    g_assert_null(object_type_find("nope"));

    p = object_type_find_property(t, "poll-max-ns");
    g_assert_nonnull(p);
    g_assert_true(p->flags & OBJECT_PROP_CREATE);
    g_assert_cmpstr(p->default_value, ==, "32768");
    g_assert_null(object_type_find_property(t, "nope"));
    g_assert_true(object_property_info_is_read_only(
        object_type_find_property(t, "name")));
    g_assert_false(object_property_info_is_read_only(
        object_type_find_property(t, "verbose")));
    g_ptr_array_unref(all);
    g_ptr_array_unref(creatable);
}

/* Asserts qom-list of path gives exactly the "name:type" pairs in want. */
static void assert_qom_list(const char *path, const char *const *want, size_t n)
{
    GPtrArray *list = object_qom_list(path, &error_abort);
    size_t i;

    g_assert_cmpuint(list->len, ==, n);
    for (i = 0; i < n; i++) {
        ObjectQomEntry *e = g_ptr_array_index(list, i);
        char *got = g_strdup_printf("%s:%s", e->name, e->type);

        g_assert_cmpstr(got, ==, want[i]);
        g_free(got);
    }
    g_ptr_array_unref(list);
}

static void test_qom_list_of_root_shows_objects_container(Fixture *f,
                                                          gconstpointer d)
{
    static const char *const want[] = {"type:string",
                                       "objects:child<container>"};

    assert_qom_list("/", want, G_N_ELEMENTS(want));
}

static void test_qom_list_of_objects_shows_children(Fixture *f, gconstpointer d)
{
    static const char *const want[] = {"type:string", "io0:child<test-widget>",
                                       "main-loop:child<test-loop>"};
    static const char *const empty[] = {"type:string"};
    Loop loop = {0};

    assert_qom_list("/objects", empty, G_N_ELEMENTS(empty));
    object_register_instance("test-loop", "main-loop", &loop, &error_abort);
    add_widget("io0", "size", "1", NULL);
    assert_qom_list("/objects", want, G_N_ELEMENTS(want));
    assert_qom_list("/objects/", want, G_N_ELEMENTS(want));
    assert_qom_list("objects", want, G_N_ELEMENTS(want));
}

static void test_qom_list_of_object_shows_properties(Fixture *f,
                                                     gconstpointer d)
{
    static const char *const want[] = {
        "type:string",     "size:int",    "name:string",  "verbose:bool",
        "poll-max-ns:int", "counter:int", "label:string",
    };

    add_widget("io0", "size", "1", NULL);
    assert_qom_list("/objects/io0", want, G_N_ELEMENTS(want));
    assert_qom_list("io0", want, G_N_ELEMENTS(want));
}

static void test_qom_list_of_missing_path_fails(Fixture *f, gconstpointer d)
{
    Error *err = NULL;

    g_assert_null(object_qom_list("/objects/io9", &err));
    g_assert_nonnull(err);
    g_assert_cmpint(error_get_class(err), ==, ERROR_CLASS_DEVICE_NOT_FOUND);
    assert_error(err, "Device '/objects/io9' not found");
    err = NULL;
    g_assert_null(object_qom_list("/machine", &err));
    assert_error(err, "Device '/machine' not found");
}

static void test_unregister_of_user_created_object_aborts(Fixture *f,
                                                          gconstpointer d)
{
    if (g_test_subprocess()) {
        object_unregister(add_widget("w0", "size", "1", NULL));
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*use object_del()*");
}

/* ---- the registry ------------------------------------------------------ */

static void test_cleanup_destroys_newest_first(Fixture *f, gconstpointer d)
{
    Loop loop = {0};

    destroy_order = g_ptr_array_new_with_free_func(g_free);
    add_widget("b", "size", "1", NULL);
    object_register_instance("test-loop", "l0", &loop, &error_abort);
    add_widget("a", "size", "1", NULL);
    add_widget("c", "size", "1", NULL);
    /* can_delete is not asked at exit. */
    ((Widget *)object_find_instance("a", "test-widget"))->busy_silent = true;
    object_registry_cleanup();
    g_assert_cmpuint(destroy_order->len, ==, 3);
    g_assert_cmpstr(g_ptr_array_index(destroy_order, 0), ==, "c");
    g_assert_cmpstr(g_ptr_array_index(destroy_order, 1), ==, "a");
    g_assert_cmpstr(g_ptr_array_index(destroy_order, 2), ==, "b");
    g_assert_cmpint(widgets_live, ==, 0);
}

static void test_cleanup_keeps_types(Fixture *f, gconstpointer d)
{
    GPtrArray *all;

    add_widget("w0", "size", "1", NULL);
    object_registry_cleanup();
    g_assert_null(object_find("w0"));
    g_assert_true(object_type_find("test-widget") == &widget_type);
    all = object_type_list(false);
    g_assert_cmpuint(all->len, ==, 2);
    g_ptr_array_unref(all);
    add_widget("w0", "size", "1", NULL);
}

static void *find_from_thread(void *arg)
{
    object_find("w0");
    return NULL;
}

static void test_use_from_other_thread_aborts(Fixture *f, gconstpointer d)
{
    if (g_test_subprocess()) {
        DpThread t;

        dp_thread_create(&t, "not-main", find_from_thread, NULL);
        dp_thread_join(&t);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*outside its owner thread*");
}

static void *own_registry_from_thread(void *arg)
{
    Object **obj = arg;

    /* This thread becomes the owner and may use the registry. */
    object_registry_set_owner_thread();
    *obj = add_widget("w0", "size", "3", NULL);
    g_assert_true(object_find("w0") == *obj);
    object_registry_cleanup();
    return NULL;
}

static void test_set_owner_thread_moves_ownership(Fixture *f, gconstpointer d)
{
    DpThread t;
    Object *obj = NULL;

    object_registry_cleanup(); /* the fixture made this thread the owner */
    dp_thread_create(&t, "owner", own_registry_from_thread, &obj);
    dp_thread_join(&t);
    g_assert_nonnull(obj);
    g_assert_cmpint(widgets_live, ==, 0);
    /* After cleanup the next user (this thread) owns it again. */
    add_widget("w1", "size", "1", NULL);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    TEST("/add/creates-object-at-objects-path",
         test_add_creates_object_at_objects_path);
    TEST("/add/hands-parsed-values-to-create",
         test_add_hands_parsed_values_to_create);
    TEST("/add/fills-defaults-for-absent-props",
         test_add_fills_defaults_for_absent_props);
    TEST("/add/null-props-means-none", test_add_null_props_means_none);
    TEST("/add/unknown-type-fails", test_add_unknown_type_fails);
    TEST("/add/non-creatable-type-fails", test_add_non_creatable_type_fails);
    TEST("/add/invalid-id-fails", test_add_invalid_id_fails);
    TEST("/add/id-rule-accepts-letters-digits-dash-dot-underscore",
         test_id_rule_accepts_letters_digits_dash_dot_underscore);
    TEST("/add/without-id-fails", test_add_without_id_fails);
    TEST("/add/duplicate-id-fails-and-keeps-first",
         test_add_duplicate_id_fails_and_keeps_first);
    TEST("/add/reads-values-with-qemu-syntax",
         test_add_reads_values_with_qemu_syntax);
    TEST("/add/int-junk-fails", test_add_int_junk_fails);
    TEST("/add/int-overflow-fails", test_add_int_overflow_fails);
    TEST("/add/bool-junk-fails", test_add_bool_junk_fails);
    TEST("/add/out-of-range-fails", test_add_out_of_range_fails);
    TEST("/add/range-bounds-are-inclusive",
         test_add_range_bounds_are_inclusive);
    TEST("/add/missing-required-fails", test_add_missing_required_fails);
    TEST("/add/unknown-property-fails", test_add_unknown_property_fails);
    TEST("/add/runtime-only-property-is-unexpected",
         test_add_runtime_only_property_is_unexpected);
    TEST("/add/reports-bad-value-before-unexpected-key",
         test_add_reports_bad_value_before_unexpected_key);
    TEST("/add/create-hook-error-propagates",
         test_add_create_hook_error_propagates);
    TEST("/add/id-taken-by-create-hook-fails",
         test_add_id_taken_by_create_hook_fails);
    TEST("/add-opts/takes-type-and-id-from-table",
         test_add_opts_takes_type_and_id_from_table);
    TEST("/add-opts/without-type-or-id-fails",
         test_add_opts_without_type_or_id_fails);
    TEST("/del/destroys-instance", test_del_destroys_instance);
    TEST("/del/unknown-id-fails", test_del_unknown_id_fails);
    TEST("/del/accepts-path", test_del_accepts_path);
    TEST("/del/refused-by-can-delete-keeps-object",
         test_del_refused_by_can_delete_keeps_object);
    TEST("/del/refused-without-error-gets-default-sentence",
         test_del_refused_without_error_gets_default_sentence);
    TEST("/del/refused-while-object-has-users",
         test_del_refused_while_object_has_users);
    TEST("/del/of-registered-instance-fails",
         test_del_of_registered_instance_fails);
    TEST("/users/added-twice-needs-two-removes",
         test_user_added_twice_needs_two_removes);
    TEST("/users/remove-of-absent-user-aborts",
         test_user_remove_of_absent_user_aborts);
    TEST("/instance/exposes-properties",
         test_register_instance_exposes_properties);
    TEST("/instance/checks-type-and-id",
         test_register_instance_checks_type_and_id);
    TEST("/instance/unregister-removes-without-hooks",
         test_unregister_removes_without_hooks);
    TEST("/path/resolve-accepts-qom-paths", test_resolve_accepts_qom_paths);
    TEST("/path/resolve-of-missing-path-fails",
         test_resolve_of_missing_path_fails);
    TEST("/path/find-takes-ids-only", test_find_takes_ids_only);
    TEST("/path/find-instance-checks-type", test_find_instance_checks_type);
    TEST("/list/ids-and-types-sorted", test_list_gives_ids_and_types_sorted);
    TEST("/list/property-list-describes-each-property",
         test_property_list_describes_each_property);
    TEST("/list/type-list-gives-types-and-creation-props",
         test_type_list_gives_types_and_creation_props);
    TEST("/qom-list/of-root-shows-objects-container",
         test_qom_list_of_root_shows_objects_container);
    TEST("/qom-list/of-objects-shows-children",
         test_qom_list_of_objects_shows_children);
    TEST("/qom-list/of-object-shows-properties",
         test_qom_list_of_object_shows_properties);
    TEST("/qom-list/of-missing-path-fails",
         test_qom_list_of_missing_path_fails);
    TEST("/instance/unregister-of-user-created-object-aborts",
         test_unregister_of_user_created_object_aborts);
    TEST("/registry/cleanup-destroys-newest-first",
         test_cleanup_destroys_newest_first);
    TEST("/registry/cleanup-keeps-types", test_cleanup_keeps_types);
    TEST("/registry/use-from-other-thread-aborts",
         test_use_from_other_thread_aborts);
    TEST("/registry/set-owner-thread-moves-ownership",
         test_set_owner_thread_moves_ownership);
    return g_test_run();
}
