/*
 * io/: typed socket addresses and the listener rules every listener shares
 * (dataplane/socket.h): live sockets refused, stale ones replaced, explicit
 * modes, removal only of our own file, back-off at the fd limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "dataplane/aio.h"
#include "dataplane/keyval.h"
#include "dataplane/socket.h"
#include "util/ratelimit.h"

typedef struct Fixture {
    AioContext *ctx;
    char *dir;
    char *path;
    GArray *accepted; /* fds handed to on_accept */
} Fixture;

static void on_accept(SocketListener *l, int fd, void *opaque)
{
    Fixture *f = opaque;

    g_array_append_val(f->accepted, fd);
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->ctx = aio_context_new(&error_abort);
    aio_set_current_context(f->ctx);
    f->dir = g_dir_make_tmp("test-socket-XXXXXX", NULL);
    f->path = g_build_filename(f->dir, "s", NULL);
    f->accepted = g_array_new(FALSE, FALSE, sizeof(int));
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    for (guint i = 0; i < f->accepted->len; i++) {
        close(g_array_index(f->accepted, int, i));
    }
    g_array_free(f->accepted, TRUE);
    aio_set_current_context(NULL);
    aio_context_unref(f->ctx);
    g_remove(f->path);
    g_rmdir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

static SocketListener *listen_unix(Fixture *f, const char *path, int mode,
                                   Error **errp)
{
    g_autoptr(SocketAddress) addr = socket_address_new_unix(path);

    addr->mode = mode;
    return socket_listener_new(f->ctx, addr, on_accept, f, errp);
}

static int connect_unix(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    return fd;
}

/* Runs the loop until n connections have been accepted in all. */
static void wait_accepted(Fixture *f, guint n)
{
    while (f->accepted->len < n) {
        aio_poll(f->ctx, true);
    }
}

static mode_t file_mode(const char *path)
{
    struct stat st;

    g_assert_cmpint(lstat(path, &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    return st.st_mode & 07777;
}

/* ---- addresses ---------------------------------------------------------- */

static void test_address_parse_short_forms(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"unix:/tmp/s", "unix:/tmp/s"},
        {"/tmp/s", "unix:/tmp/s"},
        {"fd:3", "fd:3"},
        {"127.0.0.1:10809", "127.0.0.1:10809"},
        {"[::1]:0", "[::1]:0"},
        {":10809", ":10809"},
        {"localhost:nbd", "localhost:nbd"},
    };
    static const char *const bad[] = {"nonsense", "[::1]", "host:", "fd:x",
                                      "fd:-1"};

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(SocketAddress) a =
            socket_address_parse(cases[i].in, &error_abort);
        g_autofree char *s = socket_address_to_string(a);

        g_assert_cmpstr(s, ==, cases[i].out);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        Error *err = NULL;

        g_assert_null(socket_address_parse(bad[i], &err));
        g_assert_nonnull(err);
        error_free(err);
    }
}

static SocketAddress *from_keyval(const char *text, Error **errp)
{
    g_autoptr(GHashTable) opts = keyval_parse(text, NULL, NULL, &error_abort);
    g_autoptr(GHashTable) addr = keyval_take_prefix(opts, "addr");

    return socket_address_from_keyval(addr, "addr", errp);
}

static void test_address_from_keyval_flat_and_legacy(void)
{
    g_autoptr(SocketAddress) u =
        from_keyval("addr.type=unix,addr.path=/x,addr.mode=0660", &error_abort);
    g_autoptr(SocketAddress) l =
        from_keyval("addr.type=unix,addr.data.path=/y", &error_abort);
    g_autoptr(SocketAddress) i = from_keyval(
        "addr.type=inet,addr.host=::1,addr.port=10809", &error_abort);
    g_autoptr(SocketAddress) fd =
        from_keyval("addr.type=fd,addr.str=07", &error_abort);

    g_assert_cmpint(u->type, ==, SOCKET_ADDRESS_UNIX);
    g_assert_cmpstr(u->path, ==, "/x");
    g_assert_cmpint(u->mode, ==, 0660);
    g_assert_cmpstr(l->path, ==, "/y");
    g_assert_cmpint(l->mode, ==, -1);
    g_assert_cmpint(i->type, ==, SOCKET_ADDRESS_INET);
    g_assert_cmpstr(i->host, ==, "::1");
    g_assert_cmpstr(i->port, ==, "10809");
    g_assert_cmpint(fd->type, ==, SOCKET_ADDRESS_FD);
    g_assert_cmpint(fd->fd, ==, 7);
}

static void test_address_from_keyval_errors_name_the_key(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"addr.path=/x", "Parameter 'addr.type' is missing"},
        {"addr.type=unix", "Parameter 'addr.path' is missing"},
        {"addr.type=inet,addr.host=h", "Parameter 'addr.port' is missing"},
        {"addr.type=fd", "Parameter 'addr.str' is missing"},
        {"addr.type=vsock,addr.cid=3", "Parameter 'addr.type' does not "
                                       "accept value 'vsock' (unix, inet or "
                                       "fd)"},
        {"addr.type=unix,addr.path=/x,addr.mode=660",
         "Parameter 'addr.mode' must be between 0 and 511"},
        {"addr.type=unix,addr.path=/x,addr.abstract=on",
         "Abstract unix sockets are not supported"},
        {"addr.type=unix,addr.path=/x,addr.bogus=1",
         "addr: Invalid parameter 'bogus'"},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        Error *err = NULL;

        g_assert_null(from_keyval(cases[i].text, &err));
        g_assert_nonnull(err);
        g_assert_cmpstr(error_get_pretty(err), ==, cases[i].want);
        error_free(err);
    }
}

/* ---- unix listeners ------------------------------------------------------ */

static void test_live_socket_is_refused_and_keeps_serving(Fixture *f,
                                                          gconstpointer d)
{
    SocketListener *first = listen_unix(f, f->path, -1, &error_abort);
    g_autofree char *want =
        g_strdup_printf("'%s' is in use by another process", f->path);
    Error *err = NULL;
    int c;

    g_assert_null(listen_unix(f, f->path, -1, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, want);
    error_free(err);
    /* The refused one touched nothing: the first still serves. */
    c = connect_unix(f->path);
    wait_accepted(f, 1);
    close(c);
    socket_listener_free(first);
}

static void test_stale_socket_is_replaced(Fixture *f, gconstpointer d)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    SocketListener *l;
    int c;

    g_strlcpy(sun.sun_path, f->path, sizeof(sun.sun_path));
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    close(fd); /* bound, never listened: stale */
    l = listen_unix(f, f->path, -1, &error_abort);
    c = connect_unix(f->path);
    wait_accepted(f, 1);
    close(c);
    socket_listener_free(l);
    g_assert_false(g_file_test(f->path, G_FILE_TEST_EXISTS));
}

static void test_other_file_is_refused_and_kept(Fixture *f, gconstpointer d)
{
    Error *err = NULL;

    g_assert_true(g_file_set_contents(f->path, "keep", -1, NULL));
    g_assert_null(listen_unix(f, f->path, -1, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "is not a socket"));
    error_free(err);
    g_assert_true(g_file_test(f->path, G_FILE_TEST_IS_REGULAR));
}

static void test_mode_is_0600_whatever_the_umask(Fixture *f, gconstpointer d)
{
    mode_t old = umask(0);
    SocketListener *l = listen_unix(f, f->path, -1, &error_abort);

    umask(old);
    g_assert_cmpint(file_mode(f->path), ==, 0600);
    socket_listener_free(l);
}

static void test_mode_given_is_exact_whatever_the_umask(Fixture *f,
                                                        gconstpointer d)
{
    mode_t old = umask(077);
    SocketListener *l = listen_unix(f, f->path, 0660, &error_abort);

    umask(old);
    g_assert_cmpint(file_mode(f->path), ==, 0660);
    socket_listener_free(l);
}

static void test_free_removes_only_our_own_file(Fixture *f, gconstpointer d)
{
    SocketListener *l = listen_unix(f, f->path, -1, &error_abort);
    g_autofree char *moved = g_build_filename(f->dir, "moved", NULL);
    SocketListener *other;

    /* Someone moved ours away and another listener took the path. */
    g_assert_cmpint(rename(f->path, moved), ==, 0);
    other = listen_unix(f, f->path, -1, &error_abort);
    socket_listener_free(l);
    g_assert_true(g_file_test(f->path, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(moved, G_FILE_TEST_EXISTS));
    socket_listener_free(other);
    g_assert_false(g_file_test(f->path, G_FILE_TEST_EXISTS));
    g_remove(moved);

    /* A regular file put in place of ours stays too. */
    l = listen_unix(f, f->path, -1, &error_abort);
    g_assert_cmpint(unlink(f->path), ==, 0);
    g_assert_true(g_file_set_contents(f->path, "not yours", -1, NULL));
    socket_listener_free(l);
    g_assert_true(g_file_test(f->path, G_FILE_TEST_IS_REGULAR));
}

/* ---- accepting ------------------------------------------------------------
 */

static void test_out_of_fds_backs_off_then_recovers(Fixture *f, gconstpointer d)
{
    SocketListener *l = listen_unix(f, f->path, -1, &error_abort);
    struct rlimit saved, low;
    int clients[5];
    int lowest;

    for (int i = 0; i < 5; i++) {
        clients[i] = connect_unix(f->path); /* waiting in the backlog */
    }
    /* No fd left for accept(): it fails with EMFILE. */
    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &saved), ==, 0);
    lowest = dup(0);
    g_assert_cmpint(lowest, >=, 0);
    close(lowest);
    low = saved;
    low.rlim_cur = lowest;
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &low), ==, 0);
    aio_poll(f->ctx, false); /* the failed accept */
    g_assert_cmpuint(socket_listener_get_backoff_count(l), ==, 1);
    /* Not watched while accepting is impossible: nothing is ready, however
     * often the loop runs (a watched socket would be ready, and fail,
     * every time). */
    for (int i = 0; i < 100; i++) {
        g_assert_false(aio_poll(f->ctx, false));
    }
    g_assert_cmpuint(socket_listener_get_backoff_count(l), ==, 1);
    g_assert_cmpuint(f->accepted->len, ==, 0);
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &saved), ==, 0);
    /* The retry timer brings accepting back: every client gets in. */
    wait_accepted(f, 5);
    for (int i = 0; i < 5; i++) {
        close(clients[i]);
    }
    socket_listener_free(l);
}

static void test_flood_is_taken_in_bursts(Fixture *f, gconstpointer d)
{
    SocketListener *l = listen_unix(f, f->path, -1, &error_abort);
    int clients[SOCKET_ACCEPT_BURST + 4];
    guint n = G_N_ELEMENTS(clients);

    for (guint i = 0; i < n; i++) {
        clients[i] = connect_unix(f->path);
    }
    /* One wake-up takes at most one burst; the rest come next time. */
    aio_poll(f->ctx, false);
    g_assert_cmpuint(f->accepted->len, ==, SOCKET_ACCEPT_BURST);
    wait_accepted(f, n);
    for (guint i = 0; i < n; i++) {
        close(clients[i]);
    }
    socket_listener_free(l);
}

typedef struct OneAtATime {
    Fixture *f;
    SocketListener *l;
} OneAtATime;

static void pause_on_accept(SocketListener *l, int fd, void *opaque)
{
    OneAtATime *o = opaque;

    g_array_append_val(o->f->accepted, fd);
    socket_listener_set_accepting(l, false);
}

static void test_paused_listener_leaves_clients_in_the_backlog(Fixture *f,
                                                               gconstpointer d)
{
    g_autoptr(SocketAddress) addr = socket_address_new_unix(f->path);
    OneAtATime o = {.f = f};
    int clients[3];

    o.l = socket_listener_new(f->ctx, addr, pause_on_accept, &o, &error_abort);
    for (guint i = 0; i < G_N_ELEMENTS(clients); i++) {
        clients[i] = connect_unix(f->path); /* completes from the backlog */
    }
    /* Paused from the callback: the same wake-up takes no more. */
    wait_accepted(f, 1);
    for (int i = 0; i < 10; i++) {
        aio_poll(f->ctx, false);
    }
    g_assert_cmpuint(f->accepted->len, ==, 1);
    /* Resumed: the next one (and only it: the callback pauses again). */
    socket_listener_set_accepting(o.l, true);
    wait_accepted(f, 2);
    for (int i = 0; i < 10; i++) {
        aio_poll(f->ctx, false);
    }
    g_assert_cmpuint(f->accepted->len, ==, 2);
    socket_listener_set_accepting(o.l, true);
    wait_accepted(f, 3);
    for (guint i = 0; i < G_N_ELEMENTS(clients); i++) {
        close(clients[i]);
    }
    socket_listener_free(o.l);
}

static void free_from_callback(SocketListener *l, int fd, void *opaque)
{
    int *count = opaque;

    (*count)++;
    close(fd);
    socket_listener_free(l);
}

static void test_callback_may_free_the_listener(Fixture *f, gconstpointer d)
{
    g_autoptr(SocketAddress) addr = socket_address_new_unix(f->path);
    int count = 0;
    SocketListener *l = socket_listener_new(f->ctx, addr, free_from_callback,
                                            &count, &error_abort);
    int c1 = connect_unix(f->path);
    int c2 = connect_unix(f->path);

    (void)l;
    while (count == 0) {
        aio_poll(f->ctx, true);
    }
    g_assert_cmpint(count, ==, 1);
    g_assert_false(g_file_test(f->path, G_FILE_TEST_EXISTS));
    close(c1);
    close(c2);
}

/* ---- inet and fd --------------------------------------------------------- */

static void test_inet_port_zero_gets_a_port(Fixture *f, gconstpointer d)
{
    g_autoptr(SocketAddress) addr = socket_address_new_inet("127.0.0.1", "0");
    SocketListener *l =
        socket_listener_new(f->ctx, addr, on_accept, f, &error_abort);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(socket_listener_get_port(l), >, 0);
    sin.sin_port = htons(socket_listener_get_port(l));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(connect(c, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    wait_accepted(f, 1);
    close(c);
    socket_listener_free(l);
}

static void test_fd_address_takes_a_listening_socket(Fixture *f,
                                                     gconstpointer d)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_autoptr(SocketAddress) addr = NULL;
    g_autofree char *text = NULL;
    g_autofree char *want = NULL;
    Error *err = NULL;
    SocketListener *l;
    int c, file_fd;

    g_strlcpy(sun.sun_path, f->path, sizeof(sun.sun_path));
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    text = g_strdup_printf("fd:%d", fd);
    addr = socket_address_parse(text, &error_abort);
    /* Not yet listening: refused, and left open. */
    g_assert_null(socket_listener_new(f->ctx, addr, on_accept, f, &err));
    want = g_strdup_printf("Socket %d is not listening", fd);
    g_assert_cmpstr(error_get_pretty(err), ==, want);
    g_clear_pointer(&err, error_free);
    g_assert_cmpint(listen(fd, 4), ==, 0);
    l = socket_listener_new(f->ctx, addr, on_accept, f, &error_abort);
    c = connect_unix(f->path);
    wait_accepted(f, 1);
    close(c);
    socket_listener_free(l); /* closes fd */
    g_assert_cmpint(fcntl(fd, F_GETFD), ==, -1);
    /* Not a socket at all. */
    file_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    socket_address_free(g_steal_pointer(&addr));
    g_free(text);
    text = g_strdup_printf("fd:%d", file_fd);
    addr = socket_address_parse(text, &error_abort);
    g_assert_null(socket_listener_new(f->ctx, addr, on_accept, f, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "is not a socket"));
    error_free(err);
    close(file_fd);
}

/* ---- rate-limited logs ------------------------------------------------------
 */

/* Runs fn with stderr going to a file; returns what was written. */
static char *capture_stderr(void (*fn)(void *), void *opaque)
{
    char tmpl[] = "/tmp/test-socket-stderr-XXXXXX";
    int fd = mkstemp(tmpl);
    int saved = dup(STDERR_FILENO);
    char *text = NULL;

    g_assert_cmpint(fd, >=, 0);
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    fn(opaque);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    g_assert_true(g_file_get_contents(tmpl, &text, NULL, NULL));
    unlink(tmpl);
    return text;
}

static LogRateLimit test_log = LOG_RATELIMIT_INIT;

static void log_1000_lines(void *opaque)
{
    unsigned *printed = opaque;

    for (int i = 0; i < 1000; i++) {
        *printed += error_report_ratelimited(&test_log, "line %d", i);
    }
}

static void log_after_window(void *opaque)
{
    /* As if the window had passed. */
    test_log.window_start_ns -= LOG_RATELIMIT_WINDOW_NS;
    error_report_ratelimited(&test_log, "again");
}

static void test_ratelimited_log_lets_a_burst_through(void)
{
    unsigned printed = 0;
    g_autofree char *out = capture_stderr(log_1000_lines, &printed);
    g_autofree char *later = NULL;
    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);

    g_assert_cmpuint(printed, ==, LOG_RATELIMIT_BURST);
    g_assert_cmpuint(g_strv_length(lines), ==, LOG_RATELIMIT_BURST + 1);
    g_assert_nonnull(strstr(lines[0], "line 0"));
    g_assert_cmpuint(log_ratelimit_pending(&test_log), ==,
                     1000 - LOG_RATELIMIT_BURST);
    /* The next window's first line reports what was dropped. */
    later = capture_stderr(log_after_window, NULL);
    g_assert_nonnull(strstr(later, "again (990 similar messages suppressed)"));
    g_assert_cmpuint(log_ratelimit_pending(&test_log), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/socket/address/parse-short-forms",
                    test_address_parse_short_forms);
    g_test_add_func("/socket/address/from-keyval-flat-and-legacy",
                    test_address_from_keyval_flat_and_legacy);
    g_test_add_func("/socket/address/from-keyval-errors-name-the-key",
                    test_address_from_keyval_errors_name_the_key);
#define ADD(name, fn)                                                          \
    g_test_add("/socket/listener/" name, Fixture, NULL, fixture_setup, fn,     \
               fixture_teardown)
    ADD("live-socket-is-refused-and-keeps-serving",
        test_live_socket_is_refused_and_keeps_serving);
    ADD("stale-socket-is-replaced", test_stale_socket_is_replaced);
    ADD("other-file-is-refused-and-kept", test_other_file_is_refused_and_kept);
    ADD("mode-is-0600-whatever-the-umask",
        test_mode_is_0600_whatever_the_umask);
    ADD("mode-given-is-exact-whatever-the-umask",
        test_mode_given_is_exact_whatever_the_umask);
    ADD("free-removes-only-our-own-file", test_free_removes_only_our_own_file);
    ADD("out-of-fds-backs-off-then-recovers",
        test_out_of_fds_backs_off_then_recovers);
    ADD("flood-is-taken-in-bursts", test_flood_is_taken_in_bursts);
    ADD("callback-may-free-the-listener", test_callback_may_free_the_listener);
    ADD("paused-listener-leaves-clients-in-the-backlog",
        test_paused_listener_leaves_clients_in_the_backlog);
    ADD("inet-port-zero-gets-a-port", test_inet_port_zero_gets_a_port);
    ADD("fd-address-takes-a-listening-socket",
        test_fd_address_takes_a_listening_socket);
#undef ADD
    g_test_add_func("/socket/log/ratelimited-lets-a-burst-through",
                    test_ratelimited_log_lets_a_burst_through);
    return g_test_run();
}
