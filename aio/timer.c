/*
 * Timers: one binary min-heap per clock, ordered by (deadline, arming
 * sequence) so that timers with equal deadlines fire in the order they were
 * armed.  Arm and cancel are O(log n).  ctx->timer_lock protects the heaps
 * and every timer's expire_ns/heap_index, so timers may be armed from any
 * thread.
 */
#include <stdlib.h>

#include "aio/aio-internal.h"
#include "util/clock.h"

#define HEAP_NONE SIZE_MAX

struct AioTimer {
    AioContext *ctx;
    AioClockType clock;
    int scale;
    AioTimerCB *cb;
    void *opaque;
    int64_t expire_ns; /* -1 when not armed; protected by timer_lock */
    uint64_t seq;
    size_t heap_index; /* HEAP_NONE when not armed */
};

int64_t aio_clock_get_ns(AioClockType clock)
{
    return clock == AIO_CLOCK_HOST ? clock_host_ns() : clock_monotonic_ns();
}

void aio_timers_init(AioContext *ctx)
{
    dp_mutex_init(&ctx->timer_lock);
}

void aio_timers_cleanup(AioContext *ctx)
{
    int i;

    for (i = 0; i < AIO_CLOCK_MAX; i++) {
        g_free(ctx->timers[i].heap);
        ctx->timers[i].heap = NULL;
        ctx->timers[i].len = ctx->timers[i].cap = 0;
    }
    dp_mutex_destroy(&ctx->timer_lock);
}

static bool timer_before(const AioTimer *a, const AioTimer *b)
{
    return a->expire_ns < b->expire_ns ||
           (a->expire_ns == b->expire_ns && a->seq < b->seq);
}

static void heap_place(AioTimerList *list, size_t i, AioTimer *t)
{
    list->heap[i] = t;
    t->heap_index = i;
}

static void heap_sift_up(AioTimerList *list, size_t i)
{
    AioTimer *t = list->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!timer_before(t, list->heap[parent])) {
            break;
        }
        heap_place(list, i, list->heap[parent]);
        i = parent;
    }
    heap_place(list, i, t);
}

static void heap_sift_down(AioTimerList *list, size_t i)
{
    AioTimer *t = list->heap[i];

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= list->len) {
            break;
        }
        if (child + 1 < list->len &&
            timer_before(list->heap[child + 1], list->heap[child])) {
            child++;
        }
        if (!timer_before(list->heap[child], t)) {
            break;
        }
        heap_place(list, i, list->heap[child]);
        i = child;
    }
    heap_place(list, i, t);
}

static void heap_insert(AioTimerList *list, AioTimer *t)
{
    if (list->len == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 16;
        list->heap = g_renew(AioTimer *, list->heap, list->cap);
    }
    heap_place(list, list->len++, t);
    heap_sift_up(list, t->heap_index);
}

/* Under timer_lock, after a heap changed (see timers_armed). */
static void timers_count_changed(AioContext *ctx, int delta)
{
    dp_atomic_store_relaxed(&ctx->timers_armed,
                            dp_atomic_load_relaxed(&ctx->timers_armed) + delta);
}

static void heap_remove(AioTimerList *list, AioTimer *t)
{
    size_t i = t->heap_index;
    AioTimer *last = list->heap[--list->len];

    t->heap_index = HEAP_NONE;
    if (i == list->len) {
        return;
    }
    heap_place(list, i, last);
    if (i > 0 && timer_before(last, list->heap[(i - 1) / 2])) {
        heap_sift_up(list, i);
    } else {
        heap_sift_down(list, i);
    }
}

AioTimer *aio_timer_new(AioContext *ctx, AioClockType clock, int scale,
                        AioTimerCB *cb, void *opaque)
{
    AioTimer *t;

    if (clock < 0 || clock >= AIO_CLOCK_MAX || scale <= 0) {
        g_error("aio_timer_new: bad clock %d or scale %d", (int)clock, scale);
    }
    t = g_new0(AioTimer, 1);
    t->ctx = ctx;
    t->clock = clock;
    t->scale = scale;
    t->cb = cb;
    t->opaque = opaque;
    t->expire_ns = -1;
    t->heap_index = HEAP_NONE;
    return t;
}

void aio_timer_mod_ns(AioTimer *t, int64_t expire_ns)
{
    AioContext *ctx = t->ctx;
    AioTimerList *list = &ctx->timers[t->clock];
    bool now_first;

    if (expire_ns < 0) {
        expire_ns = 0;
    }
    dp_mutex_lock(&ctx->timer_lock);
    if (t->heap_index != HEAP_NONE) {
        heap_remove(list, t);
    } else {
        timers_count_changed(ctx, 1);
    }
    t->expire_ns = expire_ns;
    t->seq = ctx->timer_seq++;
    heap_insert(list, t);
    now_first = t->heap_index == 0;
    dp_mutex_unlock(&ctx->timer_lock);

    /* A new earliest deadline shortens the sleep of a blocked loop. */
    if (now_first) {
        aio_notify(ctx);
    }
}

void aio_timer_mod(AioTimer *t, int64_t expire_time)
{
    int64_t ns;

    if (__builtin_mul_overflow(expire_time, (int64_t)t->scale, &ns)) {
        ns = INT64_MAX;
    }
    aio_timer_mod_ns(t, ns);
}

void aio_timer_del(AioTimer *t)
{
    AioContext *ctx = t->ctx;

    dp_mutex_lock(&ctx->timer_lock);
    if (t->heap_index != HEAP_NONE) {
        heap_remove(&ctx->timers[t->clock], t);
        timers_count_changed(ctx, -1);
    }
    t->expire_ns = -1;
    dp_mutex_unlock(&ctx->timer_lock);
}

bool aio_timer_pending(AioTimer *t)
{
    bool pending;

    dp_mutex_lock(&t->ctx->timer_lock);
    pending = t->heap_index != HEAP_NONE;
    dp_mutex_unlock(&t->ctx->timer_lock);
    return pending;
}

int64_t aio_timer_expire_time(AioTimer *t)
{
    int64_t ns;

    dp_mutex_lock(&t->ctx->timer_lock);
    ns = t->heap_index != HEAP_NONE ? t->expire_ns : -1;
    dp_mutex_unlock(&t->ctx->timer_lock);
    return ns < 0 ? -1 : ns / t->scale;
}

void aio_timer_free(AioTimer *t)
{
    if (t) {
        aio_timer_del(t);
        g_free(t);
    }
}

int64_t aio_timers_deadline_ns(AioContext *ctx)
{
    int64_t deadline = -1;
    int i;

    /* Not armed: whoever arms one notifies the loop (aio_timer_mod_ns). */
    if (!dp_atomic_load_relaxed(&ctx->timers_armed)) {
        return -1;
    }
    dp_mutex_lock(&ctx->timer_lock);
    for (i = 0; i < AIO_CLOCK_MAX; i++) {
        AioTimerList *list = &ctx->timers[i];
        int64_t delta;

        if (list->len == 0) {
            continue;
        }
        delta = list->heap[0]->expire_ns - aio_clock_get_ns(i);
        if (delta < 0) {
            delta = 0;
        }
        if (deadline < 0 || delta < deadline) {
            deadline = delta;
        }
    }
    dp_mutex_unlock(&ctx->timer_lock);
    return deadline;
}

bool aio_timers_run_expired(AioContext *ctx)
{
    bool progress = false;
    uint64_t seq_limit;
    bool armed[AIO_CLOCK_MAX];
    int i;

    /*
     * A timer that a callback re-arms for a time already past waits for the
     * next iteration: aio_poll() must return even if a timer keeps doing so.
     */
    if (!dp_atomic_load_relaxed(&ctx->timers_armed)) {
        return false;
    }
    /* Timers armed after this (on any clock) wait for the next call. */
    dp_mutex_lock(&ctx->timer_lock);
    seq_limit = ctx->timer_seq;
    for (i = 0; i < AIO_CLOCK_MAX; i++) {
        armed[i] = ctx->timers[i].len > 0;
    }
    dp_mutex_unlock(&ctx->timer_lock);

    for (i = 0; i < AIO_CLOCK_MAX; i++) {
        AioTimerList *list = &ctx->timers[i];
        int64_t now;

        if (!armed[i]) {
            continue; /* no clock read for a clock without timers */
        }
        now = aio_clock_get_ns(i);

        for (;;) {
            AioTimer *t;

            dp_mutex_lock(&ctx->timer_lock);
            if (list->len == 0 || list->heap[0]->expire_ns > now ||
                list->heap[0]->seq >= seq_limit) {
                dp_mutex_unlock(&ctx->timer_lock);
                break;
            }
            t = list->heap[0];
            heap_remove(list, t);
            timers_count_changed(ctx, -1);
            t->expire_ns = -1;
            dp_mutex_unlock(&ctx->timer_lock);

            /* The callback may re-arm or free t. */
            t->cb(t->opaque);
            progress = true;
        }
    }
    return progress;
}
