/*
 * NBD transmission phase: requests in, replies out, in the AioContext of
 * the exported node.  Everything here runs in that context (its thread, or
 * a thread holding it: the export's drain and move hooks).
 *
 * Reading: up to NBD_RBUF_SIZE bytes per recv(), and every complete request
 * in them is parsed and submitted in the same wake-up.  A WRITE's payload
 * is received straight into its own buffer.  Reading stops while the
 * client has NBD_MAX_IN_FLIGHT requests in flight or NBD_MAX_QUEUED_BYTES
 * of replies waiting to be sent (backpressure), during drained sections,
 * and after NBD_CMD_DISC.
 *
 * Replying: completions queue their reply and schedule flush_bh, which
 * sends every queued reply with one sendmsg() (up to NBD_SEND_IOV_MAX
 * pieces): the replies of one loop iteration leave in one system call, in
 * completion order.
 *
 * Closing: on EOF, a socket error or a protocol violation the client is
 * "dead": it stops reading, drops unsent replies and, once no request is in
 * flight, removes its handlers and hands itself to the main loop
 * (nbd_server_client_closed).  NBD_CMD_DISC closes the same way, after the
 * replies of the requests before it have been sent.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nbd/server-internal.h"

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

static void client_process(NbdClient *client);
static void client_update_handlers(NbdClient *client);
static void client_maybe_finish(NbdClient *client);

/* ---- buffers ---------------------------------------------------------- */

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
static void *client_buf_get(NbdClient *client, size_t len)
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

/* Gives back a buffer client_buf_get(client, len) returned. */
static void client_buf_put(NbdClient *client, void *p, size_t len)
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

static void client_buf_cache_free(NbdClient *client)
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

/* Frees a reply and its data. */
static void reply_free(NbdClient *client, NbdReply *r)
{
    client_buf_put(client, r->data, r->data_alloc);
    g_free(r);
}

static NbdRequestState *req_new(NbdClient *client, const NbdRequest *req)
{
    NbdRequestState *st = g_new0(NbdRequestState, 1);

    st->client = client;
    st->req = *req;
    iov_init(&st->qiov, 1);
    if (req->type == NBD_CMD_READ || req->type == NBD_CMD_WRITE) {
        client->in_flight_bytes += req->len;
    }
    return st;
}

static void req_free(NbdRequestState *st)
{
    if (st->req.type == NBD_CMD_READ || st->req.type == NBD_CMD_WRITE) {
        st->client->in_flight_bytes -= st->req.len;
    }
    iov_destroy(&st->qiov);
    client_buf_put(st->client, st->buf, st->buf_alloc);
    g_free(st->extents);
    g_free(st);
}

/* ---- replies ---------------------------------------------------------- */

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
        reply_free(client, r);
        return;
    }
    STAILQ_INSERT_TAIL(&client->send_queue, r, next);
    client->queued_bytes += reply_size(r);
    client->queued_replies++;
    aio_bh_schedule(client->flush_bh);
}

/* A reply without payload (the success of anything but READ and
 * BLOCK_STATUS), or an error reply. */
static void reply_status(NbdClient *client, const NbdRequest *req, uint32_t err)
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
static void reply_read_data(NbdClient *client, NbdRequestState *st)
{
    NbdReply *r;

    if (st->req.len == 0) {
        reply_status(client, &st->req, 0);
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

static void reply_block_status(NbdClient *client, NbdRequestState *st)
{
    NbdReply *r = g_new0(NbdReply, 1);
    size_t len = NBD_STRUCTURED_REPLY_LEN + 4 + 8 * st->n_extents;

    r->data = client_buf_get(client, len);
    r->data_alloc = len;
    r->data_len = nbd_build_chunk_block_status(
        r->data, NBD_REPLY_FLAG_DONE, st->req.cookie,
        NBD_META_ID_BASE_ALLOCATION, st->extents, st->n_extents);
    queue_reply(client, r);
}

/* Whether the client may take another request now (backpressure). */
static bool client_can_take_request(NbdClient *client)
{
    return client->phase == NBD_PHASE_TRANSMISSION && !client->dead &&
           !client->disc_received && !client->quiesced &&
           client->in_flight < NBD_MAX_IN_FLIGHT &&
           client->in_flight_bytes < NBD_MAX_IN_FLIGHT_BYTES &&
           client->queued_bytes < NBD_MAX_QUEUED_BYTES &&
           client->queued_replies < NBD_MAX_QUEUED_REPLIES;
}

/* Every completion ends here: st is done with. */
static void req_complete(NbdRequestState *st, int ret)
{
    NbdClient *client = st->client;

    g_assert(client->in_flight > 0);
    client->in_flight--;
    if (!client->dead) {
        if (ret < 0) {
            reply_status(client, &st->req, nbd_errno_to_nbd(ret));
        } else if (st->req.type == NBD_CMD_READ) {
            reply_read_data(client, st);
        } else if (st->req.type == NBD_CMD_BLOCK_STATUS) {
            reply_block_status(client, st);
        } else {
            reply_status(client, &st->req, 0);
        }
    }
    req_free(st);
    client_update_handlers(client);
    client_maybe_finish(client);
}

/* ---- commands --------------------------------------------------------- */

static void rw_done(void *opaque, int ret)
{
    req_complete(opaque, ret);
}

static void trim_flush_done(void *opaque, int ret)
{
    req_complete(opaque, ret);
}

static void trim_done(void *opaque, int ret)
{
    NbdRequestState *st = opaque;

    if (ret == 0 && (st->req.flags & NBD_CMD_FLAG_FUA)) {
        /* There is no FUA discard: a flush makes the trim stable before
         * the reply, as FUA asks. */
        bdrv_aio_flush(st->client->exp->bs, trim_flush_done, st);
        return;
    }
    req_complete(st, ret);
}

static void cache_done(void *opaque, int ret);

/* CACHE: reads the range in pieces of at most NBD_MAX_PAYLOAD into one
 * scratch buffer, so the node's caches (and the page cache) hold it. */
static void cache_next(NbdRequestState *st)
{
    uint64_t left = st->req.len - st->done;
    size_t n = MIN(left, (uint64_t)NBD_MAX_PAYLOAD);

    iov_reset(&st->qiov);
    iov_add(&st->qiov, st->buf, n);
    bdrv_aio_preadv(st->client->exp->bs, (int64_t)(st->req.offset + st->done),
                    &st->qiov, 0, cache_done, st);
}

static void cache_done(void *opaque, int ret)
{
    NbdRequestState *st = opaque;

    st->done += st->qiov.size;
    if (ret < 0 || st->done >= st->req.len) {
        req_complete(st, ret);
        return;
    }
    cache_next(st);
}

static void block_status_next(NbdRequestState *st);

static void block_status_done(void *opaque, int ret, int64_t pnum,
                              unsigned status)
{
    NbdRequestState *st = opaque;
    uint32_t flags = 0;
    NbdExtent *last;

    if (ret == 0 && pnum <= 0) {
        ret = -EIO; /* a node that reports no progress would loop */
    }
    if (ret < 0) {
        req_complete(st, ret);
        return;
    }
    /* Never describe more than was asked, whatever the node says. */
    pnum = MIN((uint64_t)pnum, st->req.len - st->done);
    if (status & BDRV_BLOCK_HOLE) {
        flags |= NBD_STATE_HOLE;
    }
    if (status & BDRV_BLOCK_ZERO) {
        flags |= NBD_STATE_ZERO;
    }
    last = st->n_extents ? &st->extents[st->n_extents - 1] : NULL;
    if (last && last->flags == flags) {
        last->length += (uint32_t)pnum; /* sum <= req.len fits 32 bits */
    } else {
        st->extents[st->n_extents].length = (uint32_t)pnum;
        st->extents[st->n_extents].flags = flags;
        st->n_extents++;
    }
    st->done += (uint64_t)pnum;
    if (st->done >= st->req.len || (st->req.flags & NBD_CMD_FLAG_REQ_ONE) ||
        st->n_extents == NBD_MAX_EXTENTS) {
        req_complete(st, 0);
        return;
    }
    block_status_next(st);
}

static void block_status_next(NbdRequestState *st)
{
    bdrv_aio_block_status(st->client->exp->bs, st->req.offset + st->done,
                          st->req.len - st->done, block_status_done, st);
}

/* Submits a request that has passed nbd_request_check() (and, for a
 * WRITE, whose payload is in st->buf). */
static void req_submit(NbdClient *client, NbdRequestState *st)
{
    BlockDriverState *bs = client->exp->bs;
    const NbdRequest *req = &st->req;
    int flags = 0;

    if (req->len == 0 &&
        (req->type == NBD_CMD_READ || req->type == NBD_CMD_CACHE)) {
        /* Nothing to do: answer at once.  Not through req_complete(),
         * which may close the client and is for top-level callbacks. */
        reply_status(client, req, 0);
        req_free(st);
        return;
    }
    client->in_flight++;
    switch (req->type) {
    case NBD_CMD_READ:
        st->buf_alloc = req->len;
        st->buf = client_buf_get(client, st->buf_alloc);
        iov_add(&st->qiov, st->buf, req->len);
        bdrv_aio_preadv(bs, (int64_t)req->offset, &st->qiov, 0, rw_done, st);
        break;
    case NBD_CMD_WRITE:
        if (req->flags & NBD_CMD_FLAG_FUA) {
            flags |= BDRV_REQ_FUA;
        }
        iov_add(&st->qiov, st->buf, req->len);
        bdrv_aio_pwritev(bs, (int64_t)req->offset, &st->qiov, flags, rw_done,
                         st);
        break;
    case NBD_CMD_FLUSH:
        bdrv_aio_flush(bs, rw_done, st);
        break;
    case NBD_CMD_TRIM:
        bdrv_aio_pdiscard(bs, (int64_t)req->offset, req->len, trim_done, st);
        break;
    case NBD_CMD_WRITE_ZEROES:
        if (!(req->flags & NBD_CMD_FLAG_NO_HOLE)) {
            flags |= BDRV_REQ_MAY_UNMAP;
        }
        if (req->flags & NBD_CMD_FLAG_FAST_ZERO) {
            flags |= BDRV_REQ_NO_FALLBACK;
        }
        if (req->flags & NBD_CMD_FLAG_FUA) {
            flags |= BDRV_REQ_FUA;
        }
        bdrv_aio_pwrite_zeroes(bs, (int64_t)req->offset, req->len, flags,
                               rw_done, st);
        break;
    case NBD_CMD_CACHE:
        st->buf_alloc = MIN(req->len, NBD_MAX_PAYLOAD);
        st->buf = client_buf_get(client, st->buf_alloc);
        cache_next(st);
        break;
    case NBD_CMD_BLOCK_STATUS:
        st->extents = g_new0(NbdExtent, NBD_MAX_EXTENTS);
        block_status_next(st);
        break;
    default:
        g_assert_not_reached();
    }
}

/* ---- reading ---------------------------------------------------------- */

/* A hard close: stop reading, drop what is not sent, finish when idle. */
static void client_kill(NbdClient *client)
{
    NbdReply *r;

    if (client->dead) {
        return;
    }
    client->dead = true;
    while ((r = STAILQ_FIRST(&client->send_queue))) {
        STAILQ_REMOVE_HEAD(&client->send_queue, next);
        reply_free(client, r);
    }
    client->queued_bytes = 0;
    client->queued_replies = 0;
    if (client->cur) {
        req_free(client->cur);
        client->cur = NULL;
    }
    client_update_handlers(client);
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
        client_kill(client);
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
        error_report("nbd: client %u: bad request magic, disconnecting",
                     client->id);
        client_kill(client);
        return;
    }
    client->rstart += NBD_REQUEST_LEN;
    if (req.type == NBD_CMD_DISC) {
        client->disc_received = true;
        return;
    }
    err = nbd_request_check(&req, &client->limits);
    if (err != NBD_SUCCESS) {
        reply_status(client, &req, err);
        if (nbd_request_has_payload(&req)) {
            /* Stay in sync without keeping the payload in memory. */
            client->discard_left = req.len;
        }
        return;
    }
    st = req_new(client, &req);
    if (nbd_request_has_payload(&req) && req.len > 0) {
        st->buf_alloc = req.len;
        st->buf = client_buf_get(client, st->buf_alloc);
        client->cur = st;
        return;
    }
    req_submit(client, st);
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
    req_submit(client, st);
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
        if (!client_can_take_request(client)) {
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
    client_update_handlers(client);
    client_maybe_finish(client);
}

static void client_read(void *opaque)
{
    NbdClient *client = opaque;

    client->recv_drained = false; /* the socket is readable again */
    client_process(client);
}

static void resume_bh_cb(void *opaque)
{
    NbdClient *client = opaque;

    if (client->phase == NBD_PHASE_TRANSMISSION) {
        client_process(client);
    }
}

/* ---- sending ---------------------------------------------------------- */

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
                client_kill(client);
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
            reply_free(client, r);
        }
    }
    client_update_handlers(client);
    client_maybe_finish(client);
}

static void flush_bh_cb(void *opaque)
{
    NbdClient *client = opaque;

    if (client->phase == NBD_PHASE_TRANSMISSION) {
        client_flush(client);
    }
}

static void client_write(void *opaque)
{
    client_flush(opaque);
}

/* ---- handlers and life cycle ------------------------------------------ */

static void client_update_handlers(NbdClient *client)
{
    bool want_read, want_write;

    if (client->phase != NBD_PHASE_TRANSMISSION) {
        return;
    }
    want_read = client_can_take_request(client) || client->discard_left > 0;
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
    aio_set_fd_handler(client->ctx, client->fd, want_read ? client_read : NULL,
                       want_write ? client_write : NULL, NULL, client);
}

/*
 * Closes the client if it is dead (or has sent DISC and its replies are
 * out) and nothing is in flight.  Once it has closed, the main loop may
 * free it at any time: so this is the last thing every top-level callback
 * (fd handler, BH, completion, hook) does, and nothing below one calls it.
 */
static void client_maybe_finish(NbdClient *client)
{
    NbdReply *r;

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
    while ((r = STAILQ_FIRST(&client->send_queue))) {
        STAILQ_REMOVE_HEAD(&client->send_queue, next);
        reply_free(client, r);
    }
    client->queued_bytes = 0;
    client->queued_replies = 0;
    if (client->cur) {
        req_free(client->cur);
        client->cur = NULL;
    }
    g_free(client->rbuf);
    client->rbuf = NULL;
    client_buf_cache_free(client);
    nbd_server_client_closed(client);
}

void nbd_requests_attach(NbdClient *client)
{
    if (client->phase != NBD_PHASE_TRANSMISSION) {
        return;
    }
    client->flush_bh = aio_bh_new(client->ctx, flush_bh_cb, client);
    client->resume_bh = aio_bh_new(client->ctx, resume_bh_cb, client);
    client->read_enabled = client->write_enabled = false;
    client_update_handlers(client);
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
    client_update_handlers(client);
}

void nbd_requests_resume(NbdClient *client)
{
    client->quiesced = false;
    if (client->phase != NBD_PHASE_TRANSMISSION) {
        return;
    }
    client_update_handlers(client);
    aio_bh_schedule(client->resume_bh);
}

void nbd_requests_close(NbdClient *client)
{
    if (client->phase != NBD_PHASE_TRANSMISSION) {
        return;
    }
    client_kill(client);
    client_maybe_finish(client);
}
