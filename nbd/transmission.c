/*
 * The NBD transmission phase of one connection, in the AioContext of the
 * exported node: which fd handlers and BHs it has, when it may read, and
 * how it ends.  The work itself is in receive.c (requests in), commands.c
 * (block layer calls) and replies.c (replies out), over buffers.c.
 *
 * Closing: on EOF, a socket error or a protocol violation the client is
 * "dead": it stops reading, drops unsent replies and, once no request is in
 * flight, removes its handlers and hands itself to the main loop
 * (nbd_server_client_closed).  NBD_CMD_DISC closes the same way, after the
 * replies of the requests before it have been sent.
 */
#include <stdlib.h>

#include "nbd/transmission.h"

/* Whether the client may take another request now (backpressure). */
bool nbd_client_can_take_request(NbdClient *client)
{
    return client->phase == NBD_PHASE_TRANSMISSION && !client->dead &&
           !client->disc_received && !client->quiesced &&
           client->in_flight < NBD_MAX_IN_FLIGHT &&
           client->in_flight_bytes < NBD_MAX_IN_FLIGHT_BYTES &&
           client->queued_bytes < NBD_MAX_QUEUED_BYTES &&
           client->queued_replies < NBD_MAX_QUEUED_REPLIES;
}

void nbd_client_update_handlers(NbdClient *client)
{
    bool want_read, want_write;

    if (client->phase != NBD_PHASE_TRANSMISSION) {
        return;
    }
    want_read = nbd_client_can_take_request(client) || client->discard_left > 0;
    if (client->dead || client->quiesced) {
        want_read = false;
    }
    /* Writable interest only while a send is blocked: otherwise flush_bh
     * sends, and an always-writable socket would spin the loop. */
    want_write = !client->dead && !STAILQ_EMPTY(&client->send_queue) &&
                 client->send_blocked;
    if (want_read == client->read_enabled &&
        want_write == client->write_enabled) {
        return;
    }
    if (want_read && !client->read_enabled && client->rend > client->rstart) {
        /* Buffered requests do not make the fd readable: process them. */
        aio_bh_schedule(client->resume_bh);
    }
    client->read_enabled = want_read;
    client->write_enabled = want_write;
    aio_set_fd_handler(client->ctx, client->fd,
                       want_read ? nbd_receive_readable : NULL,
                       want_write ? nbd_reply_writable : NULL, NULL, client);
}

/*
 * Closes the client if it is dead (or has sent DISC and its replies are
 * out) and nothing is in flight.  Once it has closed, the main loop may
 * free it at any time: so this is the last thing every top-level callback
 * (fd handler, BH, completion, hook) does, and nothing below one calls it.
 */
void nbd_client_maybe_finish(NbdClient *client)
{
    if (client->phase != NBD_PHASE_TRANSMISSION) {
        return;
    }
    if (!client->dead &&
        !(client->disc_received && STAILQ_EMPTY(&client->send_queue))) {
        return;
    }
    if (client->in_flight > 0) {
        return; /* their completions call us again */
    }
    client->phase = NBD_PHASE_CLOSING;
    aio_set_fd_handler(client->ctx, client->fd, NULL, NULL, NULL, NULL);
    client->read_enabled = client->write_enabled = false;
    aio_bh_delete(client->flush_bh);
    aio_bh_delete(client->resume_bh);
    client->flush_bh = client->resume_bh = NULL;
    nbd_replies_drop(client);
    if (client->cur) {
        nbd_req_free(client->cur);
        client->cur = NULL;
    }
    g_free(client->rbuf);
    client->rbuf = NULL;
    nbd_buf_cache_free(client);
    nbd_server_client_closed(client);
}

void nbd_requests_attach(NbdClient *client)
{
    if (client->phase != NBD_PHASE_TRANSMISSION) {
        return;
    }
    client->flush_bh = aio_bh_new(client->ctx, nbd_reply_flush_bh, client);
    client->resume_bh = aio_bh_new(client->ctx, nbd_receive_resume_bh, client);
    client->read_enabled = client->write_enabled = false;
    nbd_client_update_handlers(client);
    /* Pick up replies queued and requests buffered before a move. */
    if (!STAILQ_EMPTY(&client->send_queue)) {
        aio_bh_schedule(client->flush_bh);
    }
    aio_bh_schedule(client->resume_bh);
}

void nbd_requests_detach(NbdClient *client)
{
    if (client->phase != NBD_PHASE_TRANSMISSION) {
        return;
    }
    aio_set_fd_handler(client->ctx, client->fd, NULL, NULL, NULL, NULL);
    client->read_enabled = client->write_enabled = false;
    aio_bh_delete(client->flush_bh);
    aio_bh_delete(client->resume_bh);
    client->flush_bh = client->resume_bh = NULL;
}

void nbd_requests_quiesce(NbdClient *client)
{
    client->quiesced = true;
    nbd_client_update_handlers(client);
}

void nbd_requests_resume(NbdClient *client)
{
    client->quiesced = false;
    if (client->phase != NBD_PHASE_TRANSMISSION) {
        return;
    }
    nbd_client_update_handlers(client);
    aio_bh_schedule(client->resume_bh);
}

void nbd_requests_close(NbdClient *client)
{
    if (client->phase != NBD_PHASE_TRANSMISSION) {
        return;
    }
    nbd_client_kill(client);
    nbd_client_maybe_finish(client);
}
