/*
 * qcow2 writes: in place into clusters the image owns alone, else into a
 * newly allocated cluster filled with the rest of what the guest cluster
 * read as (copy on write); write-zeroes (zero clusters) and discard.
 * docs/qcow2.md has the ordering argument.  Node's context, coroutines.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "block/qcow2.h"

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
        !qcow2_host_offset_ok(s, entry & QCOW2_OFFSET_MASK)) {
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
            ret = qcow2_read_backing(s, cstart, &cv, 0, s->cluster_size);
            iov_destroy(&cv);
        } else if (type == QCOW2_CLUSTER_NORMAL) {
            ret = qcow2_co_pread(s, (int64_t)(entry & QCOW2_OFFSET_MASK), cow,
                                 s->cluster_size);
        } else {
            ret = qcow2_read_compressed(s, entry, cow);
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

int qcow2_co_write(Qcow2State *s, int64_t offset, IOVector *qiov, int flags,
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

        ret = qcow2_map_range(s, pos, (int64_t)(qiov->size - done), false, &m);
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
    int ret = qcow2_map_range(s, offset, bytes, false, &m);

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
        ret = qcow2_co_write(s, offset, &v, 0, meta);
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

int qcow2_co_zeroes(Qcow2State *s, int64_t offset, int64_t bytes, int flags,
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

int qcow2_co_discard(Qcow2State *s, int64_t offset, int64_t bytes, bool *meta)
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
