/*
 * Object properties and types: get, set (typed and from strings), value
 * parsing and formatting, type registration, help text.  Types and fixture:
 * object-test-types.h.
 */
#include <errno.h>
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/object-test-types.h"

/* ---- property get ------------------------------------------------------ */

static void test_get_returns_creation_and_hook_values(Fixture *f,
                                                      gconstpointer d)
{
    Object *obj = add_widget("w0", "size", "12", "name", "disk", "verbose",
                             "on", "poll-max-ns", "100", NULL);
    Widget *w = object_get_instance(obj);
    ObjectValue v;
    bool b = false;
    char *s;

    g_assert_cmpint(prop_get_int(obj, "size"), ==, 12);
    s = object_property_get_str(obj, "name", &error_abort);
    g_assert_cmpstr(s, ==, "disk");
    g_free(s);
    g_assert_true(object_property_get_bool(obj, "verbose", &b, &error_abort));
    g_assert_true(b);
    g_assert_cmpint(prop_get_int(obj, "poll-max-ns"), ==, 100);
    w->counter = 77;
    g_assert_cmpint(prop_get_int(obj, "counter"), ==, 77);

    g_assert_true(object_property_get(obj, "type", &v, &error_abort));
    g_assert_cmpint(v.type, ==, OBJECT_VALUE_STR);
    g_assert_cmpstr(v.s, ==, "test-widget");
    object_value_clear(&v);
}

static void test_get_unknown_property_fails(Fixture *f, gconstpointer d)
{
    Object *obj = add_widget("w0", "size", "1", NULL);
    ObjectValue v;
    Error *err = NULL;

    g_assert_false(object_property_get(obj, "bar", &v, &err));
    assert_error(err, "Property 'test-widget.bar' not found");
}

static void test_get_of_unset_optional_property_fails(Fixture *f,
                                                      gconstpointer d)
{
    Object *obj = add_widget("w0", "size", "1", NULL);
    Error *err = NULL;

    g_assert_null(object_property_get_str(obj, "label", &err));
    assert_error(err, "Property 'test-widget.label' is not set");
}

static void test_typed_get_of_other_type_fails(Fixture *f, gconstpointer d)
{
    Object *obj = add_widget("w0", "size", "1", NULL);
    Error *err = NULL;
    int64_t i;
    bool b;

    g_assert_false(object_property_get_int(obj, "name", &i, &err));
    assert_error(err, "Invalid parameter type for 'name', expected: integer");
    err = NULL;
    g_assert_false(object_property_get_bool(obj, "size", &b, &err));
    assert_error(err, "Invalid parameter type for 'size', expected: boolean");
    err = NULL;
    g_assert_null(object_property_get_str(obj, "verbose", &err));
    assert_error(err, "Invalid parameter type for 'verbose', expected: string");
}

/* ---- property set ------------------------------------------------------ */

static void test_set_calls_hook_and_get_sees_new_value(Fixture *f,
                                                       gconstpointer d)
{
    Object *obj = add_widget("w0", "size", "1", NULL);
    Widget *w = object_get_instance(obj);
    bool b = false;

    g_assert_true(object_property_set_int(obj, "size", 500, &error_abort));
    g_assert_cmpint(w->size, ==, 500);
    g_assert_cmpint(prop_get_int(obj, "size"), ==, 500);
    g_assert_true(object_property_set_bool(obj, "verbose", true, &error_abort));
    g_assert_true(object_property_get_bool(obj, "verbose", &b, &error_abort));
    g_assert_true(b);
    g_assert_true(
        object_property_set_int(obj, "poll-max-ns", 4096, &error_abort));
    g_assert_cmpint(w->poll_max_ns, ==, 4096);
    g_assert_true(object_property_set_str(obj, "label", "hi", &error_abort));
    g_assert_cmpint(w->set_calls, ==, 4);
}

static void test_set_str_property_keeps_a_copy(Fixture *f, gconstpointer d)
{
    Object *obj = add_widget("w0", "size", "1", "label", "one", NULL);
    char buf[8] = "two";
    char *s;

    g_assert_true(object_property_set_str(obj, "label", buf, &error_abort));
    strcpy(buf, "xxx");
    s = object_property_get_str(obj, "label", &error_abort);
    g_assert_cmpstr(s, ==, "two");
    g_free(s);
}

static void test_set_read_only_property_fails(Fixture *f, gconstpointer d)
{
    Object *obj = add_widget("w0", "size", "1", "name", "disk", NULL);
    Error *err = NULL;
    char *s;

    g_assert_false(object_property_set_str(obj, "name", "other", &err));
    assert_error(err, "Property 'test-widget.name' is not writable");
    err = NULL;
    g_assert_false(object_property_set_int(obj, "counter", 1, &err));
    assert_error(err, "Property 'test-widget.counter' is not writable");
    err = NULL;
    g_assert_false(object_property_set_str(obj, "type", "x", &err));
    assert_error(err, "Property 'test-widget.type' is not writable");
    err = NULL;
    g_assert_false(object_property_parse(obj, "name", "other", &err));
    assert_error(err, "Property 'test-widget.name' is not writable");
    s = object_property_get_str(obj, "name", &error_abort);
    g_assert_cmpstr(s, ==, "disk");
    g_free(s);
}

static void test_set_unknown_property_fails(Fixture *f, gconstpointer d)
{
    Object *obj = add_widget("w0", "size", "1", NULL);
    Error *err = NULL;

    g_assert_false(object_property_set_int(obj, "bar", 1, &err));
    assert_error(err, "Property 'test-widget.bar' not found");
    err = NULL;
    g_assert_false(object_property_parse(obj, "bar", "1", &err));
    assert_error(err, "Property 'test-widget.bar' not found");
}

static void test_set_wrong_type_fails(Fixture *f, gconstpointer d)
{
    Object *obj = add_widget("w0", "size", "1", NULL);
    Widget *w = object_get_instance(obj);
    Error *err = NULL;

    g_assert_false(object_property_set_str(obj, "size", "5", &err));
    assert_error(err, "Invalid parameter type for 'size', expected: integer");
    err = NULL;
    g_assert_false(object_property_set_int(obj, "verbose", 1, &err));
    assert_error(err,
                 "Invalid parameter type for 'verbose', expected: boolean");
    err = NULL;
    g_assert_false(object_property_set_bool(obj, "label", true, &err));
    assert_error(err, "Invalid parameter type for 'label', expected: string");
    err = NULL;
    g_assert_false(object_property_set_str(obj, "label", NULL, &err));
    assert_error(err, "Invalid parameter type for 'label', expected: string");
    g_assert_cmpint(w->set_calls, ==, 0);
}

static void test_set_out_of_range_fails_without_calling_hook(Fixture *f,
                                                             gconstpointer d)
{
    Object *obj = add_widget("w0", "size", "10", NULL);
    Widget *w = object_get_instance(obj);
    Error *err = NULL;

    g_assert_false(object_property_set_int(obj, "size", 0, &err));
    assert_error(err, "size value must be in range [1, 1000]");
    err = NULL;
    g_assert_false(object_property_set_int(obj, "poll-max-ns", -5, &err));
    assert_error(err,
                 "poll-max-ns value must be in range [0, 9223372036854775807]");
    g_assert_cmpint(w->set_calls, ==, 0);
    g_assert_cmpint(prop_get_int(obj, "size"), ==, 10);
}

static void test_set_refused_by_hook_keeps_old_value(Fixture *f,
                                                     gconstpointer d)
{
    Object *obj = add_widget("w0", "size", "10", NULL);
    Error *err = NULL;

    g_assert_false(object_property_set_int(obj, "size", 13, &err));
    assert_error(err, "size 13 is unlucky");
    g_assert_cmpint(prop_get_int(obj, "size"), ==, 10);
}

static void test_parse_sets_from_string_form(Fixture *f, gconstpointer d)
{
    Object *obj = add_widget("w0", "size", "10", NULL);
    Error *err = NULL;
    bool b = false;

    g_assert_true(object_property_parse(obj, "size", "0x20", &error_abort));
    g_assert_cmpint(prop_get_int(obj, "size"), ==, 32);
    g_assert_true(object_property_parse(obj, "verbose", "on", &error_abort));
    g_assert_true(object_property_get_bool(obj, "verbose", &b, &error_abort));
    g_assert_true(b);

    g_assert_false(object_property_parse(obj, "size", "lots", &err));
    assert_error(err, "Parameter 'size' expects integer");
    err = NULL;
    g_assert_false(object_property_parse(obj, "size", "2000", &err));
    assert_error(err, "size value must be in range [1, 1000]");
    err = NULL;
    g_assert_false(object_property_parse(obj, "verbose", "maybe", &err));
    assert_error(err, "Parameter 'verbose' expects 'on' or 'off'");
    g_assert_cmpint(prop_get_int(obj, "size"), ==, 32);
}

/* ---- values ------------------------------------------------------------ */

static void test_value_parse_int_accepts_decimal_hex_and_limits(Fixture *f,
                                                                gconstpointer d)
{
    static const struct {
        const char *in;
        int64_t out;
    } cases[] = {
        {"0", 0},
        {"7", 7},
        {"+7", 7},
        {"-7", -7},
        {"0x10", 16},
        {"0XfF", 255},
        {"-0x10", -16},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
        {"0x7fffffffffffffff", INT64_MAX},
        {"-0x8000000000000000", INT64_MIN},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        ObjectValue v;

        g_assert_true(object_value_parse(OBJECT_VALUE_INT, "n", cases[i].in, &v,
                                         &error_abort));
        g_assert_cmpint(v.type, ==, OBJECT_VALUE_INT);
        g_assert_cmpint(v.i, ==, cases[i].out);
    }
}

/*
 * Reference for the int syntax: by definition (dataplane/input.h) C's
 * strtoll() with base 0, the whole text consumed (the test runs in the C
 * locale).
 */
static bool reference_parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 0);
    if (end == s || *end || errno) {
        return false;
    }
    *out = v;
    return true;
}

static void
test_value_parse_int_matches_reference_on_random_input(Fixture *f,
                                                       gconstpointer d)
{
    static const char alphabet[] = "0123456789000999+-xXaF g";
    GRand *rand = g_rand_new_with_seed(20261128);
    char buf[32];
    int n, accepted = 0;

    for (n = 0; n < 20000; n++) {
        int len = g_rand_int_range(rand, 0, 24);
        int64_t want = 0;
        ObjectValue v;
        bool ok;
        int i;

        for (i = 0; i < len; i++) {
            buf[i] = alphabet[g_rand_int_range(rand, 0, sizeof(alphabet) - 1)];
        }
        buf[len] = '\0';
        /* Often start like a number, so that both paths get exercised. */
        if (len > 2 && n % 3 == 0) {
            buf[0] = "+-1"[(n / 3) % 3];
            buf[1] = '0' + g_rand_int_range(rand, 1, 10);
        }
        if (len > 3 && n % 5 == 0) {
            memcpy(buf, "0x", 2);
        }
        ok = object_value_parse(OBJECT_VALUE_INT, "n", buf, &v, NULL);
        g_assert_cmpint(ok, ==, reference_parse_int(buf, &want));
        if (ok) {
            g_assert_cmpint(v.i, ==, want);
            accepted++;
        }
    }
    /* The generator must produce valid numbers too, or this proves little. */
    g_assert_cmpint(accepted, >, 1000);
    g_rand_free(rand);
}

static void test_value_parse_bool_accepts_keyval_spellings(Fixture *f,
                                                           gconstpointer d)
{
    static const char *const yes[] = {"on", "yes", "true", "y"};
    static const char *const no[] = {"off", "no", "false", "n"};
    ObjectValue v;
    Error *err = NULL;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(yes); i++) {
        g_assert_true(object_value_parse(OBJECT_VALUE_BOOL, "b", yes[i], &v,
                                         &error_abort));
        g_assert_true(v.b);
        g_assert_true(object_value_parse(OBJECT_VALUE_BOOL, "b", no[i], &v,
                                         &error_abort));
        g_assert_false(v.b);
    }
    g_assert_false(
        object_value_parse(OBJECT_VALUE_BOOL, "b", "True", &v, &err));
    assert_error(err, "Parameter 'b' expects 'on' or 'off'");
}

static void test_value_to_string_round_trips(Fixture *f, gconstpointer d)
{
    ObjectValue i = {.type = OBJECT_VALUE_INT, .i = INT64_MIN};
    ObjectValue b = {.type = OBJECT_VALUE_BOOL, .b = true};
    ObjectValue s = {.type = OBJECT_VALUE_STR, .s = "a,b"};
    ObjectValue back;
    char *text;

    text = object_value_to_string(&i);
    g_assert_cmpstr(text, ==, "-9223372036854775808");
    g_assert_true(
        object_value_parse(OBJECT_VALUE_INT, "i", text, &back, &error_abort));
    g_assert_cmpint(back.i, ==, INT64_MIN);
    g_free(text);
    text = object_value_to_string(&b);
    g_assert_cmpstr(text, ==, "true");
    g_free(text);
    text = object_value_to_string(&s);
    g_assert_cmpstr(text, ==, "a,b");
    g_free(text);
    g_assert_cmpstr(object_value_type_qom_name(OBJECT_VALUE_STR), ==, "string");
    g_assert_cmpstr(object_value_type_qom_name(OBJECT_VALUE_INT), ==, "int");
}

/* ---- types ------------------------------------------------------------- */

static void test_type_register_same_info_twice_is_noop(Fixture *f,
                                                       gconstpointer d)
{
    GPtrArray *all;

    object_type_register(&widget_type);
    all = object_type_list(false);
    g_assert_cmpuint(all->len, ==, 2);
    g_ptr_array_unref(all);
}

static void *impostor_create(const char *id, const ObjectProps *props,
                             Error **errp)
{
    return g_new0(Widget, 1);
}

static const ObjectTypeInfo widget_impostor = {
    .name = "test-widget",
    .create = impostor_create,
    .destroy = g_free,
};

static void test_type_register_taken_name_aborts(Fixture *f, gconstpointer d)
{
    if (g_test_subprocess()) {
        object_type_register(&widget_impostor);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*'test-widget' registered twice*");
}

static const ObjectPropertyInfo bad_range_props[] = {
    {.name = "n",
     .type = OBJECT_VALUE_INT,
     .flags = OBJECT_PROP_CREATE | OBJECT_PROP_RANGE,
     .min = 5,
     .max = 1},
    {NULL},
};

static const ObjectPropertyInfo bad_default_props[] = {
    {.name = "n",
     .type = OBJECT_VALUE_INT,
     .flags = OBJECT_PROP_CREATE | OBJECT_PROP_RANGE,
     .min = 0,
     .max = 10,
     .default_value = "11"},
    {NULL},
};

static const ObjectPropertyInfo reserved_props[] = {
    {.name = "type", .type = OBJECT_VALUE_STR, .flags = OBJECT_PROP_CREATE},
    {NULL},
};

static const ObjectPropertyInfo getless_props[] = {
    {.name = "n", .type = OBJECT_VALUE_INT},
    {NULL},
};

static const ObjectTypeInfo bad_types[] = {
    {.name = "bad-range", .props = bad_range_props},
    {.name = "bad-default", .props = bad_default_props},
    {.name = "bad-reserved", .props = reserved_props},
    {.name = "bad-getless", .props = getless_props},
    {.name = "bad-no-destroy", .create = impostor_create},
};

static const char *const bad_type_messages[] = {
    "*bad range*",          "*default: n value must be in range [0, 10]*",
    "*'type' is reserved*", "*needs a get hook*",
    "*no destroy hook*",
};

static void test_type_register_malformed_table_aborts(Fixture *f,
                                                      gconstpointer d)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad_types); i++) {
        if (g_test_subprocess()) {
            if (g_strcmp0(g_getenv("BAD_TYPE"), bad_types[i].name) == 0) {
                object_type_register(&bad_types[i]);
                return;
            }
            continue;
        }
        g_setenv("BAD_TYPE", bad_types[i].name, TRUE);
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDIN);
        g_test_trap_assert_failed();
        g_test_trap_assert_stderr(bad_type_messages[i]);
    }
    g_unsetenv("BAD_TYPE");
}

static void test_help_lists_creatable_types(Fixture *f, gconstpointer d)
{
    char *help = object_type_help_list();

    g_assert_cmpstr(help, ==,
                    "List of user creatable objects:\n"
                    "  test-widget\n");
    g_free(help);
}

static void test_help_of_type_lists_creation_props_sorted(Fixture *f,
                                                          gconstpointer d)
{
    char *help = object_type_help("test-widget", &error_abort);

    g_assert_cmpstr(
        help, ==,
        "test-widget options:\n"
        "  label=<str>\n"
        "  name=<str>             - a name (default: anon)\n"
        "  poll-max-ns=<int>      - poll window (default: 32768)\n"
        "  size=<int>             - number of things\n"
        "  verbose=<bool>         - chatty or not (default: off)\n");
    g_free(help);
}

static void test_help_of_unknown_type_fails(Fixture *f, gconstpointer d)
{
    Error *err = NULL;

    g_assert_null(object_type_help("foo", &err));
    assert_error(err, "Invalid object type 'foo'");
}

static void *sloppy_create(const char *id, const ObjectProps *props,
                           Error **errp)
{
    object_props_get_int(props, "undeclared");
    return g_new0(Widget, 1);
}

static void *mistyped_create(const char *id, const ObjectProps *props,
                             Error **errp)
{
    object_props_get_str(props, "n");
    return g_new0(Widget, 1);
}

static const ObjectPropertyInfo one_int_props[] = {
    {.name = "n", .type = OBJECT_VALUE_INT, .flags = OBJECT_PROP_CREATE},
    {NULL},
};

static const ObjectTypeInfo sloppy_type = {
    .name = "test-sloppy",
    .props = one_int_props,
    .create = sloppy_create,
    .destroy = g_free,
};

static const ObjectTypeInfo mistyped_type = {
    .name = "test-mistyped",
    .props = one_int_props,
    .create = mistyped_create,
    .destroy = g_free,
};

static void test_create_hook_reading_undeclared_property_aborts(Fixture *f,
                                                                gconstpointer d)
{
    if (g_test_subprocess()) {
        object_type_register(&sloppy_type);
        object_add("test-sloppy", "s0", NULL, NULL);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr(
        "*'test-sloppy' has no creation property 'undeclared'*");
}

static void test_create_hook_reading_with_wrong_type_aborts(Fixture *f,
                                                            gconstpointer d)
{
    if (g_test_subprocess()) {
        object_type_register(&mistyped_type);
        object_add("test-mistyped", "s0", NULL, NULL);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*'test-mistyped.n' is not of type str*");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    TEST("/get/returns-creation-and-hook-values",
         test_get_returns_creation_and_hook_values);
    TEST("/get/unknown-property-fails", test_get_unknown_property_fails);
    TEST("/get/of-unset-optional-property-fails",
         test_get_of_unset_optional_property_fails);
    TEST("/get/typed-get-of-other-type-fails",
         test_typed_get_of_other_type_fails);
    TEST("/set/calls-hook-and-get-sees-new-value",
         test_set_calls_hook_and_get_sees_new_value);
    TEST("/set/str-property-keeps-a-copy", test_set_str_property_keeps_a_copy);
    TEST("/set/read-only-property-fails", test_set_read_only_property_fails);
    TEST("/set/unknown-property-fails", test_set_unknown_property_fails);
    TEST("/set/wrong-type-fails", test_set_wrong_type_fails);
    TEST("/set/out-of-range-fails-without-calling-hook",
         test_set_out_of_range_fails_without_calling_hook);
    TEST("/set/refused-by-hook-keeps-old-value",
         test_set_refused_by_hook_keeps_old_value);
    TEST("/set/parse-sets-from-string-form", test_parse_sets_from_string_form);
    TEST("/value/parse-int-accepts-decimal-hex-and-limits",
         test_value_parse_int_accepts_decimal_hex_and_limits);
    TEST("/value/parse-int-matches-reference-on-random-input",
         test_value_parse_int_matches_reference_on_random_input);
    TEST("/value/parse-bool-accepts-keyval-spellings",
         test_value_parse_bool_accepts_keyval_spellings);
    TEST("/value/to-string-round-trips", test_value_to_string_round_trips);
    TEST("/type/register-same-info-twice-is-noop",
         test_type_register_same_info_twice_is_noop);
    TEST("/type/register-taken-name-aborts",
         test_type_register_taken_name_aborts);
    TEST("/type/register-malformed-table-aborts",
         test_type_register_malformed_table_aborts);
    TEST("/type/create-hook-reading-undeclared-property-aborts",
         test_create_hook_reading_undeclared_property_aborts);
    TEST("/type/create-hook-reading-with-wrong-type-aborts",
         test_create_hook_reading_with_wrong_type_aborts);
    TEST("/help/lists-creatable-types", test_help_lists_creatable_types);
    TEST("/help/of-type-lists-creation-props-sorted",
         test_help_of_type_lists_creation_props_sorted);
    TEST("/help/of-unknown-type-fails", test_help_of_unknown_type_fails);
    return g_test_run();
}
