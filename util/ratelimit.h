/*
 * Rate-limited log lines, for every message a peer can trigger again and
 * again (accept errors at the fd limit, bad NBD magic, handshake failures):
 * a flood of connections must not become a flood of log lines.
 *
 * Each call site owns a LogRateLimit (a static one, usually).  In every
 * window of LOG_RATELIMIT_WINDOW_NS it lets LOG_RATELIMIT_BURST lines
 * through and drops the rest; the first line let through after drops ends
 * with how many were dropped, so the count is never lost, only late.
 *
 * Thread-safety: any thread; one internal lock serialises every limiter
 * (log lines are rare by design, and a dropped one costs only the lock).
 */
#ifndef DATAPLANE_UTIL_RATELIMIT_H
#define DATAPLANE_UTIL_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#define LOG_RATELIMIT_BURST 10
#define LOG_RATELIMIT_WINDOW_NS (INT64_C(10) * 1000000000)

typedef struct LogRateLimit {
    int64_t window_start_ns; /* CLOCK_MONOTONIC */
    unsigned printed;        /* lines let through in this window */
    uint64_t dropped;        /* lines dropped since the last one printed */
} LogRateLimit;

#define LOG_RATELIMIT_INIT                                                     \
    {                                                                          \
        0, 0, 0                                                                \
    }

/*
 * As error_report(), unless rl has let LOG_RATELIMIT_BURST lines through
 * in the current window.  Returns whether the line was printed.
 */
bool error_report_ratelimited(LogRateLimit *rl, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

/* How many lines rl has dropped that no printed line has reported yet. */
uint64_t log_ratelimit_pending(LogRateLimit *rl);

#endif /* DATAPLANE_UTIL_RATELIMIT_H */
