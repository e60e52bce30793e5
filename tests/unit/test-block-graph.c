/* The node graph: names, options, children, references, blockdev-del. */
#include <unistd.h>

#include "dataplane/object.h"
#include "tests/unit/block-test-util.h"

static void test_open_registers_node_name(void)
{
    BlockDriverState *bs = test_open("driver=memory,node-name=m0,size=1M");

    g_assert_true(bdrv_find_node("m0") == bs);
    g_assert_cmpstr(bdrv_get_node_name(bs), ==, "m0");
    g_assert_cmpstr(bdrv_get_driver_name(bs), ==, "memory");
    g_assert_cmpint(bdrv_getlength(bs), ==, 1024 * 1024);
    g_assert_false(bdrv_is_read_only(bs));
    bdrv_unref(bs);
    g_assert_null(bdrv_find_node("m0"));
}

static void test_open_without_name_generates_one(void)
{
    BlockDriverState *a = test_open("driver=null-co");
    BlockDriverState *b = test_open("driver=null-co");

    g_assert_true(g_str_has_prefix(bdrv_get_node_name(a), "#block"));
    g_assert_true(g_str_has_prefix(bdrv_get_node_name(b), "#block"));
    g_assert_cmpstr(bdrv_get_node_name(a), !=, bdrv_get_node_name(b));
    g_assert_true(bdrv_find_node(bdrv_get_node_name(b)) == b);
    g_assert_cmpint(bdrv_getlength(a), ==, 1 << 30);
    bdrv_unref(a);
    bdrv_unref(b);
}

static void test_open_duplicate_name_fails(void)
{
    BlockDriverState *bs = test_open("driver=memory,node-name=dup,size=4k");
    g_autofree char *msg = test_open_error("driver=null-co,node-name=dup");

    g_assert_nonnull(strstr(msg, "dup"));
    bdrv_unref(bs);
}

static void test_open_errors_name_the_key(void)
{
    static const struct {
        const char *spec;
        const char *needle;
    } cases[] = {
        {"driver=memory,size=1M,bogus=1", "'bogus'"},
        {"driver=memory,size=lots", "'size'"},
        {"driver=memory", "'size'"},
        {"driver=null-co,read-zeroes=maybe", "'read-zeroes'"},
        {"driver=null-co,read-only=2", "'read-only'"},
        {"driver=nope", "'driver'"},
        {"size=1M", "'driver'"},
        {"driver=file", "'filename'"},
        {"driver=file,filename=/nonexistent/x", "/nonexistent/x"},
        {"driver=file,filename=/dev/null,aio=posix", "'aio'"},
        {"driver=file,filename=/dev/null,discard=maybe", "'discard'"},
        {"driver=raw", "'file'"},
        {"driver=raw,file=nosuchnode", "nosuchnode"},
        {"driver=raw,file.driver=memory", "'size'"},
        {"driver=throttle,file.driver=null-co", "'throttle-group'"},
        {"driver=throttle,throttle-group=none,file.driver=null-co", "none"},
        {"driver=null-co,node-name=1abc", "'node-name'"},
        {"driver=memory,size=1M,file=x", "'file'"},
        {"driver=memory,size=1M,detect-zeroes=maybe", "'detect-zeroes'"},
        {"driver=memory,size=1M,cache.no-flush=2", "'cache.no-flush'"},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *msg = test_open_error(cases[i].spec);

        if (!strstr(msg, cases[i].needle)) {
            g_error("'%s': error '%s' does not name %s", cases[i].spec, msg,
                    cases[i].needle);
        }
    }
    /* A failed inline child leaves no node behind. */
    g_assert_null(bdrv_find_node("#block0"));
}

static void test_raw_over_named_child_shares_it(void)
{
    BlockDriverState *mem = test_open("driver=memory,node-name=base,size=64k");
    BlockDriverState *raw = test_open("driver=raw,node-name=part,file=base,"
                                      "offset=4k,size=8k");
    Error *err = NULL;

    g_assert_true(bdrv_get_file_child(raw) == mem);
    g_assert_cmpint(bdrv_getlength(raw), ==, 8192);
    g_assert_true(bdrv_get_aio_context(raw) == bdrv_get_aio_context(mem));
    /* The child is busy while the parent holds it. */
    g_assert_false(bdrv_blockdev_del("base", &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "part"));
    error_free(err);
    err = NULL;
    g_assert_true(bdrv_blockdev_del("part", &error_abort));
    g_assert_null(bdrv_find_node("part"));
    g_assert_true(bdrv_blockdev_del("base", &error_abort));
    g_assert_null(bdrv_find_node("base"));
    g_assert_false(bdrv_blockdev_del("base", &err));
    g_assert_true(error_get_class(err) == ERROR_CLASS_DEVICE_NOT_FOUND);
    error_free(err);
}

static void test_raw_window_past_child_fails(void)
{
    BlockDriverState *mem = test_open("driver=memory,node-name=small,size=8k");
    g_autofree char *m1 = test_open_error("driver=raw,file=small,offset=16k");
    g_autofree char *m2 = test_open_error("driver=raw,file=small,offset=4k,"
                                          "size=8k");

    g_assert_nonnull(strstr(m1, "'offset'"));
    g_assert_nonnull(strstr(m2, "'size'"));
    bdrv_unref(mem);
}

static void test_inline_child_belongs_to_parent(void)
{
    BlockDriverState *raw = test_open("driver=raw,node-name=top,"
                                      "file.driver=memory,"
                                      "file.node-name=inner,file.size=4k");
    BlockDriverState *inner = bdrv_find_node("inner");

    g_assert_nonnull(inner);
    g_assert_true(bdrv_get_file_child(raw) == inner);
    bdrv_unref(raw); /* closes the child too: the parent had its only ref */
    g_assert_null(bdrv_find_node("inner"));
}

static void test_read_write_parent_over_read_only_child_fails(void)
{
    BlockDriverState *ro = test_open("driver=memory,node-name=ro,size=4k,"
                                     "read-only=on");
    g_autofree char *msg = test_open_error("driver=raw,file=ro");
    BlockDriverState *raw = test_open("driver=raw,file=ro,read-only=on");

    g_assert_nonnull(strstr(msg, "read-only"));
    g_assert_true(bdrv_is_read_only(raw));
    bdrv_unref(raw);
    bdrv_unref(ro);
}

static void test_extra_reference_keeps_node(void)
{
    BlockDriverState *bs = test_open("driver=memory,node-name=held,size=4k");
    Error *err = NULL;

    bdrv_ref(bs);
    g_assert_false(bdrv_blockdev_del("held", &err));
    error_free(err);
    bdrv_unref(bs);
    g_assert_true(bdrv_find_node("held") == bs);
    bdrv_unref(bs);
    g_assert_null(bdrv_find_node("held"));
}

static void count_node(BlockDriverState *bs, void *opaque)
{
    (*(int *)opaque)++;
}

static void test_foreach_visits_every_node(void)
{
    BlockDriverState *a = test_open("driver=memory,size=4k");
    BlockDriverState *b = test_open("driver=raw,file.driver=null-co");
    int n = 0;

    bdrv_foreach_node(count_node, &n);
    g_assert_cmpint(n, ==, 3);
    bdrv_unref(b);
    bdrv_unref(a);
    n = 0;
    bdrv_foreach_node(count_node, &n);
    g_assert_cmpint(n, ==, 0);
}

static void test_file_node_reports_filename_and_size(void)
{
    g_autofree char *name = test_scratch_file(".", 12345);
    g_autofree char *spec = g_strdup_printf("driver=file,filename=%s", name);
    g_autofree char *rspec = NULL;
    BlockDriverState *bs = test_open(spec);
    BlockDriverState *raw;

    g_assert_cmpint(bdrv_getlength(bs), ==, 12345);
    g_assert_cmpstr(bdrv_get_filename(bs), ==, name);
    rspec = g_strdup_printf("driver=raw,file=%s", bdrv_get_node_name(bs));
    raw = test_open(rspec);
    g_assert_cmpstr(bdrv_get_filename(raw), ==, name);
    bdrv_unref(raw);
    bdrv_unref(bs);
    unlink(name);
}

static void test_auto_read_only_falls_back(void)
{
    /* A file even root may only read (sysfs refuses write opens). */
    const char *ro_file = "/sys/kernel/notes";
    g_autofree char *spec = g_strdup_printf("driver=raw,auto-read-only=on,"
                                            "file.driver=file,"
                                            "file.auto-read-only=on,"
                                            "file.filename=%s",
                                            ro_file);
    g_autofree char *strict =
        g_strdup_printf("driver=file,filename=%s", ro_file);
    g_autofree char *msg = NULL;
    BlockDriverState *bs;

    if (access(ro_file, R_OK) != 0) {
        g_test_skip("no /sys/kernel/notes to test with");
        return;
    }
    msg = test_open_error(strict);
    g_assert_nonnull(strstr(msg, ro_file));
    bs = test_open(spec);
    g_assert_true(bdrv_is_read_only(bs));
    g_assert_true(bdrv_is_read_only(bdrv_get_file_child(bs)));
    bdrv_unref(bs);
}

static void test_direct_on_tmpfs_says_why(void)
{
    g_autofree char *file = test_scratch_file("/dev/shm", 65536);
    g_autofree char *spec = g_strdup_printf("driver=file,filename=%s,"
                                            "cache.direct=on",
                                            file);
    g_autoptr(GHashTable) opts = test_opts(spec);
    Error *err = NULL;
    BlockDriverState *bs = bdrv_open(opts, &err);

    if (bs) {
        /* Kernels from 6.6 accept O_DIRECT on tmpfs. */
        bdrv_unref(bs);
        unlink(file);
        g_test_skip("this kernel's tmpfs accepts O_DIRECT");
        return;
    }
    g_assert_nonnull(strstr(error_get_pretty(err), "O_DIRECT"));
    g_assert_nonnull(strstr(error_get_pretty(err), file));
    error_free(err);
    unlink(file);
}

static void test_size_values(void)
{
    static const struct {
        const char *size;
        int64_t bytes; /* -1: refused */
    } cases[] = {
        /* QEMU's qemu_strtosz (dataplane/input.h): fractions round to the
         * nearest byte, a sign or leading blanks are allowed. */
        {"0", 0},          {"512", 512},    {"4k", 4096},
        {"4K", 4096},      {"1M", 1 << 20}, {"1.5k", 1536},
        {"0.5M", 1 << 19}, {"16b", 16},     {"1.1k", 1126},
        {"1.5", -1},       {"-1", -1},      {"+1", 1},
        {" 1", 1},         {"1 k", -1},     {"1kb", -1},
        {"1x", -1},        {"", -1},        {"k", -1},
        {".5k", 512},      {"1.k", 1024},   {"010", 10},
        {"0x10", 16},      {"8E", -1},      {"18446744073709551616", -1},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *spec =
            g_strdup_printf("driver=null-co,size=%s", cases[i].size);

        if (cases[i].bytes < 0) {
            g_autofree char *msg = test_open_error(spec);

            g_assert_nonnull(strstr(msg, "'size'"));
        } else {
            BlockDriverState *bs = test_open(spec);

            g_assert_cmpint(bdrv_getlength(bs), ==, cases[i].bytes);
            bdrv_unref(bs);
        }
    }
}

static void test_size_suffixes(void)
{
    BlockDriverState *bs = test_open("driver=memory,size=2G");

    g_assert_cmpint(bdrv_getlength(bs), ==, INT64_C(2) << 30);
    bdrv_unref(bs);
    bs = test_open("driver=null-co,size=3k");
    g_assert_cmpint(bdrv_getlength(bs), ==, 3072);
    bdrv_unref(bs);
}

int main(int argc, char **argv)
{
    test_block_init(&argc, &argv);
    g_test_add_func("/block/graph/open-registers-node-name",
                    test_open_registers_node_name);
    g_test_add_func("/block/graph/open-without-name-generates-one",
                    test_open_without_name_generates_one);
    g_test_add_func("/block/graph/open-duplicate-name-fails",
                    test_open_duplicate_name_fails);
    g_test_add_func("/block/graph/open-errors-name-the-key",
                    test_open_errors_name_the_key);
    g_test_add_func("/block/graph/raw-over-named-child-shares-it",
                    test_raw_over_named_child_shares_it);
    g_test_add_func("/block/graph/raw-window-past-child-fails",
                    test_raw_window_past_child_fails);
    g_test_add_func("/block/graph/inline-child-belongs-to-parent",
                    test_inline_child_belongs_to_parent);
    g_test_add_func("/block/graph/read-write-parent-over-read-only-child-fails",
                    test_read_write_parent_over_read_only_child_fails);
    g_test_add_func("/block/graph/extra-reference-keeps-node",
                    test_extra_reference_keeps_node);
    g_test_add_func("/block/graph/foreach-visits-every-node",
                    test_foreach_visits_every_node);
    g_test_add_func("/block/graph/file-node-reports-filename-and-size",
                    test_file_node_reports_filename_and_size);
    g_test_add_func("/block/graph/size-suffixes", test_size_suffixes);
    g_test_add_func("/block/graph/size-values", test_size_values);
    g_test_add_func("/block/graph/direct-on-tmpfs-says-why",
                    test_direct_on_tmpfs_says_why);
    g_test_add_func("/block/graph/auto-read-only-falls-back",
                    test_auto_read_only_falls_back);
    return g_test_run();
}
