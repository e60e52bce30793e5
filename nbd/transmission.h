/*
 * Internals of the NBD transmission phase, shared by transmission.c (life
 * cycle, handlers), receive.c (requests in), commands.c (block layer calls),
 * replies.c (replies out) and buffers.c.  Not installed.
 *
 * Everything here runs in the exported node's AioContext: its thread, or a
 * thread holding it (the export's drain and move hooks).  The one rule that
 * spans the files: nbd_client_maybe_finish() may hand the client to the main
 * loop, which frees it, so it is the last thing every top-level callback
 * (fd handler, BH, block completion, hook) does, and nothing below one
 * calls it.
 */
#ifndef DATAPLANE_NBD_TRANSMISSION_H
#define DATAPLANE_NBD_TRANSMISSION_H

#include "nbd/server-internal.h"

/* One request from receipt to reply. */
struct NbdRequestState {
    NbdClient *client;
    NbdRequest req;
    uint8_t *buf;     /* READ/WRITE/CACHE data */
    size_t buf_alloc; /* the size buf was allocated with */
    size_t filled;    /* WRITE: payload bytes received so far */
    IOVector qiov;
    uint64_t done;      /* CACHE and BLOCK_STATUS: bytes covered so far */
    NbdExtent *extents; /* BLOCK_STATUS */
    size_t n_extents;
};

/* ---- transmission.c ---------------------------------------------------- */

/* Whether the client may take another request now (backpressure, drained
 * sections, DISC, death). */
bool nbd_client_can_take_request(NbdClient *client);
/* Sets the fd handler's read/write interest from the client's state. */
void nbd_client_update_handlers(NbdClient *client);
/* Closes the client when it is done (see the header comment). */
void nbd_client_maybe_finish(NbdClient *client);

/* ---- receive.c --------------------------------------------------------- */

/* A hard close: stop reading, drop unsent replies and a half-read WRITE;
 * the client closes once its in-flight requests are done. */
void nbd_client_kill(NbdClient *client);
/* The fd handler's io_read, and the BH that processes requests already
 * buffered (after backpressure, a drain or a move). */
void nbd_receive_readable(void *opaque);
void nbd_receive_resume_bh(void *opaque);

/* ---- commands.c -------------------------------------------------------- */

/* A request state for req; a READ or WRITE counts in in_flight_bytes. */
NbdRequestState *nbd_req_new(NbdClient *client, const NbdRequest *req);
void nbd_req_free(NbdRequestState *st);
/* Submits a request that has passed nbd_request_check() (and, for a
 * WRITE, whose payload is in st->buf).  Its completion queues the reply. */
void nbd_req_submit(NbdClient *client, NbdRequestState *st);

/* ---- replies.c --------------------------------------------------------- */

/* Queues a reply without payload (success of anything but READ and
 * BLOCK_STATUS), or an error reply (err != 0). */
void nbd_reply_status(NbdClient *client, const NbdRequest *req, uint32_t err);
/* Queues a successful READ's reply; st's buffer moves into it. */
void nbd_reply_read_data(NbdClient *client, NbdRequestState *st);
/* Queues a BLOCK_STATUS reply built from st's extents. */
void nbd_reply_block_status(NbdClient *client, NbdRequestState *st);
/* Frees a reply and its data. */
void nbd_reply_free(NbdClient *client, NbdReply *r);
/* Drops every unsent reply. */
void nbd_replies_drop(NbdClient *client);
/* flush_bh's callback, and the fd handler's io_write while a send is
 * blocked: send as much of the queue as the socket takes. */
void nbd_reply_flush_bh(void *opaque);
void nbd_reply_writable(void *opaque);

/* ---- buffers.c --------------------------------------------------------- */

/* A data buffer of len bytes (4 KiB aligned, for O_DIRECT nodes), from the
 * client's cache when it has one. */
void *nbd_buf_get(NbdClient *client, size_t len);
/* Gives back a buffer nbd_buf_get(client, len) returned (NULL: nothing). */
void nbd_buf_put(NbdClient *client, void *p, size_t len);
/* Frees every cached buffer. */
void nbd_buf_cache_free(NbdClient *client);

#endif /* DATAPLANE_NBD_TRANSMISSION_H */
