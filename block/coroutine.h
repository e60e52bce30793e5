/*
 * Coroutines for drivers whose requests are long sequences of dependent
 * I/O (qcow2: look up a table, allocate, copy, write, update the table).
 * A request runs as straight-line code that yields while its child I/O is
 * in flight and is re-entered by the I/O's callback, instead of a chain of
 * callbacks.  Not installed.
 *
 * A coroutine runs only in the thread that enters it, until it yields or
 * returns; it never migrates while it runs.  The block layer's rule that a
 * node's requests run in its AioContext keeps each coroutine in one thread
 * at a time (nothing is in flight while a node moves).
 *
 * Thread-safety: coroutine_create, coroutine_enter and coroutine_self may be
 * called from any thread; coroutine_yield only from inside a coroutine.  A
 * coroutine must not be entered by two threads at once, nor entered while
 * it is running (the caller of coroutine_enter owns the right to enter it,
 * usually handed over by one I/O callback).
 */
#ifndef DATAPLANE_BLOCK_COROUTINE_H
#define DATAPLANE_BLOCK_COROUTINE_H

#include <stdbool.h>

typedef struct Coroutine Coroutine;
typedef void CoroutineEntry(void *opaque);

/* A coroutine that will run fn(opaque) when first entered.  Stacks are
 * reused from a pool. */
Coroutine *coroutine_create(CoroutineEntry *fn, void *opaque);
/* Runs co until it yields or returns (then it is freed). */
void coroutine_enter(Coroutine *co);
/* Inside a coroutine: returns to whoever entered it. */
void coroutine_yield(void);
/* The running coroutine, NULL outside of one. */
Coroutine *coroutine_self(void);

#endif /* DATAPLANE_BLOCK_COROUTINE_H */
