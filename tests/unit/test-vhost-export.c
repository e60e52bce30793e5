/*
 * The vhost-user-blk export in-process: the main loop runs here, the nodes
 * live in IOThreads, and the project's own front-end
 * (tests/vhost-user-client.c) runs in a thread of its own.  Covers I/O on
 * several queues, read-only exports, discard and write-zeroes, bad
 * requests, hostile messages and chains, a front-end that goes away with
 * requests in flight, inflight resubmission, and node moves under I/O, so
 * that the sanitizer runs of the unit suite see the export's threads.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dataplane/block.h"
#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "dataplane/object.h"
#include "dataplane/vhost-user-blk.h"
#include "tests/unit/block-test-util.h"
#include "tests/unit/test-util.h"
#include "tests/vhost-user-client.h"
#include "vhost/inflight.h"
#include "vhost/vhost-internal.h"
#include "util/clock.h"
#include "util/thread.h"

#define DISK_SIZE (8 << 20)

typedef struct Fixture {
    char *dir;
    char *sock;    /* e0: m0, 4 queues, writable */
    char *sock_ro; /* e1: m1, read-only */
    IOThread *io;
    IOThread *io2;
    BlockDriverState *bs;
    BlockDriverState *ro;
    int fds_before;
} Fixture;

static void add_export(const char *id, const char *node, const char *sock,
                       bool writable, unsigned queues)
{
    g_autoptr(SocketAddress) addr = socket_address_new_unix(sock);
    VhostUserBlkExportOptions o = {
        .id = id,
        .node_name = node,
        .addr = addr,
        .writable = writable,
        .num_queues = queues,
        .logical_block_size = 512,
    };

    g_assert_true(vhost_user_blk_export_add(&o, &error_abort));
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->dir = g_dir_make_tmp("vhost-export-XXXXXX", NULL);
    f->sock = g_build_filename(f->dir, "e0.sock", NULL);
    f->sock_ro = g_build_filename(f->dir, "e1.sock", NULL);
    f->io = iothread_new("vh-io", NULL, &error_abort);
    f->io2 = iothread_new("vh-io2", NULL, &error_abort);
    f->bs = test_open("driver=memory,node-name=m0,size=8M");
    f->ro = test_open("driver=memory,node-name=m1,size=1M,read-only=on");
    g_assert_true(bdrv_set_aio_context(f->bs, iothread_get_aio_context(f->io),
                                       &error_abort));
    f->fds_before = count_open_fds();
    add_export("e0", "m0", f->sock, true, 4);
    add_export("e1", "m1", f->sock_ro, false, 1);
}

static void wait_connections(unsigned want)
{
    int i;

    for (i = 0; i < 100000 && vhost_user_blk_get_connection_count() != want;
         i++) {
        main_loop_wait(true);
    }
    g_assert_cmpuint(vhost_user_blk_get_connection_count(), ==, want);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    if (vhost_user_blk_export_exists("e0")) {
        g_assert_true(vhost_user_blk_export_del("e0", true, &error_abort));
    }
    if (vhost_user_blk_export_exists("e1")) {
        g_assert_true(vhost_user_blk_export_del("e1", true, &error_abort));
    }
    wait_connections(0);
    while (main_loop_wait(false)) {
    }
    /* Every socket, mapping fd and eventfd is closed again. */
    g_assert_cmpint(count_open_fds(), ==, f->fds_before);
    g_assert_false(g_file_test(f->sock, G_FILE_TEST_EXISTS));
    bdrv_unref(f->bs);
    bdrv_unref(f->ro);
    iothread_destroy(f->io);
    iothread_destroy(f->io2);
    g_rmdir(f->dir);
    g_free(f->sock);
    g_free(f->sock_ro);
    g_free(f->dir);
}

/* ---- a client thread, with the main loop running meanwhile ------------ */

typedef struct ClientThread {
    GThread *thread;
    void (*fn)(struct ClientThread *ct);
    Fixture *f;
    void *arg;
    int step; /* atomic: how far the client has got */
    int done; /* atomic */
} ClientThread;

static gpointer client_thread_run(gpointer opaque)
{
    ClientThread *ct = opaque;

    ct->fn(ct);
    g_atomic_int_set(&ct->done, true);
    g_main_context_wakeup(NULL);
    return NULL;
}

static ClientThread *client_start(Fixture *f, void (*fn)(ClientThread *),
                                  void *arg)
{
    ClientThread *ct = g_new0(ClientThread, 1);

    ct->f = f;
    ct->fn = fn;
    ct->arg = arg;
    ct->thread = g_thread_new("vu-client", client_thread_run, ct);
    return ct;
}

static void client_step(ClientThread *ct, int step)
{
    g_atomic_int_set(&ct->step, step);
    g_main_context_wakeup(NULL);
}

/* Main side: runs the main loop until the client reached step n. */
static void main_until_step(ClientThread *ct, int n)
{
    int i;

    for (i = 0; i < 1000000 && g_atomic_int_get(&ct->step) < n &&
                !g_atomic_int_get(&ct->done);
         i++) {
        main_loop_wait(true);
    }
    g_assert_cmpint(g_atomic_int_get(&ct->step), >=, n);
}

/* Client side: waits (10 s at most) until the main side set *flag. */
static void client_wait_flag(int *flag)
{
    int64_t deadline = clock_monotonic_ns() + 10 * (int64_t)1000000000;

    while (!g_atomic_int_get(flag) && clock_monotonic_ns() < deadline) {
        g_usleep(1000);
    }
    g_assert_true(g_atomic_int_get(flag));
}

static void client_finish(ClientThread *ct)
{
    int i;

    for (i = 0; i < 1000000 && !g_atomic_int_get(&ct->done); i++) {
        main_loop_wait(true);
    }
    g_assert_true(g_atomic_int_get(&ct->done));
    g_thread_join(ct->thread);
    g_free(ct);
}

static void run_client(Fixture *f, void (*fn)(ClientThread *), void *arg)
{
    client_finish(client_start(f, fn, arg));
}

/* ---- client helpers ----------------------------------------------------- */

static void client_open(VuClient *c, const char *sock, VuClientConfig *cfg)
{
    g_assert_cmpint(vu_client_init(c, cfg), ==, 0);
    g_assert_cmpint(vu_client_connect(c, sock, 5000), ==, 0);
    g_assert_cmpint(vu_client_setup(c, false), ==, 0);
}

static int io(VuClient *c, unsigned q, uint32_t type, uint64_t sector,
              void *buf, size_t len)
{
    return vu_client_io(c, q, type, sector, buf, len);
}

static int ranges(VuClient *c, uint32_t type, uint64_t sector, uint32_t n,
                  uint32_t flags, unsigned count)
{
    VirtioBlkDiscardWriteZeroes seg[20];

    for (unsigned i = 0; i < count; i++) {
        seg[i] = (VirtioBlkDiscardWriteZeroes){sector + i * n, n, flags};
    }
    return io(c, 0, type, 0, seg, count * sizeof(seg[0]));
}

/* ---- I/O ---------------------------------------------------------------- */

static void client_io_four_queues(ClientThread *ct)
{
    VuClientConfig cfg = {.num_queues = 4, .interrupts = true};
    uint8_t buf[4096], back[4096];
    char id[VIRTIO_BLK_ID_BYTES] = {0};
    uint16_t bases[4];
    VuClient c;
    unsigned q;

    client_open(&c, ct->f->sock, &cfg);
    g_assert_cmpuint(vu_client_capacity(&c), ==, DISK_SIZE);
    g_assert_true(c.acked_features & (1ULL << VIRTIO_RING_F_EVENT_IDX));
    g_assert_false(c.features & (1ULL << VIRTIO_BLK_F_RO));
    for (q = 0; q < 4; q++) {
        vu_pattern_fill(buf, sizeof(buf), q, 1);
        g_assert_cmpint(io(&c, q, VIRTIO_BLK_T_OUT, q * 8, buf, 4096), ==,
                        VIRTIO_BLK_S_OK);
    }
    for (q = 0; q < 4; q++) {
        g_assert_cmpint(io(&c, 3 - q, VIRTIO_BLK_T_IN, q * 8, back, 4096), ==,
                        VIRTIO_BLK_S_OK);
        g_assert_true(vu_pattern_check(back, sizeof(back), q, 1));
    }
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_GET_ID, 0, id, sizeof(id)), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpstr(id, ==, "e0");
    g_assert_cmpint(io(&c, 1, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpint(io(&c, 1, 99, 0, NULL, 0), ==, VIRTIO_BLK_S_UNSUPP);
    /* Past the end, straddling the end, not sector-sized. */
    g_assert_cmpint(io(&c, 2, VIRTIO_BLK_T_IN, DISK_SIZE / 512, back, 512), ==,
                    VIRTIO_BLK_S_IOERR);
    g_assert_cmpint(io(&c, 2, VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 1, back, 4096),
                    ==, VIRTIO_BLK_S_IOERR);
    g_assert_cmpint(io(&c, 2, VIRTIO_BLK_T_OUT, 0, back, 100), ==,
                    VIRTIO_BLK_S_IOERR);
    g_assert_cmpint(io(&c, 2, VIRTIO_BLK_T_IN, UINT64_MAX / 256, back, 512), ==,
                    VIRTIO_BLK_S_IOERR);
    /* Stopping the rings reports where each one got to. */
    g_assert_cmpint(vu_client_stop(&c, bases), ==, 0);
    g_assert_cmpuint(bases[0], ==, 3);
    g_assert_cmpuint(bases[1], ==, 4);
    g_assert_cmpuint(bases[2], ==, 6);
    g_assert_cmpuint(bases[3], ==, 2);
    vu_client_destroy(&c);
}

static void test_io_on_four_queues(Fixture *f, gconstpointer data)
{
    run_client(f, client_io_four_queues, NULL);
}

static void client_segmented_and_polled(ClientThread *ct)
{
    VuClientConfig cfg = {.num_queues = 1, .no_indirect = true};
    VuClient c;
    VuQueue *q;
    unsigned done = 0;
    int i;

    /* Direct descriptors, 8 segments per request, polling, no event
     * index: the other ring paths. */
    cfg.no_event_idx = true;
    client_open(&c, ct->f->sock, &cfg);
    q = &c.queues[0];
    for (i = 0; i < 8; i++) {
        vu_pattern_fill(q->slots[i].data, 32768, 100 + i, 7);
        vu_queue_add(q, i, VIRTIO_BLK_T_OUT, (100 + i) * 64, 32768, 8);
    }
    vu_queue_publish(q);
    while (done < 8) {
        done += vu_queue_wait(q, NULL, NULL, 10000);
    }
    for (i = 0; i < 8; i++) {
        g_assert_cmpint(*q->slots[i].status, ==, VIRTIO_BLK_S_OK);
        memset(q->slots[i].data, 0, 32768);
        vu_queue_add(q, i, VIRTIO_BLK_T_IN, (100 + i) * 64, 32768, 8);
    }
    vu_queue_publish(q);
    for (done = 0; done < 8;) {
        done += vu_queue_wait(q, NULL, NULL, 10000);
    }
    for (i = 0; i < 8; i++) {
        g_assert_cmpint(*q->slots[i].status, ==, VIRTIO_BLK_S_OK);
        g_assert_true(vu_pattern_check(q->slots[i].data, 32768, 100 + i, 7));
    }
    vu_client_destroy(&c);
}

static void test_segmented_requests_polled(Fixture *f, gconstpointer data)
{
    run_client(f, client_segmented_and_polled, NULL);
}

static void client_read_only(ClientThread *ct)
{
    VuClientConfig cfg = {.interrupts = true};
    uint8_t buf[512] = {1};
    VuClient c;

    client_open(&c, ct->f->sock_ro, &cfg);
    g_assert_true(c.features & (1ULL << VIRTIO_BLK_F_RO));
    g_assert_false(c.features & (1ULL << VIRTIO_BLK_F_DISCARD));
    g_assert_false(c.features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 512), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_OUT, 0, buf, 512), ==,
                    VIRTIO_BLK_S_IOERR);
    g_assert_cmpint(ranges(&c, VIRTIO_BLK_T_DISCARD, 0, 8, 0, 1), ==,
                    VIRTIO_BLK_S_UNSUPP);
    g_assert_cmpint(ranges(&c, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0, 1), ==,
                    VIRTIO_BLK_S_UNSUPP);
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), ==,
                    VIRTIO_BLK_S_OK);
    vu_client_destroy(&c);
}

static void test_read_only_export_refuses_writes(Fixture *f, gconstpointer data)
{
    run_client(f, client_read_only, NULL);
}

static void client_discard_write_zeroes(ClientThread *ct)
{
    VuClientConfig cfg = {.interrupts = true};
    uint8_t buf[8192], zero[4096] = {0};
    VuClient c;

    client_open(&c, ct->f->sock, &cfg);
    vu_pattern_fill(buf, sizeof(buf), 0, 3);
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_OUT, 0, buf, 8192), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpint(ranges(&c, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8,
                           VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, 1),
                    ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 8192), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpmem(buf, 4096, zero, 4096);
    g_assert_cmpint(ranges(&c, VIRTIO_BLK_T_DISCARD, 8, 4, 0, 2), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 8192), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpmem(buf + 4096, 4096, zero, 4096);
    /* Flags the type does not have, too many ranges, out of range,
     * a range list of a bad length. */
    g_assert_cmpint(ranges(&c, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 2, 1), ==,
                    VIRTIO_BLK_S_UNSUPP);
    g_assert_cmpint(ranges(&c, VIRTIO_BLK_T_DISCARD, 0, 8,
                           VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, 1),
                    ==, VIRTIO_BLK_S_UNSUPP);
    g_assert_cmpint(ranges(&c, VIRTIO_BLK_T_DISCARD, 0, 8, 0, 17), ==,
                    VIRTIO_BLK_S_IOERR);
    g_assert_cmpint(
        ranges(&c, VIRTIO_BLK_T_DISCARD, DISK_SIZE / 512 - 4, 8, 0, 1), ==,
        VIRTIO_BLK_S_IOERR);
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_DISCARD, 0, buf, 15), ==,
                    VIRTIO_BLK_S_IOERR);
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_DISCARD, 0, NULL, 0), ==,
                    VIRTIO_BLK_S_IOERR);
    vu_client_destroy(&c);
}

static void test_discard_and_write_zeroes(Fixture *f, gconstpointer data)
{
    run_client(f, client_discard_write_zeroes, NULL);
}

/* ---- memory table changes ----------------------------------------------- */

static void client_memory_changes(ClientThread *ct)
{
    VuClientConfig cfg = {
        .interrupts = true, .add_mem_reg = true, .nregions = 2};
    uint8_t buf[4096];
    unsigned done = 0;
    VuClient c;
    VuQueue *q;

    /* Set up with ADD_MEM_REG, one region at a time. */
    client_open(&c, ct->f->sock, &cfg);
    q = &c.queues[0];
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 4096), ==,
                    VIRTIO_BLK_S_OK);
    /* A new table while requests are in flight: it waits for them, then
     * the rings are remapped. */
    for (int i = 0; i < 16; i++) {
        vu_queue_add(q, i, VIRTIO_BLK_T_IN, i * 8, 4096, 1);
    }
    vu_queue_publish(q);
    c.cfg.add_mem_reg = false;
    g_assert_cmpint(vu_client_set_mem_table(&c), ==, 0);
    while (done < 16) {
        done += vu_queue_wait(q, NULL, NULL, 10000);
    }
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 4096), ==,
                    VIRTIO_BLK_S_OK);
    /* A region removed and added back. */
    g_assert_cmpint(vu_client_mem_reg(&c, VHOST_USER_REM_MEM_REG, 1), ==, 0);
    g_assert_cmpint(vu_client_mem_reg(&c, VHOST_USER_REM_MEM_REG, 1), ==, -EIO);
    g_assert_cmpint(vu_client_mem_reg(&c, VHOST_USER_ADD_MEM_REG, 1), ==, 0);
    g_assert_cmpint(vu_client_mem_reg(&c, VHOST_USER_ADD_MEM_REG, 1), ==,
                    -EIO); /* overlaps itself */
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 4096), ==,
                    VIRTIO_BLK_S_OK);
    /* Removing the region the rings are in stops the ring: the next
     * request never completes, and GET_VRING_BASE still answers. */
    g_assert_cmpint(vu_client_mem_reg(&c, VHOST_USER_REM_MEM_REG, 0), ==, 0);
    vu_queue_add(q, 0, VIRTIO_BLK_T_IN, 0, 512, 1);
    vu_queue_publish(q);
    g_assert_cmpint(vu_client_stop(&c, NULL), ==, 0);
    vu_client_destroy(&c);
}

static void test_memory_table_changes_while_rings_run(Fixture *f,
                                                      gconstpointer data)
{
    run_client(f, client_memory_changes, NULL);
}

/* ---- hostile front-ends ------------------------------------------------- */

/* A connected client that has negotiated nothing. */
static void raw_open(VuClient *c, const char *sock)
{
    VuClientConfig cfg = {0};

    g_assert_cmpint(vu_client_init(c, &cfg), ==, 0);
    g_assert_cmpint(vu_client_connect(c, sock, 5000), ==, 0);
}

static void expect_closed_after(const char *sock, uint32_t req, uint32_t flags,
                                const void *p, uint32_t size, const int *fds,
                                unsigned nfds)
{
    VuClient c;

    raw_open(&c, sock);
    g_assert_cmpint(vu_send(&c, req, flags, p, size, fds, nfds), ==, 0);
    g_assert_true(vu_peer_closed(&c, 10000));
    vu_client_destroy(&c);
}

static void client_hostile_messages(ClientThread *ct)
{
    const char *sock = ct->f->sock;
    uint8_t p[4096] = {0};
    int fds[12];
    VuClient c;
    uint64_t u;
    int pipefd[2];

    for (int i = 0; i < 12; i++) {
        fds[i] = eventfd(0, EFD_CLOEXEC);
    }
    /* Wrong sizes, versions, a reply, an oversized or unknown message. */
    expect_closed_after(sock, VHOST_USER_GET_FEATURES, 1, p, 8, NULL, 0);
    expect_closed_after(sock, VHOST_USER_SET_FEATURES, 1, p, 4, NULL, 0);
    expect_closed_after(sock, VHOST_USER_GET_FEATURES, 2, NULL, 0, NULL, 0);
    expect_closed_after(sock, VHOST_USER_GET_FEATURES, 1 | 4, NULL, 0, NULL, 0);
    expect_closed_after(sock, VHOST_USER_SET_OWNER, 1, p, 4096, NULL, 0);
    expect_closed_after(sock, 200, 1, NULL, 0, NULL, 0);
    expect_closed_after(sock, VHOST_USER_SET_LOG_BASE, 1, p, 16, fds, 1);
    /* Fds: missing, unexpected, too many for any message. */
    memcpy(p, &(uint32_t){2}, 4);
    expect_closed_after(sock, VHOST_USER_SET_MEM_TABLE, 1, p, 8 + 64, fds, 1);
    expect_closed_after(sock, VHOST_USER_SET_OWNER, 1, NULL, 0, fds, 1);
    expect_closed_after(sock, VHOST_USER_SET_OWNER, 1, NULL, 0, fds, 12);
    u = 0;
    expect_closed_after(sock, VHOST_USER_SET_VRING_KICK, 1, &u, 8, NULL, 0);
    /* Failures without a reply requested close the connection too: the
     * front-end would go on as if they had worked. */
    u = 77;
    expect_closed_after(sock, VHOST_USER_SET_VRING_CALL, 1, &u, 8, fds, 1);

    /* With REPLY_ACK, a failure is answered and the connection stays. */
    raw_open(&c, sock);
    g_assert_cmpint(vu_get_u64(&c, VHOST_USER_GET_FEATURES, &u), ==, 0);
    g_assert_cmpint(vu_get_u64(&c, VHOST_USER_GET_PROTOCOL_FEATURES, &u), ==,
                    0);
    g_assert_cmpint(vu_set_u64(&c, VHOST_USER_SET_PROTOCOL_FEATURES,
                               1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK, false),
                    ==, 0);
    c.protocol_features = 1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK;
    /* Features never offered. */
    g_assert_cmpint(vu_set_u64(&c, VHOST_USER_SET_FEATURES, 1ULL << 63, true),
                    ==, -EIO);
    /* A ring that does not exist. */
    g_assert_cmpint(vu_set_u64(&c, VHOST_USER_SET_VRING_NUM,
                               ((uint64_t)256 << 32) | 9, true),
                    ==, -EIO);
    /* A ring size that is not a power of two. */
    g_assert_cmpint(
        vu_set_u64(&c, VHOST_USER_SET_VRING_NUM, (uint64_t)100 << 32, true), ==,
        -EIO);
    /* A kick "eventfd" that is a pipe. */
    g_assert_cmpint(pipe2(pipefd, O_CLOEXEC), ==, 0);
    u = 0;
    g_assert_cmpint(vu_send(&c, VHOST_USER_SET_VRING_KICK,
                            1 | VHOST_USER_NEED_REPLY_MASK, &u, 8, pipefd, 1),
                    ==, 0);
    g_assert_cmpint(
        vu_recv_reply(&c, VHOST_USER_SET_VRING_KICK, &u, 8, NULL, NULL), ==, 0);
    g_assert_cmpuint(u, !=, 0);
    close(pipefd[0]);
    close(pipefd[1]);
    /* Overlapping regions, and a region bigger than its file. */
    {
        VhostUserMemRegion r = {0x100000, c.mem.size, 0x7f0000000000, 0};

        memcpy(p, &(uint32_t){2}, 4);
        vhost_user_encode_mem_region(p + 8, &r);
        r.guest_phys_addr += 4096;
        r.userspace_addr += 1ULL << 32;
        vhost_user_encode_mem_region(p + 40, &r);
        int two[2] = {c.mem.fd, c.mem.fd};

        g_assert_cmpint(vu_send(&c, VHOST_USER_SET_MEM_TABLE,
                                1 | VHOST_USER_NEED_REPLY_MASK, p, 72, two, 2),
                        ==, 0);
        g_assert_cmpint(
            vu_recv_reply(&c, VHOST_USER_SET_MEM_TABLE, &u, 8, NULL, NULL), ==,
            0);
        g_assert_cmpuint(u, !=, 0);
        r = (VhostUserMemRegion){0x100000, c.mem.size + 4096, 0x1000, 0};
        memcpy(p, &(uint32_t){1}, 4);
        vhost_user_encode_mem_region(p + 8, &r);
        g_assert_cmpint(vu_send(&c, VHOST_USER_SET_MEM_TABLE,
                                1 | VHOST_USER_NEED_REPLY_MASK, p, 40,
                                &c.mem.fd, 1),
                        ==, 0);
        g_assert_cmpint(
            vu_recv_reply(&c, VHOST_USER_SET_MEM_TABLE, &u, 8, NULL, NULL), ==,
            0);
        g_assert_cmpuint(u, !=, 0);
    }
    /* Still answering. */
    g_assert_cmpint(vu_get_u64(&c, VHOST_USER_GET_FEATURES, &u), ==, 0);
    vu_client_destroy(&c);
    for (int i = 0; i < 12; i++) {
        close(fds[i]);
    }

    /* After all that, a well-behaved front-end is served. */
    {
        VuClientConfig cfg = {.interrupts = true};
        uint8_t buf[512];

        client_open(&c, sock, &cfg);
        g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 512), ==,
                        VIRTIO_BLK_S_OK);
        vu_client_destroy(&c);
    }
}

static void test_hostile_messages_are_refused(Fixture *f, gconstpointer data)
{
    run_client(f, client_hostile_messages, NULL);
}

static void client_broken_chain(ClientThread *ct)
{
    VuClientConfig cfg = {.num_queues = 2, .interrupts = true};
    uint8_t buf[512];
    struct pollfd pfd;
    VuClient c;
    VuQueue *q;
    uint64_t u;
    int err_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    client_open(&c, ct->f->sock, &cfg);
    q = &c.queues[0];
    u = 0;
    g_assert_cmpint(vu_send(&c, VHOST_USER_SET_VRING_ERR,
                            1 | VHOST_USER_NEED_REPLY_MASK, &u, 8, &err_fd, 1),
                    ==, 0);
    g_assert_cmpint(
        vu_recv_reply(&c, VHOST_USER_SET_VRING_ERR, &u, 8, NULL, NULL), ==, 0);
    g_assert_cmpuint(u, ==, 0);
    /* A request whose chain loops onto itself. */
    vu_queue_add(q, 0, VIRTIO_BLK_T_IN, 0, 512, 1);
    {
        uint16_t head = *(uint16_t *)(q->avail + 4 +
                                      2 * ((q->avail_idx - 1) & (q->num - 1)));

        q->desc[head].flags = VRING_DESC_F_INDIRECT;
        q->slots[0].indirect[2].flags |= VRING_DESC_F_NEXT;
        q->slots[0].indirect[2].next = 0;
    }
    vu_queue_publish(q);
    /* The queue is stopped and the error eventfd says so... */
    pfd = (struct pollfd){.fd = err_fd, .events = POLLIN};
    g_assert_cmpint(poll(&pfd, 1, 10000), ==, 1);
    /* ...while the other queue carries on. */
    g_assert_cmpint(io(&c, 1, VIRTIO_BLK_T_IN, 0, buf, 512), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpuint(vu_queue_poll(q, NULL, NULL), ==, 0);
    /* Stopping and restarting the ring clears it. */
    g_assert_cmpint(vu_client_stop(&c, NULL), ==, 0);
    vu_client_destroy(&c);
    close(err_fd);
}

static void test_broken_chain_stops_only_its_queue(Fixture *f,
                                                   gconstpointer data)
{
    run_client(f, client_broken_chain, NULL);
}

/* ---- going away with requests in flight --------------------------------- */

typedef struct InFlight {
    char *sock;
    unsigned nq; /* queues the requests are spread over (0: one) */
    int go;      /* atomic: the main side saw the requests in flight */
} InFlight;

static void client_disconnect_in_flight(ClientThread *ct)
{
    InFlight *fl = ct->arg;
    unsigned nq = fl->nq ? fl->nq : 1;
    VuClientConfig cfg = {.interrupts = true, .num_queues = nq};
    VuClient c;
    uint8_t buf[512];

    client_open(&c, fl->sock, &cfg);
    for (unsigned qi = 0; qi < nq; qi++) {
        VuQueue *q = &c.queues[qi];

        for (int i = 0; i < 8; i++) {
            vu_queue_add(q, i, VIRTIO_BLK_T_IN, i, 512, 1);
        }
        vu_queue_publish(q);
    }
    client_step(ct, 1);
    client_wait_flag(&fl->go);
    /* We vanish with the requests held by the throttle node. */
    vu_client_destroy(&c);
    client_step(ct, 2);
    /* The next front-end is served once the last one is gone. */
    client_open(&c, fl->sock, &cfg);
    for (unsigned qi = 0; qi < nq; qi++) {
        g_assert_cmpint(io(&c, qi, VIRTIO_BLK_T_IN, 0, buf, 512), ==,
                        VIRTIO_BLK_S_OK);
    }
    vu_client_destroy(&c);
}

static unsigned in_flight_of(BlockDriverState *bs)
{
    AioContext *ctx = bdrv_get_aio_context(bs);
    unsigned n;

    aio_context_acquire(ctx);
    n = bdrv_get_in_flight(bs);
    aio_context_release(ctx);
    return n;
}

/* ctxs NULL: the queue in the node's context; else 2 queues over them. */
static void gone_with_requests_in_flight(Fixture *f, AioContext **ctxs)
{
    g_autoptr(GHashTable) tg = test_opts("limits.iops-total=1");
    InFlight fl = {.sock = g_build_filename(f->dir, "thr.sock", NULL),
                   .nq = ctxs ? 2 : 1};
    g_autoptr(SocketAddress) addr = socket_address_new_unix(fl.sock);
    VhostUserBlkExportOptions o = {
        .id = "e2",
        .node_name = "thr",
        .addr = addr,
        .writable = true,
        .num_queues = fl.nq,
        .logical_block_size = 512,
        .ctxs = ctxs,
        .n_ctxs = ctxs ? 2 : 0,
    };
    int64_t deadline = clock_monotonic_ns() + 10 * (int64_t)1000000000;
    BlockDriverState *thr;
    ClientThread *ct;

    /* A throttle node at one request per second holds them in flight
     * (with a list, those of other contexts forwarded to its home). */
    object_add("throttle-group", "slow", tg, &error_abort);
    thr = test_open("driver=throttle,node-name=thr,throttle-group=slow,"
                    "file=m0");
    g_assert_true(vhost_user_blk_export_add(&o, &error_abort));
    ct = client_start(f, client_disconnect_in_flight, &fl);
    main_until_step(ct, 1);
    while (in_flight_of(thr) < 4 * fl.nq && clock_monotonic_ns() < deadline) {
        g_thread_yield();
    }
    g_assert_cmpuint(in_flight_of(thr), >=, 4 * fl.nq);
    g_atomic_int_set(&fl.go, 1);
    main_until_step(ct, 2);
    /* Gone, but its requests are not done: the connection waits. */
    g_assert_cmpuint(vhost_user_blk_get_connection_count(), ==, 1);
    g_assert_cmpuint(in_flight_of(thr), >, 0);
    g_assert_true(object_property_set_int(
        object_find("slow"), "limits.iops-total", 1000000, &error_abort));
    client_finish(ct);
    g_assert_true(vhost_user_blk_export_del("e2", true, &error_abort));
    wait_connections(0);
    while (main_loop_wait(false)) {
    }
    bdrv_unref(thr);
    g_assert_true(object_del("slow", &error_abort));
    g_free(fl.sock);
}

static void test_front_end_gone_with_requests_in_flight(Fixture *f,
                                                        gconstpointer data)
{
    gone_with_requests_in_flight(f, NULL);
}

/* Queues in two IOThreads, the node's and another: the close waits until
 * both have given their queue back. */
static void
test_front_end_gone_with_requests_in_flight_on_iothreads(Fixture *f,
                                                         gconstpointer data)
{
    AioContext *ctxs[2] = {iothread_get_aio_context(f->io2),
                           iothread_get_aio_context(f->io)};

    gone_with_requests_in_flight(f, ctxs);
}

/* ---- inflight resubmission ---------------------------------------------- */

static void client_inflight_resume(ClientThread *ct)
{
    VuClientConfig cfg = {.inflight = true, .interrupts = true};
    VhostInflightRegion *r;
    uint8_t buf[4096];
    unsigned done = 0;
    uint16_t head;
    VuClient c;
    VuQueue *q;
    const char *sock = ct->arg ? ct->arg : ct->f->sock;

    client_open(&c, sock, &cfg);
    g_assert_nonnull(c.inflight_map);
    q = &c.queues[0];
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 512), ==,
                    VIRTIO_BLK_S_OK);
    r = c.inflight_map;
    g_assert_cmpuint(r->version, ==, VHOST_INFLIGHT_VERSION);
    g_assert_cmpuint(r->used_idx, ==, 1);
    g_assert_cmpuint(r->desc[0].inflight, ==, 0);
    vu_client_disconnect(&c);
    client_step(ct, 1);
    /* As a backend that died after taking a write: the chain is in the
     * rings and marked in flight in the area, never returned. */
    vu_pattern_fill(q->slots[1].data, 4096, 9, 9);
    vu_queue_add(q, 1, VIRTIO_BLK_T_OUT, 72, 4096, 1);
    head =
        *(uint16_t *)(q->avail + 4 + 2 * ((q->avail_idx - 1) & (q->num - 1)));
    *(uint16_t *)(q->avail + 2) = q->avail_idx;
    q->avail_published = q->avail_idx;
    r->desc[head].counter = 1000;
    r->desc[head].inflight = 1;
    /* The next backend connection redoes it. */
    g_assert_cmpint(vu_client_connect(&c, sock, 5000), ==, 0);
    g_assert_cmpint(vu_client_setup(&c, true), ==, 0);
    while (done < 1) {
        done += vu_queue_wait(q, NULL, NULL, 10000);
    }
    g_assert_cmpint(*q->slots[1].status, ==, VIRTIO_BLK_S_OK);
    g_assert_cmpuint(r->desc[head].inflight, ==, 0);
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_IN, 72, buf, 4096), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_true(vu_pattern_check(buf, 4096, 9, 9));
    vu_client_destroy(&c);
}

static void test_inflight_requests_are_resubmitted(Fixture *f,
                                                   gconstpointer data)
{
    ClientThread *ct = client_start(f, client_inflight_resume, NULL);

    main_until_step(ct, 1);
    wait_connections(0);
    client_finish(ct);
}

/* The same with the queue in another IOThread than the node's: the
 * inflight region is set up by the connection and used by the queue's
 * context. */
static void
test_inflight_requests_are_resubmitted_on_iothread(Fixture *f,
                                                   gconstpointer data)
{
    g_autofree char *sock = g_build_filename(f->dir, "e3.sock", NULL);
    g_autoptr(SocketAddress) addr = socket_address_new_unix(sock);
    AioContext *ctxs[1] = {iothread_get_aio_context(f->io2)};
    VhostUserBlkExportOptions o = {
        .id = "e3",
        .node_name = "m0",
        .addr = addr,
        .writable = true,
        .num_queues = 1,
        .logical_block_size = 512,
        .ctxs = ctxs,
        .n_ctxs = 1,
    };
    ClientThread *ct;

    g_assert_true(vhost_user_blk_export_add(&o, &error_abort));
    ct = client_start(f, client_inflight_resume, sock);
    main_until_step(ct, 1);
    wait_connections(0);
    client_finish(ct);
    g_assert_true(vhost_user_blk_export_del("e3", true, &error_abort));
    wait_connections(0);
    while (main_loop_wait(false)) {
    }
}

/* ---- node moves under I/O ----------------------------------------------- */

typedef struct MoveLoad {
    int stop;          /* atomic */
    int ops;           /* atomic */
    uint32_t gen[256]; /* generation written to each block, 0: unknown */
    uint8_t busy[256];
    uint64_t blk_of[4][16];
    /* For the iothread list test (0/NULL: 2 queues, e0). */
    unsigned nq;
    const char *sock;
    int mem_changes; /* atomic: memory tables sent under load */
    int stopped;     /* atomic: the client has nothing in flight */
    int may_close;   /* atomic: the main side read the counters */
} MoveLoad;

static void verify_done(VuQueue *q, unsigned s, uint32_t len, void *opaque)
{
    MoveLoad *ml = opaque;
    VuSlot *sl = &q->slots[s];
    uint64_t b = ml->blk_of[q->index][s];

    g_assert_cmpint(*sl->status, ==, VIRTIO_BLK_S_OK);
    if (sl->hdr->type == VIRTIO_BLK_T_OUT) {
        ml->gen[b]++;
    } else if (ml->gen[b]) {
        g_assert_true(vu_pattern_check(sl->data, 4096, b, ml->gen[b]));
    }
    ml->busy[b] = 0;
    g_atomic_int_inc(&ml->ops);
}

/* Sends queue q's call and kick eventfds again and enables it again, with
 * requests in flight: the running queue is called back from its context,
 * changed and handed over again. */
static void resend_ring_fds(VuClient *c, VuQueue *q)
{
    const uint32_t reqs[2] = {VHOST_USER_SET_VRING_CALL,
                              VHOST_USER_SET_VRING_KICK};
    const int fds[2] = {q->call_fd, q->kick_fd};
    uint64_t u = q->index, v = 1;
    uint32_t got = 0;

    for (int i = 0; i < 2; i++) {
        g_assert_cmpint(vu_send(c, reqs[i], 1 | VHOST_USER_NEED_REPLY_MASK, &u,
                                8, &fds[i], 1),
                        ==, 0);
        g_assert_cmpint(vu_recv_reply(c, reqs[i], &v, 8, &got, NULL), ==, 0);
        g_assert_cmpuint(got, ==, 8);
        g_assert_cmpuint(v, ==, 0);
    }
    g_assert_cmpint(vu_set_u64(c, VHOST_USER_SET_VRING_ENABLE,
                               q->index | (1ULL << 32), true),
                    ==, 0);
}

static void client_verify_load(ClientThread *ct)
{
    MoveLoad *ml = ct->arg;
    unsigned nq = ml->nq ? ml->nq : 2;
    VuClientConfig cfg = {
        .num_queues = nq, .slots = 16, .slot_data_size = 4096};
    uint64_t rng = 88172645463325252ULL;
    int next_mem_change = 300;
    VuClient c;

    client_open(&c, ml->sock ? ml->sock : ct->f->sock, &cfg);
    client_step(ct, 1);
    for (;;) {
        bool busy = false;

        for (unsigned qi = 0; qi < nq; qi++) {
            busy = busy || vu_queue_busy(&c.queues[qi]) > 0;
        }
        if (g_atomic_int_get(&ml->stop) && !busy) {
            break;
        }
        if (ml->sock && g_atomic_int_get(&ml->ops) >= next_mem_change &&
            g_atomic_int_get(&ml->mem_changes) < 4) {
            /* A new memory table with requests in flight on every queue:
             * each queue is called back from its IOThread, the map
             * changes, and they go on.  Then one queue's fds change. */
            g_assert_cmpint(vu_client_set_mem_table(&c), ==, 0);
            resend_ring_fds(&c, &c.queues[ml->mem_changes % nq]);
            g_atomic_int_inc(&ml->mem_changes);
            next_mem_change += 300;
        }
        for (unsigned qi = 0; qi < nq; qi++) {
            VuQueue *q = &c.queues[qi];
            int s;

            while (!g_atomic_int_get(&ml->stop) &&
                   (s = vu_queue_free_slot(q)) >= 0) {
                uint64_t b;

                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                b = rng % 256;
                while (ml->busy[b]) {
                    b = (b + 1) % 256;
                }
                ml->busy[b] = 1;
                ml->blk_of[qi][s] = b;
                if (rng & 0x100) {
                    vu_pattern_fill(q->slots[s].data, 4096, b, ml->gen[b] + 1);
                    vu_queue_add(q, s, VIRTIO_BLK_T_OUT, b * 8, 4096, 1);
                } else {
                    vu_queue_add(q, s, VIRTIO_BLK_T_IN, b * 8, 4096, 1);
                }
            }
            vu_queue_publish(q);
            vu_queue_poll(q, verify_done, ml);
        }
    }
    if (ml->sock) {
        /* Connected, with nothing in flight, until the main side has read
         * the per-queue counters. */
        g_atomic_int_set(&ml->stopped, 1);
        g_main_context_wakeup(NULL);
        client_wait_flag(&ml->may_close);
    }
    vu_client_destroy(&c);
}

static void test_node_moves_under_io(Fixture *f, gconstpointer data)
{
    MoveLoad ml = {0};
    AioContext *ctxs[3] = {iothread_get_aio_context(f->io2),
                           main_loop_get_aio_context(),
                           iothread_get_aio_context(f->io)};
    ClientThread *ct = client_start(f, client_verify_load, &ml);
    int i;

    main_until_step(ct, 1);
    for (i = 0; i < 30; i++) {
        int64_t deadline = clock_monotonic_ns() + 10 * (int64_t)1000000000;
        int ops = g_atomic_int_get(&ml.ops);

        /* Each move with requests going: some completed since the last. */
        while (g_atomic_int_get(&ml.ops) < ops + 20 &&
               clock_monotonic_ns() < deadline) {
            main_loop_wait(false);
        }
        g_assert_cmpint(g_atomic_int_get(&ml.ops), >=, ops + 20);
        g_assert_true(bdrv_set_aio_context(f->bs, ctxs[i % 3], &error_abort));
    }
    g_atomic_int_set(&ml.stop, 1);
    client_finish(ct);
    g_test_message("%d requests verified across 30 moves", ml.ops);
}

/* ---- virtqueues spread over an iothread list ---------------------------- */

static uint64_t requests_taken(unsigned nq)
{
    uint64_t sum = 0;

    for (unsigned i = 0; i < nq; i++) {
        VhostBlkQueueStats st;
        AioContext *ctx;

        g_assert_true(vhost_export_queue_stats("mq", i, &ctx, &st));
        sum += st.requests;
    }
    return sum;
}

/* Main side: runs the loop until the client completed n more requests. */
static void main_until_ops(MoveLoad *ml, int n)
{
    int64_t deadline = clock_monotonic_ns() + 20 * (int64_t)1000000000;
    int ops = g_atomic_int_get(&ml->ops);

    while (g_atomic_int_get(&ml->ops) < ops + n &&
           clock_monotonic_ns() < deadline) {
        main_loop_wait(false);
    }
    g_assert_cmpint(g_atomic_int_get(&ml->ops), >=, ops + n);
}

static void test_queues_spread_over_iothreads(Fixture *f, gconstpointer data)
{
    g_autofree char *sock = g_build_filename(f->dir, "mq.sock", NULL);
    g_autoptr(SocketAddress) addr = socket_address_new_unix(sock);
    AioContext *io = iothread_get_aio_context(f->io);
    AioContext *io2 = iothread_get_aio_context(f->io2);
    AioContext *list[2] = {io2, io};
    AioContext *homes[3] = {main_loop_get_aio_context(), io2, io};
    VhostUserBlkExportOptions o = {
        .id = "mq",
        .node_name = "m2",
        .addr = addr,
        .writable = true,
        .num_queues = 4,
        .logical_block_size = 512,
        .ctxs = list,
        .n_ctxs = 2,
    };
    BlockDriverState *bs = test_open("driver=memory,node-name=m2,size=4M");
    MoveLoad ml = {.nq = 4, .sock = sock};
    ClientThread *ct;
    uint64_t before;
    int i;

    /* The node's home is io: queues 1 and 3 share it, 0 and 2 are in io2. */
    g_assert_true(bdrv_set_aio_context(bs, io, &error_abort));
    g_assert_true(vhost_user_blk_export_add(&o, &error_abort));
    ct = client_start(f, client_verify_load, &ml);
    main_until_step(ct, 1);
    main_until_ops(&ml, 200);

    /* A drained section stops every queue in every context: nothing is
     * taken from any ring until it ends. */
    for (i = 0; i < 3; i++) {
        bdrv_drained_begin(bs);
        before = requests_taken(4);
        for (int k = 0; k < 200; k++) {
            main_loop_wait(false);
        }
        g_assert_cmpuint(requests_taken(4), ==, before);
        bdrv_drained_end(bs);
        main_until_ops(&ml, 50);
    }
    /* The node moves (main loop, io2, io); the queues stay. */
    for (i = 0; i < 9; i++) {
        g_assert_true(bdrv_set_aio_context(bs, homes[i % 3], &error_abort));
        main_until_ops(&ml, 100);
    }
    /* Memory tables changed under load meanwhile (client side). */
    while (g_atomic_int_get(&ml.mem_changes) < 4) {
        main_until_ops(&ml, 100);
    }
    g_atomic_int_set(&ml.stop, 1);
    for (i = 0; i < 1000000 && !g_atomic_int_get(&ml.stopped) &&
                !g_atomic_int_get(&ct->done);
         i++) {
        main_loop_wait(true);
    }
    g_assert_true(g_atomic_int_get(&ml.stopped));
    /* Each queue took its requests in its own IOThread, list[i % 2]. */
    for (i = 0; i < 4; i++) {
        VhostBlkQueueStats st;
        AioContext *ctx;

        g_assert_true(vhost_export_queue_stats("mq", i, &ctx, &st));
        g_assert_true(ctx == list[i % 2]);
        g_assert_cmpuint(st.requests, >, 50);
        g_assert_cmpuint(st.in_own_thread, ==, st.requests);
        g_test_message("queue %d: %" PRIu64 " requests in its IOThread", i,
                       st.in_own_thread);
    }
    g_atomic_int_set(&ml.may_close, 1);
    client_finish(ct);
    g_test_message("%d requests verified, %d memory tables, over 9 moves",
                   ml.ops, ml.mem_changes);
    g_assert_true(vhost_user_blk_export_del("mq", true, &error_abort));
    wait_connections(0);
    while (main_loop_wait(false)) {
    }
    bdrv_unref(bs);
}

/* ---- a resized node ------------------------------------------------------ */

typedef struct Resize {
    int resized; /* atomic: the main side resized the node */
} Resize;

static void client_resize(ClientThread *ct)
{
    Resize *rs = ct->arg;
    VuClientConfig cfg = {.interrupts = true, .backend_channel = true};
    uint8_t buf[4096];
    uint32_t req = 0;
    VuClient c;

    client_open(&c, ct->f->sock, &cfg);
    g_assert_cmpint(c.backend_sock, >=, 0);
    g_assert_cmpuint(vu_client_capacity(&c), ==, DISK_SIZE);
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_IN, DISK_SIZE / 512, buf, 4096), ==,
                    VIRTIO_BLK_S_IOERR);
    client_step(ct, 1);
    client_wait_flag(&rs->resized);
    /* The backend says so, and the config space has the new size. */
    g_assert_cmpint(vu_client_backend_msg(&c, 10000, &req), ==, 0);
    g_assert_cmpuint(req, ==, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
    g_assert_cmpint(vu_client_get_config(&c), ==, 0);
    g_assert_cmpuint(vu_client_capacity(&c), ==, 2 * DISK_SIZE);
    vu_pattern_fill(buf, 4096, 77, 1);
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_OUT, DISK_SIZE / 512, buf, 4096), ==,
                    VIRTIO_BLK_S_OK);
    memset(buf, 0, sizeof(buf));
    g_assert_cmpint(io(&c, 0, VIRTIO_BLK_T_IN, DISK_SIZE / 512, buf, 4096), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_true(vu_pattern_check(buf, 4096, 77, 1));
    vu_client_destroy(&c);
}

static void test_resize_is_announced_to_the_front_end(Fixture *f,
                                                      gconstpointer data)
{
    Resize rs = {0};
    ClientThread *ct = client_start(f, client_resize, &rs);

    main_until_step(ct, 1);
    g_assert_true(bdrv_truncate(f->bs, 2 * DISK_SIZE, &error_abort));
    g_atomic_int_set(&rs.resized, 1);
    client_finish(ct);
}

/* ---- the API ------------------------------------------------------------ */

static void test_export_add_refuses_bad_arguments(Fixture *f,
                                                  gconstpointer data)
{
    g_autofree char *other = g_build_filename(f->dir, "x.sock", NULL);
    g_autofree char *file = g_build_filename(f->dir, "file", NULL);
    g_autoptr(SocketAddress) a_e0 = socket_address_new_unix(f->sock);
    g_autoptr(SocketAddress) a_other = socket_address_new_unix(other);
    g_autoptr(SocketAddress) a_file = socket_address_new_unix(file);
    g_autoptr(SocketAddress) a_inet = socket_address_new_inet("", "0");
    VhostUserBlkExportOptions o = {
        .id = "x",
        .node_name = "m1",
        .addr = a_e0,
        .num_queues = 1,
        .logical_block_size = 512,
    };
    Error *err = NULL;

    /* A live socket (e0's) is not taken over. */
    g_assert_false(vhost_user_blk_export_add(&o, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "in use"));
    g_clear_pointer(&err, error_free);
    o.addr = a_inet;
    g_assert_false(vhost_user_blk_export_add(&o, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "unix"));
    g_clear_pointer(&err, error_free);
    o.addr = a_other;
    o.id = "e0";
    g_assert_false(vhost_user_blk_export_add(&o, &err));
    g_clear_pointer(&err, error_free);
    o.id = "x";
    o.writable = true;
    g_assert_false(vhost_user_blk_export_add(&o, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "read-only"));
    g_clear_pointer(&err, error_free);
    o.writable = false;
    o.num_queues = 0;
    g_assert_false(vhost_user_blk_export_add(&o, &err));
    g_clear_pointer(&err, error_free);
    o.num_queues = 1;
    o.logical_block_size = 1000;
    g_assert_false(vhost_user_blk_export_add(&o, &err));
    g_clear_pointer(&err, error_free);
    o.logical_block_size = 4096;
    o.node_name = "nope";
    g_assert_false(vhost_user_blk_export_add(&o, &err));
    g_clear_pointer(&err, error_free);
    o.node_name = "m1";
    g_assert_true(g_file_set_contents(file, "keep", -1, NULL));
    o.addr = a_file;
    g_assert_false(vhost_user_blk_export_add(&o, &err));
    g_clear_pointer(&err, error_free);
    g_assert_true(g_file_test(file, G_FILE_TEST_EXISTS));
    g_remove(file);
    o.addr = a_other;
    g_assert_true(vhost_user_blk_export_add(&o, &error_abort));
    /* The socket is private. */
    {
        GStatBuf st;

        g_assert_cmpint(g_stat(other, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    }
    g_assert_false(vhost_user_blk_export_del("nope", false, &err));
    g_clear_pointer(&err, error_free);
    g_assert_true(vhost_user_blk_export_del("x", false, &error_abort));
    g_assert_false(g_file_test(other, G_FILE_TEST_EXISTS));
}

static void client_hold(ClientThread *ct)
{
    VuClientConfig cfg = {.interrupts = true};
    VuClient c;

    client_open(&c, ct->f->sock_ro, &cfg);
    client_step(ct, 1);
    g_assert_true(vu_peer_closed(&c, 10000));
    vu_client_destroy(&c);
}

static void test_export_del_safe_refuses_hard_disconnects(Fixture *f,
                                                          gconstpointer data)
{
    ClientThread *ct = client_start(f, client_hold, NULL);
    Error *err = NULL;

    main_until_step(ct, 1);
    g_assert_false(vhost_user_blk_export_del("e1", false, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "in use"));
    g_clear_pointer(&err, error_free);
    g_assert_true(vhost_user_blk_export_del("e1", true, &error_abort));
    g_assert_false(vhost_user_blk_export_exists("e1"));
    client_finish(ct);
    wait_connections(0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    main_loop_init(&error_abort);
    bdrv_init();
#define T(name)                                                                \
    g_test_add("/vhost/export/" #name, Fixture, NULL, fixture_setup,           \
               test_##name, fixture_teardown)
    T(export_add_refuses_bad_arguments);
    T(io_on_four_queues);
    T(segmented_requests_polled);
    T(read_only_export_refuses_writes);
    T(discard_and_write_zeroes);
    T(memory_table_changes_while_rings_run);
    T(hostile_messages_are_refused);
    T(broken_chain_stops_only_its_queue);
    T(front_end_gone_with_requests_in_flight);
    T(front_end_gone_with_requests_in_flight_on_iothreads);
    T(inflight_requests_are_resubmitted);
    T(inflight_requests_are_resubmitted_on_iothread);
    T(node_moves_under_io);
    T(queues_spread_over_iothreads);
    T(resize_is_announced_to_the_front_end);
    T(export_del_safe_refuses_hard_disconnects);
#undef T
    return g_test_run();
}
