/*
 * A connection's data buffers: READ, WRITE and CACHE payloads and block
 * status replies.  Freed buffers of up to NBD_BUF_CACHE_MAX bytes are kept
 * per client in power-of-two classes for reuse, so that a steady stream of
 * requests costs no malloc, trim, mmap or page fault each.  Node's context.
 */
#include <stdlib.h>

#include "nbd/transmission.h"

/* Aligned, so that a file node opened with cache.direct=on can use the
 * buffer without a bounce. */
static void *buf_alloc(size_t len)
{
    void *p = NULL;

    if (len == 0) {
        return NULL;
    }
    if (posix_memalign(&p, 4096, len) != 0) {
        g_error("nbd: out of memory allocating %zu bytes", len);
    }
    return p;
}

/* The cache class of a buffer of len bytes, or -1 if it is not cached. */
static int buf_class(size_t len)
{
    int c = 0;

    if (len == 0 || len > NBD_BUF_CACHE_MAX) {
        return -1;
    }
    while (((size_t)1 << (NBD_BUF_CACHE_MIN_SHIFT + c)) < len) {
        c++;
    }
    return c;
}

/* A data buffer of len bytes, from the client's cache when it has one. */
void *nbd_buf_get(NbdClient *client, size_t len)
{
    int c = buf_class(len);
    void *p;

    if (c < 0) {
        return buf_alloc(len);
    }
    p = client->buf_cache[c];
    if (!p) {
        return buf_alloc((size_t)1 << (NBD_BUF_CACHE_MIN_SHIFT + c));
    }
    client->buf_cache[c] = *(void **)p;
    client->buf_cache_len[c]--;
    client->buf_cache_bytes -= (size_t)1 << (NBD_BUF_CACHE_MIN_SHIFT + c);
    return p;
}

/* Gives back a buffer nbd_buf_get(client, len) returned. */
void nbd_buf_put(NbdClient *client, void *p, size_t len)
{
    int c = buf_class(len);

    if (!p) {
        return;
    }
    if (c < 0 || client->buf_cache_len[c] >= NBD_BUF_CACHE_DEPTH ||
        client->buf_cache_bytes + ((size_t)1 << (NBD_BUF_CACHE_MIN_SHIFT + c)) >
            NBD_BUF_CACHE_BYTES) {
        free(p);
        return;
    }
    *(void **)p = client->buf_cache[c];
    client->buf_cache[c] = p;
    client->buf_cache_len[c]++;
    client->buf_cache_bytes += (size_t)1 << (NBD_BUF_CACHE_MIN_SHIFT + c);
}

void nbd_buf_cache_free(NbdClient *client)
{
    int c;

    for (c = 0; c < NBD_BUF_CACHE_CLASSES; c++) {
        while (client->buf_cache[c]) {
            void *p = client->buf_cache[c];

            client->buf_cache[c] = *(void **)p;
            free(p);
        }
        client->buf_cache_len[c] = 0;
    }
    client->buf_cache_bytes = 0;
}
