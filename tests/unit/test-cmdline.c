/* Tests for daemon/cmdline.c: qemu-storage-daemon style options. */
#include <string.h>

#include "cmdline.h"

/* Parses a NULL-terminated argument list (program name first). */
static bool parse(DaemonConfig *cfg, Error **errp, ...)
{
    GPtrArray *argv = g_ptr_array_new();
    va_list ap;
    const char *arg;
    bool ok;

    g_ptr_array_add(argv, (char *)"dataplaned");
    va_start(ap, errp);
    while ((arg = va_arg(ap, const char *))) {
        g_ptr_array_add(argv, (char *)arg);
    }
    va_end(ap);
    g_ptr_array_add(argv, NULL);
    ok = cmdline_parse(argv->len - 1, (char **)argv->pdata, cfg, errp);
    g_ptr_array_free(argv, TRUE);
    return ok;
}

static DaemonOption *opt(DaemonConfig *cfg, guint i)
{
    g_assert_cmpuint(i, <, cfg->options->len);
    return g_ptr_array_index(cfg->options, i);
}

static void assert_fails(const char *needle, ...)
{
    /* Up to four arguments are enough for every case here. */
    const char *a[5] = {NULL};
    DaemonConfig cfg;
    Error *err = NULL;
    va_list ap;

    va_start(ap, needle);
    for (int i = 0; i < 4; i++) {
        a[i] = va_arg(ap, const char *);
        if (!a[i]) {
            break;
        }
    }
    va_end(ap);
    g_assert_false(parse(&cfg, &err, a[0], a[1], a[2], a[3], NULL));
    g_assert_nonnull(err);
    if (!strstr(error_get_pretty(err), needle)) {
        g_printerr("'%s' lacks '%s'\n", error_get_pretty(err), needle);
        g_assert_not_reached();
    }
    /* One line. */
    g_assert_null(strchr(error_get_pretty(err), '\n'));
    error_free(err);
    cmdline_config_free(&cfg);
}

static void test_cmdline_no_arguments_gives_defaults(void)
{
    DaemonConfig cfg;

    g_assert_true(parse(&cfg, &error_abort, NULL));
    g_assert_true(cfg.defaults);
    g_assert_cmpuint(cfg.options->len, ==, 6);
    g_assert_cmpint(opt(&cfg, 0)->kind, ==, DAEMON_OPT_OBJECT);
    g_assert_cmpstr(g_hash_table_lookup(opt(&cfg, 1)->opts, "driver"), ==,
                    "memory");
    g_assert_cmpstr(g_hash_table_lookup(opt(&cfg, 2)->opts, "addr.path"), ==,
                    DAEMON_DEFAULT_NBD_SOCKET);
    g_assert_cmpstr(g_hash_table_lookup(opt(&cfg, 4)->opts, "path"), ==,
                    DAEMON_DEFAULT_QMP_SOCKET);
    cmdline_config_free(&cfg);
}

static void test_cmdline_options_keep_their_order_and_implied_keys(void)
{
    DaemonConfig cfg;

    g_assert_true(parse(&cfg, &error_abort, "--object", "iothread,id=io0",
                        "--blockdev", "file,node-name=f,filename=/x",
                        "--export", "nbd,id=e,node-name=f", "--monitor", "c0",
                        NULL));
    g_assert_false(cfg.defaults);
    g_assert_cmpuint(cfg.options->len, ==, 4);
    g_assert_cmpstr(g_hash_table_lookup(opt(&cfg, 0)->opts, "qom-type"), ==,
                    "iothread");
    g_assert_cmpstr(g_hash_table_lookup(opt(&cfg, 1)->opts, "driver"), ==,
                    "file");
    g_assert_cmpstr(g_hash_table_lookup(opt(&cfg, 2)->opts, "type"), ==, "nbd");
    g_assert_cmpstr(g_hash_table_lookup(opt(&cfg, 3)->opts, "chardev"), ==,
                    "c0");
    g_assert_cmpint(opt(&cfg, 3)->kind, ==, DAEMON_OPT_MONITOR);
    cmdline_config_free(&cfg);
}

static void test_cmdline_blockdev_accepts_json(void)
{
    DaemonConfig cfg;

    g_assert_true(parse(&cfg, &error_abort, "--blockdev",
                        "{\"driver\":\"null-co\",\"node-name\":\"n\","
                        "\"size\":4096}",
                        NULL));
    g_assert_cmpstr(g_hash_table_lookup(opt(&cfg, 0)->opts, "size"), ==,
                    "4096");
    cmdline_config_free(&cfg);
}

static void test_cmdline_pidfile_and_daemonize_are_recorded(void)
{
    DaemonConfig cfg;

    g_assert_true(
        parse(&cfg, &error_abort, "--pidfile", "/tmp/p", "--daemonize", NULL));
    g_assert_cmpstr(cfg.pidfile, ==, "/tmp/p");
    g_assert_true(cfg.daemonize);
    g_assert_cmpuint(cfg.options->len, ==, 0);
    cmdline_config_free(&cfg);
}

static void test_cmdline_help_and_version_are_flags(void)
{
    DaemonConfig cfg;

    g_assert_true(parse(&cfg, &error_abort, "--help", NULL));
    g_assert_true(cfg.help);
    cmdline_config_free(&cfg);
    g_assert_true(parse(&cfg, &error_abort, "-V", NULL));
    g_assert_true(cfg.version);
    cmdline_config_free(&cfg);
}

static void test_cmdline_object_help_is_recorded(void)
{
    DaemonConfig cfg;

    g_assert_true(parse(&cfg, &error_abort, "--object", "help", NULL));
    g_assert_true(opt(&cfg, 0)->help);
    g_assert_null(g_hash_table_lookup(opt(&cfg, 0)->opts, "qom-type"));
    cmdline_config_free(&cfg);
    g_assert_true(parse(&cfg, &error_abort, "--object", "iothread,help", NULL));
    g_assert_true(opt(&cfg, 0)->help);
    g_assert_cmpstr(g_hash_table_lookup(opt(&cfg, 0)->opts, "qom-type"), ==,
                    "iothread");
    cmdline_config_free(&cfg);
    g_assert_true(parse(&cfg, &error_abort, "--object", "iothread,id=x", NULL));
    g_assert_false(opt(&cfg, 0)->help);
    cmdline_config_free(&cfg);
}

static void test_cmdline_help_on_other_options_is_refused(void)
{
    assert_fails("--blockdev help: Help is not available", "--blockdev", "help",
                 NULL);
}

static void test_cmdline_unknown_option_is_named(void)
{
    assert_fails("--bogus: unrecognized option", "--bogus", NULL);
    assert_fails("-x: unrecognized option", "-x", NULL);
}

static void test_cmdline_missing_argument_is_named(void)
{
    assert_fails("--object: option requires an argument", "--object", NULL);
}

static void test_cmdline_stray_argument_is_named(void)
{
    assert_fails("disk.img: unexpected argument", "disk.img", NULL);
}

static void test_cmdline_bad_keyval_names_option_and_key(void)
{
    assert_fails(
        "--object iothread,id=x,bad key=1: Invalid parameter 'bad key'",
        "--object", "iothread,id=x,bad key=1", NULL);
    assert_fails("--nbd-server unix: Expected '=' after parameter 'unix'",
                 "--nbd-server", "unix", NULL);
}

static void test_cmdline_bad_json_names_option(void)
{
    assert_fails("--blockdev {\"driver\":: JSON parse error", "--blockdev",
                 "{\"driver\":", NULL);
}

static void test_cmdline_empty_pidfile_is_refused(void)
{
    assert_fails("--pidfile", "--pidfile", "", NULL);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cmdline/no-arguments-gives-defaults",
                    test_cmdline_no_arguments_gives_defaults);
    g_test_add_func("/cmdline/options-keep-their-order-and-implied-keys",
                    test_cmdline_options_keep_their_order_and_implied_keys);
    g_test_add_func("/cmdline/blockdev-accepts-json",
                    test_cmdline_blockdev_accepts_json);
    g_test_add_func("/cmdline/pidfile-and-daemonize-are-recorded",
                    test_cmdline_pidfile_and_daemonize_are_recorded);
    g_test_add_func("/cmdline/help-and-version-are-flags",
                    test_cmdline_help_and_version_are_flags);
    g_test_add_func("/cmdline/object-help-is-recorded",
                    test_cmdline_object_help_is_recorded);
    g_test_add_func("/cmdline/help-on-other-options-is-refused",
                    test_cmdline_help_on_other_options_is_refused);
    g_test_add_func("/cmdline/unknown-option-is-named",
                    test_cmdline_unknown_option_is_named);
    g_test_add_func("/cmdline/missing-argument-is-named",
                    test_cmdline_missing_argument_is_named);
    g_test_add_func("/cmdline/stray-argument-is-named",
                    test_cmdline_stray_argument_is_named);
    g_test_add_func("/cmdline/bad-keyval-names-option-and-key",
                    test_cmdline_bad_keyval_names_option_and_key);
    g_test_add_func("/cmdline/bad-json-names-option",
                    test_cmdline_bad_json_names_option);
    g_test_add_func("/cmdline/empty-pidfile-is-refused",
                    test_cmdline_empty_pidfile_is_refused);
    return g_test_run();
}
