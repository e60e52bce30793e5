/*
 * Tests for daemon/monitor.c: the QMP monitor over a real unix socket,
 * driven by a private AioContext that the test polls itself.
 */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "monitor.h"

/* Upper bound on loop iterations while waiting for one reply. */
#define MAX_POLLS 1000

static json_t *cmd_caps(json_t *args, Error **errp)
{
    return json_object();
}

static json_t *cmd_ping(json_t *args, Error **errp)
{
    return json_pack("{s:s}", "pong", "yes");
}

static json_t *cmd_event(json_t *args, Error **errp)
{
    monitor_emit_event("TEST_EVENT", json_pack("{s:i}", "n", 5));
    return json_object();
}

/* A reply of 1 MiB, to fill a client's queue quickly. */
static json_t *cmd_big(json_t *args, Error **errp)
{
    char *s = g_strnfill(1024 * 1024, 'x');
    json_t *ret = json_string(s);

    g_free(s);
    return ret;
}

static const QmpCommand table[] = {
    {"qmp_capabilities", cmd_caps, QMP_CMD_NEGOTIATION},
    {"ping", cmd_ping, 0},
    {"emit", cmd_event, 0},
    {"big", cmd_big, 0},
    {NULL},
};

typedef struct Fixture {
    AioContext *ctx;
    AioTimer *watchdog;
    bool watchdog_fired;
    char *dir;
    char *path;
    Monitor *mon;
} Fixture;

typedef struct Client {
    int fd;
    GString *in; /* received, not yet returned as a line */
} Client;

static void watchdog_cb(void *opaque)
{
    Fixture *f = opaque;

    f->watchdog_fired = true;
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->ctx = aio_context_new(&error_abort);
    f->watchdog =
        aio_timer_new(f->ctx, AIO_CLOCK_REALTIME, AIO_SCALE_MS, watchdog_cb, f);
    f->dir = g_dir_make_tmp("test-monitor-XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    f->path = g_build_filename(f->dir, "qmp.sock", NULL);
    f->mon = monitor_new(f->ctx, f->path, table, &error_abort);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    monitor_free(f->mon);
    g_assert_false(g_file_test(f->path, G_FILE_TEST_EXISTS));
    aio_timer_free(f->watchdog);
    aio_context_unref(f->ctx);
    rmdir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

/*
 * One blocking iteration, with a watchdog so that a bug fails, not hangs.
 * The watchdog detects hangs, it does not measure: one iteration may have to
 * build megabytes of replies under ThreadSanitizer on a loaded machine, so
 * it is generous (CI saw a single iteration take over 5 s).
 */
#define POLL_WATCHDOG_MS 120000

static void poll_once(Fixture *f)
{
    aio_timer_mod(f->watchdog, aio_clock_get_ns(AIO_CLOCK_REALTIME) / 1000000 +
                                   POLL_WATCHDOG_MS);
    aio_poll(f->ctx, true);
    aio_timer_del(f->watchdog);
    g_assert_false(f->watchdog_fired);
}

static Client *client_connect(Fixture *f)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    Client *c = g_new0(Client, 1);

    c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(c->fd, >=, 0);
    g_strlcpy(addr.sun_path, f->path, sizeof(addr.sun_path));
    g_assert_cmpint(connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)), ==,
                    0);
    c->in = g_string_new(NULL);
    return c;
}

static void client_free(Client *c)
{
    close(c->fd);
    g_string_free(c->in, TRUE);
    g_free(c);
}

/* Polls the monitor until c has a whole line; returns it parsed. */
static json_t *client_recv(Fixture *f, Client *c)
{
    for (int i = 0; i < MAX_POLLS; i++) {
        char *nl = strstr(c->in->str, "\r\n");
        char buf[4096];
        ssize_t n;

        if (nl) {
            json_error_t jerr;
            json_t *v = json_loadb(c->in->str, nl - c->in->str, 0, &jerr);

            g_assert_nonnull(v);
            g_string_erase(c->in, 0, nl - c->in->str + 2);
            return v;
        }
        n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            g_string_append_len(c->in, buf, n);
            continue;
        }
        g_assert_true(n < 0 && errno == EAGAIN);
        poll_once(f);
    }
    g_assert_not_reached();
}

/* Sends all of text, letting the monitor read while the socket is full. */
static void client_send(Fixture *f, Client *c, const char *text)
{
    size_t len = strlen(text);
    size_t off = 0;

    for (int i = 0; off < len; i++) {
        ssize_t n = send(c->fd, text + off, len - off, MSG_DONTWAIT);

        g_assert_cmpint(i, <, 100000);
        if (n > 0) {
            off += n;
        } else {
            g_assert_true(n < 0 && errno == EAGAIN);
            poll_once(f);
        }
    }
}

static json_t *client_cmd(Fixture *f, Client *c, const char *text)
{
    client_send(f, c, text);
    return client_recv(f, c);
}

static void client_negotiate(Fixture *f, Client *c)
{
    json_decref(client_recv(f, c)); /* greeting */
    json_t *r = client_cmd(f, c, "{\"execute\":\"qmp_capabilities\"}");
    g_assert_nonnull(json_object_get(r, "return"));
    json_decref(r);
}

static const char *error_class(json_t *r)
{
    return json_string_value(
        json_object_get(json_object_get(r, "error"), "class"));
}

static void test_monitor_greeting_has_version_and_capabilities(Fixture *f,
                                                               gconstpointer d)
{
    Client *c = client_connect(f);
    json_t *g = client_recv(f, c);
    json_t *qmp = json_object_get(g, "QMP");

    g_assert_true(json_is_integer(json_object_get(
        json_object_get(json_object_get(qmp, "version"), "qemu"), "major")));
    g_assert_true(json_is_string(
        json_object_get(json_object_get(qmp, "version"), "package")));
    g_assert_true(json_is_array(json_object_get(qmp, "capabilities")));
    json_decref(g);
    client_free(c);
}

static void test_monitor_socket_mode_is_0600(Fixture *f, gconstpointer d)
{
    struct stat st;

    g_assert_cmpint(stat(f->path, &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
}

static void test_monitor_command_gets_reply_with_id(Fixture *f, gconstpointer d)
{
    Client *c = client_connect(f);
    json_t *r;

    client_negotiate(f, c);
    r = client_cmd(f, c, "{\"execute\":\"ping\",\"id\":42}");
    g_assert_cmpstr(json_string_value(
                        json_object_get(json_object_get(r, "return"), "pong")),
                    ==, "yes");
    g_assert_cmpint(json_integer_value(json_object_get(r, "id")), ==, 42);
    json_decref(r);
    client_free(c);
}

static void
test_monitor_malformed_json_gets_error_and_stays_usable(Fixture *f,
                                                        gconstpointer d)
{
    Client *c = client_connect(f);
    json_t *r;

    client_negotiate(f, c);
    r = client_cmd(f, c, "{\"execute\" \"ping\"}");
    g_assert_cmpstr(error_class(r), ==, "GenericError");
    json_decref(r);
    r = client_cmd(f, c, "\"just a string\"\n");
    g_assert_cmpstr(error_class(r), ==, "GenericError");
    json_decref(r);
    r = client_cmd(f, c, "{\"execute\":\"ping\"}");
    g_assert_nonnull(json_object_get(r, "return"));
    json_decref(r);
    client_free(c);
}

static void
test_monitor_oversized_message_gets_error_and_stays_usable(Fixture *f,
                                                           gconstpointer d)
{
    Client *c = client_connect(f);
    GString *big =
        g_string_new("{\"execute\":\"ping\",\"arguments\":{\"x\":\"");
    json_t *r;

    client_negotiate(f, c);
    while (big->len <= MONITOR_MAX_MESSAGE) {
        g_string_append(big, "0123456789abcdef");
    }
    g_string_append(big, "\"}}");
    r = client_cmd(f, c, big->str);
    g_assert_cmpstr(error_class(r), ==, "GenericError");
    g_assert_nonnull(strstr(
        json_string_value(json_object_get(json_object_get(r, "error"), "desc")),
        "too large"));
    json_decref(r);
    r = client_cmd(f, c, "{\"execute\":\"ping\"}");
    g_assert_nonnull(json_object_get(r, "return"));
    json_decref(r);
    g_string_free(big, TRUE);
    client_free(c);
}

static void test_monitor_serves_several_clients_at_once(Fixture *f,
                                                        gconstpointer d)
{
    Client *a = client_connect(f);
    Client *b = client_connect(f);
    json_t *r;

    client_negotiate(f, a);
    client_negotiate(f, b);
    g_assert_cmpuint(monitor_client_count(f->mon), ==, 2);
    /* Interleave: a's request sent first, b's answered first. */
    client_send(f, a, "{\"execute\":\"ping\",\"id\":\"a\"}");
    r = client_cmd(f, b, "{\"execute\":\"ping\",\"id\":\"b\"}");
    g_assert_cmpstr(json_string_value(json_object_get(r, "id")), ==, "b");
    json_decref(r);
    r = client_recv(f, a);
    g_assert_cmpstr(json_string_value(json_object_get(r, "id")), ==, "a");
    json_decref(r);
    client_free(a);
    client_free(b);
}

static void test_monitor_disconnect_frees_client(Fixture *f, gconstpointer d)
{
    Client *c = client_connect(f);

    json_decref(client_recv(f, c));
    g_assert_cmpuint(monitor_client_count(f->mon), ==, 1);
    client_free(c);
    for (int i = 0; i < MAX_POLLS && monitor_client_count(f->mon); i++) {
        poll_once(f);
    }
    g_assert_cmpuint(monitor_client_count(f->mon), ==, 0);
}

static void test_monitor_events_reach_only_negotiated_clients(Fixture *f,
                                                              gconstpointer d)
{
    Client *neg = client_connect(f);
    Client *raw = client_connect(f);
    json_t *r;
    json_t *ev;
    json_t *ts;

    client_negotiate(f, neg);
    json_decref(client_recv(f, raw)); /* greeting only */
    r = client_cmd(f, neg, "{\"execute\":\"emit\"}");
    /* The event is emitted inside the command, so it precedes the reply. */
    g_assert_cmpstr(json_string_value(json_object_get(r, "event")), ==,
                    "TEST_EVENT");
    ev = r;
    ts = json_object_get(ev, "timestamp");
    g_assert_true(json_is_integer(json_object_get(ts, "seconds")));
    g_assert_true(json_is_integer(json_object_get(ts, "microseconds")));
    g_assert_cmpint(
        json_integer_value(json_object_get(json_object_get(ev, "data"), "n")),
        ==, 5);
    json_decref(ev);
    r = client_recv(f, neg);
    g_assert_nonnull(json_object_get(r, "return"));
    json_decref(r);
    /* The unnegotiated client got nothing: its next line is its reply. */
    r = client_cmd(f, raw, "{\"execute\":\"ping\"}");
    g_assert_cmpstr(error_class(r), ==, "CommandNotFound");
    json_decref(r);
    client_free(neg);
    client_free(raw);
}

static void test_monitor_client_that_never_reads_is_dropped(Fixture *f,
                                                            gconstpointer d)
{
    Client *hog = client_connect(f);
    Client *good = client_connect(f);
    json_t *r;

    client_negotiate(f, hog);
    client_negotiate(f, good);
    /* 32 MiB of replies queued for a client that reads none of them: the
     * monitor drops it rather than grow without bound. */
    for (int i = 0; i < 32; i++) {
        client_send(f, hog, "{\"execute\":\"big\"}");
    }
    for (int i = 0; i < MAX_POLLS && monitor_client_count(f->mon) > 1; i++) {
        poll_once(f);
    }
    g_assert_cmpuint(monitor_client_count(f->mon), ==, 1);
    /* The others are not affected. */
    r = client_cmd(f, good, "{\"execute\":\"ping\"}");
    g_assert_nonnull(json_object_get(r, "return"));
    json_decref(r);
    client_free(hog);
    client_free(good);
}

static void test_monitor_binary_garbage_gets_errors_not_a_crash(Fixture *f,
                                                                gconstpointer d)
{
    Client *c = client_connect(f);
    GRand *rand = g_rand_new_with_seed(42);
    char junk[4096];
    json_t *r;

    client_negotiate(f, c);
    for (size_t i = 0; i < sizeof(junk); i++) {
        /* No brackets or quotes: the junk must end at the newline below. */
        do {
            junk[i] = (char)g_rand_int_range(rand, 0, 256);
        } while (junk[i] == '\0' || strchr("{}[]\"\\", junk[i]));
    }
    junk[sizeof(junk) - 1] = '\0';
    client_send(f, c, junk);
    client_send(f, c, "\n{\"execute\":\"ping\",\"id\":\"after\"}");
    /* Errors for the junk tokens, then the reply to the ping. */
    for (int i = 0; i < 10000; i++) {
        r = client_recv(f, c);
        if (json_object_get(r, "id")) {
            break;
        }
        g_assert_cmpstr(error_class(r), ==, "GenericError");
        json_decref(r);
    }
    g_assert_cmpstr(json_string_value(json_object_get(r, "id")), ==, "after");
    json_decref(r);
    g_rand_free(rand);
    client_free(c);
}

static void test_monitor_deep_nesting_is_refused(Fixture *f, gconstpointer d)
{
    Client *c = client_connect(f);
    GString *deep = g_string_new(NULL);
    json_t *r;

    client_negotiate(f, c);
    for (int i = 0; i < 100000; i++) {
        g_string_append_c(deep, '[');
    }
    for (int i = 0; i < 100000; i++) {
        g_string_append_c(deep, ']');
    }
    r = client_cmd(f, c, deep->str);
    g_assert_cmpstr(error_class(r), ==, "GenericError");
    json_decref(r);
    r = client_cmd(f, c, "{\"execute\":\"ping\"}");
    g_assert_nonnull(json_object_get(r, "return"));
    json_decref(r);
    g_string_free(deep, TRUE);
    client_free(c);
}

static void test_monitor_stop_listening_still_delivers_events(Fixture *f,
                                                              gconstpointer d)
{
    Client *c = client_connect(f);
    json_t *ev;

    client_negotiate(f, c);
    monitor_stop_listening(f->mon);
    g_assert_false(g_file_test(f->path, G_FILE_TEST_EXISTS));
    monitor_emit_event("SHUTDOWN", NULL);
    ev = client_recv(f, c);
    g_assert_cmpstr(json_string_value(json_object_get(ev, "event")), ==,
                    "SHUTDOWN");
    json_decref(ev);
    g_assert_cmpuint(monitor_client_count(f->mon), ==, 1);
    client_free(c);
}

static void test_monitor_out_of_fds_does_not_spin_then_recovers(Fixture *f,
                                                                gconstpointer d)
{
    struct rlimit saved, low;
    Client *c;
    json_t *g;
    int lowest;

    /* Allow exactly one more fd: the client's socket.  The monitor's
     * accept() then fails with EMFILE. */
    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &saved), ==, 0);
    lowest = dup(0);
    g_assert_cmpint(lowest, >=, 0);
    close(lowest);
    low = saved;
    low.rlim_cur = lowest + 1;
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &low), ==, 0);
    c = client_connect(f);
    poll_once(f); /* the failed accept */
    /* Nothing is ready now: the listening socket is not polled while
     * accepting is impossible (it would be ready, and fail, forever). */
    g_assert_false(aio_poll(f->ctx, false));
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &saved), ==, 0);
    /* The retry timer brings accepting back; the client gets in. */
    g = client_recv(f, c);
    g_assert_nonnull(json_object_get(g, "QMP"));
    json_decref(g);
    client_free(c);
}

static void test_monitor_stale_socket_file_is_replaced(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    char *dir = g_dir_make_tmp("test-monitor-XXXXXX", NULL);
    char *path = g_build_filename(dir, "s", NULL);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    Monitor *mon;

    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    close(fd); /* bound, never listened: stale */
    mon = monitor_new(ctx, path, table, &error_abort);
    monitor_free(mon);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    aio_context_unref(ctx);
    rmdir(dir);
    g_free(path);
    g_free(dir);
}

static void test_monitor_live_socket_or_file_is_refused(Fixture *f,
                                                        gconstpointer d)
{
    Error *err = NULL;
    char *file = g_build_filename(f->dir, "regular", NULL);

    g_assert_null(monitor_new(f->ctx, f->path, table, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "in use"));
    g_clear_pointer(&err, error_free);

    g_assert_true(g_file_set_contents(file, "x", 1, NULL));
    g_assert_null(monitor_new(f->ctx, file, table, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "not a socket"));
    error_free(err);
    g_assert_true(g_file_test(file, G_FILE_TEST_EXISTS));
    unlink(file);
    g_free(file);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn)                                                          \
    g_test_add("/monitor/" name, Fixture, NULL, fixture_setup, fn,             \
               fixture_teardown)
    ADD("greeting-has-version-and-capabilities",
        test_monitor_greeting_has_version_and_capabilities);
    ADD("socket-mode-is-0600", test_monitor_socket_mode_is_0600);
    ADD("command-gets-reply-with-id", test_monitor_command_gets_reply_with_id);
    ADD("malformed-json-gets-error-and-stays-usable",
        test_monitor_malformed_json_gets_error_and_stays_usable);
    ADD("oversized-message-gets-error-and-stays-usable",
        test_monitor_oversized_message_gets_error_and_stays_usable);
    ADD("serves-several-clients-at-once",
        test_monitor_serves_several_clients_at_once);
    ADD("disconnect-frees-client", test_monitor_disconnect_frees_client);
    ADD("events-reach-only-negotiated-clients",
        test_monitor_events_reach_only_negotiated_clients);
    ADD("client-that-never-reads-is-dropped",
        test_monitor_client_that_never_reads_is_dropped);
    ADD("binary-garbage-gets-errors-not-a-crash",
        test_monitor_binary_garbage_gets_errors_not_a_crash);
    ADD("deep-nesting-is-refused", test_monitor_deep_nesting_is_refused);
    ADD("stop-listening-still-delivers-events",
        test_monitor_stop_listening_still_delivers_events);
    ADD("out-of-fds-does-not-spin-then-recovers",
        test_monitor_out_of_fds_does_not_spin_then_recovers);
    ADD("live-socket-or-file-is-refused",
        test_monitor_live_socket_or_file_is_refused);
#undef ADD
    g_test_add_func("/monitor/stale-socket-file-is-replaced",
                    test_monitor_stale_socket_file_is_replaced);
    return g_test_run();
}
