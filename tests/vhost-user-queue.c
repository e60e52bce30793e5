/*
 * The project's own vhost-user-blk front-end, the ring side: laying out a
 * split virtqueue and its request slots in guest memory, adding requests,
 * the kick and interrupt decisions, collecting completions, and the
 * synchronous helper and data patterns the tests use.  See
 * vhost-user-client.h.
 *
 * Ordering against the backend (another process or thread): ring entries
 * and descriptors are written before the available index is stored with
 * release; the used index is loaded with acquire before its entries are
 * read; the kick and interrupt decisions are store-then-load handshakes
 * done with seq_cst accesses (the backend's side is vhost/virtqueue.c).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "tests/vhost-user-client.h"
#include "util/atomic.h"

#define SLOT_MAX_SEGS 64

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- queues ------------------------------------------------------------- */

static uint16_t *avail_idx(VuQueue *q)
{
    return (uint16_t *)(q->avail + 2);
}

static uint16_t *avail_flags(VuQueue *q)
{
    return (uint16_t *)q->avail;
}

static uint16_t *avail_ring(VuQueue *q, unsigned i)
{
    return (uint16_t *)(q->avail + 4 + 2 * (size_t)i);
}

static uint16_t *used_event(VuQueue *q)
{
    return avail_ring(q, q->num);
}

static uint16_t *used_idx(VuQueue *q)
{
    return (uint16_t *)(q->used + 2);
}

static uint16_t *used_flags(VuQueue *q)
{
    return (uint16_t *)q->used;
}

static VringUsedElem *used_ring(VuQueue *q, unsigned i)
{
    return (VringUsedElem *)(q->used + 4 + 8 * (size_t)i);
}

static uint16_t *avail_event(VuQueue *q)
{
    return (uint16_t *)used_ring(q, q->num);
}

void vu_queue_init(VuClient *c, VuQueue *q, unsigned index)
{
    VuGuestMem *m = &c->mem;
    unsigned i;

    memset(q, 0, sizeof(*q));
    q->mem = m;
    q->index = index;
    q->num = c->cfg.queue_size;
    q->desc = vu_mem_alloc(m, VRING_DESC_SIZE(q->num), 4096);
    q->avail = vu_mem_alloc(m, VRING_AVAIL_SIZE(q->num), 4096);
    q->used = vu_mem_alloc(m, VRING_USED_SIZE(q->num), 4096);
    q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    q->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    q->indirect = !c->cfg.no_indirect;
    q->interrupts = c->cfg.interrupts;
    for (i = 0; i < q->num; i++) {
        q->desc[i].next = (uint16_t)(i + 1);
    }
    q->free_head = 0;
    q->nfree = q->num;
    q->slot_of_head = g_new0(uint16_t, q->num);
    q->ndesc_of_head = g_new0(uint16_t, q->num);
    q->nslots = c->cfg.slots;
    q->slot_data_size = c->cfg.slot_data_size;
    q->slots = g_new0(VuSlot, q->nslots);
    q->free_slots = g_new0(uint16_t, q->nslots);
    q->free_pos = g_new0(uint16_t, q->nslots);
    /* Lowest slot on top, so a fresh queue hands out 0, 1, 2... */
    for (i = 0; i < q->nslots; i++) {
        q->free_slots[i] = (uint16_t)(q->nslots - 1 - i);
        q->free_pos[q->nslots - 1 - i] = (uint16_t)i;
    }
    q->nfree_slots = q->nslots;
    for (i = 0; i < q->nslots; i++) {
        VuSlot *s = &q->slots[i];

        s->hdr = vu_mem_alloc(m, sizeof(VirtioBlkOutHdr), 16);
        s->status = vu_mem_alloc(m, 1, 1);
        s->indirect =
            vu_mem_alloc(m, (SLOT_MAX_SEGS + 2) * sizeof(VringDesc), 16);
        s->data = vu_mem_alloc(m, q->slot_data_size, 4096);
    }
    if (!q->interrupts) {
        /* Polling: no signals wanted (the event index variant is set as
         * completions are read). */
        *avail_flags(q) = VRING_AVAIL_F_NO_INTERRUPT;
    }
}

void vu_queue_destroy(VuQueue *q)
{
    if (q->kick_fd >= 0) {
        close(q->kick_fd);
    }
    if (q->call_fd >= 0) {
        close(q->call_fd);
    }
    g_free(q->slot_of_head);
    g_free(q->ndesc_of_head);
    g_free(q->slots);
    g_free(q->free_slots);
    g_free(q->free_pos);
    memset(q, 0, sizeof(*q));
    q->kick_fd = q->call_fd = -1;
}

unsigned vu_queue_busy(const VuQueue *q)
{
    return q->nslots - q->nfree_slots;
}

int vu_queue_free_slot(VuQueue *q)
{
    return q->nfree_slots ? q->free_slots[q->nfree_slots - 1] : -1;
}

/* Takes slot s off the idle stack (it need not be on top). */
static void slot_take(VuQueue *q, unsigned s)
{
    unsigned pos = q->free_pos[s];
    uint16_t last = q->free_slots[q->nfree_slots - 1];

    q->free_slots[pos] = last;
    q->free_pos[last] = (uint16_t)pos;
    q->nfree_slots--;
}

static void slot_put(VuQueue *q, unsigned s)
{
    q->free_pos[s] = (uint16_t)q->nfree_slots;
    q->free_slots[q->nfree_slots++] = (uint16_t)s;
}

static uint16_t take_desc(VuQueue *q)
{
    uint16_t d = q->free_head;

    if (q->nfree == 0) {
        g_error("vu_queue_add: out of descriptors");
    }
    q->free_head = q->desc[d].next;
    q->nfree--;
    return d;
}

void vu_queue_add(VuQueue *q, unsigned s, uint32_t type, uint64_t sector,
                  size_t len, unsigned segs)
{
    VuSlot *slot = &q->slots[s];
    VringDesc chain[SLOT_MAX_SEGS + 2];
    bool writable = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    unsigned n = 0, i;
    uint16_t head;

    segs = segs < 1 ? 1 : segs > SLOT_MAX_SEGS ? SLOT_MAX_SEGS : segs;
    if (slot->busy) {
        g_error("vu_queue_add: slot %u is busy", s);
    }
    slot_take(q, s);
    slot->busy = true;
    slot->submit_ticks = vu_ticks();
    slot->hdr->type = type;
    slot->hdr->ioprio = 0;
    slot->hdr->sector = sector;
    *slot->status = 0xff;
    chain[n++] = (VringDesc){
        .addr = vu_mem_gpa(q->mem, slot->hdr),
        .len = sizeof(VirtioBlkOutHdr),
    };
    if (len > 0) {
        size_t per = (len + segs - 1) / segs;
        size_t off = 0;

        while (off < len) {
            size_t k = len - off < per ? len - off : per;

            chain[n++] = (VringDesc){
                .addr = vu_mem_gpa(q->mem, slot->data + off),
                .len = (uint32_t)k,
                .flags = writable ? VRING_DESC_F_WRITE : 0,
            };
            off += k;
        }
    }
    chain[n++] = (VringDesc){
        .addr = vu_mem_gpa(q->mem, slot->status),
        .len = 1,
        .flags = VRING_DESC_F_WRITE,
    };
    if (q->indirect) {
        for (i = 0; i < n; i++) {
            slot->indirect[i] = chain[i];
            if (i + 1 < n) {
                slot->indirect[i].flags |= VRING_DESC_F_NEXT;
                slot->indirect[i].next = (uint16_t)(i + 1);
            }
        }
        head = take_desc(q);
        q->desc[head] = (VringDesc){
            .addr = vu_mem_gpa(q->mem, slot->indirect),
            .len = n * sizeof(VringDesc),
            .flags = VRING_DESC_F_INDIRECT,
        };
        q->ndesc_of_head[head] = 1;
    } else {
        uint16_t prev = 0;

        head = 0;
        for (i = 0; i < n; i++) {
            uint16_t d = take_desc(q);

            q->desc[d] = chain[i];
            if (i == 0) {
                head = d;
            } else {
                q->desc[prev].flags |= VRING_DESC_F_NEXT;
                q->desc[prev].next = d;
            }
            prev = d;
        }
        q->ndesc_of_head[head] = (uint16_t)n;
    }
    q->slot_of_head[head] = (uint16_t)s;
    dp_atomic_store_relaxed(avail_ring(q, q->avail_idx & (q->num - 1)), head);
    q->avail_idx++;
}

void vu_queue_publish(VuQueue *q)
{
    uint16_t old = q->avail_published;
    uint16_t new = q->avail_idx;
    bool kick;

    if (old == new) {
        return;
    }
    /* seq_cst: the entries before the index (release), and the index
     * before the kick decision's load (pairs with vring_set_kicks). */
    dp_atomic_store_seq_cst(avail_idx(q), new);
    q->avail_published = new;
    if (q->event_idx) {
        uint16_t ev = dp_atomic_load_seq_cst(avail_event(q));

        kick = (uint16_t)(new - ev - 1) < (uint16_t)(new - old);
    } else {
        kick =
            !(dp_atomic_load_seq_cst(used_flags(q)) & VRING_USED_F_NO_NOTIFY);
    }
    if (kick) {
        uint64_t one = 1;

        if (write(q->kick_fd, &one, sizeof(one)) == sizeof(one)) {
            q->kicks++;
        }
    }
}

static void free_chain(VuQueue *q, uint16_t head)
{
    uint16_t n = q->ndesc_of_head[head];
    uint16_t d = head;

    for (uint16_t i = 1; i < n; i++) {
        d = q->desc[d].next;
    }
    /* d is the chain's last descriptor: splice the chain onto the list. */
    q->desc[d].next = q->free_head;
    q->free_head = head;
    q->nfree += n;
}

void vu_queue_want_interrupts(VuQueue *q, bool want)
{
    if (q->event_idx) {
        dp_atomic_store_seq_cst(
            used_event(q),
            (uint16_t)(want ? q->last_used : q->last_used + 0x7fff));
    } else {
        dp_atomic_store_seq_cst(
            avail_flags(q), (uint16_t)(want ? 0 : VRING_AVAIL_F_NO_INTERRUPT));
    }
}

unsigned vu_queue_poll(VuQueue *q, VuCompleteFn *fn, void *opaque)
{
    uint16_t idx = dp_atomic_load_acquire(used_idx(q));
    unsigned n = 0;

    while (q->last_used != idx) {
        VringUsedElem *e = used_ring(q, q->last_used & (q->num - 1));
        uint32_t head = dp_atomic_load_relaxed(&e->id);
        uint32_t len = dp_atomic_load_relaxed(&e->len);
        unsigned s;

        if (head >= q->num) {
            g_error("vu_queue_poll: backend returned head %u", head);
        }
        s = q->slot_of_head[head];
        free_chain(q, (uint16_t)head);
        q->last_used++;
        if (fn) {
            fn(q, s, len, opaque);
        }
        q->slots[s].busy = false;
        slot_put(q, s);
        n++;
    }
    if (n && !q->interrupts) {
        vu_queue_want_interrupts(q, false);
    }
    return n;
}

bool vu_queue_arm_interrupt(VuQueue *q)
{
    vu_queue_want_interrupts(q, true);
    return dp_atomic_load_seq_cst(used_idx(q)) != q->last_used;
}

unsigned vu_queue_wait(VuQueue *q, VuCompleteFn *fn, void *opaque,
                       int timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;
    unsigned n;

    for (;;) {
        n = vu_queue_poll(q, fn, opaque);
        if (n || now_ns() >= deadline) {
            return n;
        }
        if (q->interrupts) {
            struct pollfd pfd = {.fd = q->call_fd, .events = POLLIN};
            uint64_t v;

            vu_queue_want_interrupts(q, true);
            n = vu_queue_poll(q, fn, opaque);
            if (n) {
                return n;
            }
            if (poll(&pfd, 1, (int)((deadline - now_ns()) / 1000000) + 1) ==
                    1 &&
                read(q->call_fd, &v, sizeof(v)) == sizeof(v)) {
                q->signals++;
            }
        }
    }
}

uint16_t vu_queue_used_idx(VuQueue *q)
{
    return dp_atomic_load_acquire(used_idx(q));
}

/* ---- synchronous I/O ---------------------------------------------------- */

typedef struct SyncWait {
    unsigned slot;
    bool done;
    uint8_t status;
} SyncWait;

static void sync_done(VuQueue *q, unsigned slot, uint32_t len, void *opaque)
{
    SyncWait *w = opaque;

    if (slot == w->slot) {
        w->done = true;
        w->status = *q->slots[slot].status;
    }
}

int vu_client_io(VuClient *c, unsigned queue, uint32_t type, uint64_t sector,
                 void *data, size_t len)
{
    VuQueue *q = &c->queues[queue];
    int s = vu_queue_free_slot(q);
    SyncWait w = {0};
    uint64_t deadline = now_ns() + 10 * (uint64_t)1000000000;

    if (s < 0 || len > q->slot_data_size) {
        return -1;
    }
    w.slot = (unsigned)s;
    if (data && type != VIRTIO_BLK_T_IN && type != VIRTIO_BLK_T_GET_ID) {
        memcpy(q->slots[s].data, data, len);
    }
    vu_queue_add(q, (unsigned)s, type, sector, len, 1);
    vu_queue_publish(q);
    while (!w.done && now_ns() < deadline) {
        vu_queue_wait(q, sync_done, &w, 100);
    }
    if (!w.done) {
        return -1;
    }
    if (data && (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID)) {
        memcpy(data, q->slots[s].data, len);
    }
    return w.status;
}

/* ---- patterns ----------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

void vu_pattern_fill(uint8_t *buf, size_t len, uint64_t blk, uint32_t gen)
{
    uint64_t seed = mix(blk * 0x9e3779b97f4a7c15ULL + gen);

    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t v = mix(seed + i);

        memcpy(buf + i, &v, 8);
    }
}

bool vu_pattern_check(const uint8_t *buf, size_t len, uint64_t blk,
                      uint32_t gen)
{
    uint64_t seed = mix(blk * 0x9e3779b97f4a7c15ULL + gen);

    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t v = mix(seed + i);

        if (memcmp(buf + i, &v, 8) != 0) {
            return false;
        }
    }
    return true;
}
