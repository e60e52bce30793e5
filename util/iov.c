/*
 * IOVector: growable struct iovec arrays (include/dataplane/iov.h).
 */
#include <stdint.h>
#include <string.h>
#include <glib.h>

#include "dataplane/iov.h"

void iov_init(IOVector *v, int alloc_hint)
{
    v->nalloc = alloc_hint > 0 ? alloc_hint : 0;
    v->iov = v->nalloc ? g_new(struct iovec, v->nalloc) : NULL;
    v->niov = 0;
    v->size = 0;
}

void iov_add(IOVector *v, void *base, size_t len)
{
    if (len == 0) {
        return;
    }
    if (v->niov > 0) {
        struct iovec *last = &v->iov[v->niov - 1];

        /* Contiguous pieces merge: fewer entries for the kernel to walk. */
        if ((char *)last->iov_base + last->iov_len == (char *)base) {
            last->iov_len += len;
            v->size += len;
            return;
        }
    }
    if (v->niov == v->nalloc) {
        v->nalloc = v->nalloc ? v->nalloc * 2 : 4;
        v->iov = g_renew(struct iovec, v->iov, v->nalloc);
    }
    v->iov[v->niov].iov_base = base;
    v->iov[v->niov].iov_len = len;
    v->niov++;
    v->size += len;
}

void iov_reset(IOVector *v)
{
    v->niov = 0;
    v->size = 0;
}

void iov_destroy(IOVector *v)
{
    g_free(v->iov);
    v->iov = NULL;
    v->niov = 0;
    v->nalloc = 0;
    v->size = 0;
}

/*
 * Walks [offset, offset + bytes) of v, calling fn on each contiguous piece
 * with the running position in the flat range.  Returns the bytes walked.
 */
typedef void IovPieceFunc(char *piece, size_t len, size_t done, void *opaque);

static size_t iov_walk(const IOVector *v, size_t offset, size_t bytes,
                       IovPieceFunc *fn, void *opaque)
{
    size_t done = 0;
    int i;

    for (i = 0; i < v->niov && done < bytes; i++) {
        size_t len = v->iov[i].iov_len;
        size_t n;

        if (offset >= len) {
            offset -= len;
            continue;
        }
        n = MIN(len - offset, bytes - done);
        fn((char *)v->iov[i].iov_base + offset, n, done, opaque);
        done += n;
        offset = 0;
    }
    return done;
}

static void piece_from_buf(char *piece, size_t len, size_t done, void *opaque)
{
    memcpy(piece, (const char *)opaque + done, len);
}

size_t iov_from_buf(IOVector *v, size_t offset, const void *buf, size_t bytes)
{
    return iov_walk(v, offset, bytes, piece_from_buf, (void *)buf);
}

static void piece_to_buf(char *piece, size_t len, size_t done, void *opaque)
{
    memcpy((char *)opaque + done, piece, len);
}

size_t iov_to_buf(const IOVector *v, size_t offset, void *buf, size_t bytes)
{
    return iov_walk(v, offset, bytes, piece_to_buf, buf);
}

static void piece_memset(char *piece, size_t len, size_t done, void *opaque)
{
    memset(piece, *(int *)opaque, len);
}

size_t iov_memset(IOVector *v, size_t offset, int c, size_t bytes)
{
    return iov_walk(v, offset, bytes, piece_memset, &c);
}

static void piece_concat(char *piece, size_t len, size_t done, void *opaque)
{
    iov_add(opaque, piece, len);
}

size_t iov_concat(IOVector *dst, const IOVector *src, size_t offset,
                  size_t bytes)
{
    return iov_walk(src, offset, bytes, piece_concat, dst);
}

bool iov_is_aligned(const IOVector *v, size_t align)
{
    int i;

    for (i = 0; i < v->niov; i++) {
        if (((uintptr_t)v->iov[i].iov_base | v->iov[i].iov_len) & (align - 1)) {
            return false;
        }
    }
    return true;
}

static bool buf_is_zero(const char *p, size_t len)
{
    /* Check the first byte, then compare the buffer with itself shifted by
     * one: all equal to the first byte means all zero. */
    return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

static void piece_is_zero(char *piece, size_t len, size_t done, void *opaque)
{
    bool *zero = opaque;

    if (*zero && !buf_is_zero(piece, len)) {
        *zero = false;
    }
}

bool iov_is_zero(const IOVector *v, size_t offset, size_t bytes)
{
    bool zero = true;

    iov_walk(v, offset, bytes, piece_is_zero, &zero);
    return zero;
}
