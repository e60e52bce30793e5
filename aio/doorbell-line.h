/*
 * Doorbell lines: where each AioContext's doorbell word (bh.c) lives.
 *
 * The words of up to AIO_DOORBELL_LINE_SHARERS contexts share one cache
 * line, filled in creation order (a freed word is reused first).  Two
 * loops that hand work to each other then touch a single line: the
 * consumer's exchange of its own word brings the line into its cache, and
 * its callback's ring of the other loop's word is a write to a line it
 * holds already, so a hop moves the line once, as two threads spinning on
 * one flag do.  With a line per context a hop moves two lines (the ring's
 * and the take's).  The price is paid by contexts that share a line and do
 * not talk: a ring of one makes the others' next look at their word a
 * cache miss.  docs/aio.md has the measurements, docs/scaling.md the
 * limits.
 *
 * Thread-safety: both functions may be called from any thread (a global
 * mutex; they run when a context is made or freed, never in a hand-off).
 */
#ifndef DATAPLANE_AIO_DOORBELL_LINE_H
#define DATAPLANE_AIO_DOORBELL_LINE_H

#include <stdint.h>

/* Contexts whose doorbell words share a cache line. */
#define AIO_DOORBELL_LINE_SHARERS 4

/* A zeroed word for a new context: the first free one, lines in the order
 * they were made.  Never fails (aborts if out of memory, as g_new does). */
uint64_t *aio_doorbell_word_get(void);

/* Gives back a word from aio_doorbell_word_get(); its line is freed with
 * its last word. */
void aio_doorbell_word_put(uint64_t *word);

#endif /* DATAPLANE_AIO_DOORBELL_LINE_H */
