/*
 * Helpers shared by the benchmark programs of bench/: option parsing
 * (--quick, --rounds N), the BENCH output line of docs/CONTRACTS, timing
 * and a median.
 *
 * Output contract: one line per measurement on stdout,
 *     BENCH<TAB>figure<TAB>implementation<TAB>value<TAB>unit<TAB>higher|lower
 * and, for a measurement that could not be made, one line
 *     NOTE<TAB>figure<TAB>implementation<TAB>reason
 * so that bench/run can say why a cell of its table is empty.  Everything
 * else (progress, diagnostics) goes to stderr.
 *
 * Thread-safety: bench_parse_args() from main() before any thread starts;
 * the printing helpers from one thread at a time.
 */
#ifndef DATAPLANE_BENCH_UTIL_H
#define DATAPLANE_BENCH_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "util/clock.h" /* clock_monotonic_ns() for wall-clock intervals */

typedef struct BenchOpts {
    bool quick;       /* a few seconds in all: smaller counts, shorter runs */
    int rounds;       /* each measurement is repeated this many times */
    const char *only; /* run only implementations whose name starts so */
} BenchOpts;

static inline void bench_usage(const char *prog, const char *what)
{
    fprintf(stderr,
            "usage: %s [--quick] [--rounds N] [--only IMPL]\n"
            "  %s\n"
            "  --quick      a few seconds in all (smaller counts)\n"
            "  --rounds N   repeat every measurement N times (default 3)\n"
            "  --only IMPL  measure only implementations named IMPL...\n"
            "Prints BENCH lines (figure, implementation, value, unit,\n"
            "higher|lower) on stdout; bench/run takes medians over rounds.\n",
            prog, what);
}

/* Parses argv; exits with a usage message on bad input. */
static inline void bench_parse_args(int argc, char **argv, BenchOpts *opts,
                                    const char *what)
{
    int i;

    opts->quick = false;
    opts->rounds = 3;
    opts->only = NULL;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            opts->quick = true;
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            char *end;
            long n = strtol(argv[++i], &end, 10);

            if (*end || n < 1 || n > 1000) {
                fprintf(stderr,
                        "%s: --rounds wants a count from 1 to 1000, "
                        "not '%s'\n",
                        argv[0], argv[i]);
                exit(2);
            }
            opts->rounds = (int)n;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            opts->only = argv[++i];
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            bench_usage(argv[0], what);
            exit(0);
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], argv[i]);
            bench_usage(argv[0], what);
            exit(2);
        }
    }
}

/* Whether implementation impl is selected by --only. */
static inline bool bench_wants(const BenchOpts *opts, const char *impl)
{
    return !opts->only || !strncmp(impl, opts->only, strlen(opts->only));
}

static inline void bench_report(const char *figure, const char *impl,
                                double value, const char *unit,
                                bool higher_is_better)
{
    printf("BENCH\t%s\t%s\t%.6g\t%s\t%s\n", figure, impl, value, unit,
           higher_is_better ? "higher" : "lower");
    fflush(stdout);
}

static inline void bench_note(const char *figure, const char *impl,
                              const char *reason)
{
    printf("NOTE\t%s\t%s\t%s\n", figure, impl, reason);
    fflush(stdout);
}

/* CPU time (user + system) of the whole process, in ns. */
static inline int64_t bench_process_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Sorts v in place; returns its p-th percentile (0 <= p <= 100). */
static inline double bench_percentile(double *v, size_t n, double p)
{
    size_t idx;

    if (n == 0) {
        return 0;
    }
    qsort(v, n, sizeof(*v), bench_cmp_double);
    idx = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[idx < n ? idx : n - 1];
}

/*
 * Raises the open-file limit to at least want; returns false if the hard
 * limit is lower and cannot be raised (not root).
 */
static inline bool bench_raise_nofile(rlim_t want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        return false;
    }
    if (rl.rlim_cur >= want) {
        return true;
    }
    if (rl.rlim_max < want) {
        rl.rlim_max = want; /* needs CAP_SYS_RESOURCE */
    }
    rl.rlim_cur = want;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

#endif /* DATAPLANE_BENCH_UTIL_H */
