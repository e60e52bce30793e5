/*
 * Thin wrappers over pthread mutexes, condition variables and threads.
 *
 * pthreads rather than GMutex so that ThreadSanitizer sees every lock.
 * Failures of these calls are programming errors and abort.
 *
 * Thread-safety: as pthreads; every function may be called from any thread.
 */
#ifndef DATAPLANE_UTIL_THREAD_H
#define DATAPLANE_UTIL_THREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct DpMutex {
    pthread_mutex_t m;
} DpMutex;

typedef struct DpCond {
    pthread_cond_t c;
} DpCond;

typedef struct DpThread {
    pthread_t t;
} DpThread;

/* Aborts with a message naming what if rc (a pthread call's result) is not
 * zero: for pthread calls made outside these wrappers. */
void dp_pthread_check(int rc, const char *what);

void dp_mutex_init(DpMutex *m);
void dp_mutex_destroy(DpMutex *m);
void dp_mutex_lock(DpMutex *m);
void dp_mutex_unlock(DpMutex *m);

/* Condition variables use CLOCK_MONOTONIC for timed waits. */
void dp_cond_init(DpCond *c);
void dp_cond_destroy(DpCond *c);
void dp_cond_wait(DpCond *c, DpMutex *m);
/* Returns false on timeout.  deadline_ns is on CLOCK_MONOTONIC. */
bool dp_cond_timedwait_ns(DpCond *c, DpMutex *m, int64_t deadline_ns);
void dp_cond_signal(DpCond *c);
void dp_cond_broadcast(DpCond *c);

/*
 * Starts a joinable thread running fn(arg).  name (at most 15 bytes are
 * kept, the kernel's limit) shows in /proc/self/task/<tid>/comm.
 */
void dp_thread_create(DpThread *thread, const char *name, void *(*fn)(void *),
                      void *arg);
void *dp_thread_join(DpThread *thread);
/* The kernel thread id of the calling thread. */
pid_t dp_thread_get_tid(void);

#endif /* DATAPLANE_UTIL_THREAD_H */
