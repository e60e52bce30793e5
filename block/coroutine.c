/*
 * Coroutines on ucontext, switched with _setjmp/_longjmp.
 *
 * makecontext() + swapcontext() start a coroutine on its own stack once,
 * when it is created; every later switch is a _setjmp/_longjmp pair, which
 * (unlike swapcontext) makes no system call to save the signal mask.  A
 * finished coroutine keeps its stack and goes back to a small pool, so a
 * request costs no mmap.
 *
 * The sanitizers are told about every stack switch (AddressSanitizer's
 * fiber API, ThreadSanitizer's fibers), otherwise they would take the
 * jumps for stack corruption.
 */
#include <glib.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "block/coroutine.h"

#if defined(__SANITIZE_ADDRESS__)
#define CO_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define CO_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CO_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define CO_TSAN 1
#endif
#endif
#ifdef CO_ASAN
#include <sanitizer/asan_interface.h>
#endif
#ifdef CO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define CO_STACK_SIZE (256 * 1024)
#define CO_POOL_MAX 64

struct Coroutine {
    CoroutineEntry *fn;
    void *opaque;
    jmp_buf env;       /* where this coroutine resumes */
    Coroutine *caller; /* who entered it; NULL: the thread itself */
    bool done;
    char *stack; /* CO_STACK_SIZE usable bytes above a guard page */
    jmp_buf *create_env;
    const void *caller_stack; /* ASan: the caller's stack, to go back */
    size_t caller_stack_size;
    void *fake_stack;
    void *tsan_fiber;
    void *creator_fiber; /* TSan: the fiber that runs coroutine_new */
    Coroutine *pool_next;
};

static __thread Coroutine *current;
static __thread jmp_buf leader_env;
static __thread void *leader_fiber;

static GMutex pool_lock;
static Coroutine *pool;
static unsigned pool_len;

static void start_switch(void **fake_save, const void *bottom, size_t size)
{
#ifdef CO_ASAN
    __sanitizer_start_switch_fiber(fake_save, bottom, size);
#endif
}

static void finish_switch(void *fake_save, const void **bottom, size_t *size)
{
#ifdef CO_ASAN
    __sanitizer_finish_switch_fiber(fake_save, bottom, size);
#endif
}

static void tsan_switch(void *fiber)
{
#ifdef CO_TSAN
    __tsan_switch_to_fiber(fiber, 0);
#endif
}

/* Back to whoever entered co; returns when co is entered again. */
static void switch_to_caller(Coroutine *co, bool terminating)
{
    Coroutine *to = co->caller;

    current = to;
    if (!_setjmp(co->env)) {
        start_switch(terminating ? NULL : &co->fake_stack, co->caller_stack,
                     co->caller_stack_size);
        tsan_switch(to ? to->tsan_fiber : leader_fiber);
        _longjmp(to ? to->env : leader_env, 1);
    }
    finish_switch(co->fake_stack, &co->caller_stack, &co->caller_stack_size);
}

static void trampoline(int lo, int hi)
{
    Coroutine *co =
        (Coroutine *)(uintptr_t)(((uint64_t)(uint32_t)hi << 32) | (uint32_t)lo);

    finish_switch(NULL, &co->caller_stack, &co->caller_stack_size);
    /* The first switch only records where to start; creation goes on. */
    if (!_setjmp(co->env)) {
        start_switch(&co->fake_stack, co->caller_stack, co->caller_stack_size);
        tsan_switch(co->creator_fiber);
        _longjmp(*co->create_env, 1);
    }
    finish_switch(co->fake_stack, &co->caller_stack, &co->caller_stack_size);
    for (;;) {
        co->fn(co->opaque);
        co->done = true;
        switch_to_caller(co, true);
    }
}

static Coroutine *coroutine_new(void)
{
    Coroutine *co = g_new0(Coroutine, 1);
    size_t page = 4096;
    char *mem = mmap(NULL, CO_STACK_SIZE + page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ucontext_t uc, old_uc;
    jmp_buf create_env;
    uint64_t p = (uint64_t)(uintptr_t)co;
    void *fake = NULL;

    if (mem == MAP_FAILED) {
        g_error("coroutine: cannot map a %d-byte stack", CO_STACK_SIZE);
    }
    /* A guard page below the stack turns an overflow into a crash. */
    mprotect(mem, page, PROT_NONE);
    co->stack = mem + page;
    if (getcontext(&uc) < 0) {
        g_error("coroutine: getcontext failed");
    }
    uc.uc_link = NULL;
    uc.uc_stack.ss_sp = co->stack;
    uc.uc_stack.ss_size = CO_STACK_SIZE;
    uc.uc_stack.ss_flags = 0;
    co->create_env = &create_env;
#ifdef CO_TSAN
    co->tsan_fiber = __tsan_create_fiber(0);
    co->creator_fiber = __tsan_get_current_fiber();
#endif
    makecontext(&uc, (void (*)(void))trampoline, 2, (int)(uint32_t)p,
                (int)(uint32_t)(p >> 32));
    if (!_setjmp(create_env)) {
        start_switch(&fake, co->stack, CO_STACK_SIZE);
        tsan_switch(co->tsan_fiber);
        swapcontext(&old_uc, &uc);
    }
    finish_switch(fake, NULL, NULL);
    co->create_env = NULL;
    return co;
}

Coroutine *coroutine_create(CoroutineEntry *fn, void *opaque)
{
    Coroutine *co;

    g_mutex_lock(&pool_lock);
    co = pool;
    if (co) {
        pool = co->pool_next;
        pool_len--;
    }
    g_mutex_unlock(&pool_lock);
    if (!co) {
        co = coroutine_new();
    }
    co->fn = fn;
    co->opaque = opaque;
    co->done = false;
    co->caller = NULL;
    return co;
}

static void coroutine_free(Coroutine *co)
{
    g_mutex_lock(&pool_lock);
    if (pool_len < CO_POOL_MAX) {
        co->pool_next = pool;
        pool = co;
        pool_len++;
        co = NULL;
    }
    g_mutex_unlock(&pool_lock);
    if (co) {
        munmap(co->stack - 4096, CO_STACK_SIZE + 4096);
#ifdef CO_TSAN
        __tsan_destroy_fiber(co->tsan_fiber);
#endif
        g_free(co);
    }
}

void coroutine_enter(Coroutine *co)
{
    Coroutine *from = current;
    void *fake = NULL;

    g_assert(co != from && !co->done);
    co->caller = from;
    current = co;
#ifdef CO_TSAN
    if (!from) {
        leader_fiber = __tsan_get_current_fiber();
    }
#endif
    if (!_setjmp(from ? from->env : leader_env)) {
        start_switch(&fake, co->stack, CO_STACK_SIZE);
        tsan_switch(co->tsan_fiber);
        _longjmp(co->env, 1);
    }
    finish_switch(fake, NULL, NULL);
    current = from;
    if (co->done) {
        coroutine_free(co);
    }
}

void coroutine_yield(void)
{
    Coroutine *co = current;

    g_assert(co);
    switch_to_caller(co, false);
}

Coroutine *coroutine_self(void)
{
    return current;
}
