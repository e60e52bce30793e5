/*
 * The qcow2 table cache: L2 tables and refcount blocks, one cluster each,
 * kept in memory as on disk (big-endian), by file offset.
 *
 * An entry in use by a coroutine is pinned (ref > 0) and never evicted.
 * A miss takes the least recently used entry that is neither pinned nor
 * dirty.  When every entry is pinned or dirty the cache first writes the
 * metadata back (qcow2_writeback, in the order that keeps the image
 * consistent); if every entry is pinned, it grows past its capacity for a
 * while rather than wait (a waiting coroutine may hold the lock that the
 * pinning ones need to finish: growing cannot deadlock), and shrinks back
 * as entries are released.  The overshoot is bounded by the requests in
 * flight.
 *
 * Writeback writes a copy of each table, so that a coroutine may change
 * it meanwhile; an entry changed during its write (dirty_gen moved) stays
 * dirty.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "block/qcow2.h"

struct Qcow2Cache {
    Qcow2State *s;
    unsigned capacity;
    GHashTable *by_offset; /* int64 offset -> entry */
    uint64_t lru_clock;
    unsigned n_dirty;
};

Qcow2Cache *qcow2_cache_new(Qcow2State *s, unsigned capacity)
{
    Qcow2Cache *c = g_new0(Qcow2Cache, 1);

    c->s = s;
    c->capacity = MAX(capacity, 2);
    c->by_offset = g_hash_table_new(g_int64_hash, g_int64_equal);
    return c;
}

static void entry_free(Qcow2CacheEntry *e)
{
    free(e->table);
    g_free(e);
}

void qcow2_cache_free(Qcow2Cache *c)
{
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, c->by_offset);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        Qcow2CacheEntry *e = v;

        g_assert(e->ref == 0 && !e->loading);
        entry_free(e);
    }
    g_hash_table_destroy(c->by_offset);
    g_free(c);
}

/* The evictable entry used longest ago, or NULL. */
static Qcow2CacheEntry *find_victim(Qcow2Cache *c, bool *have_dirty)
{
    Qcow2CacheEntry *best = NULL;
    GHashTableIter it;
    gpointer k, v;

    *have_dirty = false;
    g_hash_table_iter_init(&it, c->by_offset);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        Qcow2CacheEntry *e = v;

        if (e->ref || e->loading) {
            continue;
        }
        if (e->dirty) {
            *have_dirty = true;
            continue;
        }
        if (!best || e->lru < best->lru) {
            best = e;
        }
    }
    return best;
}

/* A fresh, pinned entry for offset (not yet in the table). */
static int entry_make(Qcow2Cache *c, int64_t offset, Qcow2CacheEntry **out)
{
    Qcow2State *s = c->s;
    Qcow2CacheEntry *e = NULL;
    bool have_dirty;
    int ret;

    while (g_hash_table_size(c->by_offset) >= c->capacity) {
        Qcow2CacheEntry *victim = find_victim(c, &have_dirty);

        if (victim) {
            g_hash_table_remove(c->by_offset, &victim->offset);
            e = victim;
            break;
        }
        if (!have_dirty) {
            break; /* all pinned: grow for now */
        }
        /* Dirty tables leave only through an ordered writeback. */
        if (qcow2_co_locked(s)) {
            ret = qcow2_writeback(s);
        } else {
            qcow2_co_lock(s);
            ret = qcow2_writeback(s);
            qcow2_co_unlock(s);
        }
        if (ret < 0) {
            return ret;
        }
        /* The table may have been loaded by someone else meanwhile. */
        if (g_hash_table_lookup(c->by_offset, &offset)) {
            return -EAGAIN;
        }
    }
    if (!e) {
        e = g_new0(Qcow2CacheEntry, 1);
        if (posix_memalign((void **)&e->table, 4096, s->cluster_size) != 0) {
            abort();
        }
    }
    e->offset = offset;
    e->ref = 1;
    e->dirty = false;
    e->loading = false;
    e->load_ret = 0;
    g_queue_init(&e->waiters);
    e->lru = ++c->lru_clock;
    g_hash_table_insert(c->by_offset, &e->offset, e);
    *out = e;
    return 0;
}

int qcow2_cache_get(Qcow2Cache *c, int64_t offset, Qcow2CacheEntry **out)
{
    Qcow2State *s = c->s;
    Qcow2CacheEntry *e;
    int ret;

    for (;;) {
        e = g_hash_table_lookup(c->by_offset, &offset);
        if (e) {
            e->ref++;
            e->lru = ++c->lru_clock;
            if (e->loading) {
                g_queue_push_tail(&e->waiters, coroutine_self());
                coroutine_yield();
            }
            if (e->load_ret < 0) {
                ret = e->load_ret;
                qcow2_cache_put(c, e);
                return ret;
            }
            *out = e;
            return 0;
        }
        ret = entry_make(c, offset, &e);
        if (ret == -EAGAIN) {
            continue;
        }
        if (ret < 0) {
            return ret;
        }
        break;
    }
    e->loading = true;
    ret = qcow2_co_pread(s, offset, e->table, s->cluster_size);
    e->loading = false;
    e->load_ret = ret;
    while (!g_queue_is_empty(&e->waiters)) {
        qcow2_co_wake(s, g_queue_pop_head(&e->waiters));
    }
    if (ret < 0) {
        /* Waiters see load_ret; the last put drops the entry. */
        qcow2_cache_put(c, e);
        return ret;
    }
    *out = e;
    return 0;
}

int qcow2_cache_get_empty(Qcow2Cache *c, int64_t offset, Qcow2CacheEntry **out)
{
    Qcow2CacheEntry *e;
    int ret;

    /* A newly allocated cluster: nobody can have it cached. */
    g_assert(!g_hash_table_lookup(c->by_offset, &offset));
    do {
        ret = entry_make(c, offset, &e);
    } while (ret == -EAGAIN);
    if (ret < 0) {
        return ret;
    }
    memset(e->table, 0, c->s->cluster_size);
    qcow2_cache_mark_dirty(c, e);
    *out = e;
    return 0;
}

Qcow2CacheEntry *qcow2_cache_peek(Qcow2Cache *c, int64_t offset)
{
    Qcow2CacheEntry *e = g_hash_table_lookup(c->by_offset, &offset);

    if (!e || e->loading || e->load_ret < 0) {
        return NULL;
    }
    e->lru = ++c->lru_clock;
    return e;
}

void qcow2_cache_put(Qcow2Cache *c, Qcow2CacheEntry *e)
{
    g_assert(e->ref > 0);
    if (--e->ref > 0) {
        return;
    }
    if (e->load_ret < 0 ||
        (!e->dirty && g_hash_table_size(c->by_offset) > c->capacity)) {
        /* A failed load, or the cache shrinking back after an overshoot. */
        g_hash_table_remove(c->by_offset, &e->offset);
        entry_free(e);
    }
}

void qcow2_cache_mark_dirty(Qcow2Cache *c, Qcow2CacheEntry *e)
{
    if (!e->dirty) {
        c->n_dirty++;
    }
    e->dirty = true;
    e->dirty_gen++;
}

bool qcow2_cache_has_dirty(Qcow2Cache *c)
{
    return c->n_dirty > 0;
}

typedef struct WriteBatch {
    Coroutine *co;
    unsigned pending;
    int ret;
    bool waiting;
} WriteBatch;

typedef struct WriteOne {
    WriteBatch *batch;
    Qcow2Cache *c;
    Qcow2CacheEntry *e;
    uint64_t gen;
    void *copy;
    IOVector v;
} WriteOne;

static void write_one_done(void *opaque, int ret)
{
    WriteOne *w = opaque;
    WriteBatch *b = w->batch;

    if (ret < 0 && b->ret == 0) {
        b->ret = ret;
    }
    if (ret == 0 && w->e->dirty && w->e->dirty_gen == w->gen) {
        w->e->dirty = false;
        w->c->n_dirty--;
    }
    qcow2_cache_put(w->c, w->e);
    iov_destroy(&w->v);
    free(w->copy);
    g_free(w);
    if (--b->pending == 0 && b->waiting) {
        coroutine_enter(b->co);
    }
}

int qcow2_cache_write_dirty(Qcow2Cache *c)
{
    Qcow2State *s = c->s;
    WriteBatch b = {.co = coroutine_self()};
    GHashTableIter it;
    gpointer k, v;
    g_autoptr(GPtrArray) dirty = g_ptr_array_new();
    guint i;

    g_hash_table_iter_init(&it, c->by_offset);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        Qcow2CacheEntry *e = v;

        if (e->dirty && !e->loading) {
            g_ptr_array_add(dirty, e);
        }
    }
    for (i = 0; i < dirty->len; i++) {
        WriteOne *w = g_new0(WriteOne, 1);

        w->batch = &b;
        w->c = c;
        w->e = g_ptr_array_index(dirty, i);
        w->e->ref++;
        w->gen = w->e->dirty_gen;
        if (posix_memalign(&w->copy, 4096, s->cluster_size) != 0) {
            abort();
        }
        memcpy(w->copy, w->e->table, s->cluster_size);
        iov_init(&w->v, 1);
        iov_add(&w->v, w->copy, s->cluster_size);
        b.pending++;
        bdrv_aio_pwritev(s->bs->file, w->e->offset, &w->v, 0, write_one_done,
                         w);
    }
    if (b.pending) {
        b.waiting = true;
        coroutine_yield();
    }
    return b.ret;
}

void qcow2_cache_discard(Qcow2Cache *c, int64_t offset)
{
    Qcow2CacheEntry *e = g_hash_table_lookup(c->by_offset, &offset);

    if (e && e->ref == 0) {
        /* The cluster is free: its old contents must not be written. */
        if (e->dirty) {
            c->n_dirty--;
        }
        g_hash_table_remove(c->by_offset, &e->offset);
        entry_free(e);
    }
}
