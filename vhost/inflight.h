/*
 * Inflight I/O tracking (vhost-user.rst, "Inflight I/O tracking", split
 * queues): a shared memory area, one region per queue, in which the
 * backend marks each chain it has taken and not yet returned, so that
 * after the backend restarts (or the front-end reconnects) the chains are
 * submitted again instead of being lost.
 *
 * Layout of one queue's region (the spec's QueueRegionSplit): a 16-byte
 * header (features u64, version u16, desc_num u16, last_batch_head u16,
 * used_idx u16), then desc_num 16-byte entries (inflight u8, 5 bytes
 * padding, next u16, counter u64).  Regions are 64-byte aligned.  The
 * structs below have that layout without packing (inflight.c asserts it).
 *
 * The front-end owns the memory and may scribble on it: nothing read back
 * from it is trusted (indexes are bounds-checked, counts are bounded).
 *
 * Thread-safety: a VhostInflightQueue belongs to the thread that processes
 * its queue.
 */
#ifndef DATAPLANE_VHOST_INFLIGHT_H
#define DATAPLANE_VHOST_INFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VHOST_INFLIGHT_VERSION 1

typedef struct VhostInflightDesc {
    uint8_t inflight;
    uint8_t padding[5];
    uint16_t next;
    uint64_t counter;
} VhostInflightDesc;

typedef struct VhostInflightRegion {
    uint64_t features;
    uint16_t version;
    uint16_t desc_num;
    uint16_t last_batch_head;
    uint16_t used_idx;
    VhostInflightDesc desc[];
} VhostInflightRegion;

/* The bytes one queue of queue_size entries takes (64-byte aligned). */
size_t vhost_inflight_region_size(uint16_t queue_size);

/* One queue's view of its region. */
typedef struct VhostInflightQueue {
    VhostInflightRegion *region; /* NULL: no tracking */
    uint16_t num;
    uint64_t counter; /* the next fetch's order number */
    /* The heads returned since the last commit (private copy: the shared
     * `next` links are for a successor after a crash, not for us). */
    uint16_t *batch;
    unsigned batch_len;
} VhostInflightQueue;

/*
 * Starts tracking queue num entries in region (NULL: none).  used_idx is
 * the used ring's index as the driver sees it now.  A region never used
 * (version 0) or laid out for another size is initialised; one in use is
 * recovered: a batch returned but not committed is cleared, and the heads
 * still in flight are written to resubmit[] (room for num) in the order
 * they were taken; their count goes to *n_resubmit.  Returns the index at
 * which taking from the available ring resumes: used_idx plus the chains
 * still in flight (a driver-independent answer, as the spec asks).
 * Without a region, returns last_avail_idx unchanged.
 */
uint16_t vhost_inflight_start(VhostInflightQueue *q,
                              VhostInflightRegion *region, uint16_t num,
                              uint16_t used_idx, uint16_t last_avail_idx,
                              uint16_t *resubmit, unsigned *n_resubmit);
/* Forgets the region and frees the batch. */
void vhost_inflight_stop(VhostInflightQueue *q);

/* A chain was taken from the available ring (or resubmitted). */
void vhost_inflight_take(VhostInflightQueue *q, uint16_t head);
/* A chain was pushed onto the used ring (not yet published). */
void vhost_inflight_push(VhostInflightQueue *q, uint16_t head);
/* Before publishing the used index: records the batch's links. */
void vhost_inflight_pre_publish(VhostInflightQueue *q);
/* After publishing used_idx: clears the batch's flags, records used_idx. */
void vhost_inflight_commit(VhostInflightQueue *q, uint16_t used_idx);

#endif /* DATAPLANE_VHOST_INFLIGHT_H */
