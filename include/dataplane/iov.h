/*
 * IOVector: a growable array of struct iovec describing one I/O buffer made
 * of several pieces, as the block layer's vectored calls take it.
 *
 * An IOVector never owns the memory its entries point to: the caller keeps
 * every buffer valid (and, for reads, unaliased) until the I/O that uses the
 * vector has completed.  It owns only its iov array.
 *
 * Thread-safety: none.  An IOVector belongs to one thread at a time; hand it
 * to another thread only through something that orders memory (a BH, a lock).
 */
#ifndef DATAPLANE_IOV_H
#define DATAPLANE_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>
#include "dataplane/visibility.h"

DP_API_BEGIN

typedef struct IOVector {
    struct iovec *iov; /* niov used entries, nalloc allocated */
    int niov;
    int nalloc;
    size_t size; /* sum of the entries' lengths */
} IOVector;

/* An empty vector with room for alloc_hint entries (0 is fine). */
void iov_init(IOVector *v, int alloc_hint);
/*
 * Appends [base, base + len).  A piece that directly follows the last entry
 * in memory extends it instead of adding an entry.  len == 0 is ignored.
 */
void iov_add(IOVector *v, void *base, size_t len);
/* Empties the vector, keeping its allocation for reuse. */
void iov_reset(IOVector *v);
/* Frees the iov array (not the buffers); the vector must be re-inited. */
void iov_destroy(IOVector *v);

/*
 * Copies bytes from buf into the vector starting at byte offset `offset`
 * of the vector.  Copies at most v->size - offset bytes and returns how
 * many it copied.
 */
size_t iov_from_buf(IOVector *v, size_t offset, const void *buf, size_t bytes);
/* The reverse: copies from the vector (at offset) into buf. */
size_t iov_to_buf(const IOVector *v, size_t offset, void *buf, size_t bytes);
/* Fills bytes of the vector from offset with c; returns how many. */
size_t iov_memset(IOVector *v, size_t offset, int c, size_t bytes);

/*
 * Appends to dst the part [offset, offset + bytes) of src (entries pointing
 * into the same buffers, nothing copied).  Returns the bytes appended,
 * fewer if src is shorter.
 */
size_t iov_concat(IOVector *dst, const IOVector *src, size_t offset,
                  size_t bytes);

/* True if every entry's address and length is a multiple of align (a power
 * of two). */
bool iov_is_aligned(const IOVector *v, size_t align);

/* True if the [offset, offset + bytes) part of the vector is all zero bytes. */
bool iov_is_zero(const IOVector *v, size_t offset, size_t bytes);

DP_API_END

#endif /* DATAPLANE_IOV_H */
