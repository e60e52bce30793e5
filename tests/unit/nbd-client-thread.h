/*
 * A raw NBD client running in a thread of its own while the test's main
 * thread runs the main loop (and the server in it), for the in-process NBD
 * server tests.  The two sides meet at numbered steps: the client waits
 * with client_wait_step(), the main thread runs the loop until the client
 * has reached a step with main_until_step().  Every wait is bounded.
 *
 * The including file defines struct Fixture (the client reads its fields
 * through ct->f).
 */
#ifndef DATAPLANE_TESTS_NBD_CLIENT_THREAD_H
#define DATAPLANE_TESTS_NBD_CLIENT_THREAD_H

#include <glib.h>

#include "dataplane/main-loop.h"
#include "dataplane/nbd.h"
#include "util/clock.h"
#include "util/thread.h"

typedef struct Fixture Fixture;

/* Main thread: runs the main loop until the server has want connections. */
static G_GNUC_UNUSED void wait_connections(unsigned want)
{
    int i;

    for (i = 0; i < 100000 && nbd_server_get_connection_count() != want; i++) {
        main_loop_wait(true);
    }
    g_assert_cmpuint(nbd_server_get_connection_count(), ==, want);
}

typedef struct ClientThread {
    GThread *thread;
    void (*fn)(struct ClientThread *ct);
    Fixture *f;
    int fd;
    int step;     /* atomic: how far the test has got (both sides set it) */
    DpMutex lock; /* with cond: the client waits for the main thread */
    DpCond cond;
    int done;  /* atomic */
    int index; /* set before the thread starts */
} ClientThread;

static gpointer client_thread_run(gpointer opaque)
{
    ClientThread *ct = opaque;

    ct->fn(ct);
    g_atomic_int_set(&ct->done, true);
    g_main_context_wakeup(NULL);
    return NULL;
}

/* Either side: records the step; wakes the main loop and the client. */
static G_GNUC_UNUSED void client_step(ClientThread *ct, int step)
{
    dp_mutex_lock(&ct->lock);
    g_atomic_int_set(&ct->step, step);
    dp_cond_broadcast(&ct->cond);
    dp_mutex_unlock(&ct->lock);
    g_main_context_wakeup(NULL);
}

static G_GNUC_UNUSED ClientThread *
client_start_index(Fixture *f, void (*fn)(ClientThread *), int index)
{
    ClientThread *ct = g_new0(ClientThread, 1);

    ct->f = f;
    ct->index = index;
    ct->fn = fn;
    dp_mutex_init(&ct->lock);
    dp_cond_init(&ct->cond);
    ct->thread = g_thread_new("client", client_thread_run, ct);
    return ct;
}

static G_GNUC_UNUSED ClientThread *client_start(Fixture *f,
                                                void (*fn)(ClientThread *))
{
    return client_start_index(f, fn, 0);
}

/* Client side: blocks until the main thread has reached step n (bounded:
 * 10 s, then the test fails). */
static G_GNUC_UNUSED void client_wait_step(ClientThread *ct, int n)
{
    int64_t deadline =
        clock_monotonic_ns() + 10 * G_GINT64_CONSTANT(1000000000);

    dp_mutex_lock(&ct->lock);
    while (g_atomic_int_get(&ct->step) < n &&
           dp_cond_timedwait_ns(&ct->cond, &ct->lock, deadline)) {
    }
    dp_mutex_unlock(&ct->lock);
    g_assert_cmpint(g_atomic_int_get(&ct->step), >=, n);
}

/* Main side: runs the main loop until the client reached step n. */
static G_GNUC_UNUSED void main_until_step(ClientThread *ct, int n)
{
    int i;

    for (i = 0; i < 100000 && g_atomic_int_get(&ct->step) < n &&
                !g_atomic_int_get(&ct->done);
         i++) {
        main_loop_wait(true);
    }
    g_assert_cmpint(g_atomic_int_get(&ct->step), >=, n);
}

static G_GNUC_UNUSED void client_finish(ClientThread *ct)
{
    int i;

    for (i = 0; i < 100000 && !g_atomic_int_get(&ct->done); i++) {
        main_loop_wait(true);
    }
    g_assert_true(g_atomic_int_get(&ct->done));
    g_thread_join(ct->thread);
    dp_cond_destroy(&ct->cond);
    dp_mutex_destroy(&ct->lock);
    g_free(ct);
}

#endif /* DATAPLANE_TESTS_NBD_CLIENT_THREAD_H */
