/*
 * Tests for util/utf8.c (valid UTF-8 from any bytes) and for the rule it
 * serves in util/error.c: every error message is valid UTF-8.
 */
#include <string.h>
#include <glib.h>

#include "dataplane/error.h"
#include "util/utf8.h"

static void test_utf8_cut_len_never_splits_a_character(void)
{
    /* "a" then U+00E9 (2 bytes), U+20AC (3), U+1F600 (4). */
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";

    g_assert_cmpuint(utf8_cut_len(s, 100), ==, strlen(s));
    g_assert_cmpuint(utf8_cut_len(s, 0), ==, 0);
    g_assert_cmpuint(utf8_cut_len(s, 1), ==, 1);
    g_assert_cmpuint(utf8_cut_len(s, 2), ==, 1); /* inside U+00E9 */
    g_assert_cmpuint(utf8_cut_len(s, 3), ==, 3);
    g_assert_cmpuint(utf8_cut_len(s, 4), ==, 3);
    g_assert_cmpuint(utf8_cut_len(s, 5), ==, 3);
    g_assert_cmpuint(utf8_cut_len(s, 6), ==, 6);
    g_assert_cmpuint(utf8_cut_len(s, 7), ==, 6);
    g_assert_cmpuint(utf8_cut_len(s, 9), ==, 6);
    g_assert_cmpuint(utf8_cut_len(s, 10), ==, 10);
}

static void test_utf8_cut_len_of_continuation_bytes_is_bounded(void)
{
    /* Not UTF-8: no character to respect, the cut stays near max. */
    char *s = g_strnfill(100, '\x80');

    g_assert_cmpuint(utf8_cut_len(s, 50), ==, 50);
    g_free(s);
}

static void test_utf8_make_valid_replaces_bad_bytes_only(void)
{
    char *v = utf8_make_valid("ok-\xff-\xc3\xa9-\xc3", 9);

    g_assert_cmpstr(v, ==, "ok-\xef\xbf\xbd-\xc3\xa9-\xef\xbf\xbd");
    g_free(v);
    /* A NUL inside the length is replaced too: the result is a C string
     * that says as much as the input. */
    v = utf8_make_valid("a\0b", 3);
    g_assert_cmpstr(v, ==,
                    "a\xef\xbf\xbd"
                    "b");
    g_free(v);
    v = utf8_make_valid("plain", 5);
    g_assert_cmpstr(v, ==, "plain");
    g_free(v);
}

static void test_utf8_abbrev_cuts_on_a_character_and_marks_it(void)
{
    char *v = utf8_abbrev("a\xc3\xa9\xc3\xa9\xc3\xa9", 4);

    g_assert_cmpstr(v, ==, "a\xc3\xa9...");
    g_free(v);
    v = utf8_abbrev("short", 32);
    g_assert_cmpstr(v, ==, "short");
    g_free(v);
    v = utf8_abbrev(NULL, 4);
    g_assert_cmpstr(v, ==, "");
    g_free(v);
}

static void test_error_messages_are_always_utf8(void)
{
    Error *err = NULL;

    error_setg(&err, "cannot open '%s'", "x\xff");
    g_assert_true(g_utf8_validate(error_get_pretty(err), -1, NULL));
    g_assert_cmpstr(error_get_pretty(err), ==, "cannot open 'x\xef\xbf\xbd'");
    error_prepend(&err, "node '%s': ", "\xc3");
    g_assert_true(g_utf8_validate(error_get_pretty(err), -1, NULL));
    error_free(err);
    /* A format that cuts a multibyte string mid-character. */
    err = NULL;
    error_setg(&err, "%.2s", "a\xc3\xa9");
    g_assert_cmpstr(error_get_pretty(err), ==, "a\xef\xbf\xbd");
    error_free(err);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/utf8/cut-len-never-splits-a-character",
                    test_utf8_cut_len_never_splits_a_character);
    g_test_add_func("/utf8/cut-len-of-continuation-bytes-is-bounded",
                    test_utf8_cut_len_of_continuation_bytes_is_bounded);
    g_test_add_func("/utf8/make-valid-replaces-bad-bytes-only",
                    test_utf8_make_valid_replaces_bad_bytes_only);
    g_test_add_func("/utf8/abbrev-cuts-on-a-character-and-marks-it",
                    test_utf8_abbrev_cuts_on_a_character_and_marks_it);
    g_test_add_func("/utf8/error-messages-are-always-utf8",
                    test_error_messages_are_always_utf8);
    return g_test_run();
}
