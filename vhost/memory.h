/*
 * The guest memory map of a vhost-user connection: the regions the
 * front-end shared (SET_MEM_TABLE, ADD_MEM_REG), each mapped into this
 * process, and the translations every guest address goes through.
 *
 * Every address the front-end or the guest hands over is untrusted: a
 * translation succeeds only if the whole range [addr, addr + len) lies in
 * mapped regions, and wrap-around is checked before any addition.  Nothing
 * outside a region is ever returned.
 *
 * Two address spaces are translated: guest physical addresses (descriptor
 * buffers, indirect tables) and the front-end's own virtual addresses (the
 * ring addresses of SET_VRING_ADDR, without VIRTIO_F_ACCESS_PLATFORM).
 *
 * Thread-safety: a VhostMemMap belongs to one thread (the connection's
 * context); lookups take a caller-owned hint so that several queues reading
 * one unchanging map share no mutable state.  Changing the map while any
 * request holds a translation is the caller's job to prevent (the
 * connection waits until no request is in flight).
 */
#ifndef DATAPLANE_VHOST_MEMORY_H
#define DATAPLANE_VHOST_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vhost/protocol.h"

typedef struct VhostMemRegion {
    uint64_t gpa;    /* guest physical address of the first byte */
    uint64_t size;   /* bytes, > 0 */
    uint64_t uva;    /* the front-end's virtual address of the first byte */
    uint8_t *hva;    /* where the first byte is in this process */
    void *mmap_addr; /* what vhost_mem_unmap_region() unmaps; NULL if the
                        memory is not ours (tests) */
    size_t mmap_len;
    int guard; /* its memory-guard.h slot (-1: none); with mmap_addr */
} VhostMemRegion;

typedef struct VhostMemMap {
    unsigned nregions;
    /* Sorted by gpa; no two overlap in gpa nor in uva. */
    VhostMemRegion regions[VHOST_USER_MAX_MEM_SLOTS];
} VhostMemMap;

/*
 * Whether r may join the map: a non-empty size, no wrap-around of gpa,
 * uva or mmap_offset plus size, no overlap with a region already there
 * (in either address space), and room left.  NULL if so, else why not.
 */
const char *vhost_mem_check_region(const VhostMemMap *map,
                                   const VhostUserMemRegion *r);

/*
 * Maps fd for region r (MAP_SHARED, read-write) and fills *out.  Refuses a
 * file smaller than mmap_offset + memory_size (touching the missing part
 * would be a SIGBUS); a file that shrinks later is absorbed by the SIGBUS
 * guard (memory-guard.h), which the mapping is registered with.  Returns
 * NULL or why it failed.  The caller keeps ownership of fd (mapping it
 * does not need it open afterwards).
 */
const char *vhost_mem_map_region(const VhostUserMemRegion *r, int fd,
                                 VhostMemRegion *out);
/* Unmaps what vhost_mem_map_region() mapped. */
void vhost_mem_unmap_region(VhostMemRegion *reg);

/* Adds reg (already checked with vhost_mem_check_region). */
void vhost_mem_insert(VhostMemMap *map, const VhostMemRegion *reg);
/* The index of the region with exactly this gpa, size and uva, or -1. */
int vhost_mem_find(const VhostMemMap *map, uint64_t gpa, uint64_t size,
                   uint64_t uva);
/* Removes region i from the table (the caller unmaps it first). */
void vhost_mem_remove(VhostMemMap *map, unsigned i);
/* Unmaps and removes every region. */
void vhost_mem_clear(VhostMemMap *map);
/* Whether a region of the map was truncated under us (the SIGBUS guard
 * absorbed a fault in it): the guest's memory is gone. */
bool vhost_mem_truncated(const VhostMemMap *map);

/*
 * Guest physical [gpa, gpa + len) as one pointer, if it lies within one
 * region; NULL otherwise.  len may be 0 (then gpa itself must be mapped).
 * *hint (may be NULL) is a region index to try first and is updated.
 */
void *vhost_mem_gpa_to_hva(const VhostMemMap *map, uint64_t gpa, uint64_t len,
                           unsigned *hint);

/*
 * Guest physical [gpa, gpa + len) as iovecs appended at iov[*niov], split
 * where it crosses from one region into the next adjacent one.  Fails
 * (false) if any byte is unmapped or more than max_iov entries would be
 * needed in all; *niov is then unspecified.  len 0 appends nothing.
 */
bool vhost_mem_gpa_to_iov(const VhostMemMap *map, uint64_t gpa, uint64_t len,
                          struct iovec *iov, unsigned *niov, unsigned max_iov,
                          unsigned *hint);

/* The front-end's virtual [uva, uva + len) as one pointer, within one
 * region; NULL otherwise. */
void *vhost_mem_uva_to_hva(const VhostMemMap *map, uint64_t uva, uint64_t len);

#endif /* DATAPLANE_VHOST_MEMORY_H */
