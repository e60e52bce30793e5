/*
 * Atomic accesses, as thin names over the GCC/Clang __atomic builtins.
 *
 * Every name says its memory order, so a reader never has to look up what
 * a bare "atomic_read" means: `_relaxed` orders nothing else, `_acquire`
 * and `_release` order the surrounding accesses (an acquire load pairs with
 * the release store it reads from), `_seq_cst` is what a Dekker-style
 * "store mine, load yours" handshake needs.  The `dp_` prefix keeps clear
 * of the atomic_* names that <stdatomic.h> has and reserves.
 *
 * There is no bare fence macro: gcc's ThreadSanitizer does not model
 * fences, so handshakes use seq_cst accesses on both sides instead.  Every
 * such pairing has a comment naming its partner.
 */
#ifndef DATAPLANE_UTIL_ATOMIC_H
#define DATAPLANE_UTIL_ATOMIC_H

/* Loads and stores. */
#define dp_atomic_load_relaxed(p) __atomic_load_n(p, __ATOMIC_RELAXED)
#define dp_atomic_load_acquire(p) __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define dp_atomic_load_seq_cst(p) __atomic_load_n(p, __ATOMIC_SEQ_CST)
#define dp_atomic_store_relaxed(p, v) __atomic_store_n(p, v, __ATOMIC_RELAXED)
#define dp_atomic_store_release(p, v) __atomic_store_n(p, v, __ATOMIC_RELEASE)
#define dp_atomic_store_seq_cst(p, v) __atomic_store_n(p, v, __ATOMIC_SEQ_CST)

/* Read-modify-write; the fetch_ forms return the old value. */
#define dp_atomic_fetch_add_relaxed(p, n)                                      \
    __atomic_fetch_add(p, n, __ATOMIC_RELAXED)
#define dp_atomic_fetch_add_release(p, n)                                      \
    __atomic_fetch_add(p, n, __ATOMIC_RELEASE)
#define dp_atomic_fetch_add_seq_cst(p, n)                                      \
    __atomic_fetch_add(p, n, __ATOMIC_SEQ_CST)
#define dp_atomic_fetch_sub_acq_rel(p, n)                                      \
    __atomic_fetch_sub(p, n, __ATOMIC_ACQ_REL)
#define dp_atomic_fetch_sub_seq_cst(p, n)                                      \
    __atomic_fetch_sub(p, n, __ATOMIC_SEQ_CST)
#define dp_atomic_inc_relaxed(p) ((void)dp_atomic_fetch_add_relaxed(p, 1))
#define dp_atomic_add_relaxed(p, n) ((void)dp_atomic_fetch_add_relaxed(p, n))
#define dp_atomic_fetch_or_seq_cst(p, v)                                       \
    __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST)
#define dp_atomic_fetch_and_seq_cst(p, v)                                      \
    __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST)
#define dp_atomic_xchg_acquire(p, v) __atomic_exchange_n(p, v, __ATOMIC_ACQUIRE)
#define dp_atomic_xchg_seq_cst(p, v) __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST)

/*
 * Compare-and-swap: if *p == *expected, stores desired and returns true;
 * else loads *p into *expected and returns false.  The weak form may fail
 * spuriously (use it in a loop); its success is a release, its failure
 * relaxed.
 */
#define dp_atomic_cmpxchg_weak_release(p, expected, desired)                   \
    __atomic_compare_exchange_n(p, expected, desired, true, __ATOMIC_RELEASE,  \
                                __ATOMIC_RELAXED)
#define dp_atomic_cmpxchg_seq_cst(p, expected, desired)                        \
    __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_SEQ_CST, \
                                __ATOMIC_SEQ_CST)

#endif /* DATAPLANE_UTIL_ATOMIC_H */
