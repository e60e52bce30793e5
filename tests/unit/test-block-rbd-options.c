/*
 * driver=rbd without a cluster: the option errors that bdrv_open reports
 * before connecting, each naming the option, and the secret lookup.  (The
 * driver against a real cluster: tests/integration/rbd/rbd_tests.py.)
 */
#include "dataplane/object.h"
#include "dataplane/secret.h"
#include "tests/unit/block-test-util.h"

static void expect_error(const char *spec, const char *needle)
{
    g_autofree char *msg = test_open_error(spec);

    if (!strstr(msg, needle)) {
        g_error("'%s': '%s' lacks '%s'", spec, msg, needle);
    }
    g_assert_null(strchr(msg, '\n'));
}

static void test_rbd_option_errors_name_the_option(void)
{
    static const struct {
        const char *spec;
        const char *needle;
    } cases[] = {
        {"driver=rbd,image=i", "'pool'"},
        {"driver=rbd,pool=p", "'image'"},
        {"driver=rbd,pool=p,image=i,bogus=1", "'bogus'"},
        {"driver=rbd,pool=p,image=i,snapshot=s", "read-only=on"},
        {"driver=rbd,pool=p,image=i,x-mount-timeout=soon",
         "'x-mount-timeout' expects a number of seconds"},
        {"driver=rbd,pool=p,image=i,x-osd-op-timeout=0", "'x-osd-op-timeout'"},
        {"driver=rbd,pool=p,image=i,x-mon-op-timeout=-1", "'x-mon-op-timeout'"},
        {"driver=rbd,pool=p,image=i,server.0.host=h", "'server.0.port'"},
        {"driver=rbd,pool=p,image=i,server.0.port=1", "'server.0.host'"},
        {"driver=rbd,pool=p,image=i,server.x.host=h", "'server.x.host'"},
        {"driver=rbd,pool=p,image=i,auth-client-required.0=plain",
         "'auth-client-required.0'"},
        {"driver=rbd,pool=p,image=i,discard=sometimes", "'discard'"},
        {"driver=rbd,pool=p,image=i,cache.direct=maybe", "'cache.direct'"},
        {"driver=rbd,pool=p,image=i,key-secret=nosuch",
         "key-secret': No secret with id 'nosuch'"},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        expect_error(cases[i].spec, cases[i].needle);
    }
    g_assert_null(bdrv_find_node("#block0"));
}

static void test_rbd_key_secret_must_be_a_secret(void)
{
    expect_error("driver=rbd,pool=p,image=i,key-secret=main-loop",
                 "'main-loop' is not a secret");
}

/* The connection is the first thing that waits: a configuration file
 * that is not there fails it, naming the file, and the node is gone. */
static void test_rbd_missing_conf_file(void)
{
    expect_error("driver=rbd,node-name=r,pool=p,image=i,"
                 "conf=/nonexistent/ceph.conf",
                 "Cannot read the Ceph configuration file "
                 "'/nonexistent/ceph.conf'");
    g_assert_null(bdrv_find_node("r"));
    bdrv_wait_background();
}

int main(int argc, char **argv)
{
    test_block_init(&argc, &argv);
    g_test_add_func("/block/rbd/option-errors-name-the-option",
                    test_rbd_option_errors_name_the_option);
    g_test_add_func("/block/rbd/key-secret-must-be-a-secret",
                    test_rbd_key_secret_must_be_a_secret);
    g_test_add_func("/block/rbd/missing-conf-file", test_rbd_missing_conf_file);
    return g_test_run();
}
