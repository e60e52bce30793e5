/*
 * The NBD server's memory budget across connections.  Not installed.
 *
 * Each connection bounds its own buffers (NBD_MAX_IN_FLIGHT_BYTES,
 * NBD_MAX_QUEUED_BYTES); the budget bounds their sum over every connection
 * of the server: the bytes held by requests in flight (READ, WRITE, CACHE
 * and BLOCK_STATUS buffers) and by replies not yet sent.  When it is spent,
 * connections stop reading requests and are woken (their resume_bh is
 * scheduled) as soon as any connection frees memory.
 *
 * The fairness rule, so that no connection waits on others for ever: a
 * connection that holds nothing may always take one request, spent budget
 * or not.  So the bytes held stay under the limit plus, per connection,
 * one request (at most NBD_MAX_PAYLOAD): at most limit +
 * max-connections x 32 MiB, and only while that many connections each
 * hold their one request.
 *
 * Freed data buffers a connection keeps for reuse (buffers.c) are bounded
 * server-wide too, by NBD_BUF_CACHE_SERVER_BYTES.
 *
 * Thread-safety: every function may be called from any thread (the
 * connections run in different IOThreads); the counters are atomic and the
 * list of waiting connections has its own lock.
 */
#ifndef DATAPLANE_NBD_BUDGET_H
#define DATAPLANE_NBD_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nbd/server-internal.h"

/* Sets the limit in bytes (0: none).  Main loop, at server start. */
void nbd_budget_set_limit(uint64_t limit);
/* Bytes held now, over every connection (for tests and introspection). */
uint64_t nbd_budget_get_used(void);

/* A connection takes n more bytes, or gives n back. */
void nbd_budget_charge(uint64_t n);
void nbd_budget_release(uint64_t n);

/*
 * Node's context.  Whether client may take another request as far as the
 * budget goes (the fairness rule included).  If not, client is put on the
 * waiting list and its resume_bh will be scheduled once memory is freed.
 */
bool nbd_budget_admit(NbdClient *client);
/* Node's context (or acquired).  Takes client off the waiting list: before
 * its resume_bh is deleted (a move, the close). */
void nbd_budget_forget(NbdClient *client);

/* Whether a freed buffer of n bytes may be kept for reuse (and counts it
 * if so); nbd_budget_cache_put() when it leaves the cache. */
bool nbd_budget_cache_get(size_t n);
void nbd_budget_cache_put(size_t n);

#endif /* DATAPLANE_NBD_BUDGET_H */
