/*
 * The typed-input module (dataplane/input.h): QEMU's spellings of bool,
 * integer, size and identifier, checked case by case and, for integers,
 * against the C library's strtoll() on random text.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "dataplane/input.h"

/* Checks *errp's sentence, frees it and clears *errp for the next use. */
static void assert_error_is(Error **errp, const char *want)
{
    g_assert_nonnull(*errp);
    g_assert_cmpstr(error_get_pretty(*errp), ==, want);
    g_clear_pointer(errp, error_free);
}

static void test_bool_accepts_qemu_spellings(void)
{
    static const char *const yes[] = {"on", "yes", "true", "y"};
    static const char *const no[] = {"off", "no", "false", "n"};
    bool b;

    for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
        b = false;
        g_assert_true(input_parse_bool("x", yes[i], &b, &error_abort));
        g_assert_true(b);
        g_assert_true(input_parse_bool("x", no[i], &b, &error_abort));
        g_assert_false(b);
    }
}

static void test_bool_refuses_other_text(void)
{
    static const char *const junk[] = {"",  "ON",     "Y",   "1",
                                       "0", "enable", " on", "on "};
    bool b = true;

    for (size_t i = 0; i < G_N_ELEMENTS(junk); i++) {
        Error *err = NULL;

        g_assert_false(input_parse_bool("writable", junk[i], &b, &err));
        assert_error_is(&err, "Parameter 'writable' expects 'on' or 'off'");
    }
    g_assert_true(b); /* untouched on error */
}

static void test_int_reads_like_qemu_strtoi64(void)
{
    static const struct {
        const char *in;
        int64_t out;
    } cases[] = {
        {"0", 0},
        {"7", 7},
        {"+7", 7},
        {"-7", -7},
        {"010", 8}, /* octal, as qemu-storage-daemon's poll-max-ns=010 */
        {"0777", 511},
        {"00", 0},
        {"0x10", 16},
        {"0XfF", 255},
        {"-0x10", -16},
        {" 12", 12}, /* strtoll skips leading blanks */
        {"\t-3", -3},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
        {"0x7fffffffffffffff", INT64_MAX},
        {"-0x8000000000000000", INT64_MIN},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        int64_t v = -1;

        g_assert_true(input_parse_int("n", cases[i].in, INT64_MIN, INT64_MAX,
                                      &v, &error_abort));
        g_assert_cmpint(v, ==, cases[i].out);
    }
}

static void test_int_refuses_junk_and_overflow(void)
{
    static const char *const junk[] = {"",
                                       "abc",
                                       "12abc",
                                       "12 ",
                                       "1.5",
                                       "0x",
                                       "0xg",
                                       "08",
                                       "+",
                                       "-",
                                       "1e3",
                                       "5k",
                                       "--1",
                                       "0b1",
                                       "9223372036854775808",
                                       "-9223372036854775809",
                                       "0x8000000000000000",
                                       "99999999999999999999999"};

    for (size_t i = 0; i < G_N_ELEMENTS(junk); i++) {
        Error *err = NULL;
        int64_t v = 42;

        g_assert_false(input_parse_int("poll-max-ns", junk[i], INT64_MIN,
                                       INT64_MAX, &v, &err));
        assert_error_is(&err, "Parameter 'poll-max-ns' expects integer");
        g_assert_cmpint(v, ==, 42);
    }
}

static void test_int_checks_range(void)
{
    Error *err = NULL;
    int64_t v = 0;

    g_assert_true(input_parse_int("x", "100", 0, 100, &v, &error_abort));
    g_assert_cmpint(v, ==, 100);
    g_assert_false(input_parse_int("x", "101", 0, 100, &v, &err));
    assert_error_is(&err, "Parameter 'x' must be between 0 and 100");
    g_assert_false(input_parse_int("x", "-1", 0, 100, &v, &err));
    assert_error_is(&err, "Parameter 'x' must be between 0 and 100");
    g_assert_cmpint(v, ==, 100);
}

/*
 * The integer syntax is, by definition, strtoll() with base 0 (the test
 * runs in the C locale): random text over a number-ish alphabet must be
 * accepted and valued exactly as the C library does.
 */
static void test_int_matches_libc_strtoll_on_random_text(void)
{
    static const char alphabet[] = "0123456789000777+-xXaFg \t.";
    GRand *rand = g_rand_new_with_seed(20261128);
    char buf[32];
    int accepted = 0;

    for (int n = 0; n < 50000; n++) {
        int len = g_rand_int_range(rand, 0, 24);
        long long want;
        char *end;
        int64_t got = 0;
        bool ok, want_ok;

        for (int i = 0; i < len; i++) {
            buf[i] = alphabet[g_rand_int_range(rand, 0, sizeof(alphabet) - 1)];
        }
        buf[len] = '\0';
        /* Often start like a number, so that both paths get exercised. */
        if (len > 2 && n % 3 == 0) {
            buf[0] = "+-1"[(n / 3) % 3];
            buf[1] = '0' + g_rand_int_range(rand, 0, 10);
        }
        if (len > 3 && n % 5 == 0) {
            memcpy(buf, n % 10 ? "0x" : "-0", 2);
        }
        errno = 0;
        want = strtoll(buf, &end, 0);
        want_ok = end != buf && *end == '\0' && errno == 0;
        ok = input_parse_int("n", buf, INT64_MIN, INT64_MAX, &got, NULL);
        g_assert_cmpint(ok, ==, want_ok);
        if (ok) {
            g_assert_cmpint(got, ==, want);
            accepted++;
        }
    }
    /* The generator must produce valid numbers too, or this proves little. */
    g_assert_cmpint(accepted, >, 2000);
    g_rand_free(rand);
}

static void test_size_reads_like_qemu_strtosz(void)
{
    static const struct {
        const char *in;
        uint64_t out;
    } cases[] = {
        {"0", 0},
        {"512", 512},
        {"010", 10}, /* sizes are decimal: qemu_strtosz's rule */
        {"1b", 1},
        {"1B", 1},
        {"1k", 1024},
        {"1K", 1024},
        {"2M", 2 << 20},
        {"1G", UINT64_C(1) << 30},
        {"1T", UINT64_C(1) << 40},
        {"1P", UINT64_C(1) << 50},
        {"1E", UINT64_C(1) << 60},
        {"15E", UINT64_C(15) << 60},
        {"1.5G", UINT64_C(3) << 29},
        {"1.1k", 1126}, /* 1126.4, rounded */
        {"0.5k", 512},
        {".5M", 512 * 1024},
        {"1.k", 1024},
        {"1.0", 1},
        {"1.", 1},
        {"0x10", 16},
        {"0XfF", 255},
        {" 4k", 4096},
        {"+4k", 4096},
        {"18446744073709551615", UINT64_MAX},
        {"0xffffffffffffffff", UINT64_MAX},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        uint64_t v = 1;

        if (!input_parse_size("size", cases[i].in, UINT64_MAX, &v, NULL)) {
            g_error("'%s' refused", cases[i].in);
        }
        g_assert_cmpuint(v, ==, cases[i].out);
    }
}

static void test_size_refuses_junk_and_overflow(void)
{
    static const char *const junk[] = {"",
                                       "k",
                                       "abc",
                                       "-1",
                                       "-0",
                                       "1.5",
                                       "1.5B",
                                       "1kk",
                                       "1k ",
                                       "1 k",
                                       "1e3",
                                       "1.5e3",
                                       "0x10k",
                                       "0x1.8",
                                       "0x",
                                       "0xg",
                                       "1Q",
                                       ".",
                                       "inf",
                                       "nan",
                                       "16E",
                                       "18446744073709551616",
                                       "0x10000000000000000",
                                       "1.2.3"};

    for (size_t i = 0; i < G_N_ELEMENTS(junk); i++) {
        Error *err = NULL;
        uint64_t v = 42;

        if (input_parse_size("size", junk[i], UINT64_MAX, &v, &err)) {
            g_error("'%s' accepted as %" G_GUINT64_FORMAT, junk[i], v);
        }
        assert_error_is(&err, "Parameter 'size' expects size");
        g_assert_cmpuint(v, ==, 42);
    }
}

static void test_size_checks_max(void)
{
    Error *err = NULL;
    uint64_t v = 0;

    g_assert_true(input_parse_size("size", "8E", INT64_MAX, &v, &err) == false);
    assert_error_is(&err,
                    "Parameter 'size' must be at most 9223372036854775807");
    g_assert_true(input_parse_size("size", "7E", INT64_MAX, &v, &error_abort));
    g_assert_cmpuint(v, ==, UINT64_C(7) << 60);
}

static void test_id_follows_qemu_id_wellformed(void)
{
    static const char *const good[] = {"a", "Z", "io0", "a-b.c_d9", "A.."};
    static const char *const bad[] = {"",   "1abc", "-x",    "_x",
                                      ".x", "a b",  "a/b",   "a,b",
                                      "é",  "a=b",  "#node0"};
    char longest[INPUT_ID_MAX + 2];

    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        g_assert_true(input_id_wellformed(good[i]));
        g_assert_true(input_check_id("id", good[i], &error_abort));
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        Error *err = NULL;

        g_assert_false(input_id_wellformed(bad[i]));
        g_assert_false(input_check_id("node-name", bad[i], &err));
        assert_error_is(&err, "Parameter 'node-name' expects an identifier");
    }
    memset(longest, 'a', INPUT_ID_MAX);
    longest[INPUT_ID_MAX] = '\0';
    g_assert_true(input_id_wellformed(longest));
    longest[INPUT_ID_MAX] = 'a';
    longest[INPUT_ID_MAX + 1] = '\0';
    g_assert_false(input_id_wellformed(longest));
    g_assert_false(input_id_wellformed(NULL));
}

static void test_check_id_names_missing_id(void)
{
    Error *err = NULL;

    g_assert_false(input_check_id("id", NULL, &err));
    assert_error_is(&err, "Parameter 'id' is missing");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/input/bool-accepts-qemu-spellings",
                    test_bool_accepts_qemu_spellings);
    g_test_add_func("/input/bool-refuses-other-text",
                    test_bool_refuses_other_text);
    g_test_add_func("/input/int-reads-like-qemu-strtoi64",
                    test_int_reads_like_qemu_strtoi64);
    g_test_add_func("/input/int-refuses-junk-and-overflow",
                    test_int_refuses_junk_and_overflow);
    g_test_add_func("/input/int-checks-range", test_int_checks_range);
    g_test_add_func("/input/int-matches-libc-strtoll-on-random-text",
                    test_int_matches_libc_strtoll_on_random_text);
    g_test_add_func("/input/size-reads-like-qemu-strtosz",
                    test_size_reads_like_qemu_strtosz);
    g_test_add_func("/input/size-refuses-junk-and-overflow",
                    test_size_refuses_junk_and_overflow);
    g_test_add_func("/input/size-checks-max", test_size_checks_max);
    g_test_add_func("/input/id-follows-qemu-id-wellformed",
                    test_id_follows_qemu_id_wellformed);
    g_test_add_func("/input/check-id-names-missing-id",
                    test_check_id_names_missing_id);
    return g_test_run();
}
