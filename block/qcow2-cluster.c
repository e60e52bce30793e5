/*
 * qcow2 cluster mapping: L1/L2 access, L2 table allocation, the guest
 * cluster operations that serialise allocations, and the ordered metadata
 * writeback that crash safety rests on.
 *
 * The ordering (docs/qcow2.md has the argument):
 *  1. refcount blocks;                      then, if the table changed,
 *  2. flush, refcount table entries;        then, before any L2 write,
 *  3. flush: refcounts (and the data of completed writes) are stable;
 *  4. L2 tables;                            then, if the L1 changed,
 *  5. flush, L1 entries.
 * A flush request adds a last flush.  So a table never points at a
 * cluster whose refcount or contents are not on disk; a crash leaves at
 * worst clusters counted but unreferenced (leaks).  Frees go the other
 * way: a refcount drops only after the table change that dropped the
 * reference is stable (qcow2-refcount.c).
 *
 * Concurrency: s->lock (a coroutine mutex) covers every change of
 * metadata (refcounts, L1, L2 entries) and the writeback, so a writeback
 * never sees an L2 entry whose refcount change it has not written.  Data
 * I/O never holds it.  A guest cluster being (re)allocated is covered by
 * a Qcow2Op; a second writer of the same cluster waits for it, writers of
 * other clusters do not.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "block/qcow2.h"

static uint64_t be64_to_host(uint64_t v)
{
    return GUINT64_FROM_BE(v);
}

uint64_t qcow2_l2_entry(Qcow2State *s, Qcow2CacheEntry *e, int64_t index)
{
    return be64_to_host(e->table[index]);
}

void qcow2_set_l2_entry(Qcow2State *s, Qcow2CacheEntry *e, int64_t index,
                        uint64_t v)
{
    e->table[index] = GUINT64_TO_BE(v);
    qcow2_cache_mark_dirty(s->l2_cache, e);
}

static void l1_mark_dirty(Qcow2State *s, uint64_t index)
{
    s->l1_dirty[index * 8 / s->cluster_size] = 1;
}

int qcow2_get_l2(Qcow2State *s, uint64_t l1_index, bool alloc,
                 Qcow2CacheEntry **e)
{
    uint64_t l1e = s->l1[l1_index];
    uint64_t off = l1e & QCOW2_OFFSET_MASK;
    int64_t new_off;
    int ret;

    if (off & (uint64_t)(s->cluster_size - 1)) {
        return qcow2_signal_corruption(s,
                                       "L2 table offset 0x%" PRIx64
                                       " (L1 entry %" PRIu64
                                       ") is not aligned to a cluster",
                                       off, l1_index);
    }
    if (off == 0) {
        *e = NULL;
        if (!alloc) {
            return 0;
        }
        g_assert(qcow2_co_locked(s));
        ret = qcow2_alloc_cluster(s, &new_off);
        if (ret < 0) {
            return ret;
        }
        ret = qcow2_cache_get_empty(s->l2_cache, new_off, e);
        if (ret < 0) {
            qcow2_unref_cluster(s, (uint64_t)new_off);
            return ret;
        }
        s->l1[l1_index] = (uint64_t)new_off | QCOW2_OFLAG_COPIED;
        l1_mark_dirty(s, l1_index);
        return 0;
    }
    if (alloc && !(l1e & QCOW2_OFLAG_COPIED)) {
        uint64_t rc;

        /* Only an internal snapshot shares an L2 table, and images with
         * snapshots are opened read-only; a refcount of 1 with the flag
         * clear is a stale flag, which is fixed. */
        ret = qcow2_get_refcount(s, off >> s->cluster_bits, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc != 1) {
            return qcow2_signal_corruption(
                s, "L2 table at 0x%" PRIx64 " is shared (refcount %" PRIu64 ")",
                off, rc);
        }
        s->l1[l1_index] |= QCOW2_OFLAG_COPIED;
        l1_mark_dirty(s, l1_index);
    }
    return qcow2_cache_get(s->l2_cache, (int64_t)off, e);
}

static int write_l1(Qcow2State *s)
{
    uint64_t bytes = (uint64_t)s->l1_size * 8;
    uint64_t n = (bytes + s->cluster_size - 1) / s->cluster_size;
    uint64_t per = s->cluster_size / 8;
    g_autofree uint64_t *buf = g_malloc(s->cluster_size);
    uint64_t i, j;
    int ret;

    for (i = 0; i < n; i++) {
        uint64_t count = MIN(per, s->l1_size - i * per);

        if (!s->l1_dirty[i]) {
            continue;
        }
        s->l1_dirty[i] = 0;
        for (j = 0; j < count; j++) {
            buf[j] = GUINT64_TO_BE(s->l1[i * per + j]);
        }
        /* Only the table's own bytes: the last cluster may be shared. */
        ret = qcow2_co_pwrite(s, s->l1_offset + (int64_t)(i * per * 8), buf,
                              (int64_t)(count * 8));
        if (ret < 0) {
            s->l1_dirty[i] = 1;
            return ret;
        }
    }
    return 0;
}

static bool l1_dirty(Qcow2State *s)
{
    uint64_t n =
        ((uint64_t)s->l1_size * 8 + s->cluster_size - 1) / s->cluster_size;
    uint64_t i;

    for (i = 0; i < n; i++) {
        if (s->l1_dirty[i]) {
            return true;
        }
    }
    return false;
}

int qcow2_writeback(Qcow2State *s)
{
    bool l2 = qcow2_cache_has_dirty(s->l2_cache);
    bool l1 = l1_dirty(s);
    int ret;

    g_assert(qcow2_co_locked(s));
    ret = qcow2_cache_write_dirty(s->rb_cache);
    if (ret == 0 && qcow2_rt_dirty(s)) {
        /* A new refcount block must be on disk before the table names
         * it. */
        ret = qcow2_co_flush_file(s);
        if (ret == 0) {
            ret = qcow2_write_rt(s);
        }
    }
    if (ret == 0 && (l2 || l1)) {
        /* Refcounts, and the data of every completed write, before any
         * table that points at them. */
        ret = qcow2_co_flush_file(s);
    }
    if (ret == 0 && l2) {
        ret = qcow2_cache_write_dirty(s->l2_cache);
    }
    if (ret == 0 && l1) {
        /* A new L2 table's contents before the L1 entry naming it. */
        ret = qcow2_co_flush_file(s);
        if (ret == 0) {
            ret = write_l1(s);
        }
    }
    return ret;
}

bool qcow2_metadata_dirty(Qcow2State *s)
{
    return qcow2_cache_has_dirty(s->l2_cache) ||
           qcow2_cache_has_dirty(s->rb_cache) || l1_dirty(s) ||
           qcow2_rt_dirty(s);
}

int qcow2_flush(Qcow2State *s)
{
    bool frees;
    unsigned old = 0;
    int ret;

    qcow2_co_lock(s);
    frees = !s->applying_frees && s->frees[s->epoch & 1]->len > 0;
    if (frees) {
        /* Frees queued so far have their table changes in this
         * writeback; requests from now on count in the next epoch. */
        s->applying_frees = true;
        old = s->epoch++;
    }
    ret = qcow2_writeback(s);
    if (ret == 0) {
        ret = qcow2_co_flush_file(s);
    }
    qcow2_co_unlock(s);
    if (frees) {
        if (ret == 0) {
            ret = qcow2_apply_frees(s, old);
        } else {
            /* Not durable: keep them for the next flush. */
            GArray *from = s->frees[old & 1];

            g_array_append_vals(s->frees[s->epoch & 1], from->data, from->len);
            g_array_set_size(from, 0);
        }
        s->applying_frees = false;
    }
    return ret;
}

void qcow2_op_begin(Qcow2State *s, Qcow2Op *op, int64_t start, int64_t end)
{
    Qcow2Op *o;

again:
    TAILQ_FOREACH(o, &s->ops, next)
    {
        if (o->start < end && start < o->end) {
            g_queue_push_tail(&o->waiters, coroutine_self());
            coroutine_yield();
            goto again;
        }
    }
    op->start = start;
    op->end = end;
    g_queue_init(&op->waiters);
    TAILQ_INSERT_TAIL(&s->ops, op, next);
}

void qcow2_op_end(Qcow2State *s, Qcow2Op *op)
{
    TAILQ_REMOVE(&s->ops, op, next);
    while (!g_queue_is_empty(&op->waiters)) {
        qcow2_co_wake(s, g_queue_pop_head(&op->waiters));
    }
}
