/*
 * NBD commands: a request that passed nbd_request_check() becomes block
 * layer calls on the export's node (CACHE and BLOCK_STATUS may take
 * several), and its completion becomes a reply.  Node's context.
 */
#include <errno.h>
#include <stdlib.h>

#include "nbd/transmission.h"

NbdRequestState *nbd_req_new(NbdClient *client, const NbdRequest *req)
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

void nbd_req_free(NbdRequestState *st)
{
    if (st->req.type == NBD_CMD_READ || st->req.type == NBD_CMD_WRITE) {
        st->client->in_flight_bytes -= st->req.len;
    }
    iov_destroy(&st->qiov);
    nbd_buf_put(st->client, st->buf, st->buf_alloc);
    g_free(st->extents);
    g_free(st);
}

/* Every completion ends here: st is done with. */
static void req_complete(NbdRequestState *st, int ret)
{
    NbdClient *client = st->client;

    g_assert(client->in_flight > 0);
    client->in_flight--;
    if (!client->dead) {
        if (ret < 0) {
            nbd_reply_status(client, &st->req, nbd_errno_to_nbd(ret));
        } else if (st->req.type == NBD_CMD_READ) {
            nbd_reply_read_data(client, st);
        } else if (st->req.type == NBD_CMD_BLOCK_STATUS) {
            nbd_reply_block_status(client, st);
        } else {
            nbd_reply_status(client, &st->req, 0);
        }
    }
    nbd_req_free(st);
    nbd_client_update_handlers(client);
    nbd_client_maybe_finish(client);
}

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
void nbd_req_submit(NbdClient *client, NbdRequestState *st)
{
    BlockDriverState *bs = client->exp->bs;
    const NbdRequest *req = &st->req;
    int flags = 0;

    if (req->len == 0 &&
        (req->type == NBD_CMD_READ || req->type == NBD_CMD_CACHE)) {
        /* Nothing to do: answer at once.  Not through req_complete(),
         * which may close the client and is for top-level callbacks. */
        nbd_reply_status(client, req, 0);
        nbd_req_free(st);
        return;
    }
    client->in_flight++;
    switch (req->type) {
    case NBD_CMD_READ:
        st->buf_alloc = req->len;
        st->buf = nbd_buf_get(client, st->buf_alloc);
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
        st->buf = nbd_buf_get(client, st->buf_alloc);
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
