/* pthread wrappers; see util/thread.h. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "util/thread.h"

void dp_pthread_check(int rc, const char *what)
{
    if (rc) {
        g_error("%s failed: %s", what, g_strerror(rc));
    }
}

void dp_mutex_init(DpMutex *m)
{
    dp_pthread_check(pthread_mutex_init(&m->m, NULL), "pthread_mutex_init");
}

void dp_mutex_destroy(DpMutex *m)
{
    dp_pthread_check(pthread_mutex_destroy(&m->m), "pthread_mutex_destroy");
}

void dp_mutex_lock(DpMutex *m)
{
    dp_pthread_check(pthread_mutex_lock(&m->m), "pthread_mutex_lock");
}

void dp_mutex_unlock(DpMutex *m)
{
    dp_pthread_check(pthread_mutex_unlock(&m->m), "pthread_mutex_unlock");
}

void dp_cond_init(DpCond *c)
{
    pthread_condattr_t attr;

    dp_pthread_check(pthread_condattr_init(&attr), "pthread_condattr_init");
    dp_pthread_check(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC),
                     "pthread_condattr_setclock");
    dp_pthread_check(pthread_cond_init(&c->c, &attr), "pthread_cond_init");
    pthread_condattr_destroy(&attr);
}

void dp_cond_destroy(DpCond *c)
{
    dp_pthread_check(pthread_cond_destroy(&c->c), "pthread_cond_destroy");
}

void dp_cond_wait(DpCond *c, DpMutex *m)
{
    dp_pthread_check(pthread_cond_wait(&c->c, &m->m), "pthread_cond_wait");
}

bool dp_cond_timedwait_ns(DpCond *c, DpMutex *m, int64_t deadline_ns)
{
    struct timespec ts = {
        .tv_sec = deadline_ns / 1000000000,
        .tv_nsec = deadline_ns % 1000000000,
    };
    int rc = pthread_cond_timedwait(&c->c, &m->m, &ts);

    if (rc == ETIMEDOUT) {
        return false;
    }
    dp_pthread_check(rc, "pthread_cond_timedwait");
    return true;
}

void dp_cond_signal(DpCond *c)
{
    dp_pthread_check(pthread_cond_signal(&c->c), "pthread_cond_signal");
}

void dp_cond_broadcast(DpCond *c)
{
    dp_pthread_check(pthread_cond_broadcast(&c->c), "pthread_cond_broadcast");
}

void dp_thread_create(DpThread *thread, const char *name, void *(*fn)(void *),
                      void *arg)
{
    sigset_t all, old;
    char comm[16];

    /*
     * New threads start with every signal blocked so that process-directed
     * signals (SIGTERM, SIGINT) reach the main loop thread, which handles
     * them; callers that want signals in a thread unblock them there.
     * Not the ones a fault raises in the faulting thread: blocking those
     * only makes the kernel kill the process without running any handler
     * (the sanitizers', or the vhost guest memory guard's SIGBUS handler).
     */
    sigfillset(&all);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGTRAP);
    sigdelset(&all, SIGSYS);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    dp_pthread_check(pthread_create(&thread->t, NULL, fn, arg),
                     "pthread_create");
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (name) {
        snprintf(comm, sizeof(comm), "%s", name);
        pthread_setname_np(thread->t, comm);
    }
}

void *dp_thread_join(DpThread *thread)
{
    void *ret;

    dp_pthread_check(pthread_join(thread->t, &ret), "pthread_join");
    return ret;
}

pid_t dp_thread_get_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}
