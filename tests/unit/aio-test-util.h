/*
 * Helpers shared by the AioContext unit tests: every test runs once per
 * fd-monitoring backend, under /aio/<backend>/<path>.
 */
#ifndef DATAPLANE_TESTS_AIO_TEST_UTIL_H
#define DATAPLANE_TESTS_AIO_TEST_UTIL_H

#include <glib.h>

#include "dataplane/aio.h"
#include "util/atomic.h"

static inline AioContext *test_ctx_new(gconstpointer data)
{
    AioBackend backend = (AioBackend)GPOINTER_TO_INT(data);

    return aio_context_new_with_backend(backend, &error_abort);
}

/* Registered instead of a test whose backend this kernel lacks (io_uring
 * can be disabled by the kernel.io_uring_disabled sysctl, or by seccomp). */
static inline void test_backend_unavailable(gconstpointer data)
{
    g_test_skip("backend unavailable on this machine");
}

/* Probes each backend once per test program. */
static inline bool test_backend_available(AioBackend backend)
{
    static int available[2] = {-1, -1};

    if (available[backend] < 0) {
        AioContext *ctx = aio_context_new_with_backend(backend, NULL);

        available[backend] = ctx != NULL;
        if (ctx) {
            aio_context_unref(ctx);
        }
    }
    return available[backend];
}

static inline void test_add_both(const char *path, GTestDataFunc fn)
{
    static const AioBackend backends[] = {AIO_BACKEND_EPOLL,
                                          AIO_BACKEND_IO_URING};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(backends); i++) {
        char *full =
            g_strdup_printf("/aio/%s%s", aio_backend_name(backends[i]), path);

        g_test_add_data_func(full, GINT_TO_POINTER(backends[i]),
                             test_backend_available(backends[i])
                                 ? fn
                                 : test_backend_unavailable);
        g_free(full);
    }
}

/* Runs non-blocking iterations until one makes no progress (at most 100):
 * consumes the wake-ups left by handler changes (each one notifies). */
static inline void drain(AioContext *ctx)
{
    int i;

    for (i = 0; i < 100 && aio_poll(ctx, false); i++) {
    }
}

/* drain(), then one more non-blocking iteration: consumes the wake-up left
 * by the context's creation (registering its notifier notifies it), so that
 * the next blocking poll really sleeps. */
static inline void drain_then_poll_once(AioContext *ctx)
{
    drain(ctx);
    aio_poll(ctx, false);
}

/* Polls until *flag becomes true; a bounded number of blocking iterations. */
static inline void poll_until(AioContext *ctx, const volatile bool *flag)
{
    int i;

    for (i = 0; i < 100000 && !dp_atomic_load_acquire(flag); i++) {
        aio_poll(ctx, true);
    }
    g_assert_true(dp_atomic_load_acquire(flag));
}

#endif
