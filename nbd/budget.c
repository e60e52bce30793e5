/* The NBD server's memory budget across connections; see budget.h. */
#include "dataplane/aio.h"
#include "nbd/budget.h"
#include "util/atomic.h"
#include "util/thread.h"

static uint64_t limit; /* 0: none; atomic */
static uint64_t used;  /* atomic */
static size_t cached;  /* atomic */

/* Connections waiting for memory.  n_waiters mirrors the list's length so
 * that a release can skip the lock when nobody waits. */
static DpMutex waiters_lock = {PTHREAD_MUTEX_INITIALIZER};
static LIST_HEAD(, NbdClient) waiters = LIST_HEAD_INITIALIZER(waiters);
static unsigned n_waiters; /* atomic; changed under waiters_lock */

void nbd_budget_set_limit(uint64_t bytes)
{
    dp_atomic_store_seq_cst(&limit, bytes);
}

uint64_t nbd_budget_get_used(void)
{
    return dp_atomic_load_relaxed(&used);
}

static bool spent(void)
{
    uint64_t lim = dp_atomic_load_seq_cst(&limit);

    return lim > 0 && dp_atomic_load_seq_cst(&used) >= lim;
}

void nbd_budget_charge(uint64_t n)
{
    if (n > 0) {
        dp_atomic_fetch_add_seq_cst(&used, n);
    }
}

void nbd_budget_release(uint64_t n)
{
    NbdClient *c;

    if (n == 0) {
        return;
    }
    /*
     * Pairs with nbd_budget_admit(): it adds itself to the list, then reads
     * used; we lower used, then read n_waiters.  With both sequentially
     * consistent, either it sees the memory we freed and does not wait, or
     * we see it waiting and wake it.
     */
    dp_atomic_fetch_sub_seq_cst(&used, n);
    if (dp_atomic_load_seq_cst(&n_waiters) == 0 || spent()) {
        return;
    }
    dp_mutex_lock(&waiters_lock);
    while ((c = LIST_FIRST(&waiters))) {
        LIST_REMOVE(c, budget_link);
        c->budget_waiting = false;
        /* Valid while c is listed: nbd_budget_forget() runs before the
         * BH is deleted, and takes this lock. */
        aio_bh_schedule(c->resume_bh);
    }
    dp_atomic_store_seq_cst(&n_waiters, 0);
    dp_mutex_unlock(&waiters_lock);
}

bool nbd_budget_admit(NbdClient *client)
{
    bool wait;

    if (client->in_flight_bytes + client->queued_bytes == 0 || !spent()) {
        return true; /* the fairness rule, or memory to spare */
    }
    dp_mutex_lock(&waiters_lock);
    if (!client->budget_waiting) {
        LIST_INSERT_HEAD(&waiters, client, budget_link);
        client->budget_waiting = true;
        dp_atomic_store_seq_cst(&n_waiters,
                                dp_atomic_load_relaxed(&n_waiters) + 1);
    }
    wait = spent(); /* see nbd_budget_release() */
    if (!wait) {
        LIST_REMOVE(client, budget_link);
        client->budget_waiting = false;
        dp_atomic_store_seq_cst(&n_waiters,
                                dp_atomic_load_relaxed(&n_waiters) - 1);
    }
    dp_mutex_unlock(&waiters_lock);
    return !wait;
}

void nbd_budget_forget(NbdClient *client)
{
    dp_mutex_lock(&waiters_lock);
    if (client->budget_waiting) {
        LIST_REMOVE(client, budget_link);
        client->budget_waiting = false;
        dp_atomic_store_seq_cst(&n_waiters,
                                dp_atomic_load_relaxed(&n_waiters) - 1);
    }
    dp_mutex_unlock(&waiters_lock);
}

bool nbd_budget_cache_get(size_t n)
{
    if (dp_atomic_fetch_add_relaxed(&cached, n) + n >
        NBD_BUF_CACHE_SERVER_BYTES) {
        dp_atomic_fetch_sub_seq_cst(&cached, n);
        return false;
    }
    return true;
}

void nbd_budget_cache_put(size_t n)
{
    dp_atomic_fetch_sub_seq_cst(&cached, n);
}
