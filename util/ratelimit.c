/* Rate-limited log lines; see ratelimit.h. */
#include <pthread.h>
#include <stdarg.h>

#include "dataplane/error.h"
#include "util/clock.h"
#include "util/ratelimit.h"

/* Guards every LogRateLimit; a static initializer, so that a limiter works
 * before anything else is set up. */
static pthread_mutex_t ratelimit_lock = PTHREAD_MUTEX_INITIALIZER;

bool error_report_ratelimited(LogRateLimit *rl, const char *fmt, ...)
{
    int64_t now = clock_monotonic_ns();
    uint64_t dropped = 0;
    bool print;
    va_list ap;

    pthread_mutex_lock(&ratelimit_lock);
    if (rl->window_start_ns == 0 ||
        now - rl->window_start_ns >= LOG_RATELIMIT_WINDOW_NS) {
        rl->window_start_ns = now;
        rl->printed = 0;
    }
    print = rl->printed < LOG_RATELIMIT_BURST;
    if (print) {
        rl->printed++;
        dropped = rl->dropped;
        rl->dropped = 0;
    } else {
        rl->dropped++;
    }
    pthread_mutex_unlock(&ratelimit_lock);

    if (print) {
        g_autofree char *msg = NULL;

        va_start(ap, fmt);
        msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        if (dropped) {
            error_report("%s (%" G_GUINT64_FORMAT " similar messages "
                         "suppressed)",
                         msg, dropped);
        } else {
            error_report("%s", msg);
        }
    }
    return print;
}

uint64_t log_ratelimit_pending(LogRateLimit *rl)
{
    uint64_t n;

    pthread_mutex_lock(&ratelimit_lock);
    n = rl->dropped;
    pthread_mutex_unlock(&ratelimit_lock);
    return n;
}
