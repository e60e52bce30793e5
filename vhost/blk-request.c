/*
 * virtio-blk requests: the header and status byte found in a chain's
 * buffers, the checks, and the block layer call for each type.  Also the
 * device's features and config space.
 *
 * A request's data is never copied: the block layer reads into and writes
 * from the guest's memory through the chain's I/O vectors.  Every request
 * whose chain has a writable byte for its status ends in
 * vhost_queue_complete(), with VIRTIO_BLK_S_IOERR for a request that is
 * malformed or out of range and VIRTIO_BLK_S_UNSUPP for a type the device
 * does not offer.
 *
 * Runs in the request's queue's context.
 */
#include <errno.h>
#include <string.h>

#include "util/atomic.h"
#include "vhost/vhost-internal.h"

/* ---- features and config ------------------------------------------------ */

uint64_t vhost_blk_device_features(const VhostBlkExport *exp)
{
    uint64_t f =
        (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
        (1ULL << VIRTIO_RING_F_EVENT_IDX) |
        (1ULL << VHOST_USER_F_PROTOCOL_FEATURES) |
        (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
        (1ULL << VIRTIO_BLK_F_TOPOLOGY) | (1ULL << VIRTIO_BLK_F_FLUSH) |
        (1ULL << VIRTIO_BLK_F_CONFIG_WCE) | (1ULL << VIRTIO_BLK_F_MQ);

    if (exp->writable) {
        f |= (1ULL << VIRTIO_BLK_F_DISCARD) |
             (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
    } else {
        f |= 1ULL << VIRTIO_BLK_F_RO;
    }
    return f;
}

void vhost_blk_get_config(const VhostConn *conn, uint8_t *cfg)
{
    const VhostBlkExport *exp = conn->exp;
    uint32_t lbs_sectors = exp->blk_size >> VIRTIO_BLK_SECTOR_BITS;
    VirtioBlkConfig c = {
        .capacity = (uint64_t)bdrv_getlength(exp->bs) >> VIRTIO_BLK_SECTOR_BITS,
        .seg_max = VHOST_BLK_SEG_MAX,
        .blk_size = exp->blk_size,
        .physical_block_exp = 0,
        .alignment_offset = 0,
        .min_io_size = 1,
        .opt_io_size = 0,
        .wce = dp_atomic_load_relaxed(&conn->writethrough) ? 0 : 1,
        .num_queues = (uint16_t)exp->num_queues,
    };

    if (exp->writable) {
        c.max_discard_sectors = VHOST_BLK_MAX_DISCARD_SECTORS;
        c.max_discard_seg = VHOST_BLK_MAX_DISCARD_SEG;
        c.discard_sector_alignment = lbs_sectors;
        c.max_write_zeroes_sectors = VHOST_BLK_MAX_WRITE_ZEROES_SECTORS;
        c.max_write_zeroes_seg = VHOST_BLK_MAX_WRITE_ZEROES_SEG;
        c.write_zeroes_may_unmap = 1;
    }
    memset(cfg, 0, VHOST_USER_MAX_CONFIG_SIZE);
    memcpy(cfg, &c, sizeof(c));
}

/* ---- I/O vector helpers ------------------------------------------------- */

/* Copies up to len bytes from the start of iov[0..n) into buf; returns
 * how many. */
static size_t iov_copy_out(const struct iovec *iov, unsigned n, void *buf,
                           size_t len)
{
    size_t done = 0;
    unsigned i;

    for (i = 0; i < n && done < len; i++) {
        size_t k = MIN(iov[i].iov_len, len - done);

        memcpy((uint8_t *)buf + done, iov[i].iov_base, k);
        done += k;
    }
    return done;
}

/* Drops bytes from the front of iov[0..*n): entries shrink or go (the
 * array is shifted down).  The vector holds at least bytes. */
static void iov_drop_front(struct iovec *iov, unsigned *n, size_t bytes)
{
    unsigned skip = 0;

    while (bytes > 0 && skip < *n) {
        if (iov[skip].iov_len > bytes) {
            iov[skip].iov_base = (uint8_t *)iov[skip].iov_base + bytes;
            iov[skip].iov_len -= bytes;
            bytes = 0;
            break;
        }
        bytes -= iov[skip].iov_len;
        skip++;
    }
    if (skip) {
        memmove(iov, iov + skip, (*n - skip) * sizeof(*iov));
        *n -= skip;
    }
}

/* Drops bytes from the back; returns a pointer to the first dropped byte
 * (the status byte, for bytes == 1).  Zero-length entries at the end are
 * skipped.  The vector holds at least bytes. */
static uint8_t *iov_drop_back(struct iovec *iov, unsigned *n, size_t bytes)
{
    uint8_t *first = NULL;

    while (bytes > 0 && *n > 0) {
        struct iovec *last = &iov[*n - 1];

        if (last->iov_len > bytes) {
            last->iov_len -= bytes;
            first = (uint8_t *)last->iov_base + last->iov_len;
            break;
        }
        bytes -= last->iov_len;
        first = last->iov_base;
        (*n)--;
    }
    return first;
}

static void qiov_over(IOVector *v, struct iovec *iov, unsigned n, size_t size)
{
    v->iov = iov;
    v->niov = (int)n;
    v->nalloc = (int)n;
    v->size = size;
}

/* ---- completion --------------------------------------------------------- */

static uint8_t status_of(int ret)
{
    if (ret == 0) {
        return VIRTIO_BLK_S_OK;
    }
    return ret == -ENOTSUP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

static void req_finish(VhostBlkRequest *req, uint8_t status)
{
    vhost_queue_complete(req, status,
                         status == VIRTIO_BLK_S_OK ? req->done_len : 1);
}

static void rw_done(void *opaque, int ret)
{
    req_finish(opaque, status_of(ret));
}

/* One range of a multi-range DISCARD/WRITE_ZEROES finished. */
static void range_done(void *opaque, int ret)
{
    VhostBlkRequest *req = opaque;

    if (ret < 0 && req->ret == 0) {
        req->ret = ret;
    }
    if (--req->pending == 0) {
        req_finish(req, status_of(req->ret));
    }
}

/* ---- checks ------------------------------------------------------------- */

/* Whether [sector * 512, + bytes) is within the node and aligned to the
 * export's logical block size. */
static bool range_ok(VhostBlkExport *exp, uint64_t sector, uint64_t bytes)
{
    uint64_t len = (uint64_t)bdrv_getlength(exp->bs);
    uint64_t off;

    if (sector > (UINT64_MAX >> VIRTIO_BLK_SECTOR_BITS)) {
        return false;
    }
    off = sector << VIRTIO_BLK_SECTOR_BITS;
    if (off > len || bytes > len - off) {
        return false;
    }
    return (off | bytes) % exp->blk_size == 0;
}

/*
 * DISCARD or WRITE_ZEROES: the ranges are in the driver-readable data
 * (already past the header).  Returns a status to finish with now, or
 * 0xff if the ranges were submitted.
 */
static uint8_t start_ranges(VhostBlkRequest *req, uint32_t type,
                            struct iovec *out, unsigned out_n, size_t bytes)
{
    VhostBlkQueue *q = req->q;
    VhostConn *c = q->conn;
    VhostBlkExport *exp = c->exp;
    bool zeroes = type == VIRTIO_BLK_T_WRITE_ZEROES;
    unsigned feature =
        zeroes ? VIRTIO_BLK_F_WRITE_ZEROES : VIRTIO_BLK_F_DISCARD;
    unsigned max_seg =
        zeroes ? VHOST_BLK_MAX_WRITE_ZEROES_SEG : VHOST_BLK_MAX_DISCARD_SEG;
    uint32_t max_sectors = zeroes ? VHOST_BLK_MAX_WRITE_ZEROES_SECTORS
                                  : VHOST_BLK_MAX_DISCARD_SECTORS;
    VirtioBlkDiscardWriteZeroes seg[VHOST_BLK_MAX_DISCARD_SEG];
    unsigned n, i;

    _Static_assert(VHOST_BLK_MAX_WRITE_ZEROES_SEG <= VHOST_BLK_MAX_DISCARD_SEG,
                   "seg[] holds either");
    if (!(c->features & (1ULL << feature))) {
        return VIRTIO_BLK_S_UNSUPP;
    }
    if (!exp->writable) {
        return VIRTIO_BLK_S_IOERR;
    }
    if (bytes == 0 || bytes % sizeof(seg[0]) != 0 ||
        bytes / sizeof(seg[0]) > max_seg) {
        return VIRTIO_BLK_S_IOERR;
    }
    n = bytes / sizeof(seg[0]);
    /* One copy of the ranges: the guest may change them meanwhile. */
    iov_copy_out(out, out_n, seg, bytes);
    for (i = 0; i < n; i++) {
        uint32_t allowed = zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;

        if (seg[i].flags & ~allowed) {
            return VIRTIO_BLK_S_UNSUPP;
        }
        if (seg[i].num_sectors > max_sectors ||
            !range_ok(exp, seg[i].sector,
                      (uint64_t)seg[i].num_sectors << VIRTIO_BLK_SECTOR_BITS)) {
            return VIRTIO_BLK_S_IOERR;
        }
    }
    req->pending = n;
    req->done_len = 1;
    for (i = 0; i < n; i++) {
        int64_t off = (int64_t)(seg[i].sector << VIRTIO_BLK_SECTOR_BITS);
        int64_t len = (int64_t)seg[i].num_sectors << VIRTIO_BLK_SECTOR_BITS;

        if (zeroes) {
            int flags = 0;

            if (seg[i].flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) {
                flags |= BDRV_REQ_MAY_UNMAP;
            }
            if (dp_atomic_load_relaxed(&c->writethrough)) {
                flags |= BDRV_REQ_FUA;
            }
            bdrv_aio_pwrite_zeroes(exp->bs, off, len, flags, range_done, req);
        } else {
            bdrv_aio_pdiscard(exp->bs, off, len, range_done, req);
        }
    }
    return 0xff;
}

/* ---- dispatch ----------------------------------------------------------- */

bool vhost_blk_request_start(VhostBlkRequest *req)
{
    VhostBlkQueue *q = req->q;
    VhostConn *c = q->conn;
    VhostBlkExport *exp = c->exp;
    VringElem *e = &req->elem;
    struct iovec *out = req->iov;
    struct iovec *in = req->iov + e->out_num;
    unsigned out_n = e->out_num;
    unsigned in_n = e->in_num;
    size_t out_bytes, in_bytes;
    VirtioBlkOutHdr hdr;
    uint8_t status;

    if (e->in_len < 1) {
        return false;
    }
    req->status = iov_drop_back(in, &in_n, 1);
    in_bytes = e->in_len - 1;
    req->in_bytes = (uint32_t)MIN(e->in_len, UINT32_MAX);
    req->done_len = 1;
    if (e->out_len < sizeof(hdr)) {
        req_finish(req, VIRTIO_BLK_S_IOERR);
        return true;
    }
    /* One copy of the header: the guest may change it meanwhile. */
    iov_copy_out(out, out_n, &hdr, sizeof(hdr));
    iov_drop_front(out, &out_n, sizeof(hdr));
    out_bytes = e->out_len - sizeof(hdr);

    switch (hdr.type) {
    case VIRTIO_BLK_T_IN:
        if (!range_ok(exp, hdr.sector, in_bytes)) {
            status = VIRTIO_BLK_S_IOERR;
            break;
        }
        req->done_len = req->in_bytes;
        qiov_over(&req->qiov, in, in_n, in_bytes);
        bdrv_aio_preadv(exp->bs,
                        (int64_t)(hdr.sector << VIRTIO_BLK_SECTOR_BITS),
                        &req->qiov, 0, rw_done, req);
        return true;
    case VIRTIO_BLK_T_OUT:
        if (!exp->writable || !range_ok(exp, hdr.sector, out_bytes)) {
            status = VIRTIO_BLK_S_IOERR;
            break;
        }
        qiov_over(&req->qiov, out, out_n, out_bytes);
        bdrv_aio_pwritev(
            exp->bs, (int64_t)(hdr.sector << VIRTIO_BLK_SECTOR_BITS),
            &req->qiov,
            dp_atomic_load_relaxed(&c->writethrough) ? BDRV_REQ_FUA : 0,
            rw_done, req);
        return true;
    case VIRTIO_BLK_T_FLUSH:
        bdrv_aio_flush(exp->bs, rw_done, req);
        return true;
    case VIRTIO_BLK_T_GET_ID: {
        uint8_t id[VIRTIO_BLK_ID_BYTES];
        size_t k = MIN(in_bytes, sizeof(id));
        IOVector v;

        memcpy(id, exp->serial, sizeof(id));
        qiov_over(&v, in, in_n, in_bytes);
        iov_from_buf(&v, 0, id, k);
        req->done_len = (uint32_t)k + 1;
        status = VIRTIO_BLK_S_OK;
        break;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        status = start_ranges(req, hdr.type, out, out_n, out_bytes);
        if (status == 0xff) {
            return true;
        }
        break;
    default:
        status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    req_finish(req, status);
    return true;
}
