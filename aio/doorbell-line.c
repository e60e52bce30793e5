/*
 * Doorbell lines (see doorbell-line.h for why contexts share them).
 */
#include <glib.h>

#include "aio/doorbell-line.h"
#include "util/atomic.h"
#include "util/thread.h"

#define LINE_BYTES 64

typedef struct DoorbellLine {
    _Alignas(LINE_BYTES) uint64_t word[AIO_DOORBELL_LINE_SHARERS];
} DoorbellLine;

_Static_assert(sizeof(DoorbellLine) == LINE_BYTES,
               "a doorbell line is one cache line");

/* The lines (NULL: a hole left by a freed line) and which of their words
 * are in use, a bit each.  The bookkeeping is kept off the lines, which
 * carry nothing but the words.  Protected by lines_lock. */
static DpMutex lines_lock = {PTHREAD_MUTEX_INITIALIZER};
static DoorbellLine **lines;
static unsigned *lines_used;
static unsigned n_lines;

#define LINE_FULL ((1u << AIO_DOORBELL_LINE_SHARERS) - 1)

/* A line with a free word, made if need be: the first one. */
static unsigned line_with_free_word(void)
{
    unsigned i;
    unsigned hole = n_lines;

    for (i = 0; i < n_lines; i++) {
        if (lines[i] && lines_used[i] != LINE_FULL) {
            return i;
        }
        if (!lines[i] && hole == n_lines) {
            hole = i;
        }
    }
    if (hole == n_lines) {
        n_lines++;
        lines = g_renew(DoorbellLine *, lines, n_lines);
        lines_used = g_renew(unsigned, lines_used, n_lines);
    }
    lines[hole] = g_aligned_alloc0(1, sizeof(DoorbellLine), LINE_BYTES);
    lines_used[hole] = 0;
    return hole;
}

uint64_t *aio_doorbell_word_get(void)
{
    unsigned i;
    int w;

    dp_mutex_lock(&lines_lock);
    i = line_with_free_word();
    w = __builtin_ctz(~lines_used[i]);
    lines_used[i] |= 1u << w;
    dp_mutex_unlock(&lines_lock);
    /* Zero since its last owner put it back (or since the line was made). */
    return &lines[i]->word[w];
}

void aio_doorbell_word_put(uint64_t *word)
{
    uintptr_t line_addr = (uintptr_t)word & ~(uintptr_t)(LINE_BYTES - 1);
    unsigned i;

    dp_mutex_lock(&lines_lock);
    for (i = 0; i < n_lines; i++) {
        if ((uintptr_t)lines[i] == line_addr) {
            break;
        }
    }
    g_assert(i < n_lines);
    /* Nobody rings a freed context: the word is only cleared for its next
     * owner (bits of BHs that never ran). */
    dp_atomic_store_relaxed(word, 0);
    lines_used[i] &= ~(1u << (word - lines[i]->word));
    if (!lines_used[i]) {
        g_aligned_free(lines[i]);
        lines[i] = NULL;
    }
    dp_mutex_unlock(&lines_lock);
}
