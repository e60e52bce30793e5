/* RFifoLock: nesting, strict FIFO hand-over, the contention callback. */
#include <glib.h>

#include "dataplane/rfifolock.h"
#include "util/clock.h"
#include "util/thread.h"

#define WAIT_LIMIT_NS (30 * 1000000000LL) /* a failing test, not a timing */

/* Records which threads called the contention callback. */
typedef struct Contention {
    DpMutex mutex;
    DpCond cond;
    int calls;
    guint64 waiters_seen; /* bit i: thread i was queued */
} Contention;

static __thread int thread_index = -1;

static void contention_cb(void *opaque)
{
    Contention *c = opaque;

    dp_mutex_lock(&c->mutex);
    c->calls++;
    if (thread_index >= 0) {
        c->waiters_seen |= G_GUINT64_CONSTANT(1) << thread_index;
    }
    dp_cond_broadcast(&c->cond);
    dp_mutex_unlock(&c->mutex);
}

static void contention_init(Contention *c)
{
    dp_mutex_init(&c->mutex);
    dp_cond_init(&c->cond);
    c->calls = 0;
    c->waiters_seen = 0;
}

static void contention_destroy(Contention *c)
{
    dp_cond_destroy(&c->cond);
    dp_mutex_destroy(&c->mutex);
}

/* Waits until thread `index` has queued (and so called the callback). */
static void contention_wait_for(Contention *c, int index)
{
    int64_t deadline = clock_monotonic_ns() + WAIT_LIMIT_NS;
    guint64 bit = G_GUINT64_CONSTANT(1) << index;

    dp_mutex_lock(&c->mutex);
    while (!(c->waiters_seen & bit)) {
        g_assert_true(dp_cond_timedwait_ns(&c->cond, &c->mutex, deadline));
    }
    dp_mutex_unlock(&c->mutex);
}

static int contention_calls(Contention *c)
{
    int calls;

    dp_mutex_lock(&c->mutex);
    calls = c->calls;
    dp_mutex_unlock(&c->mutex);
    return calls;
}

static void *depth_in_other_thread(void *opaque)
{
    return GUINT_TO_POINTER(rfifolock_depth_self(opaque));
}

static void test_rfifolock_nests_to_any_depth(void)
{
    RFifoLock r;
    DpThread t;
    unsigned i;

    rfifolock_init(&r, NULL, NULL);
    for (i = 1; i <= 5; i++) {
        rfifolock_lock(&r);
        g_assert_cmpuint(rfifolock_depth_self(&r), ==, i);
    }
    dp_thread_create(&t, "depth", depth_in_other_thread, &r);
    g_assert_cmpuint(GPOINTER_TO_UINT(dp_thread_join(&t)), ==, 0);
    for (i = 5; i > 0; i--) {
        g_assert_cmpuint(rfifolock_depth_self(&r), ==, i);
        rfifolock_unlock(&r);
    }
    g_assert_cmpuint(rfifolock_depth_self(&r), ==, 0);
    rfifolock_destroy(&r);
}

static void test_rfifolock_uncontended_never_calls_callback(void)
{
    Contention c;
    RFifoLock r;
    int i;

    contention_init(&c);
    rfifolock_init(&r, contention_cb, &c);
    for (i = 0; i < 100; i++) {
        rfifolock_lock(&r);
        rfifolock_lock(&r); /* nesting is not contention either */
        rfifolock_unlock(&r);
        rfifolock_unlock(&r);
    }
    g_assert_cmpint(contention_calls(&c), ==, 0);
    rfifolock_destroy(&r);
    contention_destroy(&c);
}

typedef struct FifoWaiter {
    RFifoLock *lock;
    int index;
    int *order;   /* protected by *lock */
    int *n_order; /* protected by *lock */
} FifoWaiter;

static void *fifo_waiter(void *opaque)
{
    FifoWaiter *w = opaque;

    thread_index = w->index;
    rfifolock_lock(w->lock);
    rfifolock_lock(w->lock);
    w->order[(*w->n_order)++] = w->index;
    rfifolock_unlock(w->lock);
    rfifolock_unlock(w->lock);
    return NULL;
}

static void test_rfifolock_contended_calls_callback(void)
{
    Contention c;
    RFifoLock r;
    int order[1];
    int n_order = 0;
    FifoWaiter w = {&r, 0, order, &n_order};
    DpThread t;

    contention_init(&c);
    rfifolock_init(&r, contention_cb, &c);
    rfifolock_lock(&r);
    dp_thread_create(&t, "waiter", fifo_waiter, &w);
    contention_wait_for(&c, 0);
    g_assert_cmpint(contention_calls(&c), >=, 1);
    rfifolock_unlock(&r);
    dp_thread_join(&t);
    g_assert_cmpint(n_order, ==, 1);
    rfifolock_destroy(&r);
    contention_destroy(&c);
}

/* The owner nests again while a waiter queues: it must not queue behind
 * the waiter's ticket (that would deadlock). */
static void test_rfifolock_owner_nests_past_waiters(void)
{
    Contention c;
    RFifoLock r;
    int order[1];
    int n_order = 0;
    FifoWaiter w = {&r, 0, order, &n_order};
    DpThread t;

    contention_init(&c);
    rfifolock_init(&r, contention_cb, &c);
    rfifolock_lock(&r);
    dp_thread_create(&t, "waiter", fifo_waiter, &w);
    contention_wait_for(&c, 0);
    rfifolock_lock(&r);
    g_assert_cmpuint(rfifolock_depth_self(&r), ==, 2);
    rfifolock_unlock(&r);
    g_assert_cmpint(n_order, ==, 0); /* still ours */
    rfifolock_unlock(&r);
    dp_thread_join(&t);
    g_assert_cmpint(n_order, ==, 1);
    rfifolock_destroy(&r);
    contention_destroy(&c);
}

#define N_WAITERS 8

static void test_rfifolock_grants_waiters_in_fifo_order(void)
{
    FifoWaiter w[N_WAITERS];
    DpThread t[N_WAITERS];
    int order[N_WAITERS];
    int n_order = 0;
    Contention c;
    RFifoLock r;
    int i;

    contention_init(&c);
    rfifolock_init(&r, contention_cb, &c);
    rfifolock_lock(&r);
    /* Queue the threads one at a time: thread i has its ticket (it called
     * the callback before sleeping) before thread i + 1 starts. */
    for (i = 0; i < N_WAITERS; i++) {
        w[i] = (FifoWaiter){&r, i, order, &n_order};
        dp_thread_create(&t[i], "waiter", fifo_waiter, &w[i]);
        contention_wait_for(&c, i);
    }
    rfifolock_unlock(&r);
    for (i = 0; i < N_WAITERS; i++) {
        dp_thread_join(&t[i]);
    }
    g_assert_cmpint(n_order, ==, N_WAITERS);
    for (i = 0; i < N_WAITERS; i++) {
        g_assert_cmpint(order[i], ==, i);
    }
    rfifolock_destroy(&r);
    contention_destroy(&c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/rfifolock/nests-to-any-depth",
                    test_rfifolock_nests_to_any_depth);
    g_test_add_func("/rfifolock/uncontended-never-calls-callback",
                    test_rfifolock_uncontended_never_calls_callback);
    g_test_add_func("/rfifolock/contended-calls-callback",
                    test_rfifolock_contended_calls_callback);
    g_test_add_func("/rfifolock/owner-nests-past-waiters",
                    test_rfifolock_owner_nests_past_waiters);
    g_test_add_func("/rfifolock/grants-waiters-in-fifo-order",
                    test_rfifolock_grants_waiters_in_fifo_order);
    return g_test_run();
}
