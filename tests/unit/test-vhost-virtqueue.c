/*
 * Split virtqueues, device side, against a driver written by hand in the
 * test: chains direct and indirect, every kind of hostile chain, index
 * wrap-around, the used ring and both notification directions.  The
 * "guest" is a buffer of this process at guest address GPA.
 */
#include <glib.h>
#include <string.h>

#include "vhost/virtqueue.h"

#define GPA 0x40000000ULL
#define MEM_SIZE (1 << 20)
#define NUM 8

typedef struct Guest {
    uint8_t *mem;
    VhostMemMap map;
    VringDesc *desc;
    uint8_t *avail;
    uint8_t *used;
    VhostVring vr;
    uint16_t avail_idx;
    struct iovec iov[64];
    VringElem elem;
    const char *why;
} Guest;

static uint64_t gpa_of(Guest *g, void *p)
{
    return GPA + (uint64_t)((uint8_t *)p - g->mem);
}

static void guest_init(Guest *g, uint16_t start, bool event_idx, bool indirect)
{
    VhostMemRegion r;

    memset(g, 0, sizeof(*g));
    g->mem = g_malloc0(MEM_SIZE);
    r = (VhostMemRegion){
        .gpa = GPA, .size = MEM_SIZE, .uva = 0x1000, .hva = g->mem};
    vhost_mem_insert(&g->map, &r);
    g->desc = (VringDesc *)g->mem;
    g->avail = g->mem + 4096;
    g->used = g->mem + 8192;
    memcpy(g->used + 2, &start, 2); /* used idx */
    g->avail_idx = start;
    memcpy(g->avail + 2, &start, 2);
    vring_init(&g->vr, NUM, g->desc, g->avail, g->used, start, event_idx,
               indirect);
}

static void guest_free(Guest *g)
{
    g_free(g->mem);
}

/* Makes head available. */
static void offer(Guest *g, uint16_t head)
{
    memcpy(g->avail + 4 + 2 * (g->avail_idx % NUM), &head, 2);
    g->avail_idx++;
    memcpy(g->avail + 2, &g->avail_idx, 2);
}

static void set_desc(VringDesc *d, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    *d = (VringDesc){addr, len, flags, next};
}

static VringPopResult pop(Guest *g, unsigned max_iov, unsigned max_descs)
{
    g->why = NULL;
    return vring_pop(&g->vr, &g->map, NULL, &g->elem, g->iov, max_iov,
                     max_descs, &g->why);
}

static void expect_broken(Guest *g)
{
    uint16_t before = g->vr.last_avail_idx;

    g_assert_cmpint(pop(g, 64, 0), ==, VRING_POP_BROKEN);
    g_assert_nonnull(g->why);
    g_assert_cmpuint(g->vr.last_avail_idx, ==, before);
}

static void test_empty_ring_pops_nothing(void)
{
    Guest g;

    guest_init(&g, 0, false, false);
    g_assert_false(vring_has_work(&g.vr));
    g_assert_cmpint(pop(&g, 64, 0), ==, VRING_POP_EMPTY);
    guest_free(&g);
}

static void test_direct_chain_becomes_out_then_in_vectors(void)
{
    Guest g;
    uint8_t *buf;

    guest_init(&g, 0, false, false);
    buf = g.mem + 65536;
    set_desc(&g.desc[3], gpa_of(&g, buf), 16, VRING_DESC_F_NEXT, 5);
    set_desc(&g.desc[5], gpa_of(&g, buf + 512), 4096,
             VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
    set_desc(&g.desc[1], gpa_of(&g, buf + 8192), 1, VRING_DESC_F_WRITE, 0);
    offer(&g, 3);
    g_assert_true(vring_has_work(&g.vr));
    g_assert_cmpint(pop(&g, 64, 0), ==, VRING_POP_OK);
    g_assert_cmpuint(g.elem.head, ==, 3);
    g_assert_cmpuint(g.elem.out_num, ==, 1);
    g_assert_cmpuint(g.elem.in_num, ==, 2);
    g_assert_cmpuint(g.elem.out_len, ==, 16);
    g_assert_cmpuint(g.elem.in_len, ==, 4097);
    g_assert_true(g.iov[0].iov_base == buf);
    g_assert_true(g.iov[1].iov_base == buf + 512);
    g_assert_true(g.iov[2].iov_base == buf + 8192);
    g_assert_cmpint(pop(&g, 64, 0), ==, VRING_POP_EMPTY);
    guest_free(&g);
}

static void test_indirect_table_is_walked(void)
{
    Guest g;
    VringDesc *table;
    uint8_t *buf;

    guest_init(&g, 0, false, true);
    table = (VringDesc *)(g.mem + 32768);
    buf = g.mem + 65536;
    set_desc(&table[0], gpa_of(&g, buf), 16, VRING_DESC_F_NEXT, 1);
    set_desc(&table[1], gpa_of(&g, buf + 4096), 4096,
             VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
    set_desc(&table[2], gpa_of(&g, buf + 16384), 1, VRING_DESC_F_WRITE, 0);
    set_desc(&g.desc[0], gpa_of(&g, table), 3 * 16, VRING_DESC_F_INDIRECT, 0);
    offer(&g, 0);
    g_assert_cmpint(pop(&g, 64, 0), ==, VRING_POP_OK);
    g_assert_cmpuint(g.elem.out_num, ==, 1);
    g_assert_cmpuint(g.elem.in_num, ==, 2);
    g_assert_cmpuint(g.elem.in_len, ==, 4097);
    guest_free(&g);
}

static void test_loop_in_ring_is_broken(void)
{
    Guest g;

    guest_init(&g, 0, false, false);
    set_desc(&g.desc[0], GPA + 65536, 16, VRING_DESC_F_NEXT, 1);
    set_desc(&g.desc[1], GPA + 65536, 16, VRING_DESC_F_NEXT, 0);
    offer(&g, 0);
    expect_broken(&g);
    guest_free(&g);
}

static void test_self_loop_in_indirect_table_is_broken(void)
{
    Guest g;
    VringDesc *table;

    guest_init(&g, 0, false, true);
    table = (VringDesc *)(g.mem + 32768);
    set_desc(&table[0], GPA + 65536, 16, VRING_DESC_F_NEXT, 1);
    set_desc(&table[1], GPA + 65536, 16, VRING_DESC_F_NEXT, 1);
    set_desc(&g.desc[0], gpa_of(&g, table), 2 * 16, VRING_DESC_F_INDIRECT, 0);
    offer(&g, 0);
    expect_broken(&g);
    guest_free(&g);
}

static void test_bad_indirect_descriptors_are_broken(void)
{
    Guest g;
    VringDesc *table;

    /* Not negotiated. */
    guest_init(&g, 0, false, false);
    table = (VringDesc *)(g.mem + 32768);
    set_desc(&table[0], GPA + 65536, 1, VRING_DESC_F_WRITE, 0);
    set_desc(&g.desc[0], gpa_of(&g, table), 16, VRING_DESC_F_INDIRECT, 0);
    offer(&g, 0);
    expect_broken(&g);
    guest_free(&g);

    /* Nested. */
    guest_init(&g, 0, false, true);
    table = (VringDesc *)(g.mem + 32768);
    set_desc(&table[0], gpa_of(&g, table), 16, VRING_DESC_F_INDIRECT, 0);
    set_desc(&g.desc[0], gpa_of(&g, table), 16, VRING_DESC_F_INDIRECT, 0);
    offer(&g, 0);
    expect_broken(&g);
    /* With NEXT. */
    set_desc(&table[0], GPA + 65536, 1, VRING_DESC_F_WRITE, 0);
    set_desc(&g.desc[0], gpa_of(&g, table), 16,
             VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
    expect_broken(&g);
    /* Length not a multiple of a descriptor, or zero. */
    set_desc(&g.desc[0], gpa_of(&g, table), 17, VRING_DESC_F_INDIRECT, 0);
    expect_broken(&g);
    set_desc(&g.desc[0], gpa_of(&g, table), 0, VRING_DESC_F_INDIRECT, 0);
    expect_broken(&g);
    /* Table outside memory, or running off its end. */
    set_desc(&g.desc[0], GPA + MEM_SIZE - 8, 16, VRING_DESC_F_INDIRECT, 0);
    expect_broken(&g);
    /* Inside a chain rather than at its head. */
    set_desc(&g.desc[0], GPA + 65536, 16, VRING_DESC_F_NEXT, 1);
    set_desc(&g.desc[1], gpa_of(&g, table), 16, VRING_DESC_F_INDIRECT, 0);
    expect_broken(&g);
    /* next pointing outside the table. */
    set_desc(&table[0], GPA + 65536, 16, VRING_DESC_F_NEXT, 1);
    set_desc(&g.desc[0], gpa_of(&g, table), 16, VRING_DESC_F_INDIRECT, 0);
    expect_broken(&g);
    guest_free(&g);
}

static void test_buffers_outside_memory_are_broken(void)
{
    Guest g;

    guest_init(&g, 0, false, false);
    set_desc(&g.desc[0], GPA - 1, 16, 0, 0);
    offer(&g, 0);
    expect_broken(&g);
    set_desc(&g.desc[0], GPA + MEM_SIZE - 8, 16, 0, 0);
    expect_broken(&g);
    set_desc(&g.desc[0], UINT64_MAX - 4, 16, 0, 0);
    expect_broken(&g);
    set_desc(&g.desc[0], 0, 16, 0, 0);
    expect_broken(&g);
    guest_free(&g);
}

static void test_readable_after_writable_is_broken(void)
{
    Guest g;

    guest_init(&g, 0, false, false);
    set_desc(&g.desc[0], GPA + 65536, 16,
             VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    set_desc(&g.desc[1], GPA + 65536, 16, 0, 0);
    offer(&g, 0);
    expect_broken(&g);
    guest_free(&g);
}

static void test_bad_heads_and_indexes_are_broken(void)
{
    Guest g;
    uint16_t idx;

    guest_init(&g, 0, false, false);
    offer(&g, NUM); /* head out of range */
    expect_broken(&g);
    guest_free(&g);

    guest_init(&g, 0, false, false);
    set_desc(&g.desc[0], GPA + 65536, 16, VRING_DESC_F_NEXT, NUM + 3);
    offer(&g, 0); /* next out of range */
    expect_broken(&g);
    guest_free(&g);

    guest_init(&g, 0, false, false);
    idx = NUM + 1; /* more available than the ring holds */
    memcpy(g.avail + 2, &idx, 2);
    g_assert_false(vring_has_work(&g.vr));
    expect_broken(&g);
    guest_free(&g);
}

static void test_chain_and_vector_limits_are_enforced(void)
{
    Guest g;
    int i;

    guest_init(&g, 0, false, false);
    for (i = 0; i < 4; i++) {
        set_desc(&g.desc[i], GPA + 65536 + i * 512, 512,
                 i < 3 ? VRING_DESC_F_NEXT : VRING_DESC_F_WRITE, i + 1);
    }
    offer(&g, 0);
    g_assert_cmpint(pop(&g, 64, 3), ==, VRING_POP_BROKEN); /* max_descs */
    g_assert_cmpint(pop(&g, 3, 0), ==, VRING_POP_BROKEN);  /* max_iov */
    g_assert_cmpint(pop(&g, 4, 4), ==, VRING_POP_OK);
    guest_free(&g);
}

static void test_indexes_wrap_around(void)
{
    Guest g;
    int i;

    guest_init(&g, 65534, false, false);
    set_desc(&g.desc[0], GPA + 65536, 1, VRING_DESC_F_WRITE, 0);
    for (i = 0; i < 5; i++) {
        offer(&g, 0);
        g_assert_cmpint(pop(&g, 64, 0), ==, VRING_POP_OK);
        vring_push(&g.vr, g.elem.head, 1);
        vring_publish(&g.vr);
    }
    g_assert_cmpuint(g.vr.last_avail_idx, ==, 3);
    g_assert_cmpuint(vring_used_idx_published(&g.vr), ==, 3);
    guest_free(&g);
}

static void test_used_ring_gets_id_and_length(void)
{
    Guest g;
    uint32_t id, len;
    uint16_t idx;

    guest_init(&g, 0, false, false);
    vring_push(&g.vr, 5, 4097);
    memcpy(&idx, g.used + 2, 2);
    g_assert_cmpuint(idx, ==, 0); /* not published yet */
    vring_publish(&g.vr);
    memcpy(&idx, g.used + 2, 2);
    g_assert_cmpuint(idx, ==, 1);
    memcpy(&id, g.used + 4, 4);
    memcpy(&len, g.used + 8, 4);
    g_assert_cmpuint(id, ==, 5);
    g_assert_cmpuint(len, ==, 4097);
    guest_free(&g);
}

static void set_used_event(Guest *g, uint16_t v)
{
    memcpy(g->avail + 4 + 2 * NUM, &v, 2);
}

static void test_event_idx_signals_when_used_event_is_crossed(void)
{
    Guest g;

    guest_init(&g, 0, true, false);
    /* The first batch is always signalled. */
    vring_push(&g.vr, 0, 1);
    vring_publish(&g.vr);
    g_assert_true(vring_should_signal(&g.vr));
    /* Nothing new: no signal. */
    g_assert_false(vring_should_signal(&g.vr));
    /* The driver wants a signal after entry 3 (used idx 4). */
    set_used_event(&g, 3);
    vring_push(&g.vr, 0, 1);
    vring_push(&g.vr, 0, 1);
    vring_publish(&g.vr); /* idx 3 */
    g_assert_false(vring_should_signal(&g.vr));
    vring_push(&g.vr, 0, 1);
    vring_push(&g.vr, 0, 1);
    vring_publish(&g.vr); /* idx 5: crossed 3 -> 4 */
    g_assert_true(vring_should_signal(&g.vr));
    vring_push(&g.vr, 0, 1);
    vring_publish(&g.vr);
    g_assert_false(vring_should_signal(&g.vr));
    guest_free(&g);
}

static void test_no_interrupt_flag_without_event_idx(void)
{
    Guest g;
    uint16_t flags = VRING_AVAIL_F_NO_INTERRUPT;

    guest_init(&g, 0, false, false);
    vring_push(&g.vr, 0, 1);
    vring_publish(&g.vr);
    g_assert_true(vring_should_signal(&g.vr));
    memcpy(g.avail, &flags, 2);
    g_assert_false(vring_should_signal(&g.vr));
    guest_free(&g);
}

static void test_kick_requests_and_the_missed_buffer_check(void)
{
    Guest g;
    uint16_t v;

    /* Event index: enabling writes avail_event = last_avail_idx. */
    guest_init(&g, 10, true, false);
    g_assert_false(vring_set_kicks(&g.vr, false));
    g_assert_false(g.vr.kicks_enabled);
    g_assert_false(vring_set_kicks(&g.vr, true));
    memcpy(&v, g.used + 4 + 8 * NUM, 2);
    g_assert_cmpuint(v, ==, 10);
    /* A buffer made available meanwhile is reported. */
    set_desc(&g.desc[0], GPA + 65536, 1, VRING_DESC_F_WRITE, 0);
    offer(&g, 0);
    g_assert_true(vring_set_kicks(&g.vr, true));
    guest_free(&g);

    /* Flags: NO_NOTIFY while off. */
    guest_init(&g, 0, false, false);
    vring_set_kicks(&g.vr, false);
    memcpy(&v, g.used, 2);
    g_assert_cmpuint(v, ==, VRING_USED_F_NO_NOTIFY);
    g_assert_false(vring_set_kicks(&g.vr, true));
    memcpy(&v, g.used, 2);
    g_assert_cmpuint(v, ==, 0);
    guest_free(&g);
}

static void test_walk_chain_resubmits_a_known_head(void)
{
    Guest g;

    guest_init(&g, 0, false, false);
    set_desc(&g.desc[2], GPA + 65536, 16, VRING_DESC_F_NEXT, 4);
    set_desc(&g.desc[4], GPA + 70000, 1, VRING_DESC_F_WRITE, 0);
    g.why = NULL;
    g_assert_cmpint(
        vring_walk_chain(&g.vr, &g.map, NULL, 2, &g.elem, g.iov, 64, 0, &g.why),
        ==, VRING_POP_OK);
    g_assert_cmpuint(g.elem.out_num + g.elem.in_num, ==, 2);
    g_assert_cmpuint(g.vr.last_avail_idx, ==, 0); /* nothing taken */
    g_assert_cmpint(vring_walk_chain(&g.vr, &g.map, NULL, NUM, &g.elem, g.iov,
                                     64, 0, &g.why),
                    ==, VRING_POP_BROKEN);
    guest_free(&g);
}

static void test_sizes(void)
{
    g_assert_true(vring_size_valid(1));
    g_assert_true(vring_size_valid(256));
    g_assert_true(vring_size_valid(32768));
    g_assert_false(vring_size_valid(0));
    g_assert_false(vring_size_valid(3));
    g_assert_false(vring_size_valid(65536));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vhost-virtqueue/empty-ring-pops-nothing",
                    test_empty_ring_pops_nothing);
    g_test_add_func("/vhost-virtqueue/direct-chain-becomes-out-then-in-"
                    "vectors",
                    test_direct_chain_becomes_out_then_in_vectors);
    g_test_add_func("/vhost-virtqueue/indirect-table-is-walked",
                    test_indirect_table_is_walked);
    g_test_add_func("/vhost-virtqueue/loop-in-ring-is-broken",
                    test_loop_in_ring_is_broken);
    g_test_add_func("/vhost-virtqueue/self-loop-in-indirect-table-is-broken",
                    test_self_loop_in_indirect_table_is_broken);
    g_test_add_func("/vhost-virtqueue/bad-indirect-descriptors-are-broken",
                    test_bad_indirect_descriptors_are_broken);
    g_test_add_func("/vhost-virtqueue/buffers-outside-memory-are-broken",
                    test_buffers_outside_memory_are_broken);
    g_test_add_func("/vhost-virtqueue/readable-after-writable-is-broken",
                    test_readable_after_writable_is_broken);
    g_test_add_func("/vhost-virtqueue/bad-heads-and-indexes-are-broken",
                    test_bad_heads_and_indexes_are_broken);
    g_test_add_func("/vhost-virtqueue/chain-and-vector-limits-are-enforced",
                    test_chain_and_vector_limits_are_enforced);
    g_test_add_func("/vhost-virtqueue/indexes-wrap-around",
                    test_indexes_wrap_around);
    g_test_add_func("/vhost-virtqueue/used-ring-gets-id-and-length",
                    test_used_ring_gets_id_and_length);
    g_test_add_func("/vhost-virtqueue/event-idx-signals-when-used-event-is-"
                    "crossed",
                    test_event_idx_signals_when_used_event_is_crossed);
    g_test_add_func("/vhost-virtqueue/no-interrupt-flag-without-event-idx",
                    test_no_interrupt_flag_without_event_idx);
    g_test_add_func("/vhost-virtqueue/kick-requests-and-the-missed-buffer-"
                    "check",
                    test_kick_requests_and_the_missed_buffer_check);
    g_test_add_func("/vhost-virtqueue/walk-chain-resubmits-a-known-head",
                    test_walk_chain_resubmits_a_known_head);
    g_test_add_func("/vhost-virtqueue/sizes", test_sizes);
    return g_test_run();
}
