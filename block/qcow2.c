/*
 * driver=qcow2: QEMU's copy-on-write image format (versions 2 and 3) over
 * any protocol node, with a backing chain.  docs/qcow2.md describes what is
 * supported and the crash-safety argument.
 *
 * Each request runs in a coroutine of the node's context (block/coroutine.h)
 * as straight-line code that yields while the file or backing child works.
 * Reads and writes that land in allocated clusters whose L2 table is cached
 * take a fast path instead: the mapping is looked up at once and the
 * request goes to the file child as one I/O, with no coroutine.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "block/qcow2.h"

static const char *const discard_choices[] = {"unmap", "ignore", NULL};

static const BlockOptDesc qcow2_opts[] = {
    {"cache-size", BLOCK_OPT_SIZE, NULL},
    {"l2-cache-size", BLOCK_OPT_SIZE, NULL},
    {"l2-cache-entry-size", BLOCK_OPT_SIZE, NULL},
    {"refcount-cache-size", BLOCK_OPT_SIZE, NULL},
    {"discard", BLOCK_OPT_STRING, discard_choices},
    {NULL},
};

#define L2_CACHE_MAX (32 * 1024 * 1024)

/* ---- coroutine plumbing -------------------------------------------------- */

static void wake_bh(void *opaque)
{
    Qcow2State *s = opaque;
    Coroutine *co;
    GQueue batch = G_QUEUE_INIT;

    /* Only those queued so far: one that wakes another re-schedules. */
    while ((co = g_queue_pop_head(&s->wake))) {
        g_queue_push_tail(&batch, co);
    }
    while ((co = g_queue_pop_head(&batch))) {
        coroutine_enter(co);
    }
}

void qcow2_co_wake(Qcow2State *s, Coroutine *co)
{
    g_queue_push_tail(&s->wake, co);
    aio_bh_schedule(s->wake_bh);
}

void qcow2_co_lock(Qcow2State *s)
{
    Coroutine *self = coroutine_self();

    g_assert(s->lock.owner != self);
    if (s->lock.owner) {
        g_queue_push_tail(&s->lock.waiters, self);
        coroutine_yield();
        /* Handed over by the unlock. */
        g_assert(s->lock.owner == self);
        return;
    }
    s->lock.owner = self;
}

void qcow2_co_unlock(Qcow2State *s)
{
    Coroutine *next = g_queue_pop_head(&s->lock.waiters);

    g_assert(s->lock.owner == coroutine_self());
    s->lock.owner = next;
    if (next) {
        qcow2_co_wake(s, next);
    }
}

bool qcow2_co_locked(Qcow2State *s)
{
    return s->lock.owner && s->lock.owner == coroutine_self();
}

typedef struct CoIo {
    Coroutine *co;
    int ret;
    bool done;
    bool waiting;
    int64_t pnum;
    unsigned status;
    int depth;
} CoIo;

static void co_io_cb(void *opaque, int ret)
{
    CoIo *c = opaque;

    c->ret = ret;
    c->done = true;
    if (c->waiting) {
        coroutine_enter(c->co);
    }
}

static void co_status_cb(void *opaque, int ret, int64_t pnum, unsigned status,
                         int depth)
{
    CoIo *c = opaque;

    c->pnum = pnum;
    c->status = status;
    c->depth = depth;
    co_io_cb(opaque, ret);
}

static int co_io_wait(CoIo *c)
{
    if (!c->done) {
        c->waiting = true;
        coroutine_yield();
    }
    return c->ret;
}

int qcow2_co_preadv(BlockDriverState *child, int64_t offset, IOVector *v)
{
    CoIo c = {.co = coroutine_self()};

    bdrv_aio_preadv(child, offset, v, 0, co_io_cb, &c);
    return co_io_wait(&c);
}

int qcow2_co_pwritev(Qcow2State *s, int64_t offset, IOVector *v, int flags)
{
    CoIo c = {.co = coroutine_self()};

    bdrv_aio_pwritev(s->bs->file, offset, v, flags, co_io_cb, &c);
    return co_io_wait(&c);
}

int qcow2_co_pread(Qcow2State *s, int64_t offset, void *buf, int64_t len)
{
    IOVector v;
    int ret;

    iov_init(&v, 1);
    iov_add(&v, buf, len);
    ret = qcow2_co_preadv(s->bs->file, offset, &v);
    iov_destroy(&v);
    return ret;
}

int qcow2_co_pwrite(Qcow2State *s, int64_t offset, const void *buf, int64_t len)
{
    IOVector v;
    int ret;

    iov_init(&v, 1);
    iov_add(&v, (void *)buf, len);
    ret = qcow2_co_pwritev(s, offset, &v, 0);
    iov_destroy(&v);
    return ret;
}

int qcow2_co_flush_file(Qcow2State *s)
{
    CoIo c = {.co = coroutine_self()};

    bdrv_aio_flush(s->bs->file, co_io_cb, &c);
    return co_io_wait(&c);
}

int qcow2_co_discard_file(Qcow2State *s, int64_t offset, int64_t len)
{
    CoIo c = {.co = coroutine_self()};

    bdrv_aio_pdiscard(s->bs->file, offset, len, co_io_cb, &c);
    return co_io_wait(&c);
}

int qcow2_signal_corruption(Qcow2State *s, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (!s->corrupt) {
        error_report("qcow2 node '%s': corrupt metadata: %s; no more writes "
                     "(check the image with qemu-img check)",
                     s->bs->node_name, msg);
    }
    s->corrupt = true;
    return -EIO;
}

/* ---- mapping ------------------------------------------------------------- */

typedef struct Qcow2Map {
    Qcow2ClusterType type;
    uint64_t entry; /* the first cluster's L2 entry */
    uint64_t host;  /* NORMAL: host offset of the first byte */
    int64_t bytes;  /* how far the same answer goes */
} Qcow2Map;

static bool host_offset_ok(Qcow2State *s, uint64_t host)
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
static int map_range(Qcow2State *s, int64_t offset, int64_t bytes,
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
        !host_offset_ok(s, m->entry & QCOW2_OFFSET_MASK)) {
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
                    !host_offset_ok(s, next & QCOW2_OFFSET_MASK))) {
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
static int read_backing(Qcow2State *s, int64_t offset, IOVector *v, size_t voff,
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
static int read_compressed(Qcow2State *s, uint64_t entry, void *buf)
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

        ret = map_range(s, offset + (int64_t)done, (int64_t)(qiov->size - done),
                        false, &m);
        if (ret < 0) {
            break;
        }
        switch (m.type) {
        case QCOW2_CLUSTER_UNALLOCATED:
            ret = read_backing(s, offset + (int64_t)done, qiov, done, m.bytes);
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

            ret = read_compressed(s, m.entry, buf);
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

/* ---- writes -------------------------------------------------------------- */

/*
 * Writes [offset, +n) (n within one guest cluster) from data, which needs
 * a new host cluster: the cluster is unallocated, zero, compressed, or
 * shared.  The rest of the new cluster is copied from what the guest
 * cluster read as before.  *meta is set when the mapping changed.
 */
static int alloc_write(Qcow2State *s, int64_t offset, IOVector *data,
                       size_t doff, int64_t n, int flags, bool *meta)
{
    int64_t cstart = offset & ~(s->cluster_size - 1);
    uint64_t cluster = (uint64_t)cstart >> s->cluster_bits;
    uint64_t l1i = cluster >> s->l2_bits;
    int64_t l2i = (int64_t)(cluster & (uint64_t)(s->l2_size - 1));
    int64_t head = offset - cstart;
    int64_t tail = s->cluster_size - head - n;
    g_autofree uint8_t *cow = NULL;
    Qcow2CacheEntry *e = NULL;
    Qcow2Op op;
    uint64_t entry;
    Qcow2ClusterType type;
    int64_t host = 0, file_len;
    IOVector v;
    int ret;

    qcow2_op_begin(s, &op, cstart, cstart + s->cluster_size);
    qcow2_co_lock(s);
    ret = qcow2_get_l2(s, l1i, true, &e);
    if (ret < 0) {
        goto out_unlock;
    }
    entry = qcow2_l2_entry(s, e, l2i);
    type = qcow2_entry_type(entry, s->version);
    if (type == QCOW2_CLUSTER_NORMAL &&
        !host_offset_ok(s, entry & QCOW2_OFFSET_MASK)) {
        ret = qcow2_signal_corruption(s, "L2 entry 0x%" PRIx64 " is invalid",
                                      entry);
        goto out_unlock;
    }
    if (type == QCOW2_CLUSTER_NORMAL && !(entry & QCOW2_OFLAG_COPIED)) {
        uint64_t rc;

        ret = qcow2_get_refcount(
            s, (entry & QCOW2_OFFSET_MASK) >> s->cluster_bits, &rc);
        if (ret < 0) {
            goto out_unlock;
        }
        if (rc == 1) {
            /* A stale flag: the cluster is ours alone. */
            entry |= QCOW2_OFLAG_COPIED;
            qcow2_set_l2_entry(s, e, l2i, entry);
            *meta = true;
        }
    }
    if (type == QCOW2_CLUSTER_NORMAL && (entry & QCOW2_OFLAG_COPIED)) {
        /* Someone allocated it meanwhile: write in place. */
        qcow2_co_unlock(s);
        iov_init(&v, data->niov);
        iov_concat(&v, data, doff, n);
        ret = qcow2_co_pwritev(s, (int64_t)(entry & QCOW2_OFFSET_MASK) + head,
                               &v, flags);
        iov_destroy(&v);
        goto out;
    }
    file_len = bdrv_getlength(s->bs->file);
    ret = qcow2_alloc_cluster(s, &host);
    qcow2_co_unlock(s);
    if (ret < 0) {
        goto out;
    }

    /* What the rest of the cluster reads as now.  Zeroes in a new cluster
     * past the end of the file need no writing: the rest is a hole. */
    if ((head || tail) &&
        !(host >= file_len &&
          (type == QCOW2_CLUSTER_ZERO_PLAIN ||
           type == QCOW2_CLUSTER_ZERO_ALLOC ||
           (type == QCOW2_CLUSTER_UNALLOCATED && !s->bs->backing)))) {
        bool zero = type == QCOW2_CLUSTER_ZERO_PLAIN ||
                    type == QCOW2_CLUSTER_ZERO_ALLOC ||
                    (type == QCOW2_CLUSTER_UNALLOCATED && !s->bs->backing);

        cow = g_malloc(s->cluster_size);
        if (zero) {
            memset(cow, 0, s->cluster_size);
        } else if (type == QCOW2_CLUSTER_UNALLOCATED) {
            IOVector cv;

            iov_init(&cv, 1);
            iov_add(&cv, cow, s->cluster_size);
            ret = read_backing(s, cstart, &cv, 0, s->cluster_size);
            iov_destroy(&cv);
        } else if (type == QCOW2_CLUSTER_NORMAL) {
            ret = qcow2_co_pread(s, (int64_t)(entry & QCOW2_OFFSET_MASK), cow,
                                 s->cluster_size);
        } else {
            ret = read_compressed(s, entry, cow);
        }
        if (ret < 0) {
            goto out_free_new;
        }
    }
    iov_init(&v, data->niov + 2);
    if (cow && head) {
        iov_add(&v, cow, head);
    }
    iov_concat(&v, data, doff, n);
    if (cow && tail) {
        iov_add(&v, cow + head + n, tail);
    }
    ret = qcow2_co_pwritev(s, host + (cow ? 0 : head), &v, 0);
    iov_destroy(&v);
    if (ret < 0) {
        goto out_free_new;
    }

    /* The data is written: the table may point at it now. */
    qcow2_co_lock(s);
    qcow2_set_l2_entry(s, e, l2i, (uint64_t)host | QCOW2_OFLAG_COPIED);
    *meta = true;
    if (type == QCOW2_CLUSTER_NORMAL || type == QCOW2_CLUSTER_ZERO_ALLOC) {
        qcow2_free_later(s, entry & QCOW2_OFFSET_MASK, s->cluster_size);
    } else if (type == QCOW2_CLUSTER_COMPRESSED) {
        uint64_t coff, clen;

        qcow2_compressed_range(entry, s->cluster_bits, &coff, &clen);
        qcow2_free_later(s, coff, clen);
    }
    goto out_unlock;

out_free_new:
    qcow2_co_lock(s);
    qcow2_unref_cluster(s, (uint64_t)host);
out_unlock:
    qcow2_co_unlock(s);
out:
    if (e) {
        qcow2_cache_put(s->l2_cache, e);
    }
    qcow2_op_end(s, &op);
    return ret;
}

static int co_write(Qcow2State *s, int64_t offset, IOVector *qiov, int flags,
                    bool *meta)
{
    size_t done = 0;
    int ret = 0;

    if (s->corrupt) {
        return -EIO;
    }
    while (ret == 0 && done < qiov->size) {
        int64_t pos = offset + (int64_t)done;
        Qcow2Map m;

        ret = map_range(s, pos, (int64_t)(qiov->size - done), false, &m);
        if (ret < 0) {
            break;
        }
        if (m.type == QCOW2_CLUSTER_NORMAL && (m.entry & QCOW2_OFLAG_COPIED)) {
            IOVector part;

            iov_init(&part, qiov->niov);
            iov_concat(&part, qiov, done, m.bytes);
            ret = qcow2_co_pwritev(s, (int64_t)m.host, &part, flags);
            iov_destroy(&part);
        } else {
            m.bytes =
                MIN(m.bytes, s->cluster_size - (pos & (s->cluster_size - 1)));
            ret = alloc_write(s, pos, qiov, done, m.bytes, flags, meta);
        }
        done += m.bytes;
    }
    return ret;
}

/* ---- write-zeroes and discard ------------------------------------------- */

/* Does the part of the guest cluster at offset already read as zeroes? */
static int reads_as_zero(Qcow2State *s, int64_t offset, int64_t bytes,
                         bool *zero)
{
    Qcow2Map m;
    int ret = map_range(s, offset, bytes, false, &m);

    if (ret < 0) {
        return ret;
    }
    *zero = m.type == QCOW2_CLUSTER_ZERO_PLAIN ||
            m.type == QCOW2_CLUSTER_ZERO_ALLOC ||
            (m.type == QCOW2_CLUSTER_UNALLOCATED && !s->bs->backing);
    return 0;
}

/* Writes zero buffers over [offset, +bytes) through the write path. */
static int write_zero_buffers(Qcow2State *s, int64_t offset, int64_t bytes,
                              bool *meta)
{
    int64_t chunk = MIN(bytes, s->cluster_size);
    g_autofree uint8_t *zeroes = g_malloc0(chunk);
    int ret = 0;

    while (ret == 0 && bytes > 0) {
        int64_t n = MIN(bytes, chunk - (offset % chunk));
        IOVector v;

        iov_init(&v, 1);
        iov_add(&v, zeroes, n);
        ret = co_write(s, offset, &v, 0, meta);
        iov_destroy(&v);
        offset += n;
        bytes -= n;
    }
    return ret;
}

/* The new L2 entry that zeroes (or discards) a cluster with entry. */
static uint64_t zeroed_entry(Qcow2State *s, uint64_t entry, bool unmap,
                             bool discard)
{
    Qcow2ClusterType t = qcow2_entry_type(entry, s->version);

    if (discard) {
        /* The backing file must not show through a discarded cluster. */
        return s->bs->backing ? QCOW2_OFLAG_ZERO : 0;
    }
    if (!unmap &&
        (t == QCOW2_CLUSTER_NORMAL || t == QCOW2_CLUSTER_ZERO_ALLOC) &&
        (entry & QCOW2_OFLAG_COPIED)) {
        /* Keep the preallocation, as QEMU does without MAY_UNMAP. */
        return (entry & (QCOW2_OFFSET_MASK | QCOW2_OFLAG_COPIED)) |
               QCOW2_OFLAG_ZERO;
    }
    return QCOW2_OFLAG_ZERO;
}

/*
 * Rewrites the L2 entries of the whole clusters [offset, +bytes) with the
 * zero flag (or, to discard, unallocated) and frees what they pointed to.
 */
static int zero_clusters(Qcow2State *s, int64_t offset, int64_t bytes,
                         bool unmap, bool discard, bool *meta)
{
    int ret = 0;

    while (ret == 0 && bytes > 0) {
        uint64_t cluster = (uint64_t)offset >> s->cluster_bits;
        uint64_t l1i = cluster >> s->l2_bits;
        int64_t l2i = (int64_t)(cluster & (uint64_t)(s->l2_size - 1));
        int64_t n = MIN(bytes >> s->cluster_bits, s->l2_size - l2i);
        Qcow2CacheEntry *e = NULL;
        Qcow2Op op;
        int64_t i;
        /* Without an L2 table the clusters read as zeroes, unless a
         * backing file shows through. */
        bool need_table = s->bs->backing && (!discard || s->version >= 3);

        qcow2_op_begin(s, &op, offset, offset + (n << s->cluster_bits));
        qcow2_co_lock(s);
        ret = qcow2_get_l2(s, l1i, s->l1[l1i] != 0 || need_table, &e);
        for (i = 0; ret == 0 && e && i < n; i++) {
            uint64_t old = qcow2_l2_entry(s, e, l2i + i);
            Qcow2ClusterType t = qcow2_entry_type(old, s->version);
            uint64_t neu = zeroed_entry(s, old, unmap, discard);

            if (s->version < 3 && (neu & QCOW2_OFLAG_ZERO)) {
                continue; /* the caller writes zeroes instead */
            }
            if (neu == old) {
                continue;
            }
            qcow2_set_l2_entry(s, e, l2i + i, neu);
            *meta = true;
            if ((t == QCOW2_CLUSTER_NORMAL || t == QCOW2_CLUSTER_ZERO_ALLOC) &&
                !(neu & QCOW2_OFFSET_MASK)) {
                qcow2_free_later(s, old & QCOW2_OFFSET_MASK, s->cluster_size);
            } else if (t == QCOW2_CLUSTER_COMPRESSED) {
                uint64_t coff, clen;

                qcow2_compressed_range(old, s->cluster_bits, &coff, &clen);
                qcow2_free_later(s, coff, clen);
            }
        }
        qcow2_co_unlock(s);
        if (e) {
            qcow2_cache_put(s->l2_cache, e);
        }
        qcow2_op_end(s, &op);
        offset += n << s->cluster_bits;
        bytes -= n << s->cluster_bits;
    }
    return ret;
}

/* Zeroes the partial-cluster range [from, to): zero buffers, unless it
 * reads as zeroes already. */
static int zero_partial(Qcow2State *s, int64_t from, int64_t to, int flags,
                        bool *meta)
{
    int ret = 0;

    while (ret == 0 && from < to) {
        int64_t n =
            MIN(to - from, s->cluster_size - (from & (s->cluster_size - 1)));
        bool zero;

        ret = reads_as_zero(s, from, n, &zero);
        if (ret == 0 && !zero) {
            ret = (flags & BDRV_REQ_NO_FALLBACK)
                      ? -ENOTSUP
                      : write_zero_buffers(s, from, n, meta);
        }
        from += n;
    }
    return ret;
}

static int co_zeroes(Qcow2State *s, int64_t offset, int64_t bytes, int flags,
                     bool *meta)
{
    int64_t end = offset + bytes;
    int64_t astart = (offset + s->cluster_size - 1) & ~(s->cluster_size - 1);
    int64_t aend = end & ~(s->cluster_size - 1);
    bool unmap = flags & BDRV_REQ_MAY_UNMAP;
    int64_t pos;
    int ret;

    if (s->corrupt) {
        return -EIO;
    }
    /* The virtual disk's last cluster counts as whole. */
    if (end == s->bs->total_bytes) {
        aend = (end + s->cluster_size - 1) & ~(s->cluster_size - 1);
    }
    if (astart >= aend) {
        return zero_partial(s, offset, end, flags, meta);
    }
    ret = zero_partial(s, offset, astart, flags, meta);
    if (ret == 0 && aend < end) {
        ret = zero_partial(s, aend, end, flags, meta);
    }
    if (ret == 0) {
        ret = zero_clusters(s, astart, aend - astart, unmap, false, meta);
    }
    /* Version 2 has no zero flag: clusters that do not read as zeroes yet
     * are discarded (no backing file, unmap allowed) or get zero buffers. */
    for (pos = astart; ret == 0 && s->version < 3 && pos < aend;
         pos += s->cluster_size) {
        bool zero;

        ret = reads_as_zero(s, pos, s->cluster_size, &zero);
        if (ret < 0 || zero) {
            continue;
        }
        if (!s->bs->backing && unmap) {
            ret = zero_clusters(s, pos, s->cluster_size, true, true, meta);
        } else if (flags & BDRV_REQ_NO_FALLBACK) {
            ret = -ENOTSUP;
        } else {
            ret = write_zero_buffers(
                s, pos, MIN(s->cluster_size, s->bs->total_bytes - pos), meta);
        }
    }
    return ret;
}

static int co_discard(Qcow2State *s, int64_t offset, int64_t bytes, bool *meta)
{
    int64_t end = offset + bytes;
    int64_t astart = (offset + s->cluster_size - 1) & ~(s->cluster_size - 1);
    int64_t aend = end == s->bs->total_bytes
                       ? (end + s->cluster_size - 1) & ~(s->cluster_size - 1)
                       : end & ~(s->cluster_size - 1);

    if (!s->discard_unmap || s->corrupt || astart >= aend) {
        /* Discard is advisory; partial clusters are left alone. */
        return 0;
    }
    return zero_clusters(s, astart, aend - astart, true, true, meta);
}

/* ---- block status -------------------------------------------------------- */

static int co_block_status(Qcow2State *s, BdrvRequest *req)
{
    Qcow2Map m;
    int ret = map_range(s, req->offset, req->bytes, true, &m);

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
        CoIo c = {.co = coroutine_self()};

        if (req->offset >= blen) {
            return 0;
        }
        bdrv_aio_block_status_depth(
            b, req->offset, MIN(m.bytes, blen - req->offset), co_status_cb, &c);
        ret = co_io_wait(&c);
        if (ret < 0) {
            return ret;
        }
        req->pnum = c.pnum;
        req->status = c.status;
        req->depth = c.depth ? c.depth + 1 : 0;
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
        ret = co_write(s, req->offset, req->qiov, req->flags & BDRV_REQ_FUA,
                       &meta);
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
        ret = co_zeroes(s, req->offset, req->bytes, req->flags, &meta);
        epoch_leave(s, e);
        break;
    case BDRV_REQUEST_DISCARD:
        e = epoch_enter(s);
        ret = co_discard(s, req->offset, req->bytes, &meta);
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

static void qcow2_co_submit(BlockDriverState *bs, BdrvRequest *req)
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
        !host_offset_ok(s, base) ||
        (req->type == BDRV_REQUEST_WRITE && !(entry & QCOW2_OFLAG_COPIED))) {
        return false;
    }
    for (i = 1; i <= (int64_t)(last - cluster); i++) {
        uint64_t next = qcow2_l2_entry(s, e, l2i + i);

        if ((next & ~QCOW2_OFLAG_COPIED) !=
                base + (uint64_t)(i << s->cluster_bits) ||
            (next & QCOW2_OFLAG_COPIED) != (entry & QCOW2_OFLAG_COPIED) ||
            !host_offset_ok(s, next & QCOW2_OFFSET_MASK)) {
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

static void qcow2_preadv(BlockDriverState *bs, BdrvRequest *req)
{
    if (!try_fast_path(bs->opaque, req)) {
        qcow2_co_submit(bs, req);
    }
}

static void qcow2_pwritev(BlockDriverState *bs, BdrvRequest *req)
{
    if (!try_fast_path(bs->opaque, req)) {
        qcow2_co_submit(bs, req);
    }
}

/* ---- open and close ------------------------------------------------------ */

typedef struct OpenCo {
    Qcow2State *s;
    GHashTable *opts;
    Error *err;
    int ret;
    bool done;
} OpenCo;

static uint64_t *read_table_be(const uint8_t *buf, uint64_t n)
{
    uint64_t *t = g_new(uint64_t, MAX(n, 1));
    uint64_t i;

    for (i = 0; i < n; i++) {
        uint64_t v;

        memcpy(&v, buf + i * 8, 8);
        t[i] = GUINT64_FROM_BE(v);
    }
    return t;
}

static int setup_caches(Qcow2State *s, GHashTable *opts, Error **errp)
{
    int64_t cs = s->cluster_size;
    /* Enough for every table the image can have. */
    int64_t l2_needed = ((int64_t)s->img.h.l1_size) * cs;
    int64_t max_l2 = MIN(l2_needed, L2_CACHE_MAX);
    int64_t total = bdrv_opt_get_size(opts, "cache-size", -1);
    int64_t l2 = bdrv_opt_get_size(opts, "l2-cache-size", -1);
    int64_t rb = bdrv_opt_get_size(opts, "refcount-cache-size", -1);
    int64_t entry = bdrv_opt_get_size(opts, "l2-cache-entry-size", cs);

    if (entry != cs) {
        error_setg(errp,
                   "l2-cache-entry-size must be the cluster size (%" PRId64
                   " bytes) here: partial L2 cache entries are not supported",
                   cs);
        return -EINVAL;
    }
    if (total >= 0 && l2 >= 0 && rb >= 0) {
        error_setg(errp, "cache-size, l2-cache-size and refcount-cache-size "
                         "may not be set at the same time");
        return -EINVAL;
    }
    if (total >= 0) {
        if (l2 < 0 && rb < 0) {
            rb = MAX(4 * cs, total / 4);
            l2 = total - rb;
            l2 = MIN(l2, max_l2);
        } else if (l2 < 0) {
            l2 = total - rb;
        } else if (rb < 0) {
            rb = total - l2;
        }
        if (l2 < 0 || rb < 0 || l2 + rb > total) {
            error_setg(errp, "l2-cache-size plus refcount-cache-size exceed "
                             "cache-size");
            return -EINVAL;
        }
    }
    if (l2 < 0) {
        l2 = max_l2;
    }
    if (rb < 0) {
        rb = MAX(4 * cs, l2 / 4);
    }
    s->l2_cache = qcow2_cache_new(s, (unsigned)MIN(l2 / cs, 1 << 20));
    s->rb_cache = qcow2_cache_new(s, (unsigned)MIN(rb / cs, 1 << 20));
    return 0;
}

static void snapshot_free(gpointer p)
{
    BdrvSnapshotInfo *sn = p;

    g_free(sn->id);
    g_free(sn->name);
    g_free(sn);
}

#define SNAPSHOT_WINDOW (1024 * 1024)
#define SNAPSHOT_TABLE_MAX (64 * 1024 * 1024) /* QEMU's limit */

/* Reads the snapshot table (for listing only: snapshots are never loaded
 * or changed), a window at a time. */
static int read_snapshots(Qcow2State *s, int64_t flen, Error **errp)
{
    int64_t start = (int64_t)s->img.h.snapshots_offset;
    int64_t off = start;
    uint32_t left = s->img.h.nb_snapshots;
    int ret;

    s->snapshots = g_ptr_array_new_with_free_func(snapshot_free);
    while (left > 0) {
        int64_t n = MIN(SNAPSHOT_WINDOW, flen - off);
        g_autofree uint8_t *buf = NULL;
        guint before = s->snapshots->len;
        int64_t used;

        if (n <= 0 || off - start >= SNAPSHOT_TABLE_MAX) {
            error_setg(errp, "Image is not in qcow2 format: the snapshot "
                             "table runs past the end of the file or 64 MiB");
            return -EINVAL;
        }
        buf = g_malloc(n);
        ret = qcow2_co_pread(s, off, buf, n);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read the snapshot table");
            return ret;
        }
        used = qcow2_parse_snapshots(buf, n, left, s->snapshots, errp);
        if (used < 0) {
            return -EINVAL;
        }
        if (used == 0) {
            error_setg(errp, "Image is not in qcow2 format: snapshot table "
                             "entry cut off by the end of the file");
            return -EINVAL;
        }
        left -= s->snapshots->len - before;
        off += used;
    }
    return 0;
}

static void qcow2_co_open(void *opaque)
{
    OpenCo *o = opaque;
    Qcow2State *s = o->s;
    BlockDriverState *bs = s->bs;
    int64_t flen = bdrv_getlength(bs->file);
    int64_t hlen = MIN(flen, INT64_C(1) << QCOW2_MAX_CLUSTER_BITS);
    g_autofree uint8_t *buf = g_malloc0(MAX(hlen, 1));
    g_autofree uint8_t *tbuf = NULL;
    Qcow2Header *h = &s->img.h;
    int ret;

    ret = hlen > 0 ? qcow2_co_pread(s, 0, buf, hlen) : 0;
    if (ret < 0) {
        error_setg_errno(&o->err, -ret, "Could not read the qcow2 header");
        goto out;
    }
    if (!qcow2_parse_header(buf, hlen, flen, &s->img, &o->err)) {
        ret = -EINVAL;
        goto out;
    }
    s->version = (int)h->version;
    s->cluster_bits = h->cluster_bits;
    s->cluster_size = INT64_C(1) << h->cluster_bits;
    s->l2_bits = h->cluster_bits - 3;
    s->l2_size = INT64_C(1) << s->l2_bits;
    s->refcount_order = h->refcount_order;
    s->rb_bits = h->cluster_bits + 3 - h->refcount_order;
    s->refcount_max = h->refcount_order == 6
                          ? UINT64_MAX
                          : (UINT64_C(1) << (1u << h->refcount_order)) - 1;
    s->compression_type = h->compression_type;
    ret = -EINVAL;
    if (!bs->read_only) {
        if (h->incompatible_features & QCOW2_INCOMPAT_DIRTY) {
            error_setg(&o->err,
                       "qcow2 image '%s' was not closed cleanly (dirty bit "
                       "set: its refcounts may be stale); repair it with "
                       "'qemu-img check -r all' or open it with read-only=on",
                       bdrv_get_filename(bs));
            goto out;
        }
        if (h->incompatible_features & QCOW2_INCOMPAT_CORRUPT) {
            error_setg(&o->err,
                       "qcow2 image '%s' is marked corrupt; repair it with "
                       "'qemu-img check -r all' or open it with read-only=on",
                       bdrv_get_filename(bs));
            goto out;
        }
        if (h->nb_snapshots) {
            error_setg(&o->err,
                       "qcow2 image '%s' has %u internal snapshot(s): "
                       "writing such images is not supported (open it with "
                       "read-only=on, or remove them with 'qemu-img snapshot "
                       "-d')",
                       bdrv_get_filename(bs), h->nb_snapshots);
            goto out;
        }
    }
    if (setup_caches(s, o->opts, &o->err) < 0) {
        goto out;
    }

    s->l1_size = h->l1_size;
    s->l1_offset = (int64_t)h->l1_table_offset;
    tbuf = g_malloc(MAX((uint64_t)s->l1_size * 8, 1));
    ret = s->l1_size
              ? qcow2_co_pread(s, s->l1_offset, tbuf, (int64_t)s->l1_size * 8)
              : 0;
    if (ret < 0) {
        error_setg_errno(&o->err, -ret, "Could not read the L1 table");
        goto out;
    }
    s->l1 = read_table_be(tbuf, s->l1_size);
    s->l1_dirty = g_malloc0(
        ((uint64_t)s->l1_size * 8 + s->cluster_size - 1) / s->cluster_size + 1);
    g_clear_pointer(&tbuf, g_free);

    s->rt_offset = (int64_t)h->refcount_table_offset;
    s->rt_size = (uint64_t)h->refcount_table_clusters * s->cluster_size / 8;
    tbuf = g_malloc(s->rt_size * 8);
    ret = qcow2_co_pread(s, s->rt_offset, tbuf, (int64_t)s->rt_size * 8);
    if (ret < 0) {
        error_setg_errno(&o->err, -ret, "Could not read the refcount table");
        goto out;
    }
    s->rt = read_table_be(tbuf, s->rt_size);
    s->rt_dirty = g_malloc0(h->refcount_table_clusters);

    if (h->nb_snapshots) {
        ret = read_snapshots(s, flen, &o->err);
        if (ret < 0) {
            goto out;
        }
    }
    if (!bs->read_only && h->autoclear_features) {
        /* The spec: a writer must clear the autoclear bits it does not
         * maintain (bitmaps become inconsistent, as QEMU then reports). */
        uint8_t zero[8] = {0};

        ret = qcow2_co_pwrite(s, QCOW2_HDR_AUTOCLEAR, zero, sizeof(zero));
        if (ret == 0) {
            ret = qcow2_co_flush_file(s);
        }
        if (ret < 0) {
            error_setg_errno(&o->err, -ret, "Could not update the header");
            goto out;
        }
        h->autoclear_features = 0;
        s->bitmaps_cleared = s->img.has_bitmaps;
    }
    ret = 0;
out:
    o->ret = ret;
    o->done = true;
}

/* Runs fn in a coroutine and polls the node's context (held by the
 * caller, as bdrv_open and bdrv_close hold it) until it is done. */
static void run_co_sync(BlockDriverState *bs, CoroutineEntry *fn, void *opaque,
                        bool *done)
{
    coroutine_enter(coroutine_create(fn, opaque));
    /* Bounded by the child I/O the coroutine waits for. */
    while (!*done) {
        aio_poll(bs->ctx, true);
    }
}

static void qcow2_free_state(Qcow2State *s)
{
    if (s->l2_cache) {
        qcow2_cache_free(s->l2_cache);
    }
    if (s->rb_cache) {
        qcow2_cache_free(s->rb_cache);
    }
    g_free(s->l1);
    g_free(s->l1_dirty);
    g_free(s->rt);
    g_free(s->rt_dirty);
    g_array_free(s->frees[0], true);
    g_array_free(s->frees[1], true);
    qcow2_image_clear(&s->img);
    if (s->snapshots) {
        g_ptr_array_unref(s->snapshots);
    }
    if (s->wake_bh) {
        aio_bh_delete(s->wake_bh);
    }
}

static int qcow2_open(BlockDriverState *bs, GHashTable *opts, Error **errp)
{
    Qcow2State *s = bs->opaque;
    const char *discard = bdrv_opt_get(opts, "discard");
    OpenCo o = {.s = s, .opts = opts};

    s->bs = bs;
    s->discard_unmap = discard && !strcmp(discard, "unmap");
    TAILQ_INIT(&s->ops);
    g_queue_init(&s->wake);
    g_queue_init(&s->lock.waiters);
    s->frees[0] = g_array_new(false, false, sizeof(Qcow2Free));
    s->frees[1] = g_array_new(false, false, sizeof(Qcow2Free));
    s->wake_bh = aio_bh_new(bs->ctx, wake_bh, s);
    /* The image grows as clusters are allocated; reads of preallocated
     * clusters past the file's end see zeroes.  Over a node of fixed size
     * (memory, a raw window) allocation stops at its end (-EINVAL). */
    if (bs->file->drv->can_grow) {
        bs->file->growable = true;
    }

    run_co_sync(bs, qcow2_co_open, &o, &o.done);
    if (o.ret < 0) {
        error_propagate(errp, o.err);
        qcow2_free_state(s);
        return o.ret;
    }
    if (s->bitmaps_cleared) {
        error_report("qcow2 image '%s': its persistent dirty bitmaps are "
                     "not maintained here and are now marked inconsistent",
                     bdrv_get_filename(bs));
    }
    bs->total_bytes = (int64_t)s->img.h.size;
    if (s->img.backing_file) {
        bs->backing_file = g_strdup(s->img.backing_file);
        bs->backing_format = g_strdup(s->img.backing_format);
    }
    return 0;
}

typedef struct CloseCo {
    Qcow2State *s;
    bool done;
} CloseCo;

static void qcow2_co_close(void *opaque)
{
    CloseCo *c = opaque;
    Qcow2State *s = c->s;
    int ret;

    /* Twice: the second applies the frees the first made durable. */
    ret = qcow2_flush(s);
    if (ret == 0) {
        ret = qcow2_flush(s);
    }
    if (ret < 0) {
        error_report("qcow2 node '%s': writing metadata back on close "
                     "failed: %s",
                     s->bs->node_name, g_strerror(-ret));
    }
    c->done = true;
}

static void qcow2_close(BlockDriverState *bs)
{
    Qcow2State *s = bs->opaque;
    CloseCo c = {.s = s};

    if (!bs->read_only) {
        run_co_sync(bs, qcow2_co_close, &c, &c.done);
    }
    qcow2_free_state(s);
}

static void qcow2_snapshot_list(BlockDriverState *bs, GPtrArray *list)
{
    Qcow2State *s = bs->opaque;
    guint i;

    for (i = 0; s->snapshots && i < s->snapshots->len; i++) {
        BdrvSnapshotInfo *sn = g_ptr_array_index(s->snapshots, i);
        BdrvSnapshotInfo *copy = g_memdup2(sn, sizeof(*sn));

        copy->id = g_strdup(sn->id);
        copy->name = g_strdup(sn->name);
        g_ptr_array_add(list, copy);
    }
}

typedef struct GrowCo {
    Qcow2State *s;
    int64_t size;
    Error *err;
    int ret;
    bool done;
} GrowCo;

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    int i;

    for (i = bytes - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/*
 * Grows the virtual disk: a bigger L1 table if the new size needs one
 * (written and flushed before the header names it; the old one is freed
 * after), then the header's size, L1 size and L1 offset in one write.
 */
static void qcow2_co_grow(void *opaque)
{
    GrowCo *g = opaque;
    Qcow2State *s = g->s;
    uint64_t per_l1 = (uint64_t)s->cluster_size << s->l2_bits;
    uint64_t need = ((uint64_t)g->size + per_l1 - 1) / per_l1;
    uint64_t old_size = s->l1_size;
    int64_t new_off = s->l1_offset;
    uint64_t *l1 = NULL;
    uint8_t hdr[24];
    int ret = 0;

    qcow2_co_lock(s);
    if (need * 8 > QCOW2_MAX_L1_BYTES) {
        error_setg(&g->err,
                   "Cannot grow to %" PRId64 " bytes: the L1 table "
                   "would exceed 32 MiB (use bigger clusters)",
                   g->size);
        ret = -EFBIG;
        goto out;
    }
    ret = qcow2_writeback(s);
    if (ret == 0 && need > old_size) {
        uint64_t clusters = (need * 8 + s->cluster_size - 1) / s->cluster_size;
        g_autofree uint8_t *buf = g_malloc0(clusters * s->cluster_size);
        uint64_t i;

        ret = qcow2_alloc_contiguous(s, clusters, &new_off);
        for (i = 0; ret == 0 && i < old_size; i++) {
            put_be(buf + i * 8, s->l1[i], 8);
        }
        if (ret == 0) {
            ret = qcow2_co_pwrite(s, new_off, buf,
                                  (int64_t)(clusters * s->cluster_size));
        }
        if (ret == 0) {
            ret = qcow2_co_flush_file(s);
        }
    }
    if (ret == 0) {
        put_be(hdr, (uint64_t)g->size, 8);
        put_be(hdr + 8, s->img.h.crypt_method, 4);
        put_be(hdr + 12, MAX(need, old_size), 4);
        put_be(hdr + 16, (uint64_t)new_off, 8);
        ret = qcow2_co_pwrite(s, 24, hdr, sizeof(hdr));
    }
    if (ret == 0) {
        ret = qcow2_co_flush_file(s);
    }
    if (ret < 0) {
        if (!g->err) {
            error_setg_errno(&g->err, -ret, "Could not grow the qcow2 image");
        }
        goto out;
    }
    if (need > old_size) {
        l1 = g_new0(uint64_t, need);
        memcpy(l1, s->l1, old_size * 8);
        g_free(s->l1);
        s->l1 = l1;
        g_free(s->l1_dirty);
        s->l1_dirty =
            g_malloc0((need * 8 + s->cluster_size - 1) / s->cluster_size + 1);
        if (old_size) {
            qcow2_free_later(s, (uint64_t)s->l1_offset, old_size * 8);
        }
        s->l1_size = (uint32_t)need;
        s->l1_offset = new_off;
        s->img.h.l1_size = (uint32_t)need;
        s->img.h.l1_table_offset = (uint64_t)new_off;
    }
    s->img.h.size = (uint64_t)g->size;
out:
    qcow2_co_unlock(s);
    if (ret == 0) {
        /* Frees the old L1 table (nothing is in flight: drained). */
        ret = qcow2_flush(s);
    }
    g->ret = ret;
    g->done = true;
}

/* block_resize: growing only (shrinking would drop clusters that the
 * guest may still need, as QEMU refuses without --shrink). */
static int qcow2_truncate(BlockDriverState *bs, int64_t size, Error **errp)
{
    Qcow2State *s = bs->opaque;
    GrowCo g = {.s = s, .size = size};

    if (size % 512) {
        error_setg(errp, "The new size of a qcow2 image must be a multiple "
                         "of 512 bytes");
        return -EINVAL;
    }
    if (s->corrupt) {
        error_setg(errp, "The qcow2 image has corrupt metadata");
        return -EIO;
    }
    run_co_sync(bs, qcow2_co_grow, &g, &g.done);
    if (g.ret < 0 && !g.err) {
        error_setg_errno(&g.err, -g.ret, "Could not grow the qcow2 image");
    }
    if (g.ret < 0) {
        error_propagate(errp, g.err);
    }
    return g.ret;
}

static void qcow2_detach_aio_context(BlockDriverState *bs)
{
    Qcow2State *s = bs->opaque;

    /* Drained: no coroutine is alive, nothing waits to be woken. */
    g_assert(g_queue_is_empty(&s->wake) && !s->lock.owner);
    aio_bh_delete(s->wake_bh);
    s->wake_bh = NULL;
}

static void qcow2_attach_aio_context(BlockDriverState *bs, AioContext *ctx)
{
    Qcow2State *s = bs->opaque;

    s->wake_bh = aio_bh_new(ctx, wake_bh, s);
}

const BlockDriver bdrv_qcow2 = {
    .format_name = "qcow2",
    .instance_size = sizeof(Qcow2State),
    .options = qcow2_opts,
    .has_file_child = true,
    .file_child_required = true,
    .supports_backing = true,
    .supported_write_flags = BDRV_REQ_FUA,
    .bdrv_open = qcow2_open,
    .bdrv_close = qcow2_close,
    .bdrv_aio_preadv = qcow2_preadv,
    .bdrv_aio_pwritev = qcow2_pwritev,
    .bdrv_aio_flush = qcow2_co_submit,
    .bdrv_aio_pdiscard = qcow2_co_submit,
    .bdrv_aio_pwrite_zeroes = qcow2_co_submit,
    .bdrv_aio_block_status = qcow2_co_submit,
    .bdrv_detach_aio_context = qcow2_detach_aio_context,
    .bdrv_attach_aio_context = qcow2_attach_aio_context,
    .bdrv_truncate = qcow2_truncate,
    .bdrv_snapshot_list = qcow2_snapshot_list,
};
