/*
 * The NBD transmission phase of one connection, in the AioContext of the
 * exported node: which fd handlers and BHs it has, when it may read, and
 * how it ends.  The work itself is in receive.c (requests in), commands.c
 * (block layer calls) and replies.c (replies out), over buffers.c.
 *
 * Backpressure: a client reads requests only while its own limits
 * (server-internal.h) and the server's memory budget (budget.h) allow.
 *
 * Closing: on EOF, a socket error or a protocol violation the client is
 * "dead": it stops reading, drops unsent replies and, once no request is in
 * flight, removes its handlers and hands itself to the main loop
 * (nbd_server_client_closed).  NBD_CMD_DISC closes the same way, after the
 * replies of the requests before it have been sent.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "nbd/budget.h"
#include "nbd/transmission.h"
#include "util/ratelimit.h"

/* Idle connections closed: a peer can open them at will. */
static LogRateLimit idle_log = LOG_RATELIMIT_INIT;

/* Whether the client may take another request now (backpressure: its
 * own limits, then the server's budget, which may put it on the list of
 * clients to wake when memory is freed). */
bool nbd_client_can_take_request(NbdClient *client)
{
    return client->phase == NBD_PHASE_TRANSMISSION && !client->dead &&
           !client->disc_received && !client->quiesced &&
           client->in_flight < NBD_MAX_IN_FLIGHT &&
           client->in_flight_bytes < NBD_MAX_IN_FLIGHT_BYTES &&
           client->queued_bytes < NBD_MAX_QUEUED_BYTES &&
           client->queued_replies < NBD_MAX_QUEUED_REPLIES &&
           nbd_budget_admit(client);
}

/* Whether the client is reading a WRITE's payload, which goes on whatever
 * the backpressure: its memory is already counted, and holding it while
 * waiting for memory could wait for ever. */
static bool client_reads_payload(NbdClient *client)
{
    return client->cur && !client->dead && !client->quiesced;
}

/*
 * Busy-polling the socket (x-poll-sockets=on): whether the client has sent
 * something (a peek, nothing consumed; EOF and errors count, so the read
 * handler sees them).  While requests keep coming within the IOThread's
 * polling window, the loop finds the next one without sleeping, so a QD1
 * client does not pay a sleeping wake-up per request; a quiet client
 * shrinks the window to zero after its first long pause, and then this is
 * not called.  Off by default: the spinning takes CPU that clients on the
 * same cores need (docs/nbd.md).
 */
static bool nbd_receive_poll(void *opaque)
{
    NbdClient *client = opaque;
    char byte;
    ssize_t n = recv(client->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

    return n >= 0 ||
           (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void nbd_client_update_handlers(NbdClient *client)
{
    bool want_read, want_write;

    if (client->phase != NBD_PHASE_TRANSMISSION) {
        return;
    }
    want_read = client_reads_payload(client) || client->discard_left > 0 ||
                nbd_client_can_take_request(client);
    if (client->dead || client->quiesced) {
        want_read = false;
    }
    /* Writable interest only while a send is blocked: otherwise flush_bh
     * sends, and an always-writable socket would spin the loop. */
    want_write =
        !client->dead && client->send_blocked && nbd_client_has_unsent(client);
    if (want_read == client->read_enabled &&
        want_write == client->write_enabled) {
        return;
    }
    if (want_read && !client->read_enabled &&
        (client->rend > client->rstart ||
         (client->tls && tls_session_read_buffered(client->tls)))) {
        /* Buffered requests (here or decrypted ahead in the TLS session)
         * do not make the fd readable: process them. */
        aio_bh_schedule(client->resume_bh);
    }
    client->read_enabled = want_read;
    client->write_enabled = want_write;
    aio_set_fd_handler(
        client->ctx, client->fd, want_read ? nbd_receive_readable : NULL,
        want_write ? nbd_reply_writable : NULL,
        want_read && client->poll_socket ? nbd_receive_poll : NULL, client);
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
        !(client->disc_received && !nbd_client_has_unsent(client))) {
        return;
    }
    if (client->in_flight > 0) {
        return; /* their completions call us again */
    }
    if (client->tls && !client->dead) {
        /* NBD_CMD_DISC, everything sent: close TLS properly. */
        tls_session_shutdown(client->tls);
    }
    client->phase = NBD_PHASE_CLOSING;
    aio_set_fd_handler(client->ctx, client->fd, NULL, NULL, NULL, NULL);
    client->read_enabled = client->write_enabled = false;
    nbd_budget_forget(client);
    g_clear_pointer(&client->idle_timer, aio_timer_free);
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

/*
 * idle-max-seconds: a client that has moved no byte either way for that
 * long is closed, unless a request is in flight in the block layer (a slow
 * node is not the client's doing) or a drained section keeps it from
 * reading.  The timer fires at the earliest time the client could be idle,
 * and re-arms itself while it is not.
 */
static void client_idle_check(void *opaque)
{
    NbdClient *client = opaque;
    int64_t now = aio_clock_get_ns(AIO_CLOCK_REALTIME);

    if (client->phase != NBD_PHASE_TRANSMISSION || client->dead) {
        return;
    }
    if (client->in_flight > 0 || client->quiesced) {
        aio_timer_mod_ns(client->idle_timer, now + client->idle_max_ns);
        return;
    }
    if (now - client->last_active_ns < client->idle_max_ns) {
        aio_timer_mod_ns(client->idle_timer,
                         client->last_active_ns + client->idle_max_ns);
        return;
    }
    error_report_ratelimited(
        &idle_log, "nbd: client %u: idle for %" PRId64 " s, disconnecting",
        client->id, client->idle_max_ns / 1000000000);
    nbd_client_kill(client);
    nbd_client_maybe_finish(client);
}

void nbd_requests_attach(NbdClient *client)
{
    if (client->phase != NBD_PHASE_TRANSMISSION) {
        return;
    }
    client->flush_bh = aio_bh_new(client->ctx, nbd_reply_flush_bh, client);
    client->resume_bh = aio_bh_new(client->ctx, nbd_receive_resume_bh, client);
    if (client->idle_max_ns > 0) {
        client->idle_timer =
            aio_timer_new(client->ctx, AIO_CLOCK_REALTIME, AIO_SCALE_NS,
                          client_idle_check, client);
        if (client->last_active_ns == 0) {
            client->last_active_ns = aio_clock_get_ns(AIO_CLOCK_REALTIME);
        }
        aio_timer_mod_ns(client->idle_timer,
                         client->last_active_ns + client->idle_max_ns);
    }
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
    /* Attach in the new context schedules resume_bh, which asks the
     * budget again. */
    nbd_budget_forget(client);
    g_clear_pointer(&client->idle_timer, aio_timer_free);
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
    /* The drained section kept it from reading: its idle time starts
     * again now. */
    client->last_active_ns = aio_clock_get_ns(AIO_CLOCK_REALTIME);
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
