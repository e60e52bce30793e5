/*
 * Authorization: QEMU's authz-list documents (parsing, matching) and the
 * authz-listfile object, whose file is re-read when it is rewritten
 * (inotify, from the main loop).
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/authz.h"
#include "dataplane/main-loop.h"
#include "dataplane/tls-creds.h"
#include "io/authz-int.h"

static char *dir;

/* ---- lists -------------------------------------------------------------- */

static void assert_parse_error(const char *json, const char *text)
{
    Error *err = NULL;

    g_assert_null(authz_list_parse(json, "acl", &err));
    if (!strstr(error_get_pretty(err), text)) {
        g_error("%s: '%s' lacks '%s'", json, error_get_pretty(err), text);
    }
    error_free(err);
}

static void test_list_errors_are_named(void)
{
    assert_parse_error("{", "acl: not JSON");
    assert_parse_error("[]", "expected a JSON object");
    assert_parse_error("{\"policy\": \"maybe\"}", "'policy' must be");
    assert_parse_error("{\"rulez\": []}", "member 'rulez' is unexpected");
    assert_parse_error("{\"rules\": {}}", "'rules' must be an array");
    assert_parse_error("{\"rules\": [1]}", "rule 1 is not an object");
    assert_parse_error("{\"rules\": [{\"match\": \"a\"}]}",
                       "rule 1 needs 'match' and 'policy'");
    assert_parse_error("{\"rules\": [{\"match\": \"a\", \"policy\": \"allow\"},"
                       " {\"match\": 1, \"policy\": \"allow\"}]}",
                       "rule 2: 'match' must be a string");
    assert_parse_error("{\"rules\": [{\"match\": \"a\", \"policy\": \"allow\","
                       " \"format\": \"regex\"}]}",
                       "rule 1: 'format' must be");
    assert_parse_error("{\"rules\": [{\"match\": \"a\", \"policy\": \"allow\","
                       " \"x\": 1}]}",
                       "rule 1: member 'x' is unexpected");
    assert_parse_error("{\"policy\": \"deny\", \"policy\": \"allow\"}",
                       "not JSON");
}

static void test_first_matching_rule_decides(void)
{
    AuthzList *l = authz_list_parse(
        "{\"policy\": \"deny\", \"rules\": ["
        " {\"match\": \"CN=bad\", \"policy\": \"deny\"},"
        " {\"match\": \"CN=*\", \"policy\": \"allow\", \"format\": \"glob\"},"
        " {\"match\": \"alice\", \"policy\": \"allow\", \"format\": \"exact\"}"
        "]}",
        "acl", &error_abort);
    size_t rule;

    g_assert_false(authz_list_allows(l, "CN=bad", &rule));
    g_assert_cmpuint(rule, ==, 1);
    g_assert_true(authz_list_allows(l, "CN=good", &rule));
    g_assert_cmpuint(rule, ==, 2);
    g_assert_true(authz_list_allows(l, "alice", &rule));
    g_assert_cmpuint(rule, ==, 3);
    /* An exact rule is no pattern, and the default is deny. */
    g_assert_false(authz_list_allows(l, "bob", &rule));
    g_assert_cmpuint(rule, ==, 0);
    authz_list_free(l);
    l = authz_list_parse("{\"policy\": \"allow\"}", "acl", &error_abort);
    g_assert_true(authz_list_allows(l, "anyone", &rule));
    authz_list_free(l);
}

/* ---- authz-listfile -------------------------------------------------------
 */

static char *acl_path(const char *name)
{
    return g_build_filename(dir, name, NULL);
}

static Authz *listfile(const char *id, const char *file, const char *refresh,
                       Error **errp)
{
    g_autoptr(GHashTable) props = g_hash_table_new(g_str_hash, g_str_equal);
    g_autofree char *path = acl_path(file);

    g_hash_table_insert(props, "filename", path);
    if (refresh) {
        g_hash_table_insert(props, "refresh", (gpointer)refresh);
    }
    if (!object_add("authz-listfile", id, props, errp)) {
        return NULL;
    }
    return authz_find(id, NULL, &error_abort);
}

static void put(const char *file, const char *text)
{
    g_autofree char *path = acl_path(file);

    g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

/* Truncates and writes in place (inotify: IN_CLOSE_WRITE), unlike
 * put(), which renames a new file into place (IN_MOVED_TO). */
static void put_in_place(const char *file, const char *text)
{
    g_autofree char *path = acl_path(file);
    FILE *f = fopen(path, "w");

    g_assert_nonnull(f);
    g_assert_cmpint(fputs(text, f), >=, 0);
    g_assert_cmpint(fclose(f), ==, 0);
}

static void test_listfile_bad_file_is_named(void)
{
    Error *err = NULL;

    g_assert_null(listfile("a", "nosuch.json", NULL, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "nosuch.json"));
    g_clear_pointer(&err, error_free);
    put("bad.json", "{\"rules\": 7}");
    g_assert_null(listfile("a", "bad.json", NULL, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "'rules' must be"));
    g_clear_pointer(&err, error_free);
    /* A directory is no file. */
    g_assert_null(listfile("a", ".", NULL, &err));
    g_clear_pointer(&err, error_free);
}

static void test_listfile_checks_identities(void)
{
    Authz *a;
    Error *err = NULL;

    put("acl.json", "{\"rules\": [{\"match\": \"CN=client1\", \"policy\": "
                    "\"allow\"}, {\"match\": \"CN=evil*\", \"policy\": "
                    "\"deny\", \"format\": \"glob\"}]}");
    a = listfile("acl", "acl.json", "off", &error_abort);
    g_assert_true(authz_is_allowed(a, "CN=client1", &error_abort));
    g_assert_false(authz_is_allowed(a, "CN=evil2", &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Identity 'CN=evil2' is denied by 'acl' (rule 2)");
    g_clear_pointer(&err, error_free);
    g_assert_false(authz_is_allowed(a, "CN=other", &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Identity 'CN=other' is denied by 'acl' (its policy)");
    g_clear_pointer(&err, error_free);
    g_assert_false(authz_is_allowed(a, NULL, &err));
    g_clear_pointer(&err, error_free);
}

/* Runs the main loop until a's answer for identity is want (bounded). */
static void wait_answer(Authz *a, const char *identity, bool want)
{
    int i;

    /* Not blocking: a missed event must fail the test, not hang it. */
    for (i = 0; i < 10000 && authz_is_allowed(a, identity, NULL) != want; i++) {
        if (!main_loop_wait(false)) {
            g_usleep(1000);
        }
    }
    g_assert_cmpint(authz_is_allowed(a, identity, NULL), ==, want);
}

static void test_listfile_refresh_follows_rewrites(void)
{
    g_autofree char *path = acl_path("live.json");
    g_autofree char *tmp = acl_path("live.json.new");
    Authz *live, *fixed;

    put("live.json", "{\"policy\": \"deny\"}");
    live = listfile("live", "live.json", NULL, &error_abort); /* default on */
    fixed = listfile("fixed", "live.json", "off", &error_abort);
    g_assert_false(authz_is_allowed(live, "alice", NULL));
    /* Rewritten in place. */
    put_in_place("live.json", "{\"policy\": \"allow\"}");
    wait_answer(live, "alice", true);
    /* The same inotify event reached both: refresh=off kept its list. */
    g_assert_false(authz_is_allowed(fixed, "alice", NULL));
    /* Renamed into place, as editors and configuration tools do. */
    g_assert_true(g_file_set_contents(
        tmp, "{\"rules\": [{\"match\": \"bob\", \"policy\": \"allow\"}]}", -1,
        NULL));
    g_assert_cmpint(g_rename(tmp, path), ==, 0);
    wait_answer(live, "alice", false);
    g_assert_true(authz_is_allowed(live, "bob", NULL));
    /* A broken rewrite denies everyone until it is fixed. */
    put_in_place("live.json", "{\"rules\": [");
    wait_answer(live, "bob", false);
    put("live.json", "{\"policy\": \"allow\"}");
    wait_answer(live, "bob", true);
}

static void run_and_clean(gconstpointer fn)
{
    ((void (*)(void))fn)();
    object_registry_cleanup();
    main_loop_register_object();
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    main_loop_init(&error_abort);
    tls_creds_init();
    dir = g_dir_make_tmp("authz-test-XXXXXX", NULL);
#define T(name, fn) g_test_add_data_func(name, (gconstpointer)fn, run_and_clean)
    T("/authz/list/errors-are-named", test_list_errors_are_named);
    T("/authz/list/first-matching-rule-decides",
      test_first_matching_rule_decides);
    T("/authz/listfile/bad-file-is-named", test_listfile_bad_file_is_named);
    T("/authz/listfile/checks-identities", test_listfile_checks_identities);
    T("/authz/listfile/refresh-follows-rewrites",
      test_listfile_refresh_follows_rewrites);
    ret = g_test_run();
    {
        const char *names[] = {"bad.json", "acl.json", "live.json",
                               "live.json.new"};
        size_t i;

        for (i = 0; i < G_N_ELEMENTS(names); i++) {
            g_autofree char *p = acl_path(names[i]);

            g_remove(p);
        }
    }
    g_rmdir(dir);
    g_free(dir);
    return ret;
}
