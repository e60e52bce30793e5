/*
 * Each event loop its own thread pool: a queue bound to an AioContext is
 * where threadlet_submit_aio(ctx, ...) sends work, so that the blocking work
 * of one IOThread never queues behind another's (DESIGN.md, "Performance
 * shape").  Unbound contexts use the global queue.
 *
 * The bindings live in a hash table under one mutex, which a submit would
 * otherwise take every time; instead each thread caches its last lookup
 * together with the generation of the table it saw, and only a change of the
 * table (rare: IOThreads come and go) sends it back to the lock.
 */
#include <glib.h>

#include "aio/threadlet-internal.h"
#include "util/thread.h"
#include "util/atomic.h"

static DpMutex bind_lock = {PTHREAD_MUTEX_INITIALIZER};
static GHashTable *bindings; /* AioContext * -> ThreadletQueue *, bind_lock */
/*
 * Bumped under bind_lock by every change.  The release store pairs with the
 * acquire load in threadlet_context_get_queue(): a thread that sees the new
 * generation refills its cache under the lock.
 */
static unsigned bind_gen = 1;

static __thread struct {
    AioContext *ctx;
    ThreadletQueue *q;
    unsigned gen;
} bind_cache;

static void bindings_changed_locked(void)
{
    dp_atomic_store_release(&bind_gen, bind_gen + 1);
}

void threadlet_context_set_queue(AioContext *ctx, ThreadletQueue *q)
{
    g_assert(ctx);
    dp_mutex_lock(&bind_lock);
    if (!bindings) {
        bindings = g_hash_table_new(NULL, NULL);
    }
    if (q) {
        g_hash_table_insert(bindings, ctx, q);
    } else {
        g_hash_table_remove(bindings, ctx);
    }
    bindings_changed_locked();
    dp_mutex_unlock(&bind_lock);
}

ThreadletQueue *threadlet_context_get_queue(AioContext *ctx)
{
    unsigned gen = dp_atomic_load_acquire(&bind_gen);
    ThreadletQueue *q;

    if (bind_cache.ctx == ctx && bind_cache.gen == gen) {
        return bind_cache.q;
    }
    dp_mutex_lock(&bind_lock);
    q = bindings ? g_hash_table_lookup(bindings, ctx) : NULL;
    gen = bind_gen;
    dp_mutex_unlock(&bind_lock);
    if (!q) {
        q = threadlet_global_queue();
    }
    bind_cache.ctx = ctx;
    bind_cache.q = q;
    bind_cache.gen = gen;
    return q;
}

static gboolean binding_is_to(gpointer key, gpointer value, gpointer q)
{
    return value == q;
}

void threadlet_context_unbind_queue(ThreadletQueue *q)
{
    dp_mutex_lock(&bind_lock);
    if (bindings && g_hash_table_foreach_remove(bindings, binding_is_to, q)) {
        bindings_changed_locked();
    }
    dp_mutex_unlock(&bind_lock);
}
