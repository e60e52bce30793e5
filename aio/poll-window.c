/*
 * The adaptive-polling policy (see poll-window.h and docs/aio.md).
 *
 * Why the wake-up estimate: a wait that ended in a sleep is measured up to
 * the moment the thread runs again, and on a virtual machine the sleep
 * itself costs tens of microseconds (the host has to schedule the vCPU's
 * thread back in).  When the other side of a hand-off also waits for us,
 * a sleeping round trip is two such wake-ups long, longer than the default
 * poll-max-ns (32768), although once both sides poll the same hand-off
 * takes a microsecond or two.  Judged by the wait alone, such a loop would
 * drop its window to zero after one long hiccup (a preemption, a page
 * fault) and never grow it again: every later wait is a sleeping one, so
 * too long.  Taking the loop's own wake-up off the wait lets it find its
 * way back; waits longer than that (an idle disk, a client thinking) still
 * shrink the window as before.
 */
#include "aio/poll-window.h"
#include "util/atomic.h"

/* Weight of a new sample in the moving average: 1/8. */
#define WAKE_EWMA_SHIFT 3
/* A sample longer than this is a descheduled thread, not a wake-up. */
#define WAKE_SAMPLE_MAX_NS 1000000

static int64_t wake_latency_ns; /* atomic */

void aio_wake_latency_sample(int64_t ns)
{
    int64_t old = dp_atomic_load_relaxed(&wake_latency_ns);

    if (ns < 0) {
        return;
    }
    if (ns > WAKE_SAMPLE_MAX_NS) {
        ns = WAKE_SAMPLE_MAX_NS;
    }
    /* Racing samplers may lose one another's update: harmless. */
    dp_atomic_store_relaxed(&wake_latency_ns,
                            old ? old + ((ns - old) >> WAKE_EWMA_SHIFT) : ns);
}

int64_t aio_wake_latency_ns(void)
{
    return dp_atomic_load_relaxed(&wake_latency_ns);
}

int64_t aio_poll_window_next(const AioPollParams *params, int64_t poll_ns,
                             int64_t block_ns, bool pollable, int64_t wake_ns)
{
    int64_t max_ns = params->max_ns;
    int64_t reach;

    if (max_ns <= 0) {
        return 0;
    }
    if (pollable && block_ns <= poll_ns) {
        return poll_ns; /* the window is right */
    }
    if (wake_ns < 0) {
        wake_ns = 0;
    }
    reach = max_ns + (wake_ns < max_ns ? wake_ns : max_ns);
    if (!pollable || block_ns > reach) {
        return params->shrink ? poll_ns / params->shrink : 0;
    }
    if (poll_ns >= max_ns) {
        return max_ns;
    }
    poll_ns = poll_ns ? poll_ns * (params->grow ? params->grow : 2)
                      : AIO_POLL_NS_START;
    return poll_ns < max_ns ? poll_ns : max_ns;
}
