/*
 * IOThread: a named thread that runs one AioContext.
 *
 * The thread runs the seeds' loop until the IOThread is destroyed:
 *
 *     while (!stopping) {
 *         aio_context_acquire(ctx);
 *         aio_poll(ctx, true);          (or one GMainContext iteration)
 *         aio_context_release(ctx);
 *     }
 *
 * so callbacks of its context run in it, with the context held, and another
 * thread that acquires the context kicks it out of aio_poll() and gets the
 * lock within one iteration.  The thread is named after the id (the first
 * 15 bytes show in /proc/self/task/<tid>/comm).
 *
 * GLib: iothread_get_g_main_context() creates, on first call, a GMainContext
 * whose sources run in this thread.  From then on the thread iterates that
 * GMainContext instead of calling aio_poll() directly; the AioContext is one
 * of its sources (aio_get_g_source), so both run, with the context held.  An
 * IOThread that never asks for GLib keeps the cheaper aio_poll() loop and
 * its adaptive polling.
 *
 * Thread-safety: iothread_new, iothread_destroy and iothread_find are for
 * the main loop thread (the thread that manages IOThreads); the getters and
 * iothread_set_poll_params may be called from any thread.  None needs the
 * context acquired.
 */
#ifndef DATAPLANE_IOTHREAD_H
#define DATAPLANE_IOTHREAD_H

#include <glib.h>
#include <stdint.h>
#include <sys/types.h>

#include "dataplane/aio.h"
#include "dataplane/error.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

typedef struct IOThread IOThread;

typedef struct IOThreadProps {
    int64_t poll_max_ns, poll_grow, poll_shrink; /* defaults 32768, 0, 0 */
    int64_t aio_max_batch; /* default 0: aio_context_set_max_batch() */
    /* Thread counts, as every thread-pool function takes them: (min, max). */
    int thread_pool_min, thread_pool_max; /* default 0, 64 */
    AioBackend backend;                   /* default AIO_BACKEND_EPOLL */
} IOThreadProps;

/* Fills the defaults (as QEMU's iothread object).  Any thread. */
void iothread_props_init(IOThreadProps *props);

/*
 * Starts an IOThread.  id: a letter followed by letters, digits, '-', '.'
 * or '_', unique among IOThreads.  props NULL means the defaults.  Returns
 * NULL and sets errp for a bad or duplicate id, an out-of-range property or
 * an unavailable backend.  Main loop thread.  If the world is stopped
 * (main_loop_stop_the_world), the new IOThread starts paused too.
 */
IOThread *iothread_new(const char *id, const IOThreadProps *props,
                       Error **errp);

/*
 * Stops the thread after it has run every BH scheduled before this call
 * (and what those schedule, within a bounded number of iterations), joins
 * it and frees the IOThread with its context, GMainContext and fds.  The
 * caller must not hold the context.  The context itself lives on while
 * someone else holds a reference to it.  Main loop thread.
 */
void iothread_destroy(IOThread *iothread);

/* Any thread. */
AioContext *iothread_get_aio_context(IOThread *iothread);

/*
 * The IOThread's own threadlet queue, sized by thread-pool-min/max and bound
 * to its AioContext (threadlet_submit_aio() on that context uses it).  Lives
 * as long as the IOThread.  Any thread.
 */
struct ThreadletQueue *iothread_get_threadlet_queue(IOThread *iothread);

/*
 * Resizes the IOThread's threadlet queue (thread-pool-min/max at runtime,
 * as QEMU's qom-set allows).  Work in flight is not disturbed; extra idle
 * threads exit.  Returns false and sets errp for min > max or values out
 * of range.  Any thread.
 */
bool iothread_set_thread_pool_limits(IOThread *iothread, int min_threads,
                                     int max_threads, Error **errp);
/* Any thread.  Created on first call; owned by the IOThread. */
GMainContext *iothread_get_g_main_context(IOThread *iothread);
const char *iothread_get_id(IOThread *iothread);
/* The kernel thread id (as in /proc/self/task).  Any thread. */
pid_t iothread_get_thread_id(IOThread *iothread);
/* Main loop thread.  NULL if there is none with that id. */
IOThread *iothread_find(const char *id);

/* The current properties (poll-* as last set).  Any thread. */
void iothread_get_props(IOThread *iothread, IOThreadProps *props);
/*
 * Changes the adaptive-polling parameters at runtime: the thread uses them
 * from its next iteration.  false and errp for values out of range (see
 * aio_context_set_poll_params).  Any thread.
 */
bool iothread_set_poll_params(IOThread *iothread, int64_t max_ns, int64_t grow,
                              int64_t shrink, Error **errp);

/*
 * Changes aio-max-batch at runtime (aio_context_set_max_batch on the
 * IOThread's context), as QEMU's qom-set does.  false and errp outside
 * [0, INT_MAX].  Any thread.
 */
bool iothread_set_aio_max_batch(IOThread *iothread, int64_t max_batch,
                                Error **errp);

/*
 * Calls fn(iothread, opaque) for each IOThread in creation order.  Main
 * loop thread; fn must not create or destroy IOThreads.
 */
void iothread_foreach(void (*fn)(IOThread *iothread, void *opaque),
                      void *opaque);

/*
 * Registers the object type "iothread" (aio/event-loop-object.c) so that
 * object_add("iothread", id, props) creates IOThreads and object_del()
 * destroys them.  Properties (QEMU's names): poll-max-ns, poll-grow,
 * poll-shrink, aio-max-batch, thread-pool-min, thread-pool-max (all
 * settable at runtime), backend (epoll|io_uring, fixed at creation), and
 * read-only thread-id.
 * main_loop_init() calls it; call it again after object_registry_cleanup().
 * Main loop thread.
 */
void iothread_register_type(void);

DP_API_END

#endif /* DATAPLANE_IOTHREAD_H */
