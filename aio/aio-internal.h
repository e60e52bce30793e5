/*
 * AioContext internals shared by the files of aio/.  Not installed.
 */
#ifndef DATAPLANE_AIO_INTERNAL_H
#define DATAPLANE_AIO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/aio.h"
#include "dataplane/rfifolock.h"
#include "util/thread.h"
#include "util/atomic.h"

typedef struct AioHandler AioHandler;

/*
 * One registered fd.  A change of handlers never edits a node in place: it
 * marks the old node deleted and publishes a new one, so a thread walking
 * the list never sees a half-updated node.  Deleted nodes are unlinked and
 * freed only when no aio_poll() is walking the list (ctx->walking == 0) and
 * the backend no longer refers to them (fdmon_busy == false).
 */
struct AioHandler {
    int fd;
    int events; /* EPOLLIN/EPOLLOUT wanted, from io_read/io_write; 0 (only
                   io_poll): the backend does not watch the fd at all */
    IOHandler *io_read;
    IOHandler *io_write;
    AioPollFn *io_poll;
    EventNotifierHandler *en_read; /* set instead of io_read for notifiers */
    EventNotifierPollFn *en_poll;
    EventNotifierHandler *en_poll_begin; /* polling mode hooks, or NULL */
    EventNotifierHandler *en_poll_end;
    bool poll_started; /* en_poll_begin ran, en_poll_end not yet; touched
                          by the polling thread only */
    void *opaque;
    bool is_ctx_notifier;   /* the context's own wake-up: not "progress" */
    bool deleted;           /* atomic */
    bool fdmon_busy;        /* io_uring: a poll request still refers to it */
    unsigned fdmon_flags;   /* io_uring state, under list_lock */
    AioHandler *next;       /* atomic; the context's handler list */
    AioHandler *fdmon_next; /* io_uring: pending submission list */
};

/* At most this many ready fds are reported by one wait(). */
#define FDMON_MAX_EVENTS 128

/* A ready fd reported by a backend. */
typedef struct AioReadyEvent {
    AioHandler *node;
    int revents; /* EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP */
} AioReadyEvent;

/*
 * An fd-monitoring backend.  update() runs with ctx->list_lock held, from
 * any thread; wait() runs in the polling thread only.
 */
typedef struct FdMonOps {
    const char *name;
    int (*init)(AioContext *ctx); /* 0 or -errno */
    void (*cleanup)(AioContext *ctx);
    /* old_node is being replaced by new_node; either may be NULL. */
    void (*update)(AioContext *ctx, AioHandler *old_node, AioHandler *new_node);
    /*
     * Waits up to timeout_ns (-1: forever, 0: do not block) and returns the
     * number of ready events stored, or -errno (never -EINTR).
     */
    int (*wait)(AioContext *ctx, AioReadyEvent *events, int max_events,
                int64_t timeout_ns);
    /*
     * For the GLib source (aio-gsource.c): the one fd that becomes readable
     * when wait() would report something, and (optional) a hook that sends
     * the kernel every pending registration change before GLib sleeps on
     * that fd.  flush() runs in the polling thread.
     */
    int (*poll_fd)(AioContext *ctx);
    void (*flush)(AioContext *ctx);
} FdMonOps;

extern const FdMonOps fdmon_epoll_ops;
extern const FdMonOps fdmon_io_uring_ops;

typedef struct AioTimerList {
    AioTimer **heap; /* binary min-heap by (expire_ns, seq) */
    size_t len;
    size_t cap;
} AioTimerList;

/* Doorbell BHs per context (bh.c): one bit each in a 64-bit word. */
#define AIO_DOORBELLS 64

/* Busy iterations of aio_poll() that may skip the fd harvest in a row:
 * the limit adapts between these two (context.c says why). */
#define AIO_FD_SKIP_MIN 32
#define AIO_FD_SKIP_MAX 128

/* Fields that other threads write in every hand-off (a BH push, a
 * reference taken around it) sit on cache lines of their own, so that the
 * loop's own fields do not travel with them.  AioContext is allocated
 * aligned to this. */
#define AIO_CACHELINE 64

struct AioContext {
    _Alignas(AIO_CACHELINE) int refcnt;     /* atomic */
    _Alignas(AIO_CACHELINE) unsigned index; /* aio_context_get_index */
    AioBackend backend;
    const FdMonOps *fdmon;

    /* fdmon private state */
    int epollfd;
    void *uring;               /* struct io_uring *, fdmon-io-uring.c */
    AioHandler *fdmon_pending; /* io_uring: nodes to (re)arm or cancel */

    /*
     * Handler list.  Writers hold list_lock; readers (aio_poll) increment
     * `walking` under list_lock and then read the list lock-free through
     * acquire loads of the `next` pointers.
     */
    DpMutex list_lock;
    AioHandler *handlers; /* atomic head */
    int walking;          /* protected by list_lock */
    bool sweep_needed;    /* protected by list_lock */

    /* Bottom halves (bh.c): a lock-free stack of scheduled BHs, and the
     * doorbells, one bit per doorbell BH.  The doorbell word is on a line
     * shared with a few other contexts (doorbell-line.h says why); the
     * pointer to it sits with what changes only when a doorbell BH is made
     * or deleted, because both sides read it in every hand-off (on a line
     * that the other side writes, such as refcnt's, each read would be a
     * cache miss: four times slower round trips, measured). */
    _Alignas(AIO_CACHELINE) AioBH *bh_pending;        /* atomic */
    _Alignas(AIO_CACHELINE) uint64_t *doorbells_rung; /* the word: atomic */
    uint64_t doorbells_claimed;                       /* atomic */
    AioBH *doorbell_bh[AIO_DOORBELLS]; /* atomic; NULL: slot free */
    /* Polling thread: bits taken off doorbells_rung in this pass and not
     * run yet, and the aio_poll call each slot last ran in. */
    uint64_t doorbells_taken;
    uint64_t doorbell_ran_call[AIO_DOORBELLS];
    _Alignas(AIO_CACHELINE) uint64_t
        bh_poll_calls; /* aio_bh_poll_begin ids (polling thread) */
    /* The batches that aio_bh_poll() calls (nested ones included) have
     * taken and not finished, oldest first.  Only the thread running the
     * context touches them. */
    struct AioBHSlice *bh_slices;

    /* Timers (timer.c), protected by timer_lock. */
    DpMutex timer_lock;
    AioTimerList timers[AIO_CLOCK_MAX];
    uint64_t timer_seq;
    /* Timers armed on all clocks; written under timer_lock, read without
     * it, so that an iteration with no timer takes no lock and reads no
     * clock (a clock read costs 25-30 ns on these VMs). */
    unsigned timers_armed; /* atomic */

    /*
     * Wake-up: notify_me counts threads about to block in aio_poll() (or in
     * the GLib source's poll).  aio_notify() sets `notified` and writes the
     * eventfd only if notify_me != 0.  See aio_notify() for the ordering.
     */
    EventNotifier notifier;
    int notify_me;           /* atomic */
    bool notified;           /* atomic */
    int64_t notify_write_ns; /* atomic: when aio_notify() last wrote it */

    /* Adaptive polling (atomics: settable from any thread). */
    int64_t poll_max_ns;
    int64_t poll_grow;
    int64_t poll_shrink;
    int64_t poll_ns;        /* current window */
    unsigned fd_skips;      /* polling thread: fd harvests skipped in a row */
    unsigned fd_skip_limit; /* polling thread: AIO_FD_SKIP_MIN..MAX */

    /* aio-max-batch (atomic: settable from any thread). */
    int max_batch;

    AioContextStats stats; /* atomic counters */

    /* aio_context_acquire/release (aio-lock.c); contention calls
     * aio_notify(). */
    RFifoLock lock;

    /* aio_defer (defer.c): a lock-free stack emptied by defer_bh. */
    AioDeferred *defer_pending; /* atomic */
    AioBH *defer_bh;

    /* Context-local storage (defer.c): context thread only. */
    struct {
        AioContextLocalKey *key;
        void *value;
    } local[AIO_CONTEXT_LOCAL_SLOTS];

    /* While a thread runs aio_poll(ctx): a token of that thread (atomic;
     * aio_poll_owned_by_self()). */
    const void *poll_owner;

    /* Threads whose current context this is (aio_set_current_context);
     * atomic.  Non-zero: running it belongs to them, or to a holder. */
    unsigned home_threads;
};

/* fd-handler.c */
void aio_handlers_walk_begin(AioContext *ctx);
void aio_handlers_walk_end(AioContext *ctx);
bool aio_dispatch_ready(AioContext *ctx, AioReadyEvent *events, int n);
bool aio_run_poll_handlers_once(AioContext *ctx, bool *found);
/* Polling thread, walking the list.  Starts polling mode on every node
 * that has hooks and is not in it yet. */
void aio_poll_mode_begin(AioContext *ctx);
/* Polling thread, walking the list.  Ends polling mode on every node in
 * it; returns whether there was any (the caller then polls once more). */
bool aio_poll_mode_end(AioContext *ctx);
void aio_handlers_free_all(AioContext *ctx);
static inline bool aio_handler_is_deleted(AioHandler *node)
{
    return dp_atomic_load_acquire(&node->deleted);
}

/* context.c */
int64_t aio_compute_timeout(AioContext *ctx);
/* Any thread: whether the caller is inside aio_poll(ctx) (a callback). */
bool aio_poll_owned_by_self(AioContext *ctx);
/* The wake-up after a BH was pushed on ctx->bh_pending with a seq_cst
 * operation: writes the eventfd only if the loop sleeps or is about to.
 * Any thread. */
void aio_notify_bh(AioContext *ctx);

/* aio-lock.c */
void aio_context_lock_init(AioContext *ctx);
void aio_context_lock_destroy(AioContext *ctx);
/* Makes the calling thread the one thread allowed to hold several contexts
 * (main_loop_init). */
void aio_context_lock_set_multi_holder(void);
/* aio_poll()'s check of the threading contract: aborts, naming the rule,
 * unless the calling thread may run ctx (aio.h, aio_poll). */
void aio_context_assert_may_run(AioContext *ctx);

/* defer.c */
void aio_defer_init(AioContext *ctx);
/* Destroys the context-local values, then the defer BH. */
void aio_defer_cleanup(AioContext *ctx);

/* bh.c */
/* A new id for one aio_poll() call: a BH runs at most once per id, however
 * often aio_bh_poll(ctx, id) is called in that aio_poll(). */
uint64_t aio_bh_poll_begin(AioContext *ctx);
bool aio_bh_poll(AioContext *ctx, uint64_t call);
/* Runs the doorbell BHs rung or taken so far (polling thread); whether
 * any ran.  aio_bh_poll() does this first in each round; a busy-polling
 * aio_poll() does it as soon as it sees a bell. */
bool aio_bh_run_doorbells(AioContext *ctx, uint64_t call);
bool aio_bh_has_pending(AioContext *ctx);
void aio_bh_free_pending(AioContext *ctx);

/* timer.c */
void aio_timers_init(AioContext *ctx);
void aio_timers_cleanup(AioContext *ctx);
/* ns until the earliest timer expires: 0 if one is due, -1 if none. */
int64_t aio_timers_deadline_ns(AioContext *ctx);
bool aio_timers_run_expired(AioContext *ctx);

#endif /* DATAPLANE_AIO_INTERNAL_H */
