/*
 * Clocks in nanoseconds.
 *
 * Thread-safety: safe from any thread.
 */
#ifndef DATAPLANE_UTIL_CLOCK_H
#define DATAPLANE_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in ns: never jumps; for deadlines and measurements. */
static inline int64_t clock_monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CLOCK_REALTIME in ns: wall-clock time, may jump. */
static inline int64_t clock_host_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CPU time consumed by the calling thread, in ns. */
static inline int64_t clock_thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#endif /* DATAPLANE_UTIL_CLOCK_H */
