/*
 * libFuzzer target over the whole vhost-user-blk export: each input is what
 * a front-end sends on one connection, and the guest memory it shares.
 * The export runs in this thread (the main loop; the exported node stays in
 * the main loop's context), so a run is deterministic; the input ends when
 * the export has closed the connection and released it, so leaks and
 * use-after-free of the close path show up under ASan/LSan.
 *
 * Input: frames, each a kind byte, a 12-byte message header and the payload
 * the header announces (cut at the end of the input).  The kind's low two
 * bits are how many file descriptors go with the message; bit 2 makes them
 * the guest memory (a 64 KiB memfd) instead of fresh eventfds.  A kind of
 * 0xff ends the frames: the rest of the input is the guest memory's first
 * bytes (rings, descriptors, requests).  After the last frame every eventfd
 * sent is written once (a kick on each ring), the loop runs, and the socket
 * is closed.  The corpus seeds a valid set-up sequence with a request in
 * the rings, so that mutations reach the data path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dataplane/block.h"
#include "dataplane/main-loop.h"
#include "dataplane/vhost-user-blk.h"
#include "tests/unit/block-test-util.h"
#include "vhost/protocol.h"

#define GUEST_SIZE 65536
#define MAX_EVENTFDS 64

static char sock_path[108];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *dir = g_dir_make_tmp("vhost-fuzz-XXXXXX", NULL);
    SocketAddress *addr;
    VhostUserBlkExportOptions o = {
        .id = "e0",
        .node_name = "f0",
        .writable = true,
        .num_queues = 2,
        .logical_block_size = 512,
    };

    g_assert_nonnull(dir);
    g_snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
    g_free(dir);
    main_loop_init(&error_abort);
    /* The node stays open for the whole run: the export holds it. */
    test_open("driver=memory,node-name=f0,size=1M");
    addr = socket_address_new_unix(sock_path);
    o.addr = addr;
    vhost_user_blk_export_add(&o, &error_abort);
    socket_address_free(addr);
    return 0;
}

/* Sends len bytes with nfds fds; false once the export has hung up. */
static bool send_frame(int fd, const uint8_t *buf, size_t len, const int *fds,
                       unsigned nfds)
{
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {(void *)buf, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

    if (nfds) {
        struct cmsghdr *cmsg;

        memset(&control, 0, sizeof(control));
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(cmsg), fds, nfds * sizeof(int));
    }
    while (iov.iov_len > 0) {
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && errno == EAGAIN) {
            /* The export reads one message at a time: let it. */
            main_loop_wait(false);
            continue;
        }
        if (n <= 0) {
            return false;
        }
        msg.msg_control = NULL;
        msg.msg_controllen = 0;
        iov.iov_base = (uint8_t *)iov.iov_base + n;
        iov.iov_len -= (size_t)n;
    }
    return true;
}

static void drain_replies(int fd)
{
    uint8_t buf[4096];
    ssize_t n;

    do {
        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    } while (n > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int efds[MAX_EVENTFDS];
    unsigned nefds = 0;
    bool alive = true;
    uint8_t *mem;
    int memfd;
    int fd, i;

    memfd = memfd_create("guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    g_assert(memfd >= 0 && ftruncate(memfd, GUEST_SIZE) == 0);
    g_assert(fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
    mem = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    g_assert(mem != MAP_FAILED);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert(fd >= 0);
    strcpy(sun.sun_path, sock_path);
    /* A listening unix socket completes connect() from its backlog. */
    g_assert(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);

    while (alive && size >= 1) {
        uint8_t kind = data[0];
        uint32_t psize;
        size_t len;
        int fds[3];
        unsigned nfds = kind & 3;

        if (kind == 0xff) {
            size_t n = size - 1 < GUEST_SIZE ? size - 1 : GUEST_SIZE;

            memcpy(mem, data + 1, n);
            break;
        }
        if (size < 1 + VHOST_USER_HDR_SIZE) {
            break;
        }
        memcpy(&psize, data + 9, 4);
        len = VHOST_USER_HDR_SIZE + psize;
        if (len > size - 1) {
            len = size - 1;
        }
        for (unsigned k = 0; k < nfds; k++) {
            if (kind & 4) {
                fds[k] = memfd;
            } else if (nefds < MAX_EVENTFDS) {
                fds[k] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                g_assert(fds[k] >= 0);
                efds[nefds++] = fds[k];
            } else {
                fds[k] = efds[nefds - 1]; /* enough made: reuse one */
            }
        }
        alive = send_frame(fd, data + 1, len, fds, nfds);
        data += 1 + len;
        size -= 1 + len;
        drain_replies(fd);
        main_loop_wait(false);
    }
    /* A kick on every ring (and a call: harmless), then the guest's
     * requests run. */
    for (unsigned k = 0; k < nefds; k++) {
        uint64_t one = 1;

        if (write(efds[k], &one, sizeof(one)) < 0) {
            /* a full counter: already kicked */
        }
    }
    for (i = 0; i < 100; i++) {
        drain_replies(fd);
        main_loop_wait(false);
    }
    close(fd);
    for (i = 0; i < 100000 && vhost_user_blk_get_connection_count() > 0; i++) {
        main_loop_wait(false);
    }
    g_assert(vhost_user_blk_get_connection_count() == 0);
    for (unsigned k = 0; k < nefds; k++) {
        close(efds[k]);
    }
    munmap(mem, GUEST_SIZE);
    close(memfd);
    return 0;
}
