/*
 * Inflight I/O tracking for split queues.  See inflight.h.
 *
 * Stores into the region use release order where a successor must see
 * them in order after a crash of this process: an entry's counter before
 * its inflight flag, a batch's links before the used index moves (the
 * caller publishes it), the flags' clearing before region->used_idx.
 */
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic.h"
#include "vhost/inflight.h"

_Static_assert(sizeof(VhostInflightDesc) == 16, "spec layout");
_Static_assert(sizeof(VhostInflightRegion) == 16, "spec layout");

#define INFLIGHT_ALIGN 64

size_t vhost_inflight_region_size(uint16_t queue_size)
{
    size_t n = sizeof(VhostInflightRegion) +
               (size_t)queue_size * sizeof(VhostInflightDesc);

    return (n + INFLIGHT_ALIGN - 1) & ~(size_t)(INFLIGHT_ALIGN - 1);
}

typedef struct Resubmit {
    uint64_t counter;
    uint16_t head;
} Resubmit;

static int resubmit_cmp(const void *a, const void *b)
{
    const Resubmit *x = a;
    const Resubmit *y = b;

    return x->counter < y->counter ? -1 : x->counter > y->counter;
}

uint16_t vhost_inflight_start(VhostInflightQueue *q,
                              VhostInflightRegion *region, uint16_t num,
                              uint16_t used_idx, uint16_t last_avail_idx,
                              uint16_t *resubmit, unsigned *n_resubmit)
{
    Resubmit *list;
    unsigned n = 0;
    unsigned i;

    *n_resubmit = 0;
    vhost_inflight_stop(q);
    q->region = region;
    q->num = num;
    q->counter = 0;
    if (!region) {
        return last_avail_idx;
    }
    q->batch = g_new(uint16_t, num);
    q->batch_len = 0;
    if (region->version != VHOST_INFLIGHT_VERSION || region->desc_num != num) {
        /* Never used, or for another ring: start afresh, trusting the
         * front-end's base. */
        memset(region, 0, vhost_inflight_region_size(num));
        region->desc_num = num;
        region->used_idx = used_idx;
        dp_atomic_store_release(&region->version,
                                (uint16_t)VHOST_INFLIGHT_VERSION);
        return last_avail_idx;
    }
    if (region->used_idx != used_idx) {
        /* A batch reached the used ring but its flags were not cleared
         * before the crash: clear them now, following the links. */
        uint16_t batch = (uint16_t)(used_idx - region->used_idx);
        uint16_t h = region->last_batch_head;

        for (i = 0; i < batch && i < num && h < num; i++) {
            region->desc[h].inflight = 0;
            h = region->desc[h].next;
        }
        region->used_idx = used_idx;
    }
    list = g_new(Resubmit, num);
    for (i = 0; i < num; i++) {
        if (region->desc[i].inflight) {
            list[n].counter = region->desc[i].counter;
            list[n].head = (uint16_t)i;
            n++;
        }
    }
    qsort(list, n, sizeof(list[0]), resubmit_cmp);
    for (i = 0; i < n; i++) {
        resubmit[i] = list[i].head;
    }
    q->counter = n ? list[n - 1].counter + 1 : 0;
    *n_resubmit = n;
    g_free(list);
    return (uint16_t)(used_idx + n);
}

void vhost_inflight_stop(VhostInflightQueue *q)
{
    g_free(q->batch);
    q->batch = NULL;
    q->batch_len = 0;
    q->region = NULL;
}

void vhost_inflight_take(VhostInflightQueue *q, uint16_t head)
{
    VhostInflightDesc *d;

    if (!q->region || head >= q->num) {
        return;
    }
    d = &q->region->desc[head];
    dp_atomic_store_relaxed(&d->counter, q->counter++);
    /* The counter before the flag. */
    dp_atomic_store_release(&d->inflight, (uint8_t)1);
}

void vhost_inflight_push(VhostInflightQueue *q, uint16_t head)
{
    if (!q->region || head >= q->num || q->batch_len >= q->num) {
        return;
    }
    q->batch[q->batch_len++] = head;
}

void vhost_inflight_pre_publish(VhostInflightQueue *q)
{
    VhostInflightRegion *r = q->region;
    unsigned i;

    if (!r) {
        return;
    }
    for (i = 0; i < q->batch_len; i++) {
        uint16_t h = q->batch[i];

        dp_atomic_store_relaxed(&r->desc[h].next, r->last_batch_head);
        dp_atomic_store_release(&r->last_batch_head, h);
    }
}

void vhost_inflight_commit(VhostInflightQueue *q, uint16_t used_idx)
{
    VhostInflightRegion *r = q->region;
    unsigned i;

    if (!r) {
        return;
    }
    for (i = 0; i < q->batch_len; i++) {
        dp_atomic_store_relaxed(&r->desc[q->batch[i]].inflight, (uint8_t)0);
    }
    dp_atomic_store_release(&r->used_idx, used_idx);
    q->batch_len = 0;
}
