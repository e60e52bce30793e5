/*
 * echo-server: a TCP or unix-socket echo server on libdataplane.
 *
 *     echo-server [--iothreads N] --unix PATH
 *     echo-server [--iothreads N] --port PORT      (listens on 127.0.0.1)
 *
 * The main loop accepts connections and hands each one to an IOThread
 * (round robin) with a BH; the IOThread echoes everything it reads.
 * SIGINT or SIGTERM stops it cleanly.  Prints "listening" once ready.
 */
/* pipe2, accept4: built outside the project too (tests/install). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <dataplane/main-loop.h>
#include "echo.h"

static int listen_unix(const char *path, Error **errp)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        error_setg(errp, "unix socket path '%s' is too long", path);
        return -1;
    }
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "socket");
        return -1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(fd, 128) < 0) {
        error_setg_errno(errp, errno, "cannot listen on '%s'", path);
        close(fd);
        return -1;
    }
    return fd;
}

static int listen_tcp(const char *port_str, Error **errp)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    char *end;
    long port = strtol(port_str, &end, 10);
    int one = 1;
    int fd;

    if (*port_str == '\0' || *end != '\0' || port < 0 || port > 65535) {
        error_setg(errp, "invalid port '%s'", port_str);
        return -1;
    }
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "socket");
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(fd, 128) < 0) {
        error_setg_errno(errp, errno, "cannot listen on 127.0.0.1:%ld", port);
        close(fd);
        return -1;
    }
    return fd;
}

static gboolean on_signal(gpointer opaque)
{
    main_loop_quit();
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    const char *unix_path = NULL;
    const char *port = NULL;
    int n_iothreads = 4;
    EchoServer *server;
    Error *err = NULL;
    int fd;
    int i;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--unix") && i + 1 < argc) {
            unix_path = argv[++i];
        } else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            port = argv[++i];
        } else if (!strcmp(argv[i], "--iothreads") && i + 1 < argc) {
            n_iothreads = atoi(argv[++i]);
        } else {
            fprintf(stderr,
                    "usage: %s [--iothreads N] (--unix PATH | --port PORT)\n",
                    argv[0]);
            return 2;
        }
    }
    if (!unix_path == !port) {
        fprintf(stderr, "%s: give exactly one of --unix and --port\n", argv[0]);
        return 2;
    }

    if (!main_loop_init(&err)) {
        error_report_err(err);
        return 1;
    }
    fd = unix_path ? listen_unix(unix_path, &err) : listen_tcp(port, &err);
    if (fd < 0) {
        error_report_err(err);
        return 1;
    }
    server = echo_server_new(fd, n_iothreads, &err);
    if (!server) {
        error_report_err(err);
        close(fd);
        return 1;
    }
    g_unix_signal_add(SIGINT, on_signal, NULL);
    g_unix_signal_add(SIGTERM, on_signal, NULL);
    printf("listening\n");
    fflush(stdout);

    main_loop_run();

    echo_server_free(server);
    if (unix_path) {
        unlink(unix_path);
    }
    return 0;
}
