/*
 * The main loop: GLib's default GMainContext, with the main AioContext
 * attached as a GSource, so that fd handlers, BHs and timers of the main
 * AioContext run inside the GLib loop beside ordinary GSources (g_idle_add,
 * g_timeout_add, GIO watches).  Code written against an AioContext * runs
 * the same here as in an IOThread.
 *
 * The thread that calls main_loop_init() is the main loop thread: the only
 * thread that may hold several AioContexts at once (stop-the-world).
 */
#ifndef DATAPLANE_MAIN_LOOP_H
#define DATAPLANE_MAIN_LOOP_H

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "dataplane/aio.h"
#include "dataplane/error.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

/* Once, in main(), from the thread that will run the loop.  Also registers
 * the "iothread" type and the "main-loop" object (see below). */
bool main_loop_init(Error **errp);

/* Any thread, after main_loop_init(). */
AioContext *main_loop_get_aio_context(void);
/* GLib's default context.  Any thread. */
GMainContext *main_loop_get_g_main_context(void);

/*
 * Main loop thread.  Iterates until main_loop_quit(); a quit requested
 * before the call makes it return after at most one iteration.  The quit
 * is consumed: a later main_loop_run() runs again.
 */
void main_loop_run(void);
/* Any thread, no lock. */
void main_loop_quit(void);
/* Main loop thread.  One g_main_context_iteration(); true if something was
 * dispatched. */
bool main_loop_wait(bool blocking);

/* True in the main loop thread.  Any thread. */
bool main_loop_is_main_thread(void);
/* The main loop thread's kernel id.  Any thread, after main_loop_init(). */
pid_t main_loop_get_thread_id(void);

/*
 * Registers the main loop in the object registry as the object "main-loop"
 * of type "main-loop" (not user-creatable, not deletable): properties
 * poll-max-ns, poll-grow, poll-shrink (settable) and thread-id.  Also
 * makes this thread the registry's owner.  main_loop_init() calls it; call
 * it again after object_registry_cleanup().  Main loop thread.
 */
void main_loop_register_object(void);

/*
 * Main loop thread.  Pauses every IOThread: acquires their contexts in
 * creation order (each acquire kicks its thread out of aio_poll), so no
 * callback runs in any IOThread until main_loop_resume_the_world() releases
 * them in reverse order.  Nestable.  Block users drain first
 * (bdrv_drain_all) so that no request is left in flight.  IOThreads created
 * while the world is stopped start paused; destroying one resumes it first.
 */
void main_loop_stop_the_world(void);
void main_loop_resume_the_world(void);

DP_API_END

#endif /* DATAPLANE_MAIN_LOOP_H */
