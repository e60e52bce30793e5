/*
 * qcow2 requests: guest -> host mapping, reads (backing chain, compressed
 * clusters), block status with allocation depth, and the dispatch of every
 * request to its coroutine or, for reads and writes inside cached,
 * allocated clusters, to the fast path (one I/O on the file, no
 * coroutine).  Writes, zeroes and discards are in qcow2-write.c.  Node's
 * context.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "block/qcow2.h"

/* ---- mapping ------------------------------------------------------------- */

bool qcow2_host_offset_ok(Qcow2State *s, uint64_t host)
{
    return !(host & (uint64_t)(s->cluster_size - 1)) &&
           host + (uint64_t)s->cluster_size <= (uint64_t)BDRV_MAX_LENGTH;
}

/*
 * What [offset, offset + bytes) maps to, for as long as the answer stays
 * the same: consecutive clusters of one L2 table with the same type (and,
 * for reads and writes of NORMAL clusters, contiguous in the file with the
 * same COPIED flag; block status only needs the type).
 */
int qcow2_map_range(Qcow2State *s, int64_t offset, int64_t bytes,
                    bool for_status, Qcow2Map *m)
{
    uint64_t cluster = (uint64_t)offset >> s->cluster_bits;
    uint64_t l1i = cluster >> s->l2_bits;
    int64_t l2i = (int64_t)(cluster & (uint64_t)(s->l2_size - 1));
    int64_t in = offset & (s->cluster_size - 1);
    Qcow2CacheEntry *e;
    int64_t n, i;
    int ret;

    if (l1i >= s->l1_size) {
        return qcow2_signal_corruption(s, "offset past the L1 table");
    }
    ret = qcow2_get_l2(s, l1i, false, &e);
    if (ret < 0) {
        return ret;
    }
    if (!e) {
        /* No L2 table: this one and the next empty L1 entries. */
        uint64_t j = l1i + 1;

        while (for_status && j < s->l1_size && s->l1[j] == 0) {
            j++;
        }
        m->type = QCOW2_CLUSTER_UNALLOCATED;
        m->entry = 0;
        m->bytes = MIN(bytes, (int64_t)((j << (s->l2_bits + s->cluster_bits)) -
                                        (uint64_t)offset));
        return 0;
    }
    m->entry = qcow2_l2_entry(s, e, l2i);
    m->type = qcow2_entry_type(m->entry, s->version);
    m->host = (m->entry & QCOW2_OFFSET_MASK) + (uint64_t)in;
    if ((m->type == QCOW2_CLUSTER_NORMAL ||
         m->type == QCOW2_CLUSTER_ZERO_ALLOC) &&
        !qcow2_host_offset_ok(s, m->entry & QCOW2_OFFSET_MASK)) {
        qcow2_cache_put(s->l2_cache, e);
        return qcow2_signal_corruption(s,
                                       "L2 entry 0x%" PRIx64
                                       " for offset %" PRId64
                                       " is not a valid cluster offset",
                                       m->entry, offset);
    }
    n = s->cluster_size - in;
    for (i = l2i + 1; n < bytes && i < s->l2_size; i++) {
        uint64_t next = qcow2_l2_entry(s, e, i);
        Qcow2ClusterType t = qcow2_entry_type(next, s->version);

        if (for_status) {
            bool data = m->type == QCOW2_CLUSTER_NORMAL ||
                        m->type == QCOW2_CLUSTER_COMPRESSED;
            bool zero = m->type == QCOW2_CLUSTER_ZERO_PLAIN ||
                        m->type == QCOW2_CLUSTER_ZERO_ALLOC;

            if (!(data && (t == QCOW2_CLUSTER_NORMAL ||
                           t == QCOW2_CLUSTER_COMPRESSED)) &&
                !(zero && (t == QCOW2_CLUSTER_ZERO_PLAIN ||
                           t == QCOW2_CLUSTER_ZERO_ALLOC)) &&
                t != m->type) {
                break;
            }
        } else if (t != m->type || t == QCOW2_CLUSTER_COMPRESSED) {
            break;
        } else if (t == QCOW2_CLUSTER_NORMAL &&
                   ((next & QCOW2_OFFSET_MASK) !=
                        (m->entry & QCOW2_OFFSET_MASK) +
                            (uint64_t)((i - l2i) << s->cluster_bits) ||
                    (next & QCOW2_OFLAG_COPIED) !=
                        (m->entry & QCOW2_OFLAG_COPIED) ||
                    !qcow2_host_offset_ok(s, next & QCOW2_OFFSET_MASK))) {
            break;
        }
        n += s->cluster_size;
    }
    qcow2_cache_put(s->l2_cache, e);
    m->bytes = MIN(n, bytes);
    return 0;
}

/* ---- reads --------------------------------------------------------------- */

/* Reads [offset, +len) of the backing chain into v (zeroes past its end
 * or without one). */
int qcow2_read_backing(Qcow2State *s, int64_t offset, IOVector *v, size_t voff,
                       int64_t len)
{
    BlockDriverState *backing = s->bs->backing;
    int64_t blen = backing ? bdrv_getlength(backing) : 0;
    int64_t n = offset < blen ? MIN(len, blen - offset) : 0;
    int ret = 0;

    if (n > 0) {
        IOVector part;

        iov_init(&part, v->niov);
        iov_concat(&part, v, voff, n);
        ret = qcow2_co_preadv(backing, offset, &part);
        iov_destroy(&part);
    }
    if (ret == 0 && n < len) {
        iov_memset(v, voff + n, 0, len - n);
    }
    return ret;
}

/* Decompresses the compressed cluster of entry into buf (cluster_size). */
int qcow2_read_compressed(Qcow2State *s, uint64_t entry, void *buf)
{
    uint64_t off, len;
    g_autofree uint8_t *in = NULL;
    int ret;

    qcow2_compressed_range(entry, s->cluster_bits, &off, &len);
    if (off + len > (uint64_t)BDRV_MAX_LENGTH ||
        len > 2 * (uint64_t)s->cluster_size + 512) {
        return qcow2_signal_corruption(s,
                                       "bad compressed cluster entry "
                                       "0x%" PRIx64,
                                       entry);
    }
    in = g_malloc(len);
    ret = qcow2_co_pread(s, (int64_t)off, in, (int64_t)len);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_decompress(s->compression_type, in, len, buf, s->cluster_size);
    if (ret < 0 && !s->warned_decompress) {
        /* Once per node: a hostile image must not flood the log. */
        s->warned_decompress = true;
        error_report("qcow2 node '%s': a compressed cluster does not "
                     "decompress (reads of it fail with EIO)",
                     s->bs->node_name);
    }
    return ret;
}

static int co_read(Qcow2State *s, int64_t offset, IOVector *qiov)
{
    size_t done = 0;
    int ret = 0;

    while (ret == 0 && done < qiov->size) {
        Qcow2Map m;
        IOVector part;

        ret = qcow2_map_range(s, offset + (int64_t)done,
                              (int64_t)(qiov->size - done), false, &m);
        if (ret < 0) {
            break;
        }
        switch (m.type) {
        case QCOW2_CLUSTER_UNALLOCATED:
            ret = qcow2_read_backing(s, offset + (int64_t)done, qiov, done,
                                     m.bytes);
            break;
        case QCOW2_CLUSTER_ZERO_PLAIN:
        case QCOW2_CLUSTER_ZERO_ALLOC:
            iov_memset(qiov, done, 0, m.bytes);
            break;
        case QCOW2_CLUSTER_NORMAL:
            iov_init(&part, qiov->niov);
            iov_concat(&part, qiov, done, m.bytes);
            ret = qcow2_co_preadv(s->bs->file, (int64_t)m.host, &part);
            iov_destroy(&part);
            break;
        case QCOW2_CLUSTER_COMPRESSED: {
            g_autofree uint8_t *buf = g_malloc(s->cluster_size);
            int64_t in = (offset + (int64_t)done) & (s->cluster_size - 1);

            ret = qcow2_read_compressed(s, m.entry, buf);
            if (ret == 0) {
                iov_from_buf(qiov, done, buf + in, m.bytes);
            }
            break;
        }
        }
        done += m.bytes;
    }
    return ret;
}

/* ---- block status -------------------------------------------------------- */

static int co_block_status(Qcow2State *s, BdrvRequest *req)
{
    Qcow2Map m;
    int ret = qcow2_map_range(s, req->offset, req->bytes, true, &m);

    if (ret < 0) {
        return ret;
    }
    req->pnum = m.bytes;
    switch (m.type) {
    case QCOW2_CLUSTER_NORMAL:
    case QCOW2_CLUSTER_COMPRESSED:
        req->status = 0;
        req->depth = 1;
        return 0;
    case QCOW2_CLUSTER_ZERO_PLAIN:
    case QCOW2_CLUSTER_ZERO_ALLOC:
        req->status = BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO;
        req->depth = 1;
        return 0;
    case QCOW2_CLUSTER_UNALLOCATED:
        break;
    }
    req->status = BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO;
    req->depth = 0;
    if (s->bs->backing) {
        BlockDriverState *b = s->bs->backing;
        int64_t blen = bdrv_getlength(b);
        int depth;

        if (req->offset >= blen) {
            return 0;
        }
        ret = qcow2_co_block_status(b, req->offset,
                                    MIN(m.bytes, blen - req->offset),
                                    &req->pnum, &req->status, &depth);
        if (ret < 0) {
            return ret;
        }
        req->depth = depth ? depth + 1 : 0;
    }
    return 0;
}

/* ---- request dispatch ---------------------------------------------------- */

static unsigned epoch_enter(Qcow2State *s)
{
    unsigned e = s->epoch;

    s->epoch_inflight[e & 1]++;
    return e;
}

static void epoch_leave(Qcow2State *s, unsigned e)
{
    if (--s->epoch_inflight[e & 1] == 0 && s->epoch_waiter &&
        (s->epoch & 1) != (e & 1)) {
        Coroutine *w = s->epoch_waiter;

        s->epoch_waiter = NULL;
        qcow2_co_wake(s, w);
    }
}

static void qcow2_co_request(void *opaque)
{
    BdrvRequest *req = opaque;
    Qcow2State *s = req->bs->opaque;
    bool meta = false;
    unsigned e;
    int ret;

    switch (req->type) {
    case BDRV_REQUEST_READ:
        e = epoch_enter(s);
        ret = co_read(s, req->offset, req->qiov);
        epoch_leave(s, e);
        break;
    case BDRV_REQUEST_WRITE:
        e = epoch_enter(s);
        ret = qcow2_co_write(s, req->offset, req->qiov,
                             req->flags & BDRV_REQ_FUA, &meta);
        epoch_leave(s, e);
        /* In-place writes carried FUA to the file; the mapping they used
         * must be stable too (a cluster allocated by an earlier write may
         * not be on disk yet). */
        if (ret == 0 && (req->flags & BDRV_REQ_FUA) &&
            (meta || qcow2_metadata_dirty(s))) {
            ret = qcow2_flush(s);
        }
        break;
    case BDRV_REQUEST_ZEROES:
        e = epoch_enter(s);
        ret = qcow2_co_zeroes(s, req->offset, req->bytes, req->flags, &meta);
        epoch_leave(s, e);
        break;
    case BDRV_REQUEST_DISCARD:
        e = epoch_enter(s);
        ret = qcow2_co_discard(s, req->offset, req->bytes, &meta);
        epoch_leave(s, e);
        break;
    case BDRV_REQUEST_FLUSH:
        ret = qcow2_flush(s);
        break;
    case BDRV_REQUEST_STATUS:
        ret = co_block_status(s, req);
        break;
    default:
        g_assert_not_reached();
    }
    /* Never complete from inside a coroutine: the caller's callback may
     * enter coroutines of its own. */
    bdrv_request_complete_later(req, ret);
}

void qcow2_co_submit(BlockDriverState *bs, BdrvRequest *req)
{
    coroutine_enter(coroutine_create(qcow2_co_request, req));
}

/* The fast path's completion: straight from the file's callback. */
typedef struct FastReq {
    Qcow2State *s;
    BdrvRequest *req;
    unsigned epoch;
    IOVector v;
} FastReq;

static void fast_done(void *opaque, int ret)
{
    FastReq *f = opaque;

    epoch_leave(f->s, f->epoch);
    bdrv_request_complete(f->req, ret);
    g_free(f);
}

/*
 * Reads and writes inside one run of allocated clusters whose L2 table is
 * cached go to the file at once.  A write must find the COPIED flag (the
 * cluster is ours alone, written in place).  Anything else (a miss, an
 * unallocated, zero or compressed cluster, a run that breaks) takes the
 * coroutine path.
 */
static bool try_fast_path(Qcow2State *s, BdrvRequest *req)
{
    uint64_t cluster = (uint64_t)req->offset >> s->cluster_bits;
    uint64_t last = (uint64_t)(req->offset + req->bytes - 1) >> s->cluster_bits;
    uint64_t l1i = cluster >> s->l2_bits;
    uint64_t l1e, base, entry;
    Qcow2CacheEntry *e;
    FastReq *f;
    int64_t l2i, i;

    if ((last >> s->l2_bits) != l1i || l1i >= s->l1_size ||
        (req->type == BDRV_REQUEST_WRITE && s->corrupt)) {
        return false;
    }
    if ((req->flags & BDRV_REQ_FUA) && qcow2_metadata_dirty(s)) {
        return false; /* the coroutine path flushes the mapping too */
    }
    l1e = s->l1[l1i] & QCOW2_OFFSET_MASK;
    if (!l1e || (l1e & (uint64_t)(s->cluster_size - 1))) {
        return false;
    }
    e = qcow2_cache_peek(s->l2_cache, (int64_t)l1e);
    if (!e) {
        return false;
    }
    l2i = (int64_t)(cluster & (uint64_t)(s->l2_size - 1));
    entry = qcow2_l2_entry(s, e, l2i);
    base = entry & QCOW2_OFFSET_MASK;
    if (qcow2_entry_type(entry, s->version) != QCOW2_CLUSTER_NORMAL ||
        !qcow2_host_offset_ok(s, base) ||
        (req->type == BDRV_REQUEST_WRITE && !(entry & QCOW2_OFLAG_COPIED))) {
        return false;
    }
    for (i = 1; i <= (int64_t)(last - cluster); i++) {
        uint64_t next = qcow2_l2_entry(s, e, l2i + i);

        if ((next & ~QCOW2_OFLAG_COPIED) !=
                base + (uint64_t)(i << s->cluster_bits) ||
            (next & QCOW2_OFLAG_COPIED) != (entry & QCOW2_OFLAG_COPIED) ||
            !qcow2_host_offset_ok(s, next & QCOW2_OFFSET_MASK)) {
            return false;
        }
    }
    f = g_new(FastReq, 1);
    f->s = s;
    f->req = req;
    f->epoch = epoch_enter(s);
    base += (uint64_t)(req->offset & (s->cluster_size - 1));
    if (req->type == BDRV_REQUEST_READ) {
        bdrv_aio_preadv(s->bs->file, (int64_t)base, req->qiov, 0, fast_done, f);
    } else {
        bdrv_aio_pwritev(s->bs->file, (int64_t)base, req->qiov,
                         req->flags & BDRV_REQ_FUA, fast_done, f);
    }
    return true;
}

void qcow2_preadv(BlockDriverState *bs, BdrvRequest *req)
{
    if (!try_fast_path(bs->opaque, req)) {
        qcow2_co_submit(bs, req);
    }
}

void qcow2_pwritev(BlockDriverState *bs, BdrvRequest *req)
{
    if (!try_fast_path(bs->opaque, req)) {
        qcow2_co_submit(bs, req);
    }
}
