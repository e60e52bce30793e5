/*
 * AioContext: the event loop.
 *
 * An AioContext monitors file descriptors (fd handlers, event notifiers),
 * runs timers and bottom halves (BHs), and optionally busy-polls before it
 * sleeps (adaptive polling).  One thread at a time runs it with aio_poll();
 * callbacks run in that thread.
 *
 * Threading contract (docs/iothreads.md has the long version):
 *  1. Callbacks run in the thread that calls aio_poll(ctx); inside them the
 *     context's functions need no locking.
 *  2. Any other thread wraps its use of the context in
 *     aio_context_acquire/release (below), except for
 *     the functions marked "any thread" below.
 *  3. aio_bh_schedule(), aio_notify() and the timer and fd-handler setters
 *     end in a notify of the context, so a loop blocked in aio_poll() wakes
 *     up to see the change.
 *
 * Unless a function says otherwise, a function that takes an AioContext is
 * called from that context's thread or with the context acquired.  Every
 * function that takes none says where it may be called.  aio_poll() checks
 * its rule at run time (below); the others are checked where the layers
 * above call them (block.h: bdrv_assert_can_submit).
 */
#ifndef DATAPLANE_AIO_H
#define DATAPLANE_AIO_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/error.h"
#include "dataplane/event-notifier.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

typedef struct AioContext AioContext;

/* fd monitoring backends, chosen when a context is created. */
typedef enum AioBackend {
    AIO_BACKEND_EPOLL,
    AIO_BACKEND_IO_URING,
} AioBackend;

/* "epoll" / "io_uring".  Any thread (a constant string). */
const char *aio_backend_name(AioBackend backend);
/* Parses "epoll" or "io_uring"; false (and an Error) for anything else.
 * Any thread. */
bool aio_backend_parse(const char *name, AioBackend *backend, Error **errp);

/* ---- life cycle ------------------------------------------------------- */

/* A new context on the default backend (epoll).  Any thread. */
AioContext *aio_context_new(Error **errp);
/* A new context on the given backend; NULL and *errp if it is unavailable.
 * Any thread. */
AioContext *aio_context_new_with_backend(AioBackend backend, Error **errp);
/* Any thread (fixed at creation). */
AioBackend aio_context_get_backend(AioContext *ctx);

/* Any thread.  A number given to the context when it was created, from a
 * process-wide counter (0, 1, 2, ...): for spreading per-context state
 * over a few stripes, not an identity (numbers are not reused, but
 * stripes are shared). */
unsigned aio_context_get_index(AioContext *ctx);

/* Any thread.  The last unref frees the context: every fd handler must have
 * been removed and every BH and timer freed by then, and no thread may be in
 * aio_poll(). */
void aio_context_ref(AioContext *ctx);
void aio_context_unref(AioContext *ctx);

/* ---- running the loop ------------------------------------------------- */

/*
 * Runs one iteration: BHs that are scheduled, handlers of ready fds, expired
 * timers.  With blocking=true and nothing ready it first sleeps until an fd
 * becomes ready, the earliest timer expires, or aio_notify() is called.
 * Returns true if any callback made progress (the context's own wake-up
 * notifier does not count).  aio_poll() may be called again from inside a
 * callback of the same context (nested poll; drain relies on it).
 * A signal does not end the sleep: a signal handler that needs the loop
 * calls aio_notify(), which is async-signal-safe.
 *
 * Who may call it, checked on every call (an abort with a message): the
 * thread whose current context is ctx (aio_get_current_context: its
 * IOThread, the main loop thread for the main loop's), or a thread that
 * holds ctx (aio_context_acquire); a context that is no thread's current
 * context (a private loop of a test or a small program) may be run by any
 * thread, one at a time (that is not checked).  So nobody runs an
 * IOThread's or the main loop's context behind its back.
 */
bool aio_poll(AioContext *ctx, bool blocking);

/*
 * Any thread, no lock.  Makes a blocking aio_poll() of ctx return (or the
 * next one not block).  Writes the eventfd only when the loop is blocked or
 * about to block, so it is cheap when the loop is busy.
 */
void aio_notify(AioContext *ctx);

/* ---- fd handlers ------------------------------------------------------ */

typedef void IOHandler(void *opaque);
/*
 * A polling function: it checks (and normally handles) its event source
 * without a system call and returns true if it found work.
 */
typedef bool AioPollFn(void *opaque);

/*
 * Sets, changes or (with io_read, io_write and io_poll all NULL) removes the
 * handlers of fd.  io_read runs when fd is readable or has an error or
 * hang-up; io_write when it is writable.  io_poll, if given, is busy-polled
 * when adaptive polling is on.  Safe from inside any callback of this
 * context, its own included; from another thread, acquire the context (the
 * change is picked up at once: the loop is notified).
 */
void aio_set_fd_handler(AioContext *ctx, int fd, IOHandler *io_read,
                        IOHandler *io_write, AioPollFn *io_poll, void *opaque);

typedef void EventNotifierHandler(EventNotifier *e);
typedef bool EventNotifierPollFn(EventNotifier *e);

/*
 * Monitors an EventNotifier: cb runs when it is set (cb should call
 * event_notifier_test_and_clear()).  cb == NULL removes it.  Same calling
 * rules as aio_set_fd_handler().
 */
void aio_set_event_notifier(AioContext *ctx, EventNotifier *e,
                            EventNotifierHandler *cb,
                            EventNotifierPollFn *poll_cb);

/*
 * As aio_set_event_notifier(), with polling-mode hooks: poll_begin runs
 * when the context starts busy-polling (adaptive polling) with poll_cb,
 * poll_end when it stops and is about to block, after which poll_cb runs
 * once more, so that work that arrived in between is not left waiting for
 * a notification.  A device turns its notifications off in poll_begin and
 * on in poll_end (a virtqueue's kicks): while the loop polls, the other
 * side then makes no system call to notify it.  Both run in the loop's
 * thread, walking the handlers (they must not remove their own handler).
 * A notifier that is replaced or removed while in polling mode gets no
 * poll_end: its owner turns its notifications back on itself.
 */
void aio_set_event_notifier_poll(AioContext *ctx, EventNotifier *e,
                                 EventNotifierHandler *cb,
                                 EventNotifierPollFn *poll_cb,
                                 EventNotifierHandler *poll_begin,
                                 EventNotifierHandler *poll_end);

/* ---- bottom halves ---------------------------------------------------- */

typedef struct AioBH AioBH;
typedef void AioBHFunc(void *opaque);

/* Creates an unscheduled BH bound to ctx.  Context thread or acquired. */
AioBH *aio_bh_new(AioContext *ctx, AioBHFunc *cb, void *opaque);
/*
 * Any thread, no lock, lock-free.  The BH runs once in ctx's thread during
 * a later aio_poll(); scheduling it again before it runs has no further
 * effect.  A BH that reschedules itself from its callback runs again in a
 * later iteration, never in the same aio_poll() call.
 */
void aio_bh_schedule(AioBH *bh);
/* Any thread.  Unschedules; a BH already running is not interrupted. */
void aio_bh_cancel(AioBH *bh);
/* Context thread or acquired.  Cancels and frees (deferred if it is queued). */
void aio_bh_delete(AioBH *bh);
/* Any thread, no lock.  Runs cb(opaque) once in ctx; frees itself after. */
void aio_bh_schedule_oneshot(AioContext *ctx, AioBHFunc *cb, void *opaque);

/* ---- deferred calls and context-local storage (aio/defer.c) -------- */

typedef struct AioDeferred AioDeferred;
typedef void AioDeferredFunc(AioDeferred *d);
/* Embed one in the object whose work is handed over; fields are private. */
struct AioDeferred {
    AioDeferredFunc *fn;
    AioDeferred *next;
};

/*
 * Any thread, no lock, lock-free, allocates nothing.  Runs fn(d) once in
 * ctx's thread during a later aio_poll(), in the order of the aio_defer()
 * calls made for ctx (one BH runs every entry deferred so far; entries
 * deferred while it runs wait for the next iteration).  Ends in
 * aio_notify(ctx) when ctx may be asleep.  d must stay valid until fn runs;
 * fn may free d or defer it again.  Nothing may be pending when ctx's last
 * reference goes.  This is the block layer's way of completing a request
 * in the context that submitted it, and of forwarding one to a node's home
 * context.
 */
void aio_defer(AioContext *ctx, AioDeferred *d, AioDeferredFunc *fn);

/* Context-local storage: one value per (context, key), created on first
 * use and destroyed with the context.  Keys are static, zero-initialised
 * apart from the two functions; at most AIO_CONTEXT_LOCAL_SLOTS keys exist
 * in a process. */
#define AIO_CONTEXT_LOCAL_SLOTS 8
typedef struct AioContextLocalKey {
    void *(*create)(AioContext *ctx);              /* in ctx's thread */
    void (*destroy)(AioContext *ctx, void *value); /* at ctx's last unref */
    int slot_plus_one;                             /* private, atomic */
} AioContextLocalKey;

/*
 * ctx's value for key, created by key->create(ctx) on the first call.
 * ctx's thread (or with ctx acquired).  The destroy function runs when the
 * context is freed (whichever thread drops the last reference), before its
 * handlers and BHs are checked: it must remove what create registered.
 */
void *aio_context_get_local(AioContext *ctx, AioContextLocalKey *key);

/* ---- timers ----------------------------------------------------------- */

typedef enum AioClockType {
    AIO_CLOCK_REALTIME, /* CLOCK_MONOTONIC: never jumps */
    AIO_CLOCK_HOST,     /* CLOCK_REALTIME: wall-clock time, may jump */
    AIO_CLOCK_MAX,
} AioClockType;

enum {
    AIO_SCALE_NS = 1,
    AIO_SCALE_US = 1000,
    AIO_SCALE_MS = 1000000,
};

typedef struct AioTimer AioTimer;
typedef void AioTimerCB(void *opaque);

/* Any thread. */
int64_t aio_clock_get_ns(AioClockType clock);

/*
 * Creates an unarmed timer.  scale is AIO_SCALE_NS/US/MS: the unit of
 * aio_timer_mod() and aio_timer_expire_time().  Context thread or acquired.
 */
AioTimer *aio_timer_new(AioContext *ctx, AioClockType clock, int scale,
                        AioTimerCB *cb, void *opaque);
/*
 * Arms (or re-arms) the timer to fire at expire_time on its clock, in its
 * scale (aio_timer_mod) or in ns (aio_timer_mod_ns).  O(log n).  Any thread:
 * a new earliest deadline notifies the loop so that it sleeps less.
 */
void aio_timer_mod(AioTimer *t, int64_t expire_time);
void aio_timer_mod_ns(AioTimer *t, int64_t expire_ns);
/* Disarms.  O(log n).  Any thread; a callback already running is not
 * interrupted. */
void aio_timer_del(AioTimer *t);
/* Any thread. */
bool aio_timer_pending(AioTimer *t);
/* In the timer's scale; -1 if not armed.  Any thread. */
int64_t aio_timer_expire_time(AioTimer *t);
/* Disarms and frees.  Context thread or acquired; may be called from the
 * timer's own callback. */
void aio_timer_free(AioTimer *t);

/* ---- adaptive polling ------------------------------------------------- */

/*
 * Sets the polling window limits.  max_ns == 0 turns polling off.  grow is
 * the factor by which the window grows when blocking came soon after polling
 * gave up (0 means the default, 2); shrink the divisor when the loop slept
 * for longer than max_ns (0 means drop to zero at once).  Any thread; takes
 * effect at the next iteration.  Returns false and sets errp for a grow of 1
 * or values out of range.
 */
bool aio_context_set_poll_params(AioContext *ctx, int64_t max_ns, int64_t grow,
                                 int64_t shrink, Error **errp);
/* Any thread. */
void aio_context_get_poll_params(AioContext *ctx, int64_t *max_ns,
                                 int64_t *grow, int64_t *shrink);
/* The current polling window in ns (0 when polling is idle).  Any thread. */
int64_t aio_context_get_poll_ns(AioContext *ctx);

/*
 * aio-max-batch, as QEMU's: the most I/O requests an engine working for
 * this context queues before it hands them to the kernel.  Without it
 * (0, the default) the file driver's io_uring engine submits once per loop
 * iteration, whatever a callback queued; with it, also as soon as
 * max_batch SQEs are waiting, so that a burst starts sooner at the cost of
 * more system calls.  false and errp outside [0, INT_MAX].  Any thread;
 * applies to what is queued from then on.
 */
bool aio_context_set_max_batch(AioContext *ctx, int64_t max_batch,
                               Error **errp);
int aio_context_get_max_batch(AioContext *ctx);

/* ---- locking (aio/aio-lock.c) ---------------------------------------- */

/*
 * Any thread.  Takes the context's lock: a recursive, FIFO-fair RFifoLock.
 * While this thread waits, it kicks the owner with aio_notify(), so an
 * IOThread sleeping in aio_poll() with the lock held lets it in within one
 * loop iteration.  Calls nest; each acquire needs its release.
 *
 * Only one thread, the main loop thread, may hold more than one context at a
 * time (stop-the-world relies on it: no lock-order cycle can form).  Taking
 * a second context in any other thread aborts with a message.  Without a
 * main loop (main_loop_init() never called), the first thread that holds
 * two contexts becomes that one thread.
 */
void aio_context_acquire(AioContext *ctx);
/* The thread that acquired ctx; releases one level. */
void aio_context_release(AioContext *ctx);

/* ---- the calling thread's context (aio/aio-lock.c) -------------------- */

/*
 * Any thread.  The AioContext this thread runs: an IOThread's own context
 * inside that IOThread, the main loop's in the main loop thread (after
 * main_loop_init()), whatever aio_set_current_context() set in a thread
 * that runs its own loop, else NULL.  A thread has one such home context
 * for its whole life; holding another with aio_context_acquire() does not
 * change it.  (QEMU calls it qemu_get_current_aio_context().)
 */
AioContext *aio_get_current_context(void);
/* Makes ctx the calling thread's context (NULL: none).  For threads that
 * run aio_poll(ctx) themselves; IOThreads and the main loop set theirs. */
void aio_set_current_context(AioContext *ctx);
/*
 * Any thread.  True if the calling thread may use ctx's services without
 * locking: ctx is its own context, or it holds ctx (aio_context_acquire).
 * For assertions of the threading contract.
 */
bool aio_context_in_current_thread(AioContext *ctx);

/* ---- GLib (aio/aio-gsource.c) ----------------------------------------- */

/*
 * Any thread.  A new GSource that runs ctx inside a GMainContext: attached
 * to one, the context's fd handlers, BHs and timers run in whichever thread
 * iterates that GMainContext, beside its other sources.  The source holds a
 * reference to ctx.  Its dispatch acquires ctx, so the iterating thread must
 * be allowed to take it (see aio_context_acquire).  Attach at most one such
 * source per context, and do not also run aio_poll(ctx) from another thread
 * without acquiring ctx.  Adaptive polling does not apply inside GLib: the
 * source sleeps in g_poll() on the backend's fd.
 */
GSource *aio_get_g_source(AioContext *ctx);

/* ---- introspection ---------------------------------------------------- */

typedef struct AioContextStats {
    uint64_t iterations;    /* aio_poll() calls */
    uint64_t notify_writes; /* eventfd writes made by aio_notify() */
    uint64_t poll_hits;     /* busy-poll phases that found work */
    uint64_t poll_misses;   /* busy-poll phases that ran out and blocked */
    uint64_t sleeps; /* waits with a timeout (may sleep) in the backend */
} AioContextStats;

/* Any thread; counters are read one by one, not as a snapshot. */
void aio_context_get_stats(AioContext *ctx, AioContextStats *stats);

DP_API_END

#endif /* DATAPLANE_AIO_H */
