/*
 * Atomic accesses, as thin names over the GCC/Clang __atomic builtins.
 *
 * Plain `atomic_read/atomic_set` are relaxed; the `_acquire/_release`
 * variants order the surrounding accesses; the `_seq` ones are sequentially
 * consistent, which is what a Dekker-style "store mine, load yours" handshake
 * needs.  There is no bare fence macro: gcc's ThreadSanitizer does not
 * model fences, so handshakes use seq_cst accesses on both sides instead.
 * Every such pairing has a comment naming its partner.
 */
#ifndef DATAPLANE_UTIL_ATOMIC_H
#define DATAPLANE_UTIL_ATOMIC_H

#define atomic_read(p) __atomic_load_n(p, __ATOMIC_RELAXED)
#define atomic_set(p, v) __atomic_store_n(p, v, __ATOMIC_RELAXED)
#define atomic_load_acquire(p) __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define atomic_store_release(p, v) __atomic_store_n(p, v, __ATOMIC_RELEASE)
#define atomic_read_seq(p) __atomic_load_n(p, __ATOMIC_SEQ_CST)
#define atomic_set_seq(p, v) __atomic_store_n(p, v, __ATOMIC_SEQ_CST)

#define atomic_fetch_add_seq(p, n) __atomic_fetch_add(p, n, __ATOMIC_SEQ_CST)
#define atomic_fetch_sub_seq(p, n) __atomic_fetch_sub(p, n, __ATOMIC_SEQ_CST)
#define atomic_inc_relaxed(p) ((void)__atomic_fetch_add(p, 1, __ATOMIC_RELAXED))
#define atomic_add_relaxed(p, n)                                               \
    ((void)__atomic_fetch_add(p, n, __ATOMIC_RELAXED))
#define atomic_fetch_or(p, v) __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST)
#define atomic_fetch_and(p, v) __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST)
#define atomic_xchg(p, v) __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST)
#define atomic_cmpxchg_weak(p, expected, desired)                              \
    __atomic_compare_exchange_n(p, expected, desired, true, __ATOMIC_RELEASE,  \
                                __ATOMIC_RELAXED)

#endif /* DATAPLANE_UTIL_ATOMIC_H */
