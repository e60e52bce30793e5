/*
 * The TLS credentials object types (tls-creds-x509, tls-creds-psk) and
 * authz-simple: what they load, and the sentence each bad directory or
 * file gets.  Credentials come from tests/tls-certs.sh; broken files are
 * made here, in a scratch copy.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataplane/authz.h"
#include "dataplane/tls-creds.h"
#include "tests/unit/tls-test-util.h"
#include "util/clock.h"

static char *certs;

/* object_add of type with "k=v,..." (dir= relative to certs); the error
 * text, or NULL on success. */
static char *try_add(const char *type, const char *kv)
{
    Error *err = NULL;
    char *msg = NULL;

    if (!tls_test_creds(certs, type, "c0", kv, &err)) {
        msg = g_strdup(error_get_pretty(err));
        error_free(err);
    } else {
        g_assert_true(object_del("c0", &error_abort));
    }
    return msg;
}

static void assert_refused(const char *type, const char *kv, const char *text)
{
    g_autofree char *msg = try_add(type, kv);

    if (!msg) {
        g_error("%s %s was accepted", type, kv);
    }
    if (!strstr(msg, text)) {
        g_error("%s %s: '%s' lacks '%s'", type, kv, msg, text);
    }
}

static void assert_accepted(const char *type, const char *kv)
{
    g_autofree char *msg = try_add(type, kv);

    if (msg) {
        g_error("%s %s: %s", type, kv, msg);
    }
}

/* A scratch directory certs/<name> with copies of the files of
 * certs/<from> (NULL: empty). */
static void scratch(const char *name, const char *from)
{
    g_autofree char *dir = g_build_filename(certs, name, NULL);

    tls_test_rmtree(dir);
    g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
    if (from) {
        g_autofree char *src = g_build_filename(certs, from, NULL);
        GDir *d = g_dir_open(src, 0, NULL);
        const char *f;

        g_assert_nonnull(d);
        while ((f = g_dir_read_name(d))) {
            g_autofree char *a = g_build_filename(src, f, NULL);
            g_autofree char *b = g_build_filename(dir, f, NULL);
            g_autofree char *data = NULL;
            gsize len;

            g_assert_true(g_file_get_contents(a, &data, &len, NULL));
            g_assert_true(g_file_set_contents(b, data, len, NULL));
        }
        g_dir_close(d);
    }
}

static void put(const char *dir, const char *file, const char *text)
{
    g_autofree char *p = g_build_filename(certs, dir, file, NULL);

    g_assert_true(g_file_set_contents(p, text, -1, NULL));
}

static void copy(const char *from_dir, const char *from, const char *dir,
                 const char *file)
{
    g_autofree char *a = g_build_filename(certs, from_dir, from, NULL);
    g_autofree char *data = NULL;

    g_assert_true(g_file_get_contents(a, &data, NULL, NULL));
    put(dir, file, data);
}

static void drop(const char *dir, const char *file)
{
    g_autofree char *p = g_build_filename(certs, dir, file, NULL);

    g_assert_cmpint(g_remove(p), ==, 0);
}

/* ---- x509 ------------------------------------------------------------------
 */

static void test_x509_good_directories_load(void)
{
    TlsCreds *c;

    assert_accepted("tls-creds-x509", "dir=server,endpoint=server");
    assert_accepted("tls-creds-x509", "dir=client,endpoint=client");
    /* A client needs no certificate of its own. */
    assert_accepted("tls-creds-x509", "dir=client-nocert,endpoint=client");
    c = tls_test_creds(certs, "tls-creds-x509", "t",
                       "dir=server,endpoint=server", &error_abort);
    g_assert_true(tls_creds_get_endpoint(c) == TLS_ENDPOINT_SERVER);
    g_assert_cmpstr(tls_creds_get_kind_name(c), ==, "x509");
    g_assert_cmpstr(tls_creds_get_id(c), ==, "t");
    /* QEMU's default endpoint is client. */
    c = tls_test_creds(certs, "tls-creds-x509", "u", "dir=client",
                       &error_abort);
    g_assert_true(tls_creds_get_endpoint(c) == TLS_ENDPOINT_CLIENT);
}

static void test_x509_bad_parameters_are_named(void)
{
    assert_refused("tls-creds-x509", "endpoint=server",
                   "Parameter 'dir' is missing");
    assert_refused("tls-creds-x509", "dir=server,endpoint=both",
                   "Parameter 'endpoint' does not accept value 'both'");
    assert_refused("tls-creds-x509", "dir=server,endpoint=server,verify-peer=2",
                   "verify-peer");
    assert_refused("tls-creds-x509", "dir=server,endpoint=server,passwordid=x",
                   "Parameter 'passwordid' is unexpected");
    assert_refused("tls-creds-x509",
                   "dir=server,endpoint=server,priority=NORMAL:+NOPE",
                   "TLS priority string 'NORMAL:+NOPE' is not valid");
}

static void test_x509_missing_directory_and_files_are_named(void)
{
    assert_refused("tls-creds-x509", "dir=nosuch,endpoint=server",
                   "nosuch': No such file or directory");
    assert_refused("tls-creds-x509", "dir=server/ca-cert.pem,endpoint=server",
                   "is not a directory");
    scratch("s1", "server");
    drop("s1", "ca-cert.pem");
    assert_refused("tls-creds-x509", "dir=s1,endpoint=server",
                   "s1/ca-cert.pem': No such file or directory");
    scratch("s1", "server");
    drop("s1", "server-key.pem");
    assert_refused("tls-creds-x509", "dir=s1,endpoint=server",
                   "s1/server-key.pem': No such file or directory");
    scratch("s1", "server");
    drop("s1", "server-cert.pem");
    assert_refused("tls-creds-x509", "dir=s1,endpoint=server",
                   "s1/server-cert.pem': No such file or directory");
    /* A client's certificate needs its key, and the other way round. */
    scratch("c1", "client");
    drop("c1", "client-key.pem");
    assert_refused("tls-creds-x509", "dir=c1,endpoint=client",
                   "needs 'client-key.pem' beside it");
}

static void test_x509_bad_files_are_named(void)
{
    scratch("s2", "server");
    put("s2", "ca-cert.pem", "not a certificate\n");
    assert_refused("tls-creds-x509", "dir=s2,endpoint=server",
                   "s2/ca-cert.pem");
    scratch("s2", "server");
    put("s2", "ca-cert.pem", "");
    assert_refused("tls-creds-x509", "dir=s2,endpoint=server", "is empty");
    scratch("s2", "server");
    put("s2", "server-key.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n"
        "-----END PRIVATE KEY-----\n");
    assert_refused("tls-creds-x509", "dir=s2,endpoint=server",
                   "s2/server-key.pem");
    /* The key of another certificate. */
    scratch("s2", "server");
    copy("client", "client-key.pem", "s2", "server-key.pem");
    assert_refused("tls-creds-x509", "dir=s2,endpoint=server",
                   "s2/server-key.pem");
    scratch("s2", "server");
    put("s2", "dh-params.pem", "junk\n");
    assert_refused("tls-creds-x509", "dir=s2,endpoint=server",
                   "s2/dh-params.pem");
    scratch("s2", "server");
    put("s2", "ca-crl.pem", "junk\n");
    assert_refused("tls-creds-x509", "dir=s2,endpoint=server", "s2/ca-crl.pem");
}

static void test_x509_sanity_checks_name_the_problem(void)
{
    assert_refused("tls-creds-x509", "dir=server-expired,endpoint=server",
                   "has expired");
    assert_refused("tls-creds-x509", "dir=server-otherca,endpoint=server",
                   "does not verify against the CA certificates");
    /* A server certificate where the CA should be. */
    scratch("s3", "server");
    copy("server", "server-cert.pem", "s3", "ca-cert.pem");
    assert_refused("tls-creds-x509", "dir=s3,endpoint=server",
                   "is not a CA certificate");
    /* A client certificate is not a server's. */
    scratch("s3", "server");
    copy("client", "client-cert.pem", "s3", "server-cert.pem");
    copy("client", "client-key.pem", "s3", "server-key.pem");
    assert_refused("tls-creds-x509", "dir=s3,endpoint=server",
                   "may not be used by a TLS server");
    /* sanity-check=off loads them anyway, as QEMU does. */
    assert_accepted("tls-creds-x509",
                    "dir=server-expired,endpoint=server,sanity-check=off");
}

static void test_x509_fifo_is_refused_without_blocking(void)
{
    g_autofree char *fifo = NULL;
    int64_t t0 = clock_monotonic_ns();

    scratch("s4", "server");
    drop("s4", "ca-cert.pem");
    fifo = g_build_filename(certs, "s4", "ca-cert.pem", NULL);
    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    /* No writer will ever come: a blocking open() would hang here. */
    assert_refused("tls-creds-x509", "dir=s4,endpoint=server",
                   "is not a regular file");
    g_test_message("refused in %" G_GINT64_FORMAT " us",
                   (clock_monotonic_ns() - t0) / 1000);
}

static void test_x509_oversized_file_is_refused(void)
{
    g_autofree char *big = g_malloc(2 * 1024 * 1024 + 1);

    memset(big, 'A', 2 * 1024 * 1024);
    big[2 * 1024 * 1024] = '\0';
    scratch("s5", "server");
    put("s5", "ca-cert.pem", big);
    assert_refused("tls-creds-x509", "dir=s5,endpoint=server", "too large");
}

/* ---- psk --------------------------------------------------------------------
 */

static void test_psk_good_files_load(void)
{
    assert_accepted("tls-creds-psk", "dir=psk,endpoint=server");
    assert_accepted("tls-creds-psk", "dir=psk,endpoint=client,username=bob");
    /* Blank lines and CRLF line ends are fine. */
    scratch("p0", NULL);
    put("p0", "keys.psk", "\nalice:00ff\r\n\nqemu:0102030405\n");
    assert_accepted("tls-creds-psk", "dir=p0,endpoint=server");
    /* A client without username= uses "qemu", as QEMU does. */
    assert_accepted("tls-creds-psk", "dir=p0,endpoint=client");
}

static void test_psk_bad_files_are_named(void)
{
    static const struct {
        const char *text, *error;
    } cases[] = {
        {"alice\n", "line 1: expected <username>:<hex key>"},
        {"alice:00\nbob:0g\n", "line 2: the key is not hexadecimal"},
        {"alice:abc\n", "line 1: the key must be an even number"},
        {"alice:\n", "line 1: the key must be an even number"},
        {":00\n", "line 1: the username must have 1 to 128 bytes"},
        {"alice:00\nalice:01\n", "line 2: user 'alice' listed twice"},
        {"\n\n", "lists no key"},
        {"", "is empty"},
    };
    size_t i;

    assert_refused("tls-creds-psk", "dir=server,endpoint=server",
                   "server/keys.psk': No such file or directory");
    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        scratch("p1", NULL);
        put("p1", "keys.psk", cases[i].text);
        assert_refused("tls-creds-psk", "dir=p1,endpoint=server",
                       cases[i].error);
    }
    /* A username over GnuTLS's limit. */
    scratch("p1", NULL);
    {
        g_autofree char *name = g_strnfill(129, 'u');
        g_autofree char *line = g_strdup_printf("%s:00\n", name);

        put("p1", "keys.psk", line);
        assert_refused("tls-creds-psk", "dir=p1,endpoint=server",
                       "the username must have 1 to 128 bytes");
    }
}

static void test_psk_username_belongs_to_the_client(void)
{
    assert_refused("tls-creds-psk", "dir=psk,endpoint=server,username=alice",
                   "'username' is for endpoint=client");
    assert_refused("tls-creds-psk", "dir=psk,endpoint=client,username=carol",
                   "has no key for user 'carol'");
    /* Without username=, the client looks for "qemu". */
    assert_refused("tls-creds-psk", "dir=psk,endpoint=client",
                   "has no key for user 'qemu'");
}

/* ---- lookup, users, authz
 * ----------------------------------------------------- */

static void test_find_names_what_is_wrong(void)
{
    Error *err = NULL;
    Object *obj = NULL;

    g_assert_null(tls_creds_find("nope", NULL, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "No TLS credentials with id 'nope'");
    g_clear_pointer(&err, error_free);
    tls_test_creds(certs, "tls-creds-psk", "p", "dir=psk,endpoint=server",
                   &error_abort);
    g_assert_nonnull(tls_creds_find("p", &obj, &error_abort));
    g_assert_nonnull(obj);
    g_assert_null(authz_find("p", NULL, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "not an authorization"));
    g_clear_pointer(&err, error_free);
    g_assert_null(authz_find("nope", NULL, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "No authorization object with id 'nope'");
    g_clear_pointer(&err, error_free);
}

static void test_creds_in_use_are_not_deleted(void)
{
    Error *err = NULL;
    Object *obj = NULL;
    TlsCreds *c;

    c = tls_test_creds(certs, "tls-creds-x509", "t",
                       "dir=server,endpoint=server", &error_abort);
    g_assert_nonnull(tls_creds_find("t", &obj, &error_abort));
    object_user_add(obj, "NBD server");
    g_assert_false(object_del("t", &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "tls-creds-x509 't' is in use by NBD server");
    g_clear_pointer(&err, error_free);
    object_user_remove(obj, "NBD server");
    /* A session's reference outlives the object. */
    tls_creds_ref(c);
    g_assert_true(object_del("t", &error_abort));
    g_assert_cmpstr(tls_creds_get_id(c), ==, "t");
    tls_creds_unref(c);
}

static void test_authz_simple_allows_one_identity(void)
{
    g_autoptr(GHashTable) props = g_hash_table_new(g_str_hash, g_str_equal);
    Error *err = NULL;
    Object *obj;
    Authz *a;

    g_assert_null(object_add("authz-simple", "a0", props, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Parameter 'identity' is missing");
    g_clear_pointer(&err, error_free);
    g_hash_table_insert(props, "identity", "CN=a");
    obj = object_add("authz-simple", "a0", props, &error_abort);
    a = authz_find("a0", NULL, &error_abort);
    g_assert_true(authz_is_allowed(a, "CN=a", &error_abort));
    g_assert_false(authz_is_allowed(a, "CN=b", &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Identity 'CN=b' is not allowed by 'a0'");
    g_clear_pointer(&err, error_free);
    g_assert_false(authz_is_allowed(a, NULL, &err));
    g_clear_pointer(&err, error_free);
    /* qom-set: the next check uses the new identity. */
    g_assert_true(
        object_property_set_str(obj, "identity", "CN=b", &error_abort));
    g_assert_true(authz_is_allowed(a, "CN=b", &error_abort));
    g_assert_false(authz_is_allowed(a, "CN=a", NULL));
}

static void run_and_clean(gconstpointer fn)
{
    ((void (*)(void))fn)();
    object_registry_cleanup();
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    tls_creds_init();
    certs = tls_test_certs_make();
#define T(name, fn) g_test_add_data_func(name, (gconstpointer)fn, run_and_clean)
    T("/tls-creds/x509/good-directories-load", test_x509_good_directories_load);
    T("/tls-creds/x509/bad-parameters-are-named",
      test_x509_bad_parameters_are_named);
    T("/tls-creds/x509/missing-directory-and-files-are-named",
      test_x509_missing_directory_and_files_are_named);
    T("/tls-creds/x509/bad-files-are-named", test_x509_bad_files_are_named);
    T("/tls-creds/x509/sanity-checks-name-the-problem",
      test_x509_sanity_checks_name_the_problem);
    T("/tls-creds/x509/fifo-is-refused-without-blocking",
      test_x509_fifo_is_refused_without_blocking);
    T("/tls-creds/x509/oversized-file-is-refused",
      test_x509_oversized_file_is_refused);
    T("/tls-creds/psk/good-files-load", test_psk_good_files_load);
    T("/tls-creds/psk/bad-files-are-named", test_psk_bad_files_are_named);
    T("/tls-creds/psk/username-belongs-to-the-client",
      test_psk_username_belongs_to_the_client);
    T("/tls-creds/find-names-what-is-wrong", test_find_names_what_is_wrong);
    T("/tls-creds/in-use-are-not-deleted", test_creds_in_use_are_not_deleted);
    T("/tls-creds/authz-simple-allows-one-identity",
      test_authz_simple_allows_one_identity);
    ret = g_test_run();
    tls_test_rmtree(certs);
    g_free(certs);
    return ret;
}
