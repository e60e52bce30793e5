/*
 * What each vhost-user request does to a connection.  conn.c has checked
 * the framing (payload size, number of fds) with the codec; the values are
 * checked here: queue indexes, sizes, addresses, fds of the right kind.
 *
 * A handler that needs queues idle first returns "wait" (false from
 * vhost_msg_handle) without changing anything; it is called again when
 * they are.  File descriptors it keeps are taken out of conn->fds (set to
 * -1); conn.c closes the others.
 *
 * A message that changes a queue running on an IOThread of its own, or
 * the memory map under such queues, first recalls them (waits, deferred,
 * until they are back) and hands them over again afterwards
 * (vhost-internal.h).
 *
 * Runs in the connection's context.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/atomic.h"
#include "vhost/vhost-internal.h"

/* The protocol features this backend offers. */
#define OFFERED_PROTOCOL_FEATURES                                              \
    ((1ULL << VHOST_USER_PROTOCOL_F_MQ) |                                      \
     (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK) |                               \
     (1ULL << VHOST_USER_PROTOCOL_F_BACKEND_REQ) |                             \
     (1ULL << VHOST_USER_PROTOCOL_F_CONFIG) |                                  \
     (1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |                          \
     (1ULL << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

static const uint8_t *payload(VhostConn *conn)
{
    return conn->rbuf + VHOST_USER_HDR_SIZE;
}

/* Takes the message's fd i (the caller now owns it). */
static int take_fd(VhostConn *conn, unsigned i)
{
    int fd = conn->fds[i];

    conn->fds[i] = -1;
    return fd;
}

static bool any_queue_started(VhostConn *conn)
{
    unsigned i;

    for (i = 0; i < conn->nqueues; i++) {
        if (conn->queues[i].started) {
            return true;
        }
    }
    return false;
}

static bool all_queues_idle(VhostConn *conn)
{
    unsigned i;

    for (i = 0; i < conn->nqueues; i++) {
        if (conn->queues[i].in_flight > 0) {
            return false;
        }
    }
    return true;
}

static void reply_u64(VhostConn *conn, uint64_t v)
{
    uint8_t buf[VHOST_USER_HDR_SIZE + 8];

    vhost_conn_reply(conn, buf,
                     vhost_user_build_reply_u64(buf, conn->hdr.request, v), -1);
}

/* Whether fd is an eventfd (what kick, call and err must be).  Anything
 * else could block us, or be readable forever. */
static bool is_eventfd(int fd)
{
    char path[64], target[64];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
        return errno == ENOENT && access("/proc/self", F_OK) != 0;
    }
    target[n] = '\0';
    return strcmp(target, "anon_inode:[eventfd]") == 0;
}

/* ---- features ----------------------------------------------------------- */

static const char *set_features(VhostConn *conn)
{
    uint64_t f = vhost_user_decode_u64(payload(conn));
    uint64_t offered = vhost_blk_device_features(conn->exp);

    if (f & ~offered) {
        return "features that were not offered";
    }
    if (any_queue_started(conn)) {
        return "features changed while a ring runs";
    }
    conn->features = f;
    return NULL;
}

static const char *set_protocol_features(VhostConn *conn)
{
    uint64_t f = vhost_user_decode_u64(payload(conn));

    if (f & ~OFFERED_PROTOCOL_FEATURES) {
        return "protocol features that were not offered";
    }
    conn->protocol_features = f;
    return NULL;
}

/* ---- memory ------------------------------------------------------------- */

/* Maps and adds one region; takes fd (closes it). */
static const char *add_region(VhostConn *conn, const VhostUserMemRegion *r,
                              int fd)
{
    VhostMemRegion reg;
    const char *why = vhost_mem_check_region(&conn->mem, r);

    if (!why) {
        why = vhost_mem_map_region(r, fd, &reg);
    }
    close(fd);
    if (why) {
        return why;
    }
    vhost_mem_insert(&conn->mem, &reg);
    return NULL;
}

static void remap_queues(VhostConn *conn)
{
    unsigned i;

    for (i = 0; i < conn->nqueues; i++) {
        vhost_queue_remap(&conn->queues[i]);
    }
}

static const char *set_mem_table(VhostConn *conn)
{
    VhostUserMemTable t;
    VhostMemMap old = conn->mem;
    const char *why = NULL;
    unsigned i;

    vhost_user_decode_mem_table(payload(conn), &t);
    /* Build the new table beside the old one, so that a bad region leaves
     * the old one in place. */
    memset(&conn->mem, 0, sizeof(conn->mem));
    for (i = 0; i < t.nregions; i++) {
        int fd = take_fd(conn, i);

        if (!why) {
            why = add_region(conn, &t.regions[i], fd);
        } else {
            close(fd);
        }
    }
    if (why) {
        vhost_mem_clear(&conn->mem);
        conn->mem = old;
        return why;
    }
    vhost_mem_clear(&old);
    remap_queues(conn);
    return NULL;
}

static const char *add_mem_reg(VhostConn *conn)
{
    VhostUserMemRegion r;

    vhost_user_decode_single_region(payload(conn), &r);
    return add_region(conn, &r, take_fd(conn, 0));
}

static const char *rem_mem_reg(VhostConn *conn)
{
    VhostUserMemRegion r;
    int i;

    vhost_user_decode_single_region(payload(conn), &r);
    i = vhost_mem_find(&conn->mem, r.guest_phys_addr, r.memory_size,
                       r.userspace_addr);
    if (i < 0) {
        return "no such memory region";
    }
    vhost_mem_unmap_region(&conn->mem.regions[i]);
    vhost_mem_remove(&conn->mem, (unsigned)i);
    remap_queues(conn);
    return NULL;
}

/* ---- rings -------------------------------------------------------------- */

/* The queue a vring message names, or NULL (*why set). */
static VhostBlkQueue *queue_at(VhostConn *conn, uint32_t index,
                               const char **why)
{
    if (index >= conn->nqueues) {
        *why = "ring index out of range";
        return NULL;
    }
    return &conn->queues[index];
}

static const char *set_vring_num(VhostConn *conn)
{
    VhostVringState s;
    VhostBlkQueue *q;
    const char *why = NULL;

    vhost_user_decode_vring_state(payload(conn), &s);
    if (!(q = queue_at(conn, s.index, &why))) {
        return why;
    }
    if (q->started) {
        return "ring size changed while the ring runs";
    }
    if (!vring_size_valid(s.num)) {
        return "ring size not a power of two up to 32768";
    }
    q->num = s.num;
    return NULL;
}

static const char *set_vring_addr(VhostConn *conn)
{
    VhostVringAddr a;
    VhostBlkQueue *q;
    const char *why = NULL;

    vhost_user_decode_vring_addr(payload(conn), &a);
    if (!(q = queue_at(conn, a.index, &why))) {
        return why;
    }
    if (q->started) {
        return "ring addresses changed while the ring runs";
    }
    if (a.desc_user_addr % 16 || a.avail_user_addr % 2 ||
        a.used_user_addr % 4) {
        return "misaligned ring addresses";
    }
    if (a.flags & 1) { /* VHOST_VRING_F_LOG */
        return "logging was not offered";
    }
    q->desc_uaddr = a.desc_user_addr;
    q->avail_uaddr = a.avail_user_addr;
    q->used_uaddr = a.used_user_addr;
    q->addr_set = true;
    return NULL;
}

static const char *set_vring_base(VhostConn *conn)
{
    VhostVringState s;
    VhostBlkQueue *q;
    const char *why = NULL;

    vhost_user_decode_vring_state(payload(conn), &s);
    if (!(q = queue_at(conn, s.index, &why))) {
        return why;
    }
    if (q->started) {
        return "ring base changed while the ring runs";
    }
    if (s.num > UINT16_MAX) {
        return "ring base out of range";
    }
    q->base = (uint16_t)s.num;
    return NULL;
}

/* GET_VRING_BASE: stops the ring; answers once nothing is in flight. */
static bool get_vring_base(VhostConn *conn, const char **err)
{
    VhostVringState s;
    VhostBlkQueue *q;
    uint8_t buf[VHOST_USER_HDR_SIZE + 8];

    vhost_user_decode_vring_state(payload(conn), &s);
    if (!(q = queue_at(conn, s.index, err))) {
        return true;
    }
    vhost_queue_stop(q);
    if (q->in_flight > 0) {
        return false;
    }
    vhost_queue_reset(q);
    s.num = q->base;
    vhost_conn_reply(
        conn, buf,
        vhost_user_build_reply_vring_state(buf, conn->hdr.request, &s), -1);
    return true;
}

/* SET_VRING_KICK/CALL/ERR: the fd (or none), after checking it. */
static const char *vring_fd(VhostConn *conn, VhostBlkQueue **qp, int *fdp)
{
    uint64_t u = vhost_user_decode_u64(payload(conn));
    const char *why = NULL;
    int fd = -1;

    *qp = queue_at(conn, (uint32_t)(u & VHOST_USER_VRING_IDX_MASK), &why);
    if (!(u & VHOST_USER_VRING_NOFD_MASK)) {
        fd = take_fd(conn, 0);
    }
    if (!why && (u & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK |
                                 VHOST_USER_VRING_NOFD_MASK))) {
        why = "reserved bits set";
    }
    if (!why && fd >= 0 && !is_eventfd(fd)) {
        why = "the file descriptor is not an eventfd";
    }
    if (!why && fd >= 0 &&
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        why = "cannot make the eventfd non-blocking";
    }
    if (why && fd >= 0) {
        close(fd);
        fd = -1;
    }
    *fdp = fd;
    return why;
}

static const char *set_vring_kick(VhostConn *conn)
{
    VhostBlkQueue *q;
    int fd;
    const char *why = vring_fd(conn, &q, &fd);

    if (why) {
        return why;
    }
    if (fd < 0) {
        return "polling without a kick eventfd is not supported";
    }
    vhost_queue_set_kick_fd(q, fd);
    if (q->started) {
        return NULL; /* a new fd for a running ring */
    }
    return vhost_queue_start(q);
}

static const char *set_vring_call_or_err(VhostConn *conn, bool err)
{
    VhostBlkQueue *q;
    int fd;
    const char *why = vring_fd(conn, &q, &fd);
    int *slot;

    if (why) {
        return why;
    }
    slot = err ? &q->err_fd : &q->call_fd;
    if (*slot >= 0) {
        close(*slot);
    }
    *slot = fd;
    if (!err && fd >= 0 && q->started && q->vring.signalled_used_valid) {
        /* A running ring's interrupt moved (QEMU does this when the guest
         * masks it): one spurious signal, so that a completion decided on
         * while there was no fd to signal is not lost. */
        uint64_t one = 1;

        if (write(fd, &one, sizeof(one)) < 0) {
            /* non-blocking; a full counter is signalled already */
        }
    }
    return NULL;
}

static const char *set_vring_enable(VhostConn *conn)
{
    VhostVringState s;
    VhostBlkQueue *q;
    const char *why = NULL;

    vhost_user_decode_vring_state(payload(conn), &s);
    if (!(q = queue_at(conn, s.index, &why))) {
        return why;
    }
    if (s.num > 1) {
        return "enable flag neither 0 nor 1";
    }
    q->enabled = s.num == 1;
    if (q->enabled) {
        vhost_queue_kick_soon(q);
    }
    return NULL;
}

/* ---- config ------------------------------------------------------------- */

static bool get_config(VhostConn *conn, const char **err)
{
    VhostUserConfigHdr c;
    uint8_t cfg[VHOST_USER_MAX_CONFIG_SIZE];
    uint8_t p[VHOST_USER_PAYLOAD_MAX];
    uint8_t buf[VHOST_USER_HDR_SIZE + VHOST_USER_PAYLOAD_MAX];
    uint32_t size;

    vhost_user_decode_config_hdr(payload(conn), &c);
    if (c.offset > VHOST_USER_MAX_CONFIG_SIZE ||
        c.size > VHOST_USER_MAX_CONFIG_SIZE - c.offset) {
        /* The spec's error answer: a reply without payload. */
        vhost_conn_reply(
            conn, buf, vhost_user_build_reply(buf, conn->hdr.request, NULL, 0),
            -1);
        return true;
    }
    vhost_blk_get_config(conn, cfg);
    memcpy(p, payload(conn), VHOST_USER_CONFIG_HDR_SIZE);
    memcpy(p + VHOST_USER_CONFIG_HDR_SIZE, cfg + c.offset, c.size);
    size = VHOST_USER_CONFIG_HDR_SIZE + c.size;
    vhost_conn_reply(
        conn, buf, vhost_user_build_reply(buf, conn->hdr.request, p, size), -1);
    (void)err;
    return true;
}

static const char *set_config(VhostConn *conn)
{
    VhostUserConfigHdr c;
    const uint8_t *data = payload(conn) + VHOST_USER_CONFIG_HDR_SIZE;

    vhost_user_decode_config_hdr(payload(conn), &c);
    /* Only the write cache enable byte is writable. */
    if (c.offset != VIRTIO_BLK_CONFIG_WCE_OFFSET || c.size != 1) {
        return "only the wce field of the config space is writable";
    }
    if (!(conn->features & (1ULL << VIRTIO_BLK_F_CONFIG_WCE))) {
        return "CONFIG_WCE was not negotiated";
    }
    /* Atomic: queues in other contexts read it per request. */
    dp_atomic_store_relaxed(&conn->writethrough, data[0] == 0);
    return NULL;
}

/* ---- inflight tracking -------------------------------------------------- */

static const char *inflight_check(const VhostUserInflight *in, unsigned nqueues)
{
    if (in->num_queues == 0 || in->num_queues > nqueues) {
        return "inflight area for a bad number of queues";
    }
    if (!vring_size_valid(in->queue_size)) {
        return "inflight area for a bad queue size";
    }
    return NULL;
}

static bool get_inflight_fd(VhostConn *conn, const char **err)
{
    VhostUserInflight in;
    uint8_t buf[VHOST_USER_HDR_SIZE + VHOST_USER_INFLIGHT_SIZE];
    size_t size;
    void *p;
    int fd;

    vhost_user_decode_inflight(payload(conn), conn->hdr.size, &in);
    if ((*err = inflight_check(&in, conn->nqueues))) {
        return true;
    }
    if (any_queue_started(conn)) {
        *err = "inflight area changed while a ring runs";
        return true;
    }
    size = in.num_queues * vhost_inflight_region_size(in.queue_size);
    fd = memfd_create("vhost-user-blk-inflight",
                      MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        *err = "cannot create the inflight area";
        return true;
    }
    /* Sealed, so that no one can shrink it under our mapping. */
    if (ftruncate(fd, (off_t)size) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
        close(fd);
        *err = "cannot size the inflight area";
        return true;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        *err = "cannot map the inflight area";
        return true;
    }
    vhost_conn_inflight_free(conn);
    conn->inflight_map = p;
    conn->inflight_map_len = size;
    conn->inflight_base = p;
    conn->inflight_fd = fd;
    conn->inflight_queues = in.num_queues;
    conn->inflight_queue_size = in.queue_size;
    in.mmap_size = size;
    in.mmap_offset = 0;
    vhost_conn_reply(conn, buf, vhost_user_build_reply_inflight(buf, &in), fd);
    return true;
}

static bool set_inflight_fd(VhostConn *conn, const char **err)
{
    VhostUserInflight in;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t aligned, delta, need;
    struct stat st;
    int seals;
    void *p;
    int fd;

    vhost_user_decode_inflight(payload(conn), conn->hdr.size, &in);
    if ((*err = inflight_check(&in, conn->nqueues))) {
        return true;
    }
    if (any_queue_started(conn)) {
        *err = "inflight area changed while a ring runs";
        return true;
    }
    fd = take_fd(conn, 0);
    need = (uint64_t)in.num_queues * vhost_inflight_region_size(in.queue_size);
    aligned = in.mmap_offset & ~(uint64_t)(page - 1);
    delta = in.mmap_offset - aligned;
    seals = fcntl(fd, F_GET_SEALS);
    if (in.mmap_size < need || in.mmap_offset > (uint64_t)INT64_MAX - need) {
        *err = "inflight area too small";
    } else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
               (uint64_t)st.st_size < in.mmap_offset + need) {
        *err = "inflight area file too small";
    } else if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
        /* A file that can shrink under the mapping is a SIGBUS waiting
         * to happen: only sealed areas (as GET_INFLIGHT_FD hands out). */
        *err = "inflight area not sealed against shrinking";
    }
    if (*err) {
        close(fd);
        return true;
    }
    p = mmap(NULL, need + delta, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
             (off_t)aligned);
    if (p == MAP_FAILED) {
        close(fd);
        *err = "cannot map the inflight area";
        return true;
    }
    vhost_conn_inflight_free(conn);
    conn->inflight_map = p;
    conn->inflight_map_len = need + delta;
    conn->inflight_base = (uint8_t *)p + delta;
    conn->inflight_fd = fd;
    conn->inflight_queues = in.num_queues;
    conn->inflight_queue_size = in.queue_size;
    return true;
}

/* ---- dispatch ----------------------------------------------------------- */

/* Requests that change what requests in flight point into. */
static bool needs_idle(uint32_t request)
{
    switch (request) {
    case VHOST_USER_SET_MEM_TABLE:
    case VHOST_USER_REM_MEM_REG:
    case VHOST_USER_RESET_OWNER:
        return true;
    default:
        return false;
    }
}

/*
 * Queues on IOThreads of their own that the message changes (one ring, or
 * all of them for the memory map) must be back from their contexts first.
 * Returns whether they all are; each recalled queue is marked to be handed
 * over again after the message (rehand_queues).
 */
static bool own_queues_back(VhostConn *conn)
{
    uint32_t req = conn->hdr.request;
    bool all = false, back = true;
    VhostVringState s;
    uint32_t index = UINT32_MAX;
    unsigned i;

    if (!conn->exp->n_ctxs) {
        return true;
    }
    switch (req) {
    case VHOST_USER_SET_MEM_TABLE:
    case VHOST_USER_ADD_MEM_REG:
    case VHOST_USER_REM_MEM_REG:
    case VHOST_USER_RESET_OWNER:
        all = true;
        break;
    case VHOST_USER_SET_VRING_KICK:
    case VHOST_USER_SET_VRING_CALL:
    case VHOST_USER_SET_VRING_ERR:
        index = (uint32_t)(vhost_user_decode_u64(payload(conn)) &
                           VHOST_USER_VRING_IDX_MASK);
        break;
    case VHOST_USER_SET_VRING_ENABLE:
    case VHOST_USER_GET_VRING_BASE:
        vhost_user_decode_vring_state(payload(conn), &s);
        index = s.index;
        break;
    default:
        return true;
    }
    for (i = 0; i < conn->nqueues; i++) {
        VhostBlkQueue *q = &conn->queues[i];

        if (!q->handed || (!all && i != index)) {
            continue;
        }
        q->rehand = true;
        if (!vhost_queue_recall(q)) {
            back = false;
        }
    }
    return back;
}

/* After the message: the recalled queues that still run go back to their
 * contexts. */
static void rehand_queues(VhostConn *conn)
{
    unsigned i;

    for (i = 0; i < conn->nqueues; i++) {
        VhostBlkQueue *q = &conn->queues[i];

        if (!q->rehand) {
            continue;
        }
        q->rehand = false;
        if (q->started && !q->handed && !conn->dead) {
            vhost_queue_hand_over(q);
        }
    }
}

/* RESET_OWNER: deprecated; stops every ring, as the spec suggests. */
static void reset_rings(VhostConn *conn)
{
    unsigned i;

    for (i = 0; i < conn->nqueues; i++) {
        vhost_queue_stop(&conn->queues[i]);
        vhost_queue_reset(&conn->queues[i]);
    }
}

static bool msg_handle(VhostConn *conn, const char **err);

bool vhost_msg_handle(VhostConn *conn, const char **err)
{
    bool done;

    *err = NULL;
    if (!own_queues_back(conn)) {
        return false;
    }
    if (needs_idle(conn->hdr.request) && !all_queues_idle(conn)) {
        return false;
    }
    done = msg_handle(conn, err);
    if (done) {
        rehand_queues(conn);
    }
    return done;
}

static bool msg_handle(VhostConn *conn, const char **err)
{
    uint32_t req = conn->hdr.request;

    switch (req) {
    case VHOST_USER_GET_FEATURES:
        reply_u64(conn, vhost_blk_device_features(conn->exp));
        break;
    case VHOST_USER_SET_FEATURES:
        *err = set_features(conn);
        break;
    case VHOST_USER_GET_PROTOCOL_FEATURES:
        reply_u64(conn, OFFERED_PROTOCOL_FEATURES);
        break;
    case VHOST_USER_SET_PROTOCOL_FEATURES:
        *err = set_protocol_features(conn);
        break;
    case VHOST_USER_SET_OWNER:
        conn->owner = true;
        break;
    case VHOST_USER_RESET_OWNER:
        reset_rings(conn);
        break;
    case VHOST_USER_GET_QUEUE_NUM:
        reply_u64(conn, conn->nqueues);
        break;
    case VHOST_USER_GET_MAX_MEM_SLOTS:
        reply_u64(conn, VHOST_USER_MAX_MEM_SLOTS);
        break;
    case VHOST_USER_SET_MEM_TABLE:
        *err = set_mem_table(conn);
        break;
    case VHOST_USER_ADD_MEM_REG:
        *err = add_mem_reg(conn);
        break;
    case VHOST_USER_REM_MEM_REG:
        *err = rem_mem_reg(conn);
        break;
    case VHOST_USER_SET_VRING_NUM:
        *err = set_vring_num(conn);
        break;
    case VHOST_USER_SET_VRING_ADDR:
        *err = set_vring_addr(conn);
        break;
    case VHOST_USER_SET_VRING_BASE:
        *err = set_vring_base(conn);
        break;
    case VHOST_USER_GET_VRING_BASE:
        return get_vring_base(conn, err);
    case VHOST_USER_SET_VRING_KICK:
        *err = set_vring_kick(conn);
        break;
    case VHOST_USER_SET_VRING_CALL:
        *err = set_vring_call_or_err(conn, false);
        break;
    case VHOST_USER_SET_VRING_ERR:
        *err = set_vring_call_or_err(conn, true);
        break;
    case VHOST_USER_SET_VRING_ENABLE:
        *err = set_vring_enable(conn);
        break;
    case VHOST_USER_SET_BACKEND_REQ_FD:
        if (conn->backend_fd >= 0) {
            close(conn->backend_fd);
        }
        conn->backend_fd = take_fd(conn, 0);
        break;
    case VHOST_USER_GET_CONFIG:
        return get_config(conn, err);
    case VHOST_USER_SET_CONFIG:
        *err = set_config(conn);
        break;
    case VHOST_USER_GET_INFLIGHT_FD:
        return get_inflight_fd(conn, err);
    case VHOST_USER_SET_INFLIGHT_FD:
        return set_inflight_fd(conn, err);
    default:
        /* vhost_user_check_message() lets only the above through. */
        *err = "unsupported request";
        break;
    }
    return true;
}
