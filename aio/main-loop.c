/*
 * The main loop: GLib's default GMainContext plus the main AioContext as
 * one of its sources.
 *
 * main_loop_quit() does not use g_main_loop_quit(): it sets a flag and
 * notifies the main AioContext, whose source wakes the GLib poll (it counts
 * in notify_me while GLib sleeps).  That keeps the cross-thread hand-off on
 * this project's atomics, which ThreadSanitizer sees.
 */
#include "dataplane/main-loop.h"

#include "aio/aio-internal.h"
#include "aio/iothread-internal.h"
#include "dataplane/object.h"
#include "dataplane/threadlet.h"
#include "util/atomic.h"
#include "util/thread.h"

static AioContext *main_ctx; /* set once by main_loop_init */
static pid_t main_tid;
static bool quit_requested; /* atomic */

bool main_loop_init(Error **errp)
{
    GSource *source;
    AioContext *ctx;

    if (main_ctx) {
        error_setg(errp, "the main loop is already initialised");
        return false;
    }
    ctx = aio_context_new(errp);
    if (!ctx) {
        return false;
    }
    source = aio_get_g_source(ctx);
    g_source_attach(source, g_main_context_default());
    g_source_unref(source);
    main_tid = dp_thread_get_tid();
    aio_set_current_context(ctx);
    aio_context_lock_set_multi_holder();
    dp_atomic_store_release(&main_ctx, ctx);
    main_loop_register_object(); /* also makes this the registry's owner */
    iothread_register_type();
    if (!object_find(THREADLET_GLOBAL_QUEUE_NAME) &&
        !threadlet_queue_register_object(threadlet_global_queue(), errp)) {
        return false;
    }
    return true;
}

AioContext *main_loop_get_aio_context(void)
{
    return dp_atomic_load_acquire(&main_ctx);
}

GMainContext *main_loop_get_g_main_context(void)
{
    return g_main_context_default();
}

bool main_loop_is_main_thread(void)
{
    return main_ctx && dp_thread_get_tid() == main_tid;
}

pid_t main_loop_get_thread_id(void)
{
    return main_tid;
}

void main_loop_run(void)
{
    g_assert(main_loop_is_main_thread());
    while (!dp_atomic_xchg_seq_cst(&quit_requested, false)) {
        g_main_context_iteration(g_main_context_default(), TRUE);
    }
}

void main_loop_quit(void)
{
    g_assert(main_ctx);
    dp_atomic_store_seq_cst(&quit_requested, true);
    aio_notify(main_ctx);
}

bool main_loop_wait(bool blocking)
{
    g_assert(main_loop_is_main_thread());
    return g_main_context_iteration(g_main_context_default(), blocking);
}

void main_loop_stop_the_world(void)
{
    g_assert(main_loop_is_main_thread());
    iothread_pause_all();
}

void main_loop_resume_the_world(void)
{
    g_assert(main_loop_is_main_thread());
    iothread_resume_all();
}
