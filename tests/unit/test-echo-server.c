/*
 * The echo server example: connections accepted by the main loop are
 * spread across IOThreads, and every byte comes back.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dataplane/main-loop.h"
#include "examples/echo.h"
#include "util/thread.h"

#define N_IOTHREADS 3
#define N_CONNS 9
#define CHUNK 4096
#define ROUNDS 16

typedef struct Client {
    char path[108];
    bool ok; /* read after join */
} Client;

static int connect_unix(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    return fd;
}

static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static bool recv_all(int fd, char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, buf, len, 0);

        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/*
 * Opens every connection first (so they are all live at once, spread
 * over the IOThreads), then echoes ROUNDS chunks through each in turn.
 * Runs in its own thread while the main thread runs the main loop; quits
 * the main loop when done.
 */
static void *client_thread(void *opaque)
{
    Client *c = opaque;
    int fds[N_CONNS];
    char out[CHUNK], in[CHUNK];
    int i, r;

    c->ok = true;
    for (i = 0; i < N_CONNS; i++) {
        fds[i] = connect_unix(c->path);
    }
    for (r = 0; r < ROUNDS && c->ok; r++) {
        for (i = 0; i < N_CONNS && c->ok; i++) {
            size_t len = 1 + (size_t)((r * 977 + i * 131) % CHUNK);
            size_t k;

            for (k = 0; k < len; k++) {
                out[k] = (char)(k * 7 + i + r);
            }
            c->ok = send_all(fds[i], out, len) && recv_all(fds[i], in, len) &&
                    memcmp(in, out, len) == 0;
        }
    }
    for (i = 0; i < N_CONNS; i++) {
        close(fds[i]);
    }
    main_loop_quit();
    return NULL;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(fd, 64), ==, 0);
    return fd;
}

static void test_echo_server_echoes_across_iothreads(void)
{
    g_autofree char *dir = g_dir_make_tmp("echo-XXXXXX", NULL);
    Client client = {.ok = false};
    EchoServer *server;
    DpThread t;
    int i;

    g_assert_nonnull(dir);
    g_snprintf(client.path, sizeof(client.path), "%s/sock", dir);
    server =
        echo_server_new(listen_unix(client.path), N_IOTHREADS, &error_abort);
    dp_thread_create(&t, "client", client_thread, &client);
    main_loop_run();
    dp_thread_join(&t);
    g_assert_true(client.ok);
    for (i = 0; i < N_IOTHREADS; i++) {
        g_assert_cmpuint(echo_server_get_accepted(server, i), ==,
                         N_CONNS / N_IOTHREADS);
    }
    echo_server_free(server);
    g_unlink(client.path);
    g_rmdir(dir);
}

static void test_echo_server_needs_an_iothread(void)
{
    Error *err = NULL;

    g_assert_null(echo_server_new(0, 0, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "at least one IOThread"));
    error_free(err);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    main_loop_init(&error_abort);
    g_test_add_func("/echo-server/echoes-across-iothreads",
                    test_echo_server_echoes_across_iothreads);
    g_test_add_func("/echo-server/needs-an-iothread",
                    test_echo_server_needs_an_iothread);
    return g_test_run();
}
