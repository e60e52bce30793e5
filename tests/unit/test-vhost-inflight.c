/*
 * Inflight tracking: a region is initialised once, records what is taken
 * and returned, and after a "crash" (a new start on the same region) gives
 * back the chains still in flight in the order they were taken, whatever a
 * hostile front-end left in it.
 */
#include <glib.h>
#include <string.h>

#include "vhost/inflight.h"

#define NUM 16

static VhostInflightRegion *region_new(void)
{
    return g_malloc0(vhost_inflight_region_size(NUM));
}

static void test_region_size_is_aligned(void)
{
    g_assert_cmpuint(vhost_inflight_region_size(1), ==, 64);
    g_assert_cmpuint(vhost_inflight_region_size(3), ==, 64);
    g_assert_cmpuint(vhost_inflight_region_size(4), ==, 128);
    g_assert_cmpuint(vhost_inflight_region_size(256), ==, 16 + 256 * 16 + 48);
}

static void test_fresh_region_is_initialised(void)
{
    VhostInflightRegion *r = region_new();
    VhostInflightQueue q = {0};
    uint16_t resubmit[NUM];
    unsigned n = 99;

    g_assert_cmpuint(vhost_inflight_start(&q, r, NUM, 7, 7, resubmit, &n), ==,
                     7);
    g_assert_cmpuint(n, ==, 0);
    g_assert_cmpuint(r->version, ==, VHOST_INFLIGHT_VERSION);
    g_assert_cmpuint(r->desc_num, ==, NUM);
    g_assert_cmpuint(r->used_idx, ==, 7);
    vhost_inflight_stop(&q);
    g_free(r);
}

static void test_no_region_tracks_nothing(void)
{
    VhostInflightQueue q = {0};
    uint16_t resubmit[NUM];
    unsigned n;

    g_assert_cmpuint(vhost_inflight_start(&q, NULL, NUM, 3, 9, resubmit, &n),
                     ==, 9);
    g_assert_cmpuint(n, ==, 0);
    vhost_inflight_take(&q, 1);
    vhost_inflight_push(&q, 1);
    vhost_inflight_pre_publish(&q);
    vhost_inflight_commit(&q, 1);
    vhost_inflight_stop(&q);
}

static void test_restart_resubmits_in_fetch_order(void)
{
    VhostInflightRegion *r = region_new();
    VhostInflightQueue q = {0};
    uint16_t resubmit[NUM];
    unsigned n;

    vhost_inflight_start(&q, r, NUM, 0, 0, resubmit, &n);
    vhost_inflight_take(&q, 9);
    vhost_inflight_take(&q, 2);
    vhost_inflight_take(&q, 5);
    vhost_inflight_take(&q, 11);
    /* 2 completes: pushed, published (used idx 1), committed. */
    vhost_inflight_push(&q, 2);
    vhost_inflight_pre_publish(&q);
    vhost_inflight_commit(&q, 1);
    g_assert_cmpuint(r->desc[2].inflight, ==, 0);
    g_assert_cmpuint(r->desc[9].inflight, ==, 1);
    /* "Crash": the backend starts over on the same region. */
    g_assert_cmpuint(vhost_inflight_start(&q, r, NUM, 1, 0, resubmit, &n), ==,
                     4);
    g_assert_cmpuint(n, ==, 3);
    g_assert_cmpuint(resubmit[0], ==, 9);
    g_assert_cmpuint(resubmit[1], ==, 5);
    g_assert_cmpuint(resubmit[2], ==, 11);
    /* New fetches count on from the highest counter. */
    g_assert_cmpuint(q.counter, ==, 4);
    vhost_inflight_stop(&q);
    g_free(r);
}

static void test_batch_published_but_not_committed_is_cleared(void)
{
    VhostInflightRegion *r = region_new();
    VhostInflightQueue q = {0};
    uint16_t resubmit[NUM];
    unsigned n;

    vhost_inflight_start(&q, r, NUM, 0, 0, resubmit, &n);
    vhost_inflight_take(&q, 3);
    vhost_inflight_take(&q, 4);
    vhost_inflight_take(&q, 6);
    vhost_inflight_push(&q, 3);
    vhost_inflight_push(&q, 6);
    vhost_inflight_pre_publish(&q);
    /* The used index reached 2, then the crash: no commit. */
    g_assert_cmpuint(r->used_idx, ==, 0);
    vhost_inflight_start(&q, r, NUM, 2, 0, resubmit, &n);
    g_assert_cmpuint(n, ==, 1);
    g_assert_cmpuint(resubmit[0], ==, 4);
    g_assert_cmpuint(r->used_idx, ==, 2);
    g_assert_cmpuint(r->desc[3].inflight, ==, 0);
    g_assert_cmpuint(r->desc[6].inflight, ==, 0);
    vhost_inflight_stop(&q);
    g_free(r);
}

static void test_region_of_another_size_starts_afresh(void)
{
    VhostInflightRegion *r = region_new();
    VhostInflightQueue q = {0};
    uint16_t resubmit[NUM];
    unsigned n;

    r->version = VHOST_INFLIGHT_VERSION;
    r->desc_num = NUM / 2;
    r->desc[1].inflight = 1;
    g_assert_cmpuint(vhost_inflight_start(&q, r, NUM, 5, 5, resubmit, &n), ==,
                     5);
    g_assert_cmpuint(n, ==, 0);
    g_assert_cmpuint(r->desc_num, ==, NUM);
    g_assert_cmpuint(r->desc[1].inflight, ==, 0);
    vhost_inflight_stop(&q);
    g_free(r);
}

static void test_hostile_region_is_bounded(void)
{
    VhostInflightRegion *r = region_new();
    VhostInflightQueue q = {0};
    uint16_t resubmit[NUM];
    unsigned n, i;

    /* Every entry in flight, links pointing anywhere, a huge last batch. */
    r->version = VHOST_INFLIGHT_VERSION;
    r->desc_num = NUM;
    r->last_batch_head = 60000;
    r->used_idx = 1;
    for (i = 0; i < NUM; i++) {
        r->desc[i].inflight = 0xff;
        r->desc[i].next = (uint16_t)(i * 7919);
        r->desc[i].counter = UINT64_MAX - i;
    }
    vhost_inflight_start(&q, r, NUM, 0, 0, resubmit, &n);
    g_assert_cmpuint(n, ==, NUM);
    for (i = 0; i < NUM; i++) {
        g_assert_cmpuint(resubmit[i], <, NUM);
    }
    /* Pushes beyond the ring size are ignored, not written past. */
    for (i = 0; i < 3 * NUM; i++) {
        vhost_inflight_push(&q, (uint16_t)(i % NUM));
    }
    g_assert_cmpuint(q.batch_len, ==, NUM);
    vhost_inflight_take(&q, NUM + 5);
    vhost_inflight_push(&q, NUM + 5);
    vhost_inflight_pre_publish(&q);
    vhost_inflight_commit(&q, 7);
    vhost_inflight_stop(&q);
    g_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vhost-inflight/region-size-is-aligned",
                    test_region_size_is_aligned);
    g_test_add_func("/vhost-inflight/fresh-region-is-initialised",
                    test_fresh_region_is_initialised);
    g_test_add_func("/vhost-inflight/no-region-tracks-nothing",
                    test_no_region_tracks_nothing);
    g_test_add_func("/vhost-inflight/restart-resubmits-in-fetch-order",
                    test_restart_resubmits_in_fetch_order);
    g_test_add_func("/vhost-inflight/batch-published-but-not-committed-is-"
                    "cleared",
                    test_batch_published_but_not_committed_is_cleared);
    g_test_add_func("/vhost-inflight/region-of-another-size-starts-afresh",
                    test_region_of_another_size_starts_afresh);
    g_test_add_func("/vhost-inflight/hostile-region-is-bounded",
                    test_hostile_region_is_bounded);
    return g_test_run();
}
