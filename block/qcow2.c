/*
 * driver=qcow2: QEMU's copy-on-write image format (versions 2 and 3) over
 * any protocol node, with a backing chain.  docs/qcow2.md describes what is
 * supported and the crash-safety argument.
 *
 * This file: options, open (header, tables, caches), close (metadata
 * written back), growth (block_resize), the snapshot list, AioContext
 * moves, and the driver table.  Requests are in qcow2-io.c and
 * qcow2-write.c.
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
    s->wake_bh = aio_bh_new(bs->ctx, qcow2_wake_bh, s);
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

    s->wake_bh = aio_bh_new(ctx, qcow2_wake_bh, s);
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
