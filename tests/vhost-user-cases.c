/*
 * vhost-user-cases: front-end scenarios against a running vhost-user-blk
 * backend (dataplaned or qemu-storage-daemon), for the integration tests
 * (tests/integration/dataplaned/vhost_user_blk_tests.py).  Each exits 0
 * when the backend behaved, 1 with a message otherwise.
 *
 *   vhost-user-cases io SOCK QUEUES       write and read back on each queue
 *   vhost-user-cases read-only SOCK       writes refused, reads served
 *   vhost-user-cases zeroes SOCK          write-zeroes and discard read as
 *                                         zeroes (the first 64 KiB)
 *   vhost-user-cases hostile SOCK         malformed messages: each gets an
 *                                         error reply or a closed socket,
 *                                         then a good front-end is served
 *   vhost-user-cases disconnect SOCK N    N times: requests in flight, then
 *                                         the socket closed; then I/O works
 *   vhost-user-cases resize SOCK          prints "ready", waits for the
 *                                         backend's config-change message,
 *                                         prints the new capacity and
 *                                         writes the disk's last 4 KiB
 *   vhost-user-cases truncate SOCK        shares unsealed memory, then
 *                                         truncates the file and kicks: the
 *                                         backend must close the connection
 *                                         (and live)
 *   vhost-user-cases resume SOCK N        N writes with inflight tracking;
 *                                         prints "submitted", waits for a
 *                                         line on stdin (the backend was
 *                                         restarted meanwhile), reconnects,
 *                                         expects the N writes to complete
 *                                         and reads them back
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tests/vhost-user-client.h"

static const char *sock;

#define FAIL(...)                                                              \
    do {                                                                       \
        fprintf(stderr, "vhost-user-cases: " __VA_ARGS__);                     \
        fprintf(stderr, "\n");                                                 \
        exit(1);                                                               \
    } while (0)

#define EXPECT(cond, ...)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            FAIL(__VA_ARGS__);                                                 \
        }                                                                      \
    } while (0)

static void open_client(VuClient *c, VuClientConfig *cfg)
{
    int ret = vu_client_init(c, cfg);

    if (ret == 0) {
        ret = vu_client_connect(c, sock, 10000);
    }
    if (ret == 0) {
        ret = vu_client_setup(c, false);
    }
    EXPECT(ret == 0, "set-up with %s failed: %s", sock, strerror(-ret));
}

static int io(VuClient *c, unsigned q, uint32_t type, uint64_t sector,
              void *buf, size_t len)
{
    return vu_client_io(c, q, type, sector, buf, len);
}

static int case_io(unsigned queues)
{
    VuClientConfig cfg = {.num_queues = queues, .interrupts = true};
    uint8_t buf[65536];
    char id[VIRTIO_BLK_ID_BYTES + 1] = {0};
    VuClient c;

    open_client(&c, &cfg);
    for (unsigned q = 0; q < queues; q++) {
        vu_pattern_fill(buf, sizeof(buf), q, 5);
        EXPECT(io(&c, q, VIRTIO_BLK_T_OUT, q * 128, buf, sizeof(buf)) == 0,
               "write on queue %u failed", q);
    }
    for (unsigned q = 0; q < queues; q++) {
        memset(buf, 0, sizeof(buf));
        EXPECT(io(&c, queues - 1 - q, VIRTIO_BLK_T_IN, q * 128, buf,
                  sizeof(buf)) == 0,
               "read on queue %u failed", queues - 1 - q);
        EXPECT(vu_pattern_check(buf, sizeof(buf), q, 5),
               "queue %u: data read back differs", q);
    }
    EXPECT(io(&c, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0) == 0, "flush failed");
    EXPECT(io(&c, 0, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES) == 0,
           "GET_ID failed");
    printf("capacity=%llu id=%s queues=%u\n",
           (unsigned long long)vu_client_capacity(&c), id, queues);
    EXPECT(vu_client_stop(&c, NULL) == 0, "GET_VRING_BASE failed");
    vu_client_destroy(&c);
    return 0;
}

static int case_read_only(void)
{
    VuClientConfig cfg = {.interrupts = true};
    uint8_t buf[4096];
    VuClient c;

    open_client(&c, &cfg);
    EXPECT(c.features & (1ULL << VIRTIO_BLK_F_RO), "VIRTIO_BLK_F_RO missing");
    EXPECT(io(&c, 0, VIRTIO_BLK_T_IN, 0, buf, sizeof(buf)) == 0, "read failed");
    EXPECT(io(&c, 0, VIRTIO_BLK_T_OUT, 0, buf, sizeof(buf)) ==
               VIRTIO_BLK_S_IOERR,
           "write to a read-only export not refused");
    vu_client_destroy(&c);
    return 0;
}

static int ranges(VuClient *c, uint32_t type, uint64_t sector, uint32_t n,
                  uint32_t flags)
{
    VirtioBlkDiscardWriteZeroes seg = {sector, n, flags};

    return io(c, 0, type, 0, &seg, sizeof(seg));
}

static int case_zeroes(void)
{
    VuClientConfig cfg = {.interrupts = true};
    static uint8_t buf[65536], zero[16384];
    VuClient c;

    open_client(&c, &cfg);
    EXPECT(c.acked_features & (1ULL << VIRTIO_BLK_F_DISCARD),
           "DISCARD not offered");
    EXPECT(c.acked_features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES),
           "WRITE_ZEROES not offered");
    vu_pattern_fill(buf, sizeof(buf), 1, 1);
    EXPECT(io(&c, 0, VIRTIO_BLK_T_OUT, 0, buf, sizeof(buf)) == 0,
           "write failed");
    EXPECT(ranges(&c, VIRTIO_BLK_T_WRITE_ZEROES, 0, 32,
                  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) == 0,
           "write-zeroes failed");
    EXPECT(ranges(&c, VIRTIO_BLK_T_WRITE_ZEROES, 32, 32, 0) == 0,
           "write-zeroes without unmap failed");
    EXPECT(ranges(&c, VIRTIO_BLK_T_DISCARD, 64, 32, 0) == 0, "discard failed");
    EXPECT(io(&c, 0, VIRTIO_BLK_T_IN, 0, buf, sizeof(buf)) == 0, "read failed");
    EXPECT(!memcmp(buf, zero, 16384) && !memcmp(buf + 16384, zero, 16384),
           "write-zeroes did not zero");
    /* A discarded range may read as zeroes or as the old data. */
    {
        uint8_t old[65536];

        vu_pattern_fill(old, sizeof(old), 1, 1);
        EXPECT(!memcmp(buf + 32768, zero, 16384) ||
                   !memcmp(buf + 32768, old + 32768, 16384),
               "discarded range reads as neither zeroes nor the old data");
        EXPECT(!memcmp(buf + 49152, old + 49152, 16384),
               "the range after was touched");
    }
    EXPECT(io(&c, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0) == 0, "flush failed");
    vu_client_destroy(&c);
    return 0;
}

/* Sends one message on a fresh connection; the backend must close it. */
static void expect_closed(const char *what, uint32_t req, uint32_t flags,
                          const void *p, uint32_t size, const int *fds,
                          unsigned nfds)
{
    VuClientConfig cfg = {0};
    VuClient c;

    EXPECT(vu_client_init(&c, &cfg) == 0 &&
               vu_client_connect(&c, sock, 10000) == 0,
           "connect failed");
    EXPECT(vu_send(&c, req, flags, p, size, fds, nfds) == 0, "send failed");
    EXPECT(vu_peer_closed(&c, 10000), "%s: the connection stayed open", what);
    vu_client_destroy(&c);
}

static int case_hostile(void)
{
    uint8_t p[4096] = {0};
    int efd[10];
    uint64_t u;
    VuClientConfig cfg = {.num_queues = 1, .interrupts = true};
    uint8_t buf[512];
    VuClient c;

    for (int i = 0; i < 10; i++) {
        efd[i] = eventfd(0, EFD_CLOEXEC);
    }
    expect_closed("GET_FEATURES with a payload", VHOST_USER_GET_FEATURES, 1, p,
                  8, NULL, 0);
    expect_closed("short SET_FEATURES", VHOST_USER_SET_FEATURES, 1, p, 3, NULL,
                  0);
    expect_closed("version 3", VHOST_USER_GET_FEATURES, 3, NULL, 0, NULL, 0);
    expect_closed("oversized payload", VHOST_USER_SET_OWNER, 1, p, 4096, NULL,
                  0);
    expect_closed("unknown request", 4242, 1, NULL, 0, NULL, 0);
    memcpy(p, &(uint32_t){3}, 4);
    expect_closed("3 regions, 2 fds", VHOST_USER_SET_MEM_TABLE, 1, p, 8 + 96,
                  efd, 2);
    memcpy(p, &(uint32_t){9}, 4);
    expect_closed("9 regions", VHOST_USER_SET_MEM_TABLE, 1, p, 8 + 256, efd, 8);
    expect_closed("10 fds", VHOST_USER_SET_OWNER, 1, NULL, 0, efd, 10);
    u = 0;
    expect_closed("kick without fd", VHOST_USER_SET_VRING_KICK, 1, &u, 8, NULL,
                  0);
    u = 200;
    expect_closed("call for ring 200", VHOST_USER_SET_VRING_CALL, 1, &u, 8, efd,
                  1);
    /* Memory regions given as eventfds. */
    {
        VhostUserMemRegion r = {0, 1 << 20, 0x10000000, 0};

        memcpy(p, &(uint32_t){1}, 4);
        vhost_user_encode_mem_region(p + 8, &r);
        expect_closed("memory region that is an eventfd",
                      VHOST_USER_SET_MEM_TABLE, 1, p, 40, efd, 1);
    }
    for (int i = 0; i < 10; i++) {
        close(efd[i]);
    }
    /* A good front-end afterwards. */
    open_client(&c, &cfg);
    EXPECT(io(&c, 0, VIRTIO_BLK_T_IN, 0, buf, sizeof(buf)) == 0,
           "read after the hostile ones failed");
    vu_client_destroy(&c);
    return 0;
}

static int case_disconnect(unsigned rounds)
{
    uint8_t buf[4096];

    for (unsigned r = 0; r < rounds; r++) {
        VuClientConfig cfg = {
            .num_queues = 2, .slots = 32, .slot_data_size = 65536};
        VuClient c;

        open_client(&c, &cfg);
        for (unsigned q = 0; q < 2; q++) {
            VuQueue *vq = &c.queues[q];

            for (unsigned s = 0; s < 32; s++) {
                vu_queue_add(vq, s, s % 2 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
                             (r * 64 + s) * 128, 65536, 4);
            }
            vu_queue_publish(vq);
        }
        /* Gone without waiting for any of it. */
        vu_client_destroy(&c);
    }
    {
        VuClientConfig cfg = {.interrupts = true};
        VuClient c;

        open_client(&c, &cfg);
        EXPECT(io(&c, 0, VIRTIO_BLK_T_IN, 0, buf, sizeof(buf)) == 0,
               "read after %u disconnections failed", rounds);
        vu_client_destroy(&c);
    }
    printf("disconnected %u times with requests in flight\n", rounds);
    return 0;
}

static int case_resume(unsigned n)
{
    VuClientConfig cfg = {
        .inflight = true, .interrupts = true, .slot_data_size = 4096};
    unsigned done = 0;
    char line[64];
    VuClient c;
    VuQueue *q;
    int ret;

    if (n < 1 || n > 64) {
        FAIL("resume: between 1 and 64 requests");
    }
    cfg.slots = n + 1;
    open_client(&c, &cfg);
    q = &c.queues[0];
    for (unsigned i = 0; i < n; i++) {
        vu_pattern_fill(q->slots[i].data, 4096, 1000 + i, 1);
        vu_queue_add(q, i, VIRTIO_BLK_T_OUT, (1000 + i) * 8, 4096, 1);
    }
    vu_queue_publish(q);
    done += vu_queue_poll(q, NULL, NULL);
    printf("submitted %u (%u done already)\n", n, done);
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin)) {
        FAIL("resume: stdin closed before the go-ahead");
    }
    /* The old backend is gone: whatever it returned is in the used ring;
     * the new one must redo the rest. */
    vu_client_disconnect(&c);
    ret = vu_client_connect(&c, sock, 10000);
    if (ret == 0) {
        ret = vu_client_setup(&c, true);
    }
    EXPECT(ret == 0, "resume: set-up failed: %s", strerror(-ret));
    while (done < n) {
        unsigned got = vu_queue_wait(q, NULL, NULL, 30000);

        EXPECT(got > 0, "resume: %u of %u writes never completed", n - done, n);
        done += got;
    }
    for (unsigned i = 0; i < n; i++) {
        uint8_t buf[4096];

        EXPECT(*q->slots[i].status == VIRTIO_BLK_S_OK,
               "resume: write %u failed (%d)", i, *q->slots[i].status);
        EXPECT(io(&c, 0, VIRTIO_BLK_T_IN, (1000 + i) * 8, buf, 4096) == 0,
               "resume: read back %u failed", i);
        EXPECT(vu_pattern_check(buf, 4096, 1000 + i, 1),
               "resume: write %u is not on the disk", i);
    }
    printf("resumed %u\n", n);
    vu_client_destroy(&c);
    return 0;
}

static int case_resize(void)
{
    VuClientConfig cfg = {.interrupts = true, .backend_channel = true};
    uint8_t buf[4096] = {1};
    uint32_t req = 0;
    uint64_t cap;
    VuClient c;

    open_client(&c, &cfg);
    EXPECT(c.backend_sock >= 0, "no backend channel negotiated");
    printf("ready capacity=%llu\n", (unsigned long long)vu_client_capacity(&c));
    fflush(stdout);
    EXPECT(vu_client_backend_msg(&c, 30000, &req) == 0,
           "resize: no message on the backend channel");
    EXPECT(req == VHOST_USER_BACKEND_CONFIG_CHANGE_MSG,
           "resize: backend request %u", req);
    EXPECT(vu_client_get_config(&c) == 0, "GET_CONFIG failed");
    cap = vu_client_capacity(&c);
    EXPECT(io(&c, 0, VIRTIO_BLK_T_OUT, cap / 512 - 8, buf, 4096) == 0,
           "write at the new end failed");
    printf("capacity=%llu\n", (unsigned long long)cap);
    vu_client_destroy(&c);
    return 0;
}

static int case_truncate(void)
{
    VuClientConfig cfg = {.interrupts = true, .unsealed_memory = true};
    uint8_t buf[4096];
    uint64_t one = 1;
    VuClient c;

    open_client(&c, &cfg);
    EXPECT(io(&c, 0, VIRTIO_BLK_T_IN, 0, buf, sizeof(buf)) == 0, "read failed");
    /* From here on this process must not touch its guest memory either. */
    EXPECT(ftruncate(c.mem.fd, 0) == 0, "ftruncate: %s", strerror(errno));
    EXPECT(write(c.queues[0].kick_fd, &one, sizeof(one)) == sizeof(one),
           "kick failed");
    EXPECT(vu_peer_closed(&c, 10000),
           "the backend kept a connection whose memory is gone");
    vu_client_destroy(&c);
    printf("closed after the truncation\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: vhost-user-cases CASE SOCKET [ARG]\n");
        return 2;
    }
    sock = argv[2];
    if (!strcmp(argv[1], "io")) {
        return case_io(argc > 3 ? (unsigned)atoi(argv[3]) : 1);
    }
    if (!strcmp(argv[1], "read-only")) {
        return case_read_only();
    }
    if (!strcmp(argv[1], "zeroes")) {
        return case_zeroes();
    }
    if (!strcmp(argv[1], "hostile")) {
        return case_hostile();
    }
    if (!strcmp(argv[1], "disconnect")) {
        return case_disconnect(argc > 3 ? (unsigned)atoi(argv[3]) : 10);
    }
    if (!strcmp(argv[1], "truncate")) {
        return case_truncate();
    }
    if (!strcmp(argv[1], "resize")) {
        return case_resize();
    }
    if (!strcmp(argv[1], "resume")) {
        return case_resume(argc > 3 ? (unsigned)atoi(argv[3]) : 16);
    }
    fprintf(stderr, "vhost-user-cases: unknown case '%s'\n", argv[1]);
    return 2;
}
