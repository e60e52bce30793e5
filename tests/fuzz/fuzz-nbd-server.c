/*
 * libFuzzer target over the whole server: each input is the byte stream a
 * client sends on one connection (handshake, options, requests), followed
 * by end-of-file.  The server runs in this thread (main loop; the exported
 * memory nodes stay in the main loop's context), so a run is
 * deterministic; the input ends when the server has closed the connection
 * and released it, so leaks and use-after-free of the close path show up
 * under ASan/LSan.  The corpus seeds a valid handshake so that mutations
 * reach the transmission phase.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dataplane/block.h"
#include "dataplane/main-loop.h"
#include "dataplane/nbd.h"
#include "tests/unit/block-test-util.h"

static char sock_path[108];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *dir = g_dir_make_tmp("nbd-fuzz-XXXXXX", NULL);

    g_assert_nonnull(dir);
    g_snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
    g_free(dir);
    main_loop_init(&error_abort);
    /* The nodes stay open for the whole run: the exports hold them. */
    test_open("driver=memory,node-name=f0,size=1M");
    test_open("driver=memory,node-name=f1,size=64k,read-only=on");
    {
        NbdServerOptions so = {0};
        g_autoptr(SocketAddress) addr = socket_address_new_unix(sock_path);

        nbd_server_start(addr, &so, &error_abort);
    }
    nbd_export_add("e0", "f0", "disk", "fuzz", true, &error_abort);
    nbd_export_add("e1", "f1", "ro", NULL, false, &error_abort);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    uint8_t buf[65536];
    size_t sent = 0;
    bool shut = false, eof = false;
    int fd, i;

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert(fd >= 0);
    strcpy(sun.sun_path, sock_path);
    /* A listening unix socket completes connect() from its backlog. */
    g_assert(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);

    for (i = 0; i < 100000; i++) {
        ssize_t n;

        if (sent < size) {
            n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += n;
            } else if (n < 0 && errno != EAGAIN) {
                sent = size; /* the server has hung up */
            }
        }
        if (sent == size && !shut) {
            shutdown(fd, SHUT_WR);
            shut = true;
        }
        while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
        }
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            eof = true;
        }
        if (eof && nbd_server_get_connection_count() == 0) {
            break;
        }
        main_loop_wait(false);
    }
    g_assert(eof && nbd_server_get_connection_count() == 0);
    close(fd);
    return 0;
}
