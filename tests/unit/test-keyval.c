/* Tests for util/keyval.c: KEY=VALUE,... and JSON options into dotted keys. */
#include <string.h>

#include <jansson.h>

#include "dataplane/keyval.h"

static GHashTable *parse_ok(const char *s, const char *implied)
{
    Error *err = NULL;
    GHashTable *d = keyval_parse(s, implied, NULL, &err);

    if (err) {
        g_printerr("unexpected error for '%s': %s\n", s, error_get_pretty(err));
    }
    g_assert_null(err);
    g_assert_nonnull(d);
    return d;
}

/* Parses s expecting failure; returns the message (caller frees). */
static char *parse_err(const char *s, const char *implied)
{
    Error *err = NULL;
    GHashTable *d = keyval_parse(s, implied, NULL, &err);
    char *msg;

    g_assert_null(d);
    g_assert_nonnull(err);
    msg = g_strdup(error_get_pretty(err));
    error_free(err);
    return msg;
}

static void assert_err_contains(const char *s, const char *implied,
                                const char *needle)
{
    char *msg = parse_err(s, implied);

    if (!strstr(msg, needle)) {
        g_printerr("'%s': message '%s' lacks '%s'\n", s, msg, needle);
    }
    g_assert_nonnull(strstr(msg, needle));
    g_free(msg);
}

static void test_keyval_empty_string_gives_empty_table(void)
{
    GHashTable *d = parse_ok("", NULL);

    g_assert_cmpuint(g_hash_table_size(d), ==, 0);
    g_hash_table_destroy(d);
}

static void test_keyval_pairs_are_stored(void)
{
    GHashTable *d = parse_ok("a=1,b-c=two,d_e=", NULL);

    g_assert_cmpuint(g_hash_table_size(d), ==, 3);
    g_assert_cmpstr(g_hash_table_lookup(d, "a"), ==, "1");
    g_assert_cmpstr(g_hash_table_lookup(d, "b-c"), ==, "two");
    g_assert_cmpstr(g_hash_table_lookup(d, "d_e"), ==, "");
    g_hash_table_destroy(d);
}

static void test_keyval_double_comma_escapes_comma(void)
{
    GHashTable *d = parse_ok("path=/a,,b,,,,c,x=y", NULL);

    g_assert_cmpstr(g_hash_table_lookup(d, "path"), ==, "/a,b,,c");
    g_assert_cmpstr(g_hash_table_lookup(d, "x"), ==, "y");
    g_hash_table_destroy(d);
}

static void test_keyval_value_may_contain_equals(void)
{
    GHashTable *d = parse_ok("description=a=b", NULL);

    g_assert_cmpstr(g_hash_table_lookup(d, "description"), ==, "a=b");
    g_hash_table_destroy(d);
}

static void test_keyval_trailing_comma_is_accepted(void)
{
    GHashTable *d = parse_ok("a=1,", NULL);

    g_assert_cmpuint(g_hash_table_size(d), ==, 1);
    g_hash_table_destroy(d);
}

static void test_keyval_dotted_keys_are_kept_flat(void)
{
    GHashTable *d = parse_ok("addr.type=unix,addr.path=/tmp/s", NULL);

    g_assert_cmpstr(g_hash_table_lookup(d, "addr.type"), ==, "unix");
    g_assert_cmpstr(g_hash_table_lookup(d, "addr.path"), ==, "/tmp/s");
    g_hash_table_destroy(d);
}

static void test_keyval_implied_key_takes_first_bare_value(void)
{
    GHashTable *d = parse_ok("iothread,id=io0", "qom-type");

    g_assert_cmpstr(g_hash_table_lookup(d, "qom-type"), ==, "iothread");
    g_assert_cmpstr(g_hash_table_lookup(d, "id"), ==, "io0");
    g_hash_table_destroy(d);
}

static void test_keyval_implied_key_may_be_given_explicitly(void)
{
    GHashTable *d = parse_ok("driver=file,filename=x", "driver");

    g_assert_cmpstr(g_hash_table_lookup(d, "driver"), ==, "file");
    g_hash_table_destroy(d);
}

static void test_keyval_implied_key_only_applies_first(void)
{
    assert_err_contains("id=x,iothread", "qom-type",
                        "Expected '=' after parameter 'iothread'");
}

static void test_keyval_bare_word_without_implied_key_fails(void)
{
    assert_err_contains("unix", NULL, "Expected '=' after parameter 'unix'");
}

static void test_keyval_repeated_key_last_wins(void)
{
    GHashTable *d = parse_ok("a=1,a=2", NULL);

    g_assert_cmpstr(g_hash_table_lookup(d, "a"), ==, "2");
    g_hash_table_destroy(d);
}

static void test_keyval_invalid_key_character_is_named(void)
{
    assert_err_contains("a b=1", NULL, "Invalid parameter 'a b'");
    assert_err_contains("=1", NULL, "Invalid parameter ''");
    assert_err_contains("a..b=1", NULL, "Invalid parameter 'a..b'");
    assert_err_contains("1a=1", NULL, "Invalid parameter '1a'");
}

static void test_keyval_empty_element_fails(void)
{
    assert_err_contains(",a=1", NULL, "Invalid parameter ''");
}

static void test_keyval_too_long_fragment_fails(void)
{
    char *key = g_strnfill(200, 'k');
    char *s = g_strdup_printf("%s=1", key);

    assert_err_contains(s, NULL, "is too long");
    g_free(s);
    g_free(key);
}

static void test_keyval_leaf_and_parent_is_inconsistent(void)
{
    assert_err_contains("a=1,a.b=2", NULL,
                        "Parameters 'a.*' used inconsistently");
    assert_err_contains("a.b.c=1,a.b=2", NULL,
                        "Parameters 'a.b.*' used inconsistently");
}

static void test_keyval_list_indexes_are_accepted(void)
{
    GHashTable *d = parse_ok("s.0.host=a,s.1.host=b", NULL);

    g_assert_cmpstr(g_hash_table_lookup(d, "s.1.host"), ==, "b");
    g_hash_table_destroy(d);
}

static void test_keyval_list_gap_is_reported(void)
{
    assert_err_contains("s.0=a,s.2=b", NULL, "Parameter 's.1' missing");
}

static void test_keyval_list_mixed_with_names_is_inconsistent(void)
{
    assert_err_contains("s.0=a,s.x=b", NULL,
                        "Parameters 's.*' used inconsistently");
}

static void test_keyval_help_is_reported_when_asked(void)
{
    bool help = false;
    GHashTable *d = keyval_parse("help", "qom-type", &help, &error_abort);

    g_assert_true(help);
    g_hash_table_destroy(d);
    help = true;
    d = keyval_parse("iothread,id=x", "qom-type", &help, &error_abort);
    g_assert_false(help);
    g_hash_table_destroy(d);
}

static void test_keyval_help_is_an_error_when_not_asked(void)
{
    assert_err_contains("help", NULL, "Help is not available");
}

static void test_keyval_json_is_flattened_to_dotted_keys(void)
{
    GHashTable *d = keyval_parse_option(
        "{\"driver\":\"file\",\"node-name\":\"n0\",\"cache\":{\"direct\":true},"
        "\"size\":1073741824,\"ro\":false,\"list\":[\"x\",{\"y\":1}]}",
        "driver", &error_abort);

    g_assert_cmpstr(g_hash_table_lookup(d, "driver"), ==, "file");
    g_assert_cmpstr(g_hash_table_lookup(d, "node-name"), ==, "n0");
    g_assert_cmpstr(g_hash_table_lookup(d, "cache.direct"), ==, "on");
    g_assert_cmpstr(g_hash_table_lookup(d, "size"), ==, "1073741824");
    g_assert_cmpstr(g_hash_table_lookup(d, "ro"), ==, "off");
    g_assert_cmpstr(g_hash_table_lookup(d, "list.0"), ==, "x");
    g_assert_cmpstr(g_hash_table_lookup(d, "list.1.y"), ==, "1");
    g_assert_cmpuint(g_hash_table_size(d), ==, 7);
    g_hash_table_destroy(d);
}

static void test_keyval_json_syntax_error_is_reported(void)
{
    Error *err = NULL;

    g_assert_null(keyval_parse_option(" {\"a\":", NULL, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "JSON parse error"));
    error_free(err);
}

static void test_keyval_json_null_is_refused(void)
{
    Error *err = NULL;

    g_assert_null(keyval_parse_json("{\"backing\":null}", &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "'backing'"));
    error_free(err);
}

static void test_keyval_json_non_object_is_refused(void)
{
    Error *err = NULL;

    g_assert_null(keyval_parse_json("[1,2]", &err));
    g_assert_nonnull(err);
    error_free(err);
}

static void test_keyval_json_dotted_member_name_is_refused(void)
{
    Error *err = NULL;

    g_assert_null(keyval_parse_json("{\"a.b\":1}", &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "Invalid parameter 'a.b'"));
    error_free(err);
}

static void test_keyval_add_json_puts_prefix(void)
{
    GHashTable *d = keyval_new();
    json_t *obj = json_pack("{s:s}", "path", "/x");

    g_assert_true(keyval_add_json(d, obj, "addr", &error_abort));
    g_assert_cmpstr(g_hash_table_lookup(d, "addr.path"), ==, "/x");
    json_decref(obj);
    g_hash_table_destroy(d);
}

static void test_keyval_take_prefix_moves_subtree(void)
{
    GHashTable *d = parse_ok("addr.type=unix,addr.path=/s,addrx=1", NULL);
    GHashTable *sub = keyval_take_prefix(d, "addr");

    g_assert_cmpuint(g_hash_table_size(sub), ==, 2);
    g_assert_cmpstr(g_hash_table_lookup(sub, "path"), ==, "/s");
    g_assert_cmpuint(g_hash_table_size(d), ==, 1);
    g_assert_true(g_hash_table_contains(d, "addrx"));
    g_hash_table_destroy(sub);
    g_hash_table_destroy(d);
}

static void test_keyval_take_removes_key(void)
{
    GHashTable *d = parse_ok("a=1", NULL);
    char *v = keyval_take(d, "a");

    g_assert_cmpstr(v, ==, "1");
    g_assert_null(keyval_take(d, "a"));
    g_free(v);
    g_hash_table_destroy(d);
}

static void test_keyval_check_empty_names_leftover(void)
{
    GHashTable *d = parse_ok("zz=1,bogus=2", NULL);
    Error *err = NULL;

    g_assert_false(keyval_check_empty(d, "--export", &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "--export: Invalid parameter 'bogus'");
    error_free(err);
    g_hash_table_remove_all(d);
    g_assert_true(keyval_check_empty(d, "--export", &error_abort));
    g_hash_table_destroy(d);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/keyval/empty-string-gives-empty-table",
                    test_keyval_empty_string_gives_empty_table);
    g_test_add_func("/keyval/pairs-are-stored", test_keyval_pairs_are_stored);
    g_test_add_func("/keyval/double-comma-escapes-comma",
                    test_keyval_double_comma_escapes_comma);
    g_test_add_func("/keyval/value-may-contain-equals",
                    test_keyval_value_may_contain_equals);
    g_test_add_func("/keyval/trailing-comma-is-accepted",
                    test_keyval_trailing_comma_is_accepted);
    g_test_add_func("/keyval/dotted-keys-are-kept-flat",
                    test_keyval_dotted_keys_are_kept_flat);
    g_test_add_func("/keyval/implied-key-takes-first-bare-value",
                    test_keyval_implied_key_takes_first_bare_value);
    g_test_add_func("/keyval/implied-key-may-be-given-explicitly",
                    test_keyval_implied_key_may_be_given_explicitly);
    g_test_add_func("/keyval/implied-key-only-applies-first",
                    test_keyval_implied_key_only_applies_first);
    g_test_add_func("/keyval/bare-word-without-implied-key-fails",
                    test_keyval_bare_word_without_implied_key_fails);
    g_test_add_func("/keyval/repeated-key-last-wins",
                    test_keyval_repeated_key_last_wins);
    g_test_add_func("/keyval/invalid-key-character-is-named",
                    test_keyval_invalid_key_character_is_named);
    g_test_add_func("/keyval/empty-element-fails",
                    test_keyval_empty_element_fails);
    g_test_add_func("/keyval/too-long-fragment-fails",
                    test_keyval_too_long_fragment_fails);
    g_test_add_func("/keyval/leaf-and-parent-is-inconsistent",
                    test_keyval_leaf_and_parent_is_inconsistent);
    g_test_add_func("/keyval/list-indexes-are-accepted",
                    test_keyval_list_indexes_are_accepted);
    g_test_add_func("/keyval/list-gap-is-reported",
                    test_keyval_list_gap_is_reported);
    g_test_add_func("/keyval/list-mixed-with-names-is-inconsistent",
                    test_keyval_list_mixed_with_names_is_inconsistent);
    g_test_add_func("/keyval/help-is-reported-when-asked",
                    test_keyval_help_is_reported_when_asked);
    g_test_add_func("/keyval/help-is-an-error-when-not-asked",
                    test_keyval_help_is_an_error_when_not_asked);
    g_test_add_func("/keyval/json-is-flattened-to-dotted-keys",
                    test_keyval_json_is_flattened_to_dotted_keys);
    g_test_add_func("/keyval/json-syntax-error-is-reported",
                    test_keyval_json_syntax_error_is_reported);
    g_test_add_func("/keyval/json-null-is-refused",
                    test_keyval_json_null_is_refused);
    g_test_add_func("/keyval/json-non-object-is-refused",
                    test_keyval_json_non_object_is_refused);
    g_test_add_func("/keyval/json-dotted-member-name-is-refused",
                    test_keyval_json_dotted_member_name_is_refused);
    g_test_add_func("/keyval/add-json-puts-prefix",
                    test_keyval_add_json_puts_prefix);
    g_test_add_func("/keyval/take-prefix-moves-subtree",
                    test_keyval_take_prefix_moves_subtree);
    g_test_add_func("/keyval/take-removes-key", test_keyval_take_removes_key);
    g_test_add_func("/keyval/check-empty-names-leftover",
                    test_keyval_check_empty_names_leftover);
    return g_test_run();
}
