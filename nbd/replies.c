/*
 * NBD replies: built when a request completes, queued in completion order,
 * and sent by flush_bh, which gathers every queued reply into one sendmsg()
 * (up to NBD_SEND_IOV_MAX pieces): the replies of one loop iteration leave
 * in one system call.  A send that would block arms the fd's write handler
 * until the socket drains.  Node's context.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "nbd/transmission.h"

/* Frees a reply and its data. */
void nbd_reply_free(NbdClient *client, NbdReply *r)
{
    nbd_buf_put(client, r->data, r->data_alloc);
    g_free(r);
}

static const char *nbd_err_message(uint32_t err)
{
    switch (err) {
    case NBD_EPERM:
        return "Operation not permitted";
    case NBD_EIO:
        return "Input/output error";
    case NBD_ENOMEM:
        return "Cannot allocate memory";
    case NBD_EINVAL:
        return "Invalid argument";
    case NBD_ENOSPC:
        return "No space left on device";
    case NBD_EOVERFLOW:
        return "Value too large";
    case NBD_ENOTSUP:
        return "Operation not supported";
    case NBD_ESHUTDOWN:
        return "Server shutting down";
    }
    return "Error";
}

static size_t reply_size(const NbdReply *r)
{
    return r->head_len + r->data_len + r->msg_len;
}

static void queue_reply(NbdClient *client, NbdReply *r)
{
    if (client->dead) {
        nbd_reply_free(client, r);
        return;
    }
    STAILQ_INSERT_TAIL(&client->send_queue, r, next);
    client->queued_bytes += reply_size(r);
    client->queued_replies++;
    aio_bh_schedule(client->flush_bh);
}

/* A reply without payload (the success of anything but READ and
 * BLOCK_STATUS), or an error reply. */
void nbd_reply_status(NbdClient *client, const NbdRequest *req, uint32_t err)
{
    NbdReply *r = g_new0(NbdReply, 1);

    if (err != 0 && client->structured) {
        /* Structured errors carry a message for the person. */
        r->msg = nbd_err_message(err);
        r->msg_len = strlen(r->msg);
        r->head_len =
            nbd_build_chunk_error(r->head, NBD_REPLY_FLAG_DONE, req->cookie,
                                  err, (uint16_t)r->msg_len);
    } else if (client->structured && req->type == NBD_CMD_READ) {
        /* A READ must never get a simple reply once structured replies
         * are on: a zero-length read ends with NONE. */
        r->head_len = nbd_build_chunk_none(r->head, req->cookie);
    } else {
        r->head_len = nbd_build_simple_reply(r->head, err, req->cookie);
    }
    queue_reply(client, r);
}

/* A successful READ: the data buffer moves into the reply. */
void nbd_reply_read_data(NbdClient *client, NbdRequestState *st)
{
    NbdReply *r;

    if (st->req.len == 0) {
        nbd_reply_status(client, &st->req, 0);
        return;
    }
    r = g_new0(NbdReply, 1);
    if (client->structured) {
        /* One data chunk, marked final: the data is all in memory, so no
         * error can follow it. */
        r->head_len = nbd_build_chunk_offset_data(r->head, NBD_REPLY_FLAG_DONE,
                                                  st->req.cookie,
                                                  st->req.offset, st->req.len);
    } else {
        r->head_len = nbd_build_simple_reply(r->head, 0, st->req.cookie);
    }
    r->data = st->buf;
    r->data_len = st->req.len;
    r->data_alloc = st->buf_alloc;
    st->buf = NULL;
    queue_reply(client, r);
}

void nbd_reply_block_status(NbdClient *client, NbdRequestState *st)
{
    NbdReply *r = g_new0(NbdReply, 1);
    size_t len = NBD_STRUCTURED_REPLY_LEN + 4 + 8 * st->n_extents;

    r->data = nbd_buf_get(client, len);
    r->data_alloc = len;
    r->data_len = nbd_build_chunk_block_status(
        r->data, NBD_REPLY_FLAG_DONE, st->req.cookie,
        NBD_META_ID_BASE_ALLOCATION, st->extents, st->n_extents);
    queue_reply(client, r);
}

/* Sends as much of the queue as the socket takes, in batches. */
static void client_flush(NbdClient *client)
{
    while (!STAILQ_EMPTY(&client->send_queue) && !client->dead) {
        struct iovec iov[NBD_SEND_IOV_MAX];
        struct msghdr msg = {.msg_iov = iov};
        NbdReply *r;
        size_t niov = 0;
        ssize_t n;

        /* Gather the pieces of as many replies as fit, skipping what a
         * previous partial send already took. */
        STAILQ_FOREACH(r, &client->send_queue, next)
        {
            struct iovec parts[3] = {
                {r->head, r->head_len},
                {r->data, r->data_len},
                {(void *)r->msg, r->msg_len},
            };
            size_t skip = r->sent;
            int i;

            if (niov + 3 > NBD_SEND_IOV_MAX) {
                break;
            }
            for (i = 0; i < 3; i++) {
                if (skip >= parts[i].iov_len) {
                    skip -= parts[i].iov_len;
                    continue;
                }
                iov[niov].iov_base = (uint8_t *)parts[i].iov_base + skip;
                iov[niov].iov_len = parts[i].iov_len - skip;
                niov++;
                skip = 0;
            }
        }
        msg.msg_iovlen = niov;
        n = sendmsg(client->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                nbd_client_kill(client);
                break;
            }
            client->send_blocked = true;
            break;
        }
        client->send_blocked = false;
        /* Retire what was sent. */
        while (n > 0) {
            size_t left;

            r = STAILQ_FIRST(&client->send_queue);
            left = reply_size(r) - r->sent;
            if ((size_t)n < left) {
                r->sent += n;
                client->queued_bytes -= n;
                n = 0;
                break;
            }
            n -= left;
            client->queued_bytes -= left;
            client->queued_replies--;
            STAILQ_REMOVE_HEAD(&client->send_queue, next);
            nbd_reply_free(client, r);
        }
    }
    nbd_client_update_handlers(client);
    nbd_client_maybe_finish(client);
}

void nbd_reply_flush_bh(void *opaque)
{
    NbdClient *client = opaque;

    if (client->phase == NBD_PHASE_TRANSMISSION) {
        client_flush(client);
    }
}

void nbd_reply_writable(void *opaque)
{
    client_flush(opaque);
}

void nbd_replies_drop(NbdClient *client)
{
    NbdReply *r;

    while ((r = STAILQ_FIRST(&client->send_queue))) {
        STAILQ_REMOVE_HEAD(&client->send_queue, next);
        nbd_reply_free(client, r);
    }
    client->queued_bytes = 0;
    client->queued_replies = 0;
}
