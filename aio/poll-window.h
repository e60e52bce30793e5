/*
 * The adaptive-polling policy: how a context's busy-polling window follows
 * the waits it sees, and the estimate of what a sleeping wake-up costs.
 *
 * Thread-safety: aio_poll_window_next() is a pure function (any thread);
 * the wake-up estimate is process-wide and may be sampled and read from
 * any thread at any time (relaxed atomics: a lost sample does not matter).
 */
#ifndef DATAPLANE_AIO_POLL_WINDOW_H
#define DATAPLANE_AIO_POLL_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

/* First window when polling starts to grow from zero. */
#define AIO_POLL_NS_START 4000

typedef struct AioPollParams {
    int64_t max_ns; /* poll-max-ns, > 0 */
    int64_t grow;   /* poll-grow: 0 means 2 */
    int64_t shrink; /* poll-shrink: 0 means drop to zero */
} AioPollParams;

/*
 * The window after a wait of block_ns (from the start of polling to the
 * moment the thread ran again) that polling did not cover.  pollable says
 * whether polling could have seen the wait end (a BH, aio_notify(), a
 * handler with a poll function); wake_ns is what sleeping itself added to
 * the wait (aio_wake_latency_ns()): a busy-polling loop would have seen the
 * event that much earlier, so a wait of up to max_ns + wake_ns counts as
 * one polling could have covered.  wake_ns is capped at max_ns, so the
 * reach of polling is at most doubled.
 */
int64_t aio_poll_window_next(const AioPollParams *params, int64_t poll_ns,
                             int64_t block_ns, bool pollable, int64_t wake_ns);

/* Records one sleeping wake-up: from the eventfd write of aio_notify() to
 * the moment the woken loop ran (ns). */
void aio_wake_latency_sample(int64_t ns);

/* The current estimate (a moving average of the samples; 0 before any). */
int64_t aio_wake_latency_ns(void);

#endif /* DATAPLANE_AIO_POLL_WINDOW_H */
