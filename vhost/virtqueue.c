/*
 * Split virtqueues, device side.  See virtqueue.h for the rules and the
 * memory ordering.
 */
#include <string.h>

#include "util/atomic.h"
#include "vhost/virtqueue.h"

/* Guest memory holds little-endian virtio structures; we read them as
 * native integers. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "vhost/: virtio rings are little-endian; this host is not");
_Static_assert(sizeof(VringDesc) == 16, "VringDesc is the wire layout");

/* ---- ring fields -------------------------------------------------------- */

static uint16_t *avail_flags(const VhostVring *vr)
{
    return (uint16_t *)vr->avail;
}

static uint16_t *avail_idx_ptr(const VhostVring *vr)
{
    return (uint16_t *)(vr->avail + 2);
}

static uint16_t *avail_ring(const VhostVring *vr, unsigned i)
{
    return (uint16_t *)(vr->avail + 4 + 2 * (size_t)i);
}

static uint16_t *used_event(const VhostVring *vr)
{
    return avail_ring(vr, vr->num);
}

static uint16_t *used_flags(const VhostVring *vr)
{
    return (uint16_t *)vr->used;
}

static uint16_t *used_idx_ptr(const VhostVring *vr)
{
    return (uint16_t *)(vr->used + 2);
}

static VringUsedElem *used_ring(const VhostVring *vr, unsigned i)
{
    return (VringUsedElem *)(vr->used + 4 + 8 * (size_t)i);
}

static uint16_t *avail_event(const VhostVring *vr)
{
    return (uint16_t *)used_ring(vr, vr->num);
}

/* ---- set-up ------------------------------------------------------------- */

bool vring_size_valid(unsigned num)
{
    return num > 0 && num <= VRING_MAX_SIZE && (num & (num - 1)) == 0;
}

void vring_init(VhostVring *vr, unsigned num, VringDesc *desc, uint8_t *avail,
                uint8_t *used, uint16_t last_avail_idx, bool event_idx,
                bool indirect)
{
    *vr = (VhostVring){
        .num = num,
        .desc = desc,
        .avail = avail,
        .used = used,
        .event_idx = event_idx,
        .indirect = indirect,
        .last_avail_idx = last_avail_idx,
    };
    vr->used_idx = dp_atomic_load_relaxed(used_idx_ptr(vr));
    vr->shadow_avail_idx = last_avail_idx;
    /* Until we say otherwise the driver kicks for every buffer: a fresh
     * ring has avail_event 0 and flags 0, which means that. */
    vr->kicks_enabled = true;
}

uint16_t vring_avail_idx(VhostVring *vr)
{
    /* Pairs with the driver's write barrier before it bumps idx: the ring
     * entries and descriptors it published are visible after this. */
    vr->shadow_avail_idx = dp_atomic_load_acquire(avail_idx_ptr(vr));
    return vr->shadow_avail_idx;
}

/* Entries available and not taken, reading the index only when the last
 * value read has been used up. */
static uint16_t avail_pending(VhostVring *vr)
{
    if (vr->shadow_avail_idx == vr->last_avail_idx) {
        vring_avail_idx(vr);
    }
    return (uint16_t)(vr->shadow_avail_idx - vr->last_avail_idx);
}

uint16_t vring_used_idx_published(const VhostVring *vr)
{
    return dp_atomic_load_relaxed(used_idx_ptr(vr));
}

bool vring_has_work(VhostVring *vr)
{
    uint16_t pending = avail_pending(vr);

    return pending != 0 && pending <= vr->num;
}

/* ---- taking buffers ----------------------------------------------------- */

static VringPopResult broken(const char **why, const char *msg)
{
    *why = msg;
    return VRING_POP_BROKEN;
}

VringPopResult vring_walk_chain(VhostVring *vr, const VhostMemMap *map,
                                unsigned *hint, uint16_t head, VringElem *elem,
                                struct iovec *iov, unsigned max_iov,
                                unsigned max_descs, const char **why)
{
    const VringDesc *table = vr->desc;
    unsigned table_size = vr->num;
    unsigned limit = vr->num;
    unsigned count = 0;
    unsigned niov = 0;
    bool in_indirect = false;
    bool seen_write = false;
    unsigned i = head;
    VringDesc d;

    if (max_descs && max_descs < limit) {
        limit = max_descs;
    }
    *elem = (VringElem){.head = head};
    for (;;) {
        unsigned before = niov;

        if (i >= table_size) {
            return broken(why, "descriptor index out of range");
        }
        /* One copy: the driver may change the table while we look. */
        memcpy(&d, &table[i], sizeof(d));
        if (d.flags & VRING_DESC_F_INDIRECT) {
            if (!vr->indirect) {
                return broken(why, "indirect descriptor, but INDIRECT_DESC "
                                   "was not negotiated");
            }
            if (in_indirect) {
                return broken(why, "nested indirect descriptor table");
            }
            if (count > 0 || i != head) {
                return broken(why, "indirect descriptor inside a chain");
            }
            if (d.flags & VRING_DESC_F_NEXT) {
                return broken(why, "indirect descriptor with NEXT set");
            }
            if (d.len == 0 || d.len % sizeof(VringDesc) != 0 ||
                d.len / sizeof(VringDesc) > VRING_MAX_SIZE) {
                return broken(why, "bad indirect table length");
            }
            table = vhost_mem_gpa_to_hva(map, d.addr, d.len, hint);
            if (!table) {
                return broken(why, "indirect table outside guest memory");
            }
            table_size = d.len / sizeof(VringDesc);
            limit = table_size;
            if (max_descs && max_descs < limit) {
                limit = max_descs;
            }
            in_indirect = true;
            i = 0;
            continue;
        }
        if (++count > limit) {
            return broken(why, "descriptor chain too long, or a loop");
        }
        if (d.flags & VRING_DESC_F_WRITE) {
            seen_write = true;
        } else if (seen_write) {
            return broken(why, "readable descriptor after a writable one");
        }
        if (!vhost_mem_gpa_to_iov(map, d.addr, d.len, iov, &niov, max_iov,
                                  hint)) {
            return broken(why, niov >= max_iov ? "too many buffer segments"
                                               : "buffer outside guest memory");
        }
        if (d.flags & VRING_DESC_F_WRITE) {
            elem->in_num += niov - before;
            elem->in_len += d.len;
        } else {
            elem->out_num += niov - before;
            elem->out_len += d.len;
        }
        if (!(d.flags & VRING_DESC_F_NEXT)) {
            return VRING_POP_OK;
        }
        i = d.next;
    }
}

VringPopResult vring_pop(VhostVring *vr, const VhostMemMap *map, unsigned *hint,
                         VringElem *elem, struct iovec *iov, unsigned max_iov,
                         unsigned max_descs, const char **why)
{
    uint16_t pending = avail_pending(vr);
    uint16_t head;
    VringPopResult r;

    if (pending == 0) {
        return VRING_POP_EMPTY;
    }
    if (pending > vr->num) {
        return broken(why, "available index ran ahead by more than the "
                           "queue size");
    }
    head = dp_atomic_load_relaxed(
        avail_ring(vr, vr->last_avail_idx & (vr->num - 1)));
    if (head >= vr->num) {
        return broken(why, "available ring names a head out of range");
    }
    r = vring_walk_chain(vr, map, hint, head, elem, iov, max_iov, max_descs,
                         why);
    if (r == VRING_POP_OK) {
        vr->last_avail_idx++;
    }
    return r;
}

/* ---- returning buffers -------------------------------------------------- */

void vring_push(VhostVring *vr, uint16_t head, uint32_t len)
{
    VringUsedElem *e = used_ring(vr, vr->used_idx & (vr->num - 1));

    dp_atomic_store_relaxed(&e->id, (uint32_t)head);
    dp_atomic_store_relaxed(&e->len, len);
    vr->used_idx++;
}

void vring_publish(VhostVring *vr)
{
    /* Release: the entries above before the index (pairs with the
     * driver's read barrier after it loads idx).  A plain store on x86:
     * this runs once per completion. */
    dp_atomic_store_release(used_idx_ptr(vr), vr->used_idx);
}

bool vring_should_signal(VhostVring *vr)
{
    uint16_t old = vr->signalled_used;
    uint16_t new = vr->used_idx;
    bool valid = vr->signalled_used_valid;
    uint16_t event;

    /* The index again, seq_cst: the store-then-load handshake with the
     * driver (pairs with its full barrier between writing used_event, or
     * clearing NO_INTERRUPT, and reading idx again).  Once per batch. */
    dp_atomic_store_seq_cst(used_idx_ptr(vr), new);
    if (!vr->event_idx) {
        return !(dp_atomic_load_seq_cst(avail_flags(vr)) &
                 VRING_AVAIL_F_NO_INTERRUPT);
    }
    if (valid && old == new) {
        return false;
    }
    vr->signalled_used = new;
    vr->signalled_used_valid = true;
    if (!valid) {
        return true;
    }
    event = dp_atomic_load_seq_cst(used_event(vr));
    /* The driver wants a signal once used idx moves past event. */
    return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

bool vring_set_kicks(VhostVring *vr, bool enable)
{
    if (vr->event_idx) {
        if (!enable) {
            /* avail_event stays where it was: the driver kicks again only
             * when its index passes that old value, i.e. not until the
             * index wraps (64 Ki buffers later) or we enable. */
            vr->kicks_enabled = false;
            return false;
        }
        /* Pairs with the driver's full barrier between bumping avail idx
         * and reading avail_event: either it sees our event and kicks, or
         * we see its new idx below. */
        dp_atomic_store_seq_cst(avail_event(vr), vr->last_avail_idx);
    } else {
        dp_atomic_store_seq_cst(
            used_flags(vr), (uint16_t)(enable ? 0 : VRING_USED_F_NO_NOTIFY));
        if (!enable) {
            vr->kicks_enabled = false;
            return false;
        }
    }
    vr->kicks_enabled = true;
    vr->shadow_avail_idx = dp_atomic_load_seq_cst(avail_idx_ptr(vr));
    return vr->shadow_avail_idx != vr->last_avail_idx;
}
