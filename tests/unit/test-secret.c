/* The "secret" object type: creation, formats, lookups, no read-back. */
#include <unistd.h>

#include "dataplane/main-loop.h"
#include "dataplane/object.h"
#include "dataplane/secret.h"

static GHashTable *props(const char *first, ...)
{
    GHashTable *t =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    const char *k = first;
    va_list ap;

    va_start(ap, first);
    while (k) {
        g_hash_table_insert(t, g_strdup(k), g_strdup(va_arg(ap, const char *)));
        k = va_arg(ap, const char *);
    }
    va_end(ap);
    return t;
}

/* object_add's error text for these properties (g_free it). */
static char *add_error(GHashTable *p)
{
    Error *err = NULL;
    char *msg;

    g_assert_null(object_add("secret", "bad", p, &err));
    g_assert_nonnull(err);
    msg = g_strdup(error_get_pretty(err));
    error_free(err);
    g_hash_table_unref(p);
    g_assert_null(object_find("bad"));
    return msg;
}

static void test_secret_data_raw_and_base64(void)
{
    g_autoptr(GHashTable) a = props("data", "letmein", NULL);
    /* "AQBk" decodes to 01 00 64: bytes with a NUL. */
    g_autoptr(GHashTable) b = props("data", "AQBk", "format", "base64", NULL);
    size_t len;
    char *v;

    g_assert_nonnull(object_add("secret", "s1", a, &error_abort));
    g_assert_nonnull(object_add("secret", "s2", b, &error_abort));
    v = secret_lookup("s1", &len, &error_abort);
    g_assert_cmpstr(v, ==, "letmein");
    g_assert_cmpuint(len, ==, 7);
    secret_free(v);
    v = secret_lookup("s2", &len, &error_abort);
    g_assert_cmpuint(len, ==, 3);
    g_assert_cmpint(memcmp(v, "\x01\x00\x64", 3), ==, 0);
    g_free(v);
    /* Back to base64, as librados takes a key. */
    v = secret_lookup_as_base64("s2", &error_abort);
    g_assert_cmpstr(v, ==, "AQBk");
    secret_free(v);
    v = secret_lookup_as_utf8("s1", &error_abort);
    g_assert_cmpstr(v, ==, "letmein");
    secret_free(v);
    g_assert_true(object_del("s1", &error_abort));
    g_assert_true(object_del("s2", &error_abort));
}

static void test_secret_from_file(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-secret-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "key", NULL);
    g_autoptr(GHashTable) p = NULL;
    char *v;

    g_assert_true(g_file_set_contents(path, "aGVsbG8=", -1, NULL));
    p = props("file", path, "format", "base64", NULL);
    g_assert_nonnull(object_add("secret", "sf", p, &error_abort));
    v = secret_lookup_as_utf8("sf", &error_abort);
    g_assert_cmpstr(v, ==, "hello");
    secret_free(v);
    g_assert_true(object_del("sf", &error_abort));
    unlink(path);
    rmdir(dir);
}

static void test_secret_bad_input_is_refused(void)
{
    g_autofree char *e1 = add_error(props("format", "raw", NULL));
    g_autofree char *e2 = add_error(props("data", "x", "file", "/y", NULL));
    g_autofree char *e3 =
        add_error(props("data", "a*b=", "format", "base64", NULL));
    g_autofree char *e4 =
        add_error(props("data", "abc", "format", "base64", NULL));
    g_autofree char *e5 = add_error(props("file", "/nonexistent/k", NULL));
    g_autofree char *e6 = add_error(props("data", "x", "format", "hex", NULL));
    g_autofree char *e7 = add_error(props("data", "x", "keyid", "k", NULL));

    g_assert_nonnull(strstr(e1, "'data' or 'file' is required"));
    g_assert_nonnull(strstr(e2, "mutually exclusive"));
    g_assert_nonnull(strstr(e3, "not valid base64"));
    g_assert_nonnull(strstr(e4, "not valid base64"));
    g_assert_nonnull(strstr(e5, "/nonexistent/k"));
    g_assert_nonnull(strstr(e6, "'format'"));
    g_assert_nonnull(strstr(e7, "'keyid'"));
}

static void test_secret_lookup_errors(void)
{
    g_autoptr(GHashTable) p = props("data", "AAA=", "format", "base64", NULL);
    Error *err = NULL;
    size_t len;

    g_assert_null(secret_lookup("nope", &len, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "No secret with id 'nope'"));
    g_clear_pointer(&err, error_free);
    g_assert_null(secret_lookup("main-loop", &len, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "not a secret"));
    g_clear_pointer(&err, error_free);
    /* Two NUL bytes are no text. */
    g_assert_nonnull(object_add("secret", "bin", p, &error_abort));
    g_assert_null(secret_lookup_as_utf8("bin", &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "not valid text"));
    g_clear_pointer(&err, error_free);
    g_assert_true(object_del("bin", &error_abort));
}

static void test_secret_is_not_read_back(void)
{
    g_autoptr(GHashTable) p = props("data", "hunter2", NULL);
    Object *obj = object_add("secret", "hidden", p, &error_abort);
    g_autofree char *v = object_property_get_str(obj, "data", &error_abort);

    g_assert_cmpstr(v, ==, "");
    g_assert_false(object_property_set_str(obj, "data", "x", NULL));
    g_assert_true(object_del("hidden", &error_abort));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    main_loop_init(&error_abort);
    g_test_add_func("/secret/data-raw-and-base64",
                    test_secret_data_raw_and_base64);
    g_test_add_func("/secret/from-file", test_secret_from_file);
    g_test_add_func("/secret/bad-input-is-refused",
                    test_secret_bad_input_is_refused);
    g_test_add_func("/secret/lookup-errors", test_secret_lookup_errors);
    g_test_add_func("/secret/is-not-read-back", test_secret_is_not_read_back);
    return g_test_run();
}
