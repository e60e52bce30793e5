/*
 * Split virtqueues (virtio 1.x, section 2.7), device side: taking buffers
 * from the available ring, walking their descriptor chains (direct and
 * indirect) into I/O vectors, returning them through the used ring, and
 * the notification rules in both directions (VIRTIO_RING_F_EVENT_IDX or
 * the flags).
 *
 * The driver is untrusted and its memory changes under our feet: every
 * descriptor is copied once before it is checked and used; a chain is
 * bounded (no more descriptors than the queue has, or than the caller's
 * limit), an indirect table may not nest, every buffer must lie in the
 * guest memory map, and readable buffers must come before writable ones.
 * A ring whose available index runs more than the queue size ahead, or
 * that names a head outside the table, is broken: the caller stops it.
 *
 * Memory ordering, against the driver in another process (or thread):
 *  - the available index is read with acquire, before the ring entry and
 *    descriptors it publishes (pairs with the driver's write barrier
 *    before it bumps the index); it is read again only when the entries
 *    up to the last value read are all taken (the line is the driver's
 *    busiest: each load of it is a cache miss);
 *  - used entries are written before the used index is stored with release
 *    (pairs with the driver's read barrier after reading it), once per
 *    batch of completions;
 *  - enabling kicks and deciding whether to signal are store-then-load
 *    handshakes with the driver, so both sides use seq_cst accesses (the
 *    driver's matching barrier is its full barrier in virtqueue_kick_prepare
 *    and in its interrupt re-enable).
 *
 * Pure over memory: no I/O, no allocation.  Thread-safety: a VhostVring
 * belongs to the one thread that processes the queue.
 */
#ifndef DATAPLANE_VHOST_VIRTQUEUE_H
#define DATAPLANE_VHOST_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vhost/memory.h"

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

/* The largest split queue the spec allows. */
#define VRING_MAX_SIZE 32768

typedef struct VringDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} VringDesc;

typedef struct VringUsedElem {
    uint32_t id;
    uint32_t len;
} VringUsedElem;

/* Bytes of each part of a queue of num entries (event fields included). */
#define VRING_DESC_SIZE(num) ((uint64_t)(num)*16)
#define VRING_AVAIL_SIZE(num) (6 + (uint64_t)(num)*2)
#define VRING_USED_SIZE(num) (6 + (uint64_t)(num)*8)

typedef struct VhostVring {
    /* Set up by vring_init(). */
    unsigned num; /* entries, a power of two */
    VringDesc *desc;
    uint8_t *avail; /* flags, idx, ring[num], used_event */
    uint8_t *used;  /* flags, idx, ring[num], avail_event */
    bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
    bool indirect;  /* VIRTIO_RING_F_INDIRECT_DESC negotiated */

    uint16_t last_avail_idx;   /* the next available entry to take */
    uint16_t shadow_avail_idx; /* the driver's index when last read: the
                                  entries before it need no new load */
    uint16_t used_idx;         /* the next used entry to fill (not yet
                                  published if ahead of the ring's idx) */
    uint16_t signalled_used;   /* the used idx at the last signal */
    bool signalled_used_valid;
    bool kicks_enabled; /* we asked the driver for kicks */
} VhostVring;

/* Why vring_pop() failed. */
typedef enum VringPopResult {
    VRING_POP_OK = 0,
    VRING_POP_EMPTY,  /* nothing available */
    VRING_POP_BROKEN, /* the ring (or this chain) is bad: stop the queue */
} VringPopResult;

/* One chain taken from the available ring. */
typedef struct VringElem {
    uint16_t head;
    unsigned out_num; /* iov[0 .. out_num): driver-readable */
    unsigned in_num;  /* iov[out_num .. out_num + in_num): writable */
    uint64_t out_len; /* bytes */
    uint64_t in_len;
} VringElem;

/* Whether num is a valid split queue size (a power of two, 1..32768). */
bool vring_size_valid(unsigned num);

/*
 * Points vr at rings already translated to host addresses (sizes per the
 * VRING_*_SIZE macros, desc 16-byte aligned, avail 2, used 4; the caller
 * checks), and starts at last_avail_idx.  used_idx is read from the ring.
 */
void vring_init(VhostVring *vr, unsigned num, VringDesc *desc, uint8_t *avail,
                uint8_t *used, uint16_t last_avail_idx, bool event_idx,
                bool indirect);

/* The driver's available index (acquire); also refreshes the shadow. */
uint16_t vring_avail_idx(VhostVring *vr);
/* The used index in the ring (what the driver sees). */
uint16_t vring_used_idx_published(const VhostVring *vr);

/*
 * Whether the driver has made buffers available that we have not taken:
 * false also for a broken ring (the next pop says so).
 */
bool vring_has_work(VhostVring *vr);

/*
 * Takes the next available chain into elem and iov (at most max_iov
 * entries; a longer chain is BROKEN).  max_descs bounds the descriptors of
 * one chain (0: the queue size).  On BROKEN, *why says what was wrong and
 * the ring state is unchanged.
 */
VringPopResult vring_pop(VhostVring *vr, const VhostMemMap *map, unsigned *hint,
                         VringElem *elem, struct iovec *iov, unsigned max_iov,
                         unsigned max_descs, const char **why);

/*
 * Walks the chain starting at descriptor head (not taken from the ring:
 * an in-flight request being resubmitted).  Same checks as vring_pop().
 */
VringPopResult vring_walk_chain(VhostVring *vr, const VhostMemMap *map,
                                unsigned *hint, uint16_t head, VringElem *elem,
                                struct iovec *iov, unsigned max_iov,
                                unsigned max_descs, const char **why);

/* Writes a used entry (not yet visible: see vring_publish). */
void vring_push(VhostVring *vr, uint16_t head, uint32_t len);
/* Makes the pushed entries visible to the driver (release). */
void vring_publish(VhostVring *vr);
/*
 * After vring_publish(), once per batch: whether the driver wants an
 * interrupt for what was published since the last signal (EVENT_IDX's
 * used_event, else the NO_INTERRUPT flag).  Records the signal as sent
 * when it says yes.
 */
bool vring_should_signal(VhostVring *vr);

/*
 * Asks the driver to kick (true) or not to bother (false).  Enabling
 * returns whether work arrived meanwhile: the caller must then process it
 * rather than wait for a kick that will not come.
 */
bool vring_set_kicks(VhostVring *vr, bool enable);

#endif /* DATAPLANE_VHOST_VIRTQUEUE_H */
