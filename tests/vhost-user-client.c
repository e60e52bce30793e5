/*
 * The project's own vhost-user-blk front-end, the connection side: guest
 * memory, raw messages, the set-up sequence, the backend channel.  The
 * rings are driven by vhost-user-queue.c.  See vhost-user-client.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tests/vhost-user-client.h"
#include "util/atomic.h"

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- guest memory ------------------------------------------------------- */

int vu_mem_init(VuGuestMem *m, size_t size, uint64_t gpa, unsigned nregions,
                bool sealed)
{
    memset(m, 0, sizeof(*m));
    m->fd = memfd_create("vu-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (m->fd < 0) {
        return -errno;
    }
    if (ftruncate(m->fd, (off_t)size) < 0 ||
        (sealed &&
         fcntl(m->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)) {
        int err = -errno;

        close(m->fd);
        return err;
    }
    m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
    if (m->base == MAP_FAILED) {
        int err = -errno;

        close(m->fd);
        return err;
    }
    m->size = size;
    m->gpa = gpa;
    m->nregions = nregions ? nregions : 1;
    return 0;
}

void vu_mem_destroy(VuGuestMem *m)
{
    if (m->base) {
        munmap(m->base, m->size);
        m->base = NULL;
    }
    if (m->fd >= 0) {
        close(m->fd);
        m->fd = -1;
    }
}

void *vu_mem_alloc(VuGuestMem *m, size_t size, size_t align)
{
    size_t start = (m->brk + align - 1) & ~(align - 1);

    if (start + size > m->size) {
        g_error("vu_mem_alloc: guest memory full (%zu bytes)", m->size);
    }
    m->brk = start + size;
    memset(m->base + start, 0, size);
    return m->base + start;
}

uint64_t vu_mem_gpa(const VuGuestMem *m, const void *p)
{
    return m->gpa + (uint64_t)((const uint8_t *)p - m->base);
}

/* ---- raw messages ------------------------------------------------------- */

int vu_send(VuClient *c, uint32_t request, uint32_t flags, const void *payload,
            uint32_t size, const int *fds, unsigned nfds)
{
    uint8_t buf[VHOST_USER_HDR_SIZE + 4096];
    struct iovec iov;
    union {
        char buf[CMSG_SPACE(16 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    size_t len;

    if (size > 4096 || nfds > 16) {
        return -EINVAL;
    }
    /* The encoder sets version 1; raw tests may want other flags: keep the
     * caller's bits as they are. */
    len = vhost_user_build_request(buf, request, 0, payload, size);
    memcpy(buf + 4, &flags, 4);
    iov.iov_base = buf;
    iov.iov_len = len;
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
    while (len > 0) {
        ssize_t n = sendmsg(c->sock, &msg, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        msg.msg_control = NULL;
        msg.msg_controllen = 0;
        iov.iov_base = (uint8_t *)iov.iov_base + n;
        iov.iov_len -= (size_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads exactly len bytes (with an fd if one comes); 10 s at most. */
static int read_full(int sock, void *buf, size_t len, int *fd)
{
    size_t got = 0;

    while (got < len) {
        struct iovec iov = {(uint8_t *)buf + got, len - got};
        union {
            char buf[CMSG_SPACE(8 * sizeof(int))];
            struct cmsghdr align;
        } control;
        struct msghdr msg = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = control.buf,
            .msg_controllen = sizeof(control.buf),
        };
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        struct cmsghdr *cmsg;
        ssize_t n;

        if (poll(&pfd, 1, 10000) != 1) {
            return -ETIMEDOUT;
        }
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n == 0 ? -ECONNRESET : -errno;
        }
        for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
            if (cmsg->cmsg_type == SCM_RIGHTS) {
                size_t k = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);

                for (size_t i = 0; i < k; i++) {
                    int f;

                    memcpy(&f, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
                    if (fd && *fd < 0) {
                        *fd = f;
                    } else {
                        close(f);
                    }
                }
            }
        }
        got += (size_t)n;
    }
    return 0;
}

int vu_recv_reply(VuClient *c, uint32_t request, void *payload, size_t max,
                  uint32_t *size, int *fd)
{
    uint8_t hdr[VHOST_USER_HDR_SIZE];
    uint8_t body[VHOST_USER_PAYLOAD_MAX];
    uint32_t req, flags, sz;
    int ret;

    if (fd) {
        *fd = -1;
    }
    ret = read_full(c->sock, hdr, sizeof(hdr), fd);
    if (ret < 0) {
        return ret;
    }
    memcpy(&req, hdr, 4);
    memcpy(&flags, hdr + 4, 4);
    memcpy(&sz, hdr + 8, 4);
    if (req != request || !(flags & VHOST_USER_REPLY_MASK) ||
        sz > sizeof(body)) {
        return -EPROTO;
    }
    ret = read_full(c->sock, body, sz, fd);
    if (ret < 0) {
        return ret;
    }
    memcpy(payload, body, sz < max ? sz : max);
    if (size) {
        *size = sz;
    }
    return 0;
}

int vu_get_u64(VuClient *c, uint32_t request, uint64_t *v)
{
    uint32_t size = 0;
    int ret = vu_send(c, request, VHOST_USER_VERSION, NULL, 0, NULL, 0);

    if (ret == 0) {
        ret = vu_recv_reply(c, request, v, sizeof(*v), &size, NULL);
    }
    return ret == 0 && size != 8 ? -EPROTO : ret;
}

/* Sends a request that has no reply of its own; with REPLY_ACK, asks for
 * one and checks it. */
static int request(VuClient *c, uint32_t req, const void *payload,
                   uint32_t size, const int *fds, unsigned nfds)
{
    bool ack = c->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK);
    uint64_t v = 0;
    uint32_t got;
    int ret;

    ret = vu_send(c, req,
                  VHOST_USER_VERSION | (ack ? VHOST_USER_NEED_REPLY_MASK : 0),
                  payload, size, fds, nfds);
    if (ret < 0 || !ack) {
        return ret;
    }
    ret = vu_recv_reply(c, req, &v, sizeof(v), &got, NULL);
    if (ret < 0) {
        return ret;
    }
    return got != 8 ? -EPROTO : v ? -EIO : 0;
}

int vu_set_u64(VuClient *c, uint32_t req, uint64_t v, bool need_reply)
{
    uint64_t saved = c->protocol_features;
    int ret;

    if (!need_reply) {
        c->protocol_features &= ~(1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK);
    }
    ret = request(c, req, &v, sizeof(v), NULL, 0);
    c->protocol_features = saved;
    return ret;
}

bool vu_peer_closed(VuClient *c, int timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;

    for (;;) {
        struct pollfd pfd = {.fd = c->sock, .events = POLLIN};
        uint8_t buf[256];
        int left = (int)((deadline - now_ns()) / 1000000);
        ssize_t n;

        if (poll(&pfd, 1, left > 0 ? left : 0) != 1) {
            return false;
        }
        n = recv(c->sock, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            return true;
        }
        if (now_ns() >= deadline) {
            return false;
        }
    }
}

/* ---- the client --------------------------------------------------------- */

int vu_client_init(VuClient *c, const VuClientConfig *cfg)
{
    size_t need;
    int ret;

    memset(c, 0, sizeof(*c));
    c->sock = -1;
    c->backend_sock = -1;
    c->inflight_fd = -1;
    c->cfg = *cfg;
    if (!c->cfg.num_queues) {
        c->cfg.num_queues = 1;
    }
    if (c->cfg.num_queues > VU_MAX_QUEUES) {
        return -EINVAL;
    }
    if (!c->cfg.queue_size) {
        c->cfg.queue_size = 256;
    }
    if (!c->cfg.slots) {
        c->cfg.slots = c->cfg.queue_size / (c->cfg.no_indirect ? 3 : 2);
    }
    if (!c->cfg.slot_data_size) {
        c->cfg.slot_data_size = 64 * 1024;
    }
    need = c->cfg.num_queues * (c->cfg.slots * (c->cfg.slot_data_size + 8192) +
                                4 * 4096 + 32 * (size_t)c->cfg.queue_size) +
           (1 << 20);
    if (!c->cfg.mem_size) {
        c->cfg.mem_size = need;
    }
    c->cfg.mem_size = (c->cfg.mem_size + 0xfffff) & ~(size_t)0xfffff;
    if (!c->cfg.nregions) {
        c->cfg.nregions = 1;
    }
    ret = vu_mem_init(&c->mem, c->cfg.mem_size, 0x100000, c->cfg.nregions,
                      !c->cfg.unsealed_memory);
    if (ret < 0) {
        return ret;
    }
    c->nqueues = c->cfg.num_queues;
    for (unsigned i = 0; i < c->nqueues; i++) {
        vu_queue_init(c, &c->queues[i], i);
    }
    return 0;
}

void vu_client_disconnect(VuClient *c)
{
    if (c->sock >= 0) {
        close(c->sock);
        c->sock = -1;
    }
    if (c->backend_sock >= 0) {
        close(c->backend_sock);
        c->backend_sock = -1;
    }
}

void vu_client_destroy(VuClient *c)
{
    vu_client_disconnect(c);
    for (unsigned i = 0; i < c->nqueues; i++) {
        vu_queue_destroy(&c->queues[i]);
    }
    if (c->inflight_map) {
        munmap(c->inflight_map, c->inflight_size);
    }
    if (c->inflight_fd >= 0) {
        close(c->inflight_fd);
    }
    vu_mem_destroy(&c->mem);
}

int vu_client_connect(VuClient *c, const char *path, int timeout_ms)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, path);
    vu_client_disconnect(c);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0) {
            return -errno;
        }
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
            c->sock = fd;
            return 0;
        }
        close(fd);
        if ((errno != ENOENT && errno != ECONNREFUSED) ||
            now_ns() >= deadline) {
            return -errno;
        }
        usleep(10000);
    }
}

uint64_t vu_client_capacity(const VuClient *c)
{
    uint64_t sectors;

    memcpy(&sectors, c->config, sizeof(sectors));
    return sectors << VIRTIO_BLK_SECTOR_BITS;
}

static int send_mem_table(VuClient *c);

static VhostUserMemRegion region_of(VuGuestMem *m, unsigned i)
{
    size_t per = m->size / m->nregions;

    return (VhostUserMemRegion){
        .guest_phys_addr = m->gpa + i * per,
        .memory_size = per,
        .userspace_addr = (uint64_t)(uintptr_t)(m->base + i * per),
        .mmap_offset = i * per,
    };
}

int vu_client_mem_reg(VuClient *c, uint32_t req, unsigned i)
{
    uint8_t one[VHOST_USER_SINGLE_REGION_SIZE] = {0};
    VhostUserMemRegion r = region_of(&c->mem, i);

    vhost_user_encode_mem_region(one + 8, &r);
    return request(c, req, one, sizeof(one), &c->mem.fd,
                   req == VHOST_USER_ADD_MEM_REG ? 1 : 0);
}

int vu_client_set_mem_table(VuClient *c)
{
    return send_mem_table(c);
}

static int send_mem_table(VuClient *c)
{
    VuGuestMem *m = &c->mem;
    size_t per = m->size / m->nregions;
    uint8_t p[VHOST_USER_MEM_TABLE_HDR_SIZE +
              VU_MAX_REGIONS * VHOST_USER_MEM_REGION_SIZE];
    int fds[VU_MAX_REGIONS];
    uint32_t n = m->nregions;
    int ret;

    if (n > VU_MAX_REGIONS || per % 4096) {
        return -EINVAL;
    }
    memset(p, 0, sizeof(p));
    memcpy(p, &n, 4);
    for (uint32_t i = 0; i < n; i++) {
        VhostUserMemRegion r = region_of(m, i);

        if (c->cfg.add_mem_reg) {
            ret = vu_client_mem_reg(c, VHOST_USER_ADD_MEM_REG, i);
            if (ret < 0) {
                return ret;
            }
            continue;
        }
        vhost_user_encode_mem_region(p + VHOST_USER_MEM_TABLE_HDR_SIZE +
                                         i * VHOST_USER_MEM_REGION_SIZE,
                                     &r);
        fds[i] = m->fd;
    }
    if (c->cfg.add_mem_reg) {
        return 0;
    }
    return request(
        c, VHOST_USER_SET_MEM_TABLE, p,
        VHOST_USER_MEM_TABLE_HDR_SIZE + n * VHOST_USER_MEM_REGION_SIZE, fds, n);
}

static int setup_inflight(VuClient *c, bool resume)
{
    uint8_t p[VHOST_USER_INFLIGHT_SIZE];
    VhostUserInflight in = {
        .num_queues = (uint16_t)c->nqueues,
        .queue_size = (uint16_t)c->cfg.queue_size,
    };
    uint32_t size;
    int fd = -1;
    int ret;

    if (!resume || c->inflight_fd < 0) {
        vhost_user_encode_inflight(p, &in);
        ret = vu_send(c, VHOST_USER_GET_INFLIGHT_FD, VHOST_USER_VERSION, p,
                      sizeof(p), NULL, 0);
        if (ret == 0) {
            ret = vu_recv_reply(c, VHOST_USER_GET_INFLIGHT_FD, p, sizeof(p),
                                &size, &fd);
        }
        if (ret < 0) {
            return ret;
        }
        if (fd < 0 || size < VHOST_USER_INFLIGHT_MIN_SIZE) {
            if (fd >= 0) {
                close(fd);
            }
            return -EPROTO;
        }
        vhost_user_decode_inflight(p, size, &in);
        if (c->inflight_map) {
            munmap(c->inflight_map, c->inflight_size);
        }
        if (c->inflight_fd >= 0) {
            close(c->inflight_fd);
        }
        c->inflight_fd = fd;
        c->inflight_size = in.mmap_size;
        c->inflight_queue_size = in.queue_size;
        /* The front-end keeps a mapping of its own, as QEMU does. */
        c->inflight_map = mmap(NULL, in.mmap_size, PROT_READ | PROT_WRITE,
                               MAP_SHARED, fd, (off_t)in.mmap_offset);
        if (c->inflight_map == MAP_FAILED) {
            c->inflight_map = NULL;
            return -errno;
        }
    }
    in.mmap_size = c->inflight_size;
    in.mmap_offset = 0;
    in.num_queues = (uint16_t)c->nqueues;
    in.queue_size = c->inflight_queue_size;
    vhost_user_encode_inflight(p, &in);
    return request(c, VHOST_USER_SET_INFLIGHT_FD, p, sizeof(p), &c->inflight_fd,
                   1);
}

static int setup_queue(VuClient *c, VuQueue *q, bool resume)
{
    VhostVringState st = {.index = q->index, .num = q->num};
    VhostVringAddr a = {
        .index = q->index,
        .desc_user_addr = (uint64_t)(uintptr_t)q->desc,
        .avail_user_addr = (uint64_t)(uintptr_t)q->avail,
        .used_user_addr = (uint64_t)(uintptr_t)q->used,
    };
    uint8_t ap[VHOST_USER_VRING_ADDR_SIZE];
    uint64_t u;
    int ret;

    q->event_idx = c->acked_features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
    ret = request(c, VHOST_USER_SET_VRING_NUM, &st, sizeof(st), NULL, 0);
    if (ret < 0) {
        return ret;
    }
    /* After a backend vanished, QEMU restarts a ring at its used index;
     * the inflight area tells the backend what to redo. */
    st.num = resume ? vu_queue_used_idx(q) : q->avail_idx;
    ret = request(c, VHOST_USER_SET_VRING_BASE, &st, sizeof(st), NULL, 0);
    if (ret < 0) {
        return ret;
    }
    vhost_user_encode_vring_addr(ap, &a);
    ret = request(c, VHOST_USER_SET_VRING_ADDR, ap, sizeof(ap), NULL, 0);
    if (ret < 0) {
        return ret;
    }
    u = q->index;
    ret = request(c, VHOST_USER_SET_VRING_KICK, &u, sizeof(u), &q->kick_fd, 1);
    if (ret < 0) {
        return ret;
    }
    ret = request(c, VHOST_USER_SET_VRING_CALL, &u, sizeof(u), &q->call_fd, 1);
    if (ret < 0) {
        return ret;
    }
    if (!q->interrupts) {
        vu_queue_want_interrupts(q, false);
    }
    if (c->acked_features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES)) {
        st.num = 1;
        ret = request(c, VHOST_USER_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0);
    }
    return ret;
}

int vu_client_setup(VuClient *c, bool resume)
{
    const uint64_t wanted_features =
        (1ULL << VIRTIO_F_VERSION_1) |
        (1ULL << VHOST_USER_F_PROTOCOL_FEATURES) |
        (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
        (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_RO) |
        (1ULL << VIRTIO_BLK_F_MQ) | (1ULL << VIRTIO_BLK_F_DISCARD) |
        (1ULL << VIRTIO_BLK_F_WRITE_ZEROES) |
        (1ULL << VIRTIO_BLK_F_CONFIG_WCE) | (1ULL << VIRTIO_BLK_F_TOPOLOGY) |
        (1ULL << VIRTIO_RING_F_EVENT_IDX) |
        (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
    uint64_t pf = 0;
    uint64_t want_pf = (1ULL << VHOST_USER_PROTOCOL_F_MQ) |
                       (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
                       (1ULL << VHOST_USER_PROTOCOL_F_CONFIG);
    uint64_t v;
    int ret;

    c->protocol_features = 0;
    ret = vu_get_u64(c, VHOST_USER_GET_FEATURES, &c->features);
    if (ret < 0) {
        return ret;
    }
    if (c->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES)) {
        ret = vu_get_u64(c, VHOST_USER_GET_PROTOCOL_FEATURES, &pf);
        if (ret < 0) {
            return ret;
        }
        if (c->cfg.inflight) {
            want_pf |= 1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD;
        }
        if (c->cfg.add_mem_reg) {
            want_pf |= 1ULL << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS;
        }
        if (c->cfg.backend_channel) {
            want_pf |= 1ULL << VHOST_USER_PROTOCOL_F_BACKEND_REQ;
        }
        pf &= want_pf;
        ret = vu_set_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, pf, false);
        if (ret < 0) {
            return ret;
        }
        c->protocol_features = pf;
    }
    ret = request(c, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);
    if (ret < 0) {
        return ret;
    }
    if (pf & (1ULL << VHOST_USER_PROTOCOL_F_MQ)) {
        ret = vu_get_u64(c, VHOST_USER_GET_QUEUE_NUM, &v);
        if (ret < 0) {
            return ret;
        }
        if (v < c->nqueues) {
            return -ERANGE;
        }
    }
    if (pf & (1ULL << VHOST_USER_PROTOCOL_F_BACKEND_REQ)) {
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
            return -errno;
        }
        ret = request(c, VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1);
        close(sv[1]);
        if (ret < 0) {
            close(sv[0]);
            return ret;
        }
        c->backend_sock = sv[0];
    }
    if (pf & (1ULL << VHOST_USER_PROTOCOL_F_CONFIG)) {
        ret = vu_client_get_config(c);
        if (ret < 0) {
            return ret;
        }
    }
    c->acked_features = c->features & wanted_features;
    if (c->cfg.no_event_idx) {
        c->acked_features &= ~(1ULL << VIRTIO_RING_F_EVENT_IDX);
    }
    if (c->cfg.no_indirect) {
        c->acked_features &= ~(1ULL << VIRTIO_RING_F_INDIRECT_DESC);
    }
    ret = vu_set_u64(c, VHOST_USER_SET_FEATURES, c->acked_features, true);
    if (ret < 0) {
        return ret;
    }
    if (c->cfg.inflight) {
        if (!(pf & (1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))) {
            return -ENOTSUP;
        }
        ret = setup_inflight(c, resume);
        if (ret < 0) {
            return ret;
        }
    }
    ret = send_mem_table(c);
    if (ret < 0) {
        return ret;
    }
    for (unsigned i = 0; i < c->nqueues; i++) {
        ret = setup_queue(c, &c->queues[i], resume);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

int vu_client_get_config(VuClient *c)
{
    uint8_t p[VHOST_USER_CONFIG_HDR_SIZE + sizeof(VirtioBlkConfig)] = {0};
    uint32_t sz = sizeof(VirtioBlkConfig);
    uint32_t got = 0;
    int ret;

    memcpy(p + 4, &sz, 4);
    ret = vu_send(c, VHOST_USER_GET_CONFIG, VHOST_USER_VERSION, p, sizeof(p),
                  NULL, 0);
    if (ret == 0) {
        ret = vu_recv_reply(c, VHOST_USER_GET_CONFIG, p, sizeof(p), &got, NULL);
    }
    if (ret < 0) {
        return ret;
    }
    if (got != sizeof(p)) {
        return -EPROTO;
    }
    memcpy(c->config, p + VHOST_USER_CONFIG_HDR_SIZE, sizeof(VirtioBlkConfig));
    return 0;
}

int vu_client_backend_msg(VuClient *c, int timeout_ms, uint32_t *request)
{
    uint8_t hdr[VHOST_USER_HDR_SIZE], body[VHOST_USER_PAYLOAD_MAX];
    struct pollfd pfd = {.fd = c->backend_sock, .events = POLLIN};
    uint32_t size;
    int ret;

    if (c->backend_sock < 0) {
        return -ENOTCONN;
    }
    if (poll(&pfd, 1, timeout_ms) != 1) {
        return -ETIMEDOUT;
    }
    ret = read_full(c->backend_sock, hdr, sizeof(hdr), NULL);
    if (ret < 0) {
        return ret;
    }
    memcpy(request, hdr, 4);
    memcpy(&size, hdr + 8, 4);
    if (size > sizeof(body)) {
        return -EPROTO;
    }
    return read_full(c->backend_sock, body, size, NULL);
}

int vu_client_stop(VuClient *c, uint16_t *bases)
{
    for (unsigned i = 0; i < c->nqueues; i++) {
        VhostVringState st = {.index = i};
        uint32_t size;
        int ret;

        ret = vu_send(c, VHOST_USER_GET_VRING_BASE, VHOST_USER_VERSION, &st,
                      sizeof(st), NULL, 0);
        if (ret == 0) {
            ret = vu_recv_reply(c, VHOST_USER_GET_VRING_BASE, &st, sizeof(st),
                                &size, NULL);
        }
        if (ret < 0) {
            return ret;
        }
        if (size != sizeof(st) || st.index != i) {
            return -EPROTO;
        }
        if (bases) {
            bases[i] = (uint16_t)st.num;
        }
    }
    return 0;
}
