/* Tests for daemon/qmp-stream.c: cutting a byte stream into JSON messages. */
#include <string.h>

#include "qmp-stream.h"

typedef struct Collected {
    GPtrArray *msgs; /* "text" or "!why" */
} Collected;

static void collect(void *opaque, const char *text, size_t len, const char *why)
{
    Collected *c = opaque;

    if (text) {
        g_ptr_array_add(c->msgs, g_strndup(text, len));
    } else {
        g_ptr_array_add(c->msgs, g_strconcat("!", why, NULL));
    }
}

static QmpStream stream;
static Collected got;

static void setup(size_t max)
{
    got.msgs = g_ptr_array_new_with_free_func(g_free);
    qmp_stream_init(&stream, max, collect, &got);
}

static void teardown(void)
{
    qmp_stream_destroy(&stream);
    g_ptr_array_free(got.msgs, TRUE);
}

static void feed(const char *s)
{
    qmp_stream_feed(&stream, s, strlen(s));
}

static const char *msg(guint i)
{
    g_assert_cmpuint(i, <, got.msgs->len);
    return g_ptr_array_index(got.msgs, i);
}

static void test_stream_one_object_is_one_message(void)
{
    setup(1024);
    feed("{\"execute\":\"x\"}");
    g_assert_cmpuint(got.msgs->len, ==, 1);
    g_assert_cmpstr(msg(0), ==, "{\"execute\":\"x\"}");
    teardown();
}

static void test_stream_message_split_across_feeds_is_joined(void)
{
    setup(1024);
    feed("{\"exe");
    feed("cute\": {\"a\"");
    g_assert_cmpuint(got.msgs->len, ==, 0);
    feed(":[1,2]}}");
    g_assert_cmpuint(got.msgs->len, ==, 1);
    g_assert_cmpstr(msg(0), ==, "{\"execute\": {\"a\":[1,2]}}");
    teardown();
}

static void test_stream_two_messages_in_one_feed_are_two(void)
{
    setup(1024);
    feed("{\"a\":1}\r\n{\"b\":2}");
    g_assert_cmpuint(got.msgs->len, ==, 2);
    g_assert_cmpstr(msg(1), ==, "{\"b\":2}");
    teardown();
}

static void test_stream_brackets_inside_strings_are_ignored(void)
{
    setup(1024);
    feed("{\"a\":\"}{][\\\"}\"}");
    g_assert_cmpuint(got.msgs->len, ==, 1);
    g_assert_cmpstr(msg(0), ==, "{\"a\":\"}{][\\\"}\"}");
    teardown();
}

static void test_stream_top_level_scalar_ends_at_blank(void)
{
    setup(1024);
    feed("42");
    g_assert_cmpuint(got.msgs->len, ==, 0);
    feed(" \"str\"{}");
    g_assert_cmpuint(got.msgs->len, ==, 3);
    g_assert_cmpstr(msg(0), ==, "42");
    g_assert_cmpstr(msg(1), ==, "\"str\"");
    g_assert_cmpstr(msg(2), ==, "{}");
    teardown();
}

static void test_stream_stray_closing_bracket_is_an_error(void)
{
    setup(1024);
    feed("}{\"a\":1}");
    g_assert_cmpuint(got.msgs->len, ==, 2);
    g_assert_true(msg(0)[0] == '!');
    g_assert_cmpstr(msg(1), ==, "{\"a\":1}");
    teardown();
}

static void test_stream_oversized_message_is_one_error_then_recovers(void)
{
    GString *big = g_string_new("{\"a\":\"");

    setup(64);
    for (int i = 0; i < 1000; i++) {
        g_string_append(big, "{[x");
    }
    g_string_append(big, "\"}");
    feed(big->str);
    feed("{\"b\":2}");
    g_assert_cmpuint(got.msgs->len, ==, 2);
    g_assert_cmpstr(msg(0), ==, "!JSON message too large");
    g_assert_cmpstr(msg(1), ==, "{\"b\":2}");
    g_string_free(big, TRUE);
    teardown();
}

static void test_stream_message_of_exactly_max_bytes_is_kept(void)
{
    setup(8);
    feed("{\"a\":12}");
    g_assert_cmpuint(got.msgs->len, ==, 1);
    g_assert_cmpstr(msg(0), ==, "{\"a\":12}");
    teardown();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp-stream/one-object-is-one-message",
                    test_stream_one_object_is_one_message);
    g_test_add_func("/qmp-stream/message-split-across-feeds-is-joined",
                    test_stream_message_split_across_feeds_is_joined);
    g_test_add_func("/qmp-stream/two-messages-in-one-feed-are-two",
                    test_stream_two_messages_in_one_feed_are_two);
    g_test_add_func("/qmp-stream/brackets-inside-strings-are-ignored",
                    test_stream_brackets_inside_strings_are_ignored);
    g_test_add_func("/qmp-stream/top-level-scalar-ends-at-blank",
                    test_stream_top_level_scalar_ends_at_blank);
    g_test_add_func("/qmp-stream/stray-closing-bracket-is-an-error",
                    test_stream_stray_closing_bracket_is_an_error);
    g_test_add_func("/qmp-stream/oversized-message-is-one-error-then-recovers",
                    test_stream_oversized_message_is_one_error_then_recovers);
    g_test_add_func("/qmp-stream/message-of-exactly-max-bytes-is-kept",
                    test_stream_message_of_exactly_max_bytes_is_kept);
    return g_test_run();
}
