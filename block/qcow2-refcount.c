/*
 * qcow2 refcounts: the refcount table (in memory, written back when it
 * changes), refcount blocks (through the cache), cluster allocation,
 * deferred frees and refcount table growth.
 *
 * Allocation scans from s->free_hint for a cluster whose refcount is 0.
 * A cluster whose refcount block does not exist yet gets one placed at
 * that very cluster: the block describes itself (its own refcount, 1, is
 * in it), so no second allocation is needed.  When the refcount table
 * itself is full, it is copied to a bigger one at the end of the image,
 * together with the refcount blocks that describe the new table; the
 * header switches to it only once the new table and blocks are on disk.
 *
 * Everything here runs in a coroutine holding s->lock, except where said.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "block/qcow2.h"

static int rb_offset(Qcow2State *s, uint64_t table_index, int64_t *off)
{
    uint64_t e;

    if (table_index >= s->rt_size) {
        *off = 0;
        return 0;
    }
    e = s->rt[table_index];
    if ((e & QCOW2_RTE_RESERVED) || (e & (uint64_t)(s->cluster_size - 1)) ||
        e >= (uint64_t)BDRV_MAX_LENGTH) {
        return qcow2_signal_corruption(
            s, "refcount table entry %" PRIu64 " is invalid (0x%" PRIx64 ")",
            table_index, e);
    }
    *off = (int64_t)e;
    return 0;
}

int qcow2_get_refcount(Qcow2State *s, uint64_t cluster, uint64_t *rc)
{
    Qcow2CacheEntry *e;
    int64_t off = 0;
    int ret = rb_offset(s, cluster >> s->rb_bits, &off);

    if (ret < 0) {
        return ret;
    }
    if (off == 0) {
        *rc = 0;
        return 0;
    }
    ret = qcow2_cache_get(s->rb_cache, off, &e);
    if (ret < 0) {
        return ret;
    }
    *rc = qcow2_refcount_get(e->table,
                             cluster & ((UINT64_C(1) << s->rb_bits) - 1),
                             s->refcount_order);
    qcow2_cache_put(s->rb_cache, e);
    return 0;
}

/* Adds delta (+1 or -1) to the refcount of cluster, whose block exists. */
static int update_refcount(Qcow2State *s, uint64_t cluster, int delta)
{
    Qcow2CacheEntry *e;
    int64_t off = 0;
    uint64_t i = cluster & ((UINT64_C(1) << s->rb_bits) - 1);
    uint64_t rc;
    int ret = rb_offset(s, cluster >> s->rb_bits, &off);

    if (ret < 0) {
        return ret;
    }
    if (off == 0) {
        return qcow2_signal_corruption(
            s, "freeing cluster %" PRIu64 " that has no refcount block",
            cluster);
    }
    ret = qcow2_cache_get(s->rb_cache, off, &e);
    if (ret < 0) {
        return ret;
    }
    rc = qcow2_refcount_get(e->table, i, s->refcount_order);
    if ((delta < 0 && rc == 0) || (delta > 0 && rc >= s->refcount_max)) {
        qcow2_cache_put(s->rb_cache, e);
        return qcow2_signal_corruption(s,
                                       "refcount of cluster %" PRIu64
                                       " would leave its range (%" PRIu64
                                       " %+d)",
                                       cluster, rc, delta);
    }
    qcow2_refcount_set(e->table, i, s->refcount_order, rc + delta);
    qcow2_cache_mark_dirty(s->rb_cache, e);
    qcow2_cache_put(s->rb_cache, e);
    if (rc + delta == 0 && cluster < (uint64_t)s->free_hint) {
        s->free_hint = (int64_t)cluster;
    }
    return 0;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

bool qcow2_rt_dirty(Qcow2State *s)
{
    uint64_t n = s->rt_size * 8 / s->cluster_size;
    uint64_t i;

    for (i = 0; i < n; i++) {
        if (s->rt_dirty[i]) {
            return true;
        }
    }
    return false;
}

int qcow2_write_rt(Qcow2State *s)
{
    uint64_t per = s->cluster_size / 8;
    uint64_t n = s->rt_size / per;
    g_autofree uint8_t *buf = g_malloc(s->cluster_size);
    uint64_t i, j;
    int ret;

    for (i = 0; i < n; i++) {
        if (!s->rt_dirty[i]) {
            continue;
        }
        s->rt_dirty[i] = 0;
        for (j = 0; j < per; j++) {
            put_be64(buf + j * 8, s->rt[i * per + j]);
        }
        ret = qcow2_co_pwrite(s, s->rt_offset + (int64_t)(i * s->cluster_size),
                              buf, s->cluster_size);
        if (ret < 0) {
            s->rt_dirty[i] = 1;
            return ret;
        }
    }
    return 0;
}

/*
 * Moves the refcount table to a bigger one past everything the old table
 * covers (so all free), with new refcount blocks right after it for the
 * clusters they occupy, and `extra` more clusters before it for the caller
 * (a new L1 table; *extra_offset).  Ordered: metadata written back, new
 * blocks and table written and flushed, then the header points to them and
 * is flushed; the old table is freed later.
 */
static int grow_refcount_table(Qcow2State *s, uint64_t need_index,
                               uint64_t extra, int64_t *extra_offset)
{
    uint64_t cs = s->cluster_size;
    uint64_t epb = UINT64_C(1) << s->rb_bits;
    uint64_t region = MAX((uint64_t)s->free_hint, s->rt_size << s->rb_bits);
    uint64_t start = region + extra;
    uint64_t entries = MAX(need_index + 1, s->rt_size + s->rt_size / 2 + 1);
    uint64_t tc, nb = 0, first, last, b, c;
    g_autofree uint8_t *table = NULL;
    g_autofree uint8_t *block = NULL;
    uint8_t hdr[12];
    int64_t old_offset = s->rt_offset;
    uint64_t old_bytes = s->rt_size * 8;
    uint64_t *new_rt;
    int ret;

    for (;;) {
        tc = (entries * 8 + cs - 1) / cs;
        first = region / epb;
        for (;;) {
            uint64_t n = (start + tc + nb - 1) / epb - first + 1;

            if (n == nb) {
                break;
            }
            nb = n;
        }
        last = first + nb - 1;
        if (last < entries) {
            break;
        }
        entries = last + 1;
    }
    entries = tc * cs / 8;
    if (tc * cs > QCOW2_MAX_REFTABLE_BYTES ||
        (start + tc + nb) * cs > (uint64_t)BDRV_MAX_LENGTH) {
        error_report("qcow2: the refcount table cannot grow past %d bytes",
                     QCOW2_MAX_REFTABLE_BYTES);
        return -EFBIG;
    }
    /* Everything the old table points to must be on disk first: the new
     * table is a copy of it. */
    ret = qcow2_writeback(s);
    if (ret < 0) {
        return ret;
    }
    block = g_malloc(cs);
    for (b = 0; b < nb; b++) {
        memset(block, 0, cs);
        for (c = region; c < start + tc + nb; c++) {
            if (c / epb == first + b) {
                qcow2_refcount_set(block, c % epb, s->refcount_order, 1);
            }
        }
        ret = qcow2_co_pwrite(s, (int64_t)((start + tc + b) * cs), block, cs);
        if (ret < 0) {
            return ret;
        }
    }
    table = g_malloc0(tc * cs);
    new_rt = g_new0(uint64_t, entries);
    memcpy(new_rt, s->rt, s->rt_size * 8);
    for (b = 0; b < nb; b++) {
        new_rt[first + b] = (start + tc + b) * cs;
    }
    for (c = 0; c < entries; c++) {
        put_be64(table + c * 8, new_rt[c]);
    }
    ret = qcow2_co_pwrite(s, (int64_t)(start * cs), table, tc * cs);
    if (ret == 0) {
        ret = qcow2_co_flush_file(s);
    }
    if (ret == 0) {
        put_be64(hdr, start * cs);
        hdr[8] = (uint8_t)(tc >> 24);
        hdr[9] = (uint8_t)(tc >> 16);
        hdr[10] = (uint8_t)(tc >> 8);
        hdr[11] = (uint8_t)tc;
        ret = qcow2_co_pwrite(s, QCOW2_HDR_REFTABLE_OFFSET, hdr, sizeof(hdr));
    }
    if (ret == 0) {
        ret = qcow2_co_flush_file(s);
    }
    if (ret < 0) {
        g_free(new_rt);
        return ret;
    }
    g_free(s->rt);
    g_free(s->rt_dirty);
    s->rt = new_rt;
    s->rt_size = entries;
    s->rt_offset = (int64_t)(start * cs);
    s->rt_dirty = g_malloc0(tc);
    s->img.h.refcount_table_offset = start * cs;
    s->img.h.refcount_table_clusters = (uint32_t)tc;
    s->free_hint = (int64_t)(start + tc + nb);
    qcow2_free_later(s, (uint64_t)old_offset, old_bytes);
    if (extra_offset) {
        *extra_offset = (int64_t)(region * cs);
    }
    return 0;
}

int qcow2_alloc_contiguous(Qcow2State *s, uint64_t clusters, int64_t *offset)
{
    g_assert(qcow2_co_locked(s));
    /* Rare (a bigger L1 table): the end of the image, with a refcount
     * table grown to describe it. */
    return grow_refcount_table(s, 0, clusters, offset);
}

int qcow2_alloc_cluster(Qcow2State *s, int64_t *offset)
{
    uint64_t epb = UINT64_C(1) << s->rb_bits;
    Qcow2CacheEntry *e;
    int ret;

    g_assert(qcow2_co_locked(s));
    for (;;) {
        uint64_t i = (uint64_t)s->free_hint;
        uint64_t ti = i / epb;
        uint64_t j;
        int64_t off;

        if ((i + 1) * (uint64_t)s->cluster_size > (uint64_t)BDRV_MAX_LENGTH) {
            return -ENOSPC;
        }
        if (ti >= s->rt_size) {
            ret = grow_refcount_table(s, ti, 0, NULL);
            if (ret < 0) {
                return ret;
            }
            continue;
        }
        ret = rb_offset(s, ti, &off);
        if (ret < 0) {
            return ret;
        }
        if (off == 0) {
            /* Nothing in this block's range is in use: the new block
             * goes at cluster i and counts itself. */
            off = (int64_t)(i * s->cluster_size);
            ret = qcow2_cache_get_empty(s->rb_cache, off, &e);
            if (ret < 0) {
                return ret;
            }
            qcow2_refcount_set(e->table, i % epb, s->refcount_order, 1);
            qcow2_cache_put(s->rb_cache, e);
            s->rt[ti] = (uint64_t)off;
            s->rt_dirty[ti * 8 / s->cluster_size] = 1;
            s->free_hint = (int64_t)(i + 1);
            continue;
        }
        ret = qcow2_cache_get(s->rb_cache, off, &e);
        if (ret < 0) {
            return ret;
        }
        for (j = i % epb; j < epb; j++) {
            if (qcow2_refcount_get(e->table, j, s->refcount_order) == 0) {
                break;
            }
        }
        if (j < epb) {
            qcow2_refcount_set(e->table, j, s->refcount_order, 1);
            qcow2_cache_mark_dirty(s->rb_cache, e);
            qcow2_cache_put(s->rb_cache, e);
            s->free_hint = (int64_t)(ti * epb + j + 1);
            *offset = (int64_t)((ti * epb + j) * s->cluster_size);
            return 0;
        }
        qcow2_cache_put(s->rb_cache, e);
        s->free_hint = (int64_t)((ti + 1) * epb);
    }
}

int qcow2_unref_cluster(Qcow2State *s, uint64_t offset)
{
    return update_refcount(s, offset >> s->cluster_bits, -1);
}

void qcow2_free_later(Qcow2State *s, uint64_t offset, uint64_t bytes)
{
    uint64_t first = offset >> s->cluster_bits;
    uint64_t last = (offset + bytes - 1) >> s->cluster_bits;
    Qcow2Free f = {.offset = first << s->cluster_bits,
                   .clusters = last - first + 1};

    g_array_append_val(s->frees[s->epoch & 1], f);
}

int qcow2_apply_frees(Qcow2State *s, unsigned old)
{
    GArray *list = s->frees[old & 1];
    guint i;
    int ret = 0;

    while (s->epoch_inflight[old & 1] > 0) {
        s->epoch_waiter = coroutine_self();
        coroutine_yield();
    }
    s->epoch_waiter = NULL;
    qcow2_co_lock(s);
    for (i = 0; i < list->len && ret == 0; i++) {
        Qcow2Free *f = &g_array_index(list, Qcow2Free, i);
        uint64_t c;

        for (c = 0; c < f->clusters && ret == 0; c++) {
            uint64_t off = f->offset + (c << s->cluster_bits);
            uint64_t rc = 1;

            ret = update_refcount(s, off >> s->cluster_bits, -1);
            if (ret == 0) {
                ret = qcow2_get_refcount(s, off >> s->cluster_bits, &rc);
            }
            if (ret == 0 && rc == 0) {
                qcow2_cache_discard(s->l2_cache, (int64_t)off);
                qcow2_cache_discard(s->rb_cache, (int64_t)off);
                if (s->discard_unmap) {
                    /* Advisory: a failure leaves the space allocated. */
                    qcow2_co_discard_file(s, (int64_t)off, s->cluster_size);
                }
            }
        }
    }
    g_array_set_size(list, 0);
    qcow2_co_unlock(s);
    return ret;
}
