/*
 * An AioContext as a GSource.
 *
 * GLib polls one fd for the whole context: the backend's (the epoll fd, or
 * the io_uring ring fd, readable while completions wait in the ring).  The
 * source's dispatch runs one non-blocking aio_poll(), which reaps whatever
 * made the fd readable and runs BHs and expired timers.
 *
 * Wake-up: a GLib thread about to sleep in g_poll() counts in notify_me, as
 * aio_poll() does before it blocks, so aio_notify() writes the eventfd (a
 * member of the backend's set, hence a readable poll fd) only when needed.
 * prepare() increments notify_me and then looks for work (seq_cst, pairs
 * with aio_notify()'s store of `notified` and load of notify_me);
 * check()/dispatch() take the count back.  GLib may skip check() for a
 * source when a higher-priority one is ready, so the source remembers
 * whether it counted: the count is taken at most once and given back once.
 */
#include <limits.h>

#include "aio/aio-internal.h"
#include "util/atomic.h"

typedef struct AioGSource {
    GSource source;
    AioContext *ctx;
    GPollFD pfd;
    bool counted; /* this source's share of ctx->notify_me; GLib thread only */
} AioGSource;

static void gsource_count(AioGSource *s)
{
    if (!s->counted) {
        s->counted = true;
        /* Pairs with the seq_cst accesses in aio_notify(). */
        dp_atomic_fetch_add_seq_cst(&s->ctx->notify_me, 1);
    }
}

static void gsource_uncount(AioGSource *s)
{
    if (s->counted) {
        s->counted = false;
        dp_atomic_fetch_sub_seq_cst(&s->ctx->notify_me, 1);
    }
}

/* ns to GLib's ms, rounded up so that a timer is never polled for early. */
static gint timeout_ns_to_ms(int64_t ns)
{
    int64_t ms;

    if (ns < 0) {
        return -1;
    }
    ms = (ns + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (gint)ms;
}

static gboolean aio_gsource_prepare(GSource *source, gint *timeout)
{
    AioGSource *s = (AioGSource *)source;
    AioContext *ctx = s->ctx;
    int64_t ns;

    if (ctx->fdmon->flush) {
        /* The ring belongs to whoever polls the context: hold it. */
        aio_context_acquire(ctx);
        ctx->fdmon->flush(ctx);
        aio_context_release(ctx);
    }
    gsource_count(s);
    ns = aio_compute_timeout(ctx);
    if (ns == 0) {
        gsource_uncount(s); /* GLib will not sleep */
        *timeout = 0;
        return TRUE;
    }
    *timeout = timeout_ns_to_ms(ns);
    return FALSE;
}

static gboolean aio_gsource_check(GSource *source)
{
    AioGSource *s = (AioGSource *)source;

    gsource_uncount(s);
    if (s->pfd.revents) {
        return TRUE;
    }
    return aio_compute_timeout(s->ctx) == 0;
}

static gboolean aio_gsource_dispatch(GSource *source, GSourceFunc callback,
                                     gpointer user_data)
{
    AioGSource *s = (AioGSource *)source;

    gsource_uncount(s);
    aio_context_acquire(s->ctx);
    aio_poll(s->ctx, false);
    aio_context_release(s->ctx);
    return G_SOURCE_CONTINUE;
}

static void aio_gsource_finalize(GSource *source)
{
    AioGSource *s = (AioGSource *)source;

    gsource_uncount(s);
    aio_context_unref(s->ctx);
}

static GSourceFuncs aio_gsource_funcs = {
    .prepare = aio_gsource_prepare,
    .check = aio_gsource_check,
    .dispatch = aio_gsource_dispatch,
    .finalize = aio_gsource_finalize,
};

GSource *aio_get_g_source(AioContext *ctx)
{
    GSource *source = g_source_new(&aio_gsource_funcs, sizeof(AioGSource));
    AioGSource *s = (AioGSource *)source;

    aio_context_ref(ctx);
    s->ctx = ctx;
    s->pfd.fd = ctx->fdmon->poll_fd(ctx);
    s->pfd.events = G_IO_IN | G_IO_HUP | G_IO_ERR;
    g_source_add_poll(source, &s->pfd);
    g_source_set_name(source, "aio-context");
    return source;
}
