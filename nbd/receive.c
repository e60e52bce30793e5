/*
 * Reading requests: up to NBD_RBUF_SIZE bytes per recv(), and every complete
 * request in them is parsed and submitted in the same wake-up.  A WRITE's
 * payload is received straight into its own buffer.  Reading stops while
 * the client may not take more (nbd_client_can_take_request: backpressure,
 * drained sections, NBD_CMD_DISC), and for good on EOF, a socket error or a
 * protocol violation (nbd_client_kill).  Node's context.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "nbd/transmission.h"
#include "util/ratelimit.h"

/* Protocol errors of a client: it can repeat them at will (reconnecting). */
static LogRateLimit request_log = LOG_RATELIMIT_INIT;

/* A hard close: stop reading, drop what is not sent, finish when idle. */
void nbd_client_kill(NbdClient *client)
{
    if (client->dead) {
        return;
    }
    client->dead = true;
    nbd_replies_drop(client);
    if (client->cur) {
        nbd_req_free(client->cur);
        client->cur = NULL;
    }
    nbd_client_update_handlers(client);
}

/*
 * recv() into buf: >0 bytes, 0 for "nothing now" (EAGAIN), or -1 after
 * killing the client (EOF or error).
 */
static ssize_t client_recv(NbdClient *client, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(client->fd, buf, len, MSG_DONTWAIT);

        if (n > 0) {
            return n;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            return 0;
        }
        nbd_client_kill(client);
        return -1;
    }
}

/* Parses one request header from rbuf and acts on it. */
static void client_handle_request(NbdClient *client)
{
    NbdRequest req;
    uint32_t err;
    NbdRequestState *st;

    if (nbd_parse_request(client->rbuf + client->rstart,
                          client->rend - client->rstart,
                          &req) != NBD_PARSE_OK) {
        /* Only BAD_MAGIC can come here: the stream is lost. */
        error_report_ratelimited(&request_log,
                                 "nbd: client %u: bad request magic, "
                                 "disconnecting",
                                 client->id);
        nbd_client_kill(client);
        return;
    }
    client->rstart += NBD_REQUEST_LEN;
    if (req.type == NBD_CMD_DISC) {
        client->disc_received = true;
        return;
    }
    err = nbd_request_check(&req, &client->limits);
    if (err != NBD_SUCCESS) {
        nbd_reply_status(client, &req, err);
        if (nbd_request_has_payload(&req)) {
            /* Stay in sync without keeping the payload in memory. */
            client->discard_left = req.len;
        }
        return;
    }
    st = nbd_req_new(client, &req);
    if (nbd_request_has_payload(&req) && req.len > 0) {
        st->buf_alloc = req.len;
        st->buf = nbd_buf_get(client, st->buf_alloc);
        client->cur = st;
        return;
    }
    nbd_req_submit(client, st);
}

/* Moves payload bytes already in rbuf, then reads the rest directly.
 * Returns false when it must wait for the socket. */
static bool client_read_payload(NbdClient *client)
{
    NbdRequestState *st = client->cur;
    size_t want = st->req.len - st->filled;
    size_t have = MIN(want, client->rend - client->rstart);
    ssize_t n;

    if (have > 0) {
        memcpy(st->buf + st->filled, client->rbuf + client->rstart, have);
        st->filled += have;
        client->rstart += have;
        want -= have;
    }
    if (want > 0) {
        n = client_recv(client, st->buf + st->filled, want);
        if (n <= 0) {
            return false;
        }
        st->filled += n;
        if ((size_t)n < want) {
            return false;
        }
    }
    client->cur = NULL;
    nbd_req_submit(client, st);
    return true;
}

static bool client_discard_payload(NbdClient *client)
{
    size_t have = MIN(client->discard_left, client->rend - client->rstart);
    ssize_t n;

    client->rstart += have;
    client->discard_left -= have;
    if (client->discard_left == 0) {
        return true;
    }
    /* rbuf is empty now: use it as the scratch space. */
    client->rstart = client->rend = 0;
    n = client_recv(client, client->rbuf,
                    MIN(client->discard_left, (uint64_t)NBD_RBUF_SIZE));
    if (n <= 0) {
        return false;
    }
    client->discard_left -= n;
    return true;
}

/*
 * Reads and handles requests until the socket is empty or the client may
 * not take more.  Bounded by a budget of requests per call so that one
 * busy client shares its thread; the rest is picked up by resume_bh.
 */
static void client_process(NbdClient *client)
{
    int budget = 2 * NBD_MAX_IN_FLIGHT;
    ssize_t n;

    while (budget-- > 0) {
        if (client->dead || client->phase != NBD_PHASE_TRANSMISSION) {
            break;
        }
        if (client->discard_left > 0) {
            if (!client_discard_payload(client)) {
                break;
            }
            continue;
        }
        if (!nbd_client_can_take_request(client)) {
            break;
        }
        if (client->cur) {
            if (!client_read_payload(client)) {
                break;
            }
            continue;
        }
        if (client->rend - client->rstart >= NBD_REQUEST_LEN) {
            client_handle_request(client);
            continue;
        }
        if (client->recv_drained) {
            /* The socket had no more when last read: a recv() now would
             * almost always fail with EAGAIN.  The fd handler (level-
             * triggered) calls again when there is more. */
            break;
        }
        /* Keep the partial header, make room, read more. */
        memmove(client->rbuf, client->rbuf + client->rstart,
                client->rend - client->rstart);
        client->rend -= client->rstart;
        client->rstart = 0;
        n = client_recv(client, client->rbuf + client->rend,
                        NBD_RBUF_SIZE - client->rend);
        if (n <= 0) {
            break;
        }
        client->recv_drained = (size_t)n < NBD_RBUF_SIZE - client->rend;
        client->rend += n;
    }
    if (budget < 0 && !client->dead &&
        client->phase == NBD_PHASE_TRANSMISSION) {
        aio_bh_schedule(client->resume_bh);
    }
    nbd_client_update_handlers(client);
    nbd_client_maybe_finish(client);
}

void nbd_receive_readable(void *opaque)
{
    NbdClient *client = opaque;

    client->recv_drained = false; /* the socket is readable again */
    client_process(client);
}

void nbd_receive_resume_bh(void *opaque)
{
    NbdClient *client = opaque;

    if (client->phase == NBD_PHASE_TRANSMISSION) {
        client_process(client);
    }
}
