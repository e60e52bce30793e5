/*
 * The SIGBUS guard over guest memory mappings.  See memory-guard.h.
 *
 * The table is a fixed array: writers (any thread, under guard_lock) fill
 * a slot's fields and then set its state to LIVE with release; the handler
 * reads state with acquire, then the fields.  A slot is removed by setting
 * its state to FREE before the mapping goes (the connection unmaps only
 * when no request is in flight, so no access can race with that).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "util/atomic.h"
#include "vhost/memory-guard.h"

#define GUARD_SLOTS 1024

enum { SLOT_FREE = 0, SLOT_LIVE = 1 };

typedef struct GuardSlot {
    int state; /* atomic: SLOT_FREE / SLOT_LIVE */
    uintptr_t start;
    uintptr_t end;
    size_t page_size;
    int tripped; /* atomic */
} GuardSlot;

static GuardSlot slots[GUARD_SLOTS];
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed;        /* under guard_lock */
static struct sigaction prev; /* the handler before ours */
static uint64_t faults;       /* atomic */

/* Hands the signal to the previous disposition. */
static void chain(int sig, siginfo_t *info, void *uctx)
{
    if (prev.sa_flags & SA_SIGINFO) {
        if (prev.sa_sigaction) {
            prev.sa_sigaction(sig, info, uctx);
            return;
        }
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
        prev.sa_handler(sig);
        return;
    }
    /* The default: die of SIGBUS, as without us. */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void sigbus_handler(int sig, siginfo_t *info, void *uctx)
{
    uintptr_t addr = (uintptr_t)info->si_addr;
    int saved_errno = errno;

    for (int i = 0; i < GUARD_SLOTS; i++) {
        GuardSlot *s = &slots[i];
        uintptr_t base;
        void *p;

        if (dp_atomic_load_acquire(&s->state) != SLOT_LIVE || addr < s->start ||
            addr >= s->end) {
            continue;
        }
        /* The file ended here: from this page on, private zeroes. */
        base = addr & ~(uintptr_t)(s->page_size - 1);
        if (base < s->start) {
            base = s->start;
        }
        p = mmap((void *)base, s->end - base, PROT_READ | PROT_WRITE,
                 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                 0);
        if (p == MAP_FAILED) {
            break;
        }
        dp_atomic_store_relaxed(&s->tripped, 1);
        dp_atomic_inc_relaxed(&faults);
        errno = saved_errno;
        return;
    }
    errno = saved_errno;
    chain(sig, info, uctx);
}

static void install_locked(void)
{
    struct sigaction sa;

    if (installed) {
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = sigbus_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &prev);
    installed = true;
}

int vhost_mem_guard_add(void *addr, size_t len, size_t page_size)
{
    int slot = -1;

    pthread_mutex_lock(&guard_lock);
    install_locked();
    for (int i = 0; i < GUARD_SLOTS; i++) {
        if (dp_atomic_load_relaxed(&slots[i].state) == SLOT_FREE) {
            GuardSlot *s = &slots[i];

            s->start = (uintptr_t)addr;
            s->end = (uintptr_t)addr + len;
            s->page_size = page_size ? page_size : 4096;
            dp_atomic_store_relaxed(&s->tripped, 0);
            /* The fields before the state (pairs with the handler's
             * acquire load). */
            dp_atomic_store_release(&s->state, SLOT_LIVE);
            slot = i;
            break;
        }
    }
    pthread_mutex_unlock(&guard_lock);
    return slot;
}

void vhost_mem_guard_remove(int slot)
{
    if (slot < 0 || slot >= GUARD_SLOTS) {
        return;
    }
    pthread_mutex_lock(&guard_lock);
    dp_atomic_store_release(&slots[slot].state, SLOT_FREE);
    pthread_mutex_unlock(&guard_lock);
}

bool vhost_mem_guard_tripped(int slot)
{
    if (slot < 0 || slot >= GUARD_SLOTS) {
        return false;
    }
    return dp_atomic_load_relaxed(&slots[slot].tripped) != 0;
}

uint64_t vhost_mem_guard_faults(void)
{
    return dp_atomic_load_relaxed(&faults);
}
