/* The guest memory map: which regions may join, mapping file descriptors,
 * and every translation refusing what is not wholly inside. */
#include <glib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vhost/memory.h"

/* A region over memory we own (not mapped by the module). */
static VhostMemRegion fake(uint8_t *mem, uint64_t gpa, uint64_t size,
                           uint64_t uva)
{
    return (VhostMemRegion){.gpa = gpa, .size = size, .uva = uva, .hva = mem};
}

static VhostUserMemRegion wire(uint64_t gpa, uint64_t size, uint64_t uva,
                               uint64_t off)
{
    return (VhostUserMemRegion){gpa, size, uva, off};
}

static void test_check_refuses_empty_wrapping_and_overlapping(void)
{
    static uint8_t mem[8192];
    VhostMemMap m = {0};
    VhostMemRegion r = fake(mem, 0x10000, 0x1000, 0x7000000);
    VhostUserMemRegion w;

    vhost_mem_insert(&m, &r);
    w = wire(0x20000, 0, 0x9000000, 0);
    g_assert_nonnull(vhost_mem_check_region(&m, &w));
    w = wire(UINT64_MAX - 0xfff, 0x2000, 0x9000000, 0);
    g_assert_nonnull(vhost_mem_check_region(&m, &w));
    w = wire(0x20000, 0x1000, UINT64_MAX, 0);
    g_assert_nonnull(vhost_mem_check_region(&m, &w));
    w = wire(0x20000, 0x1000, 0x9000000, UINT64_MAX - 1);
    g_assert_nonnull(vhost_mem_check_region(&m, &w));
    /* Overlap in guest addresses, at either end. */
    w = wire(0xf000, 0x1001, 0x9000000, 0);
    g_assert_nonnull(vhost_mem_check_region(&m, &w));
    w = wire(0x10fff, 0x10, 0x9000000, 0);
    g_assert_nonnull(vhost_mem_check_region(&m, &w));
    /* Overlap in user addresses. */
    w = wire(0x20000, 0x1000, 0x7000800, 0);
    g_assert_nonnull(vhost_mem_check_region(&m, &w));
    /* Adjacent is fine. */
    w = wire(0x11000, 0x1000, 0x7001000, 0);
    g_assert_null(vhost_mem_check_region(&m, &w));
    /* The last possible byte of the address space is fine. */
    w = wire(UINT64_MAX - 0xfff, 0x1000, 0x9000000, 0);
    g_assert_null(vhost_mem_check_region(&m, &w));
}

static void test_check_refuses_more_than_the_slots(void)
{
    static uint8_t mem[4096];
    VhostMemMap m = {0};
    VhostUserMemRegion w;
    unsigned i;

    for (i = 0; i < VHOST_USER_MAX_MEM_SLOTS; i++) {
        VhostMemRegion r = fake(mem, i * 0x10000, 0x1000, i * 0x10000);

        w = wire(r.gpa, r.size, r.uva, 0);
        g_assert_null(vhost_mem_check_region(&m, &w));
        vhost_mem_insert(&m, &r);
    }
    w = wire(0x1000000, 0x1000, 0x1000000, 0);
    g_assert_nonnull(vhost_mem_check_region(&m, &w));
}

static void test_map_refuses_short_files_and_non_files(void)
{
    int fd = memfd_create("t", MFD_CLOEXEC);
    int efd = eventfd(0, EFD_CLOEXEC);
    VhostUserMemRegion w = wire(0, 0x4000, 0x1000000, 0);
    VhostMemRegion r;

    g_assert_cmpint(ftruncate(fd, 0x3000), ==, 0);
    g_assert_nonnull(vhost_mem_map_region(&w, fd, &r));
    g_assert_nonnull(vhost_mem_map_region(&w, efd, &r));
    g_assert_cmpint(ftruncate(fd, 0x5000), ==, 0);
    w.mmap_offset = 0x1000;
    g_assert_null(vhost_mem_map_region(&w, fd, &r));
    vhost_mem_unmap_region(&r);
    w.mmap_offset = 0x1001;
    g_assert_nonnull(vhost_mem_map_region(&w, fd, &r)); /* past the end */
    w.memory_size = 0x3000;
    g_assert_null(vhost_mem_map_region(&w, fd, &r)); /* unaligned offset */
    g_assert_true(r.hva == (uint8_t *)r.mmap_addr + 1);
    close(efd);
    vhost_mem_unmap_region(&r);
}

static void test_mapped_region_shares_the_file(void)
{
    int fd = memfd_create("t", MFD_CLOEXEC);
    VhostUserMemRegion w = wire(0x100000, 0x2000, 0x1000000, 0x1000);
    VhostMemMap m = {0};
    VhostMemRegion r;
    uint8_t *p, byte = 0;

    g_assert_cmpint(ftruncate(fd, 0x3000), ==, 0);
    g_assert_cmpint(pwrite(fd, "x", 1, 0x1000 + 5), ==, 1);
    g_assert_null(vhost_mem_map_region(&w, fd, &r));
    close(fd); /* the mapping keeps the memory */
    vhost_mem_insert(&m, &r);
    p = vhost_mem_gpa_to_hva(&m, 0x100005, 1, NULL);
    g_assert_nonnull(p);
    g_assert_cmpint(*p, ==, 'x');
    p = vhost_mem_uva_to_hva(&m, 0x1000005, 1);
    g_assert_nonnull(p);
    g_assert_cmpint(*p, ==, 'x');
    *p = byte;
    vhost_mem_clear(&m);
    g_assert_cmpuint(m.nregions, ==, 0);
}

static void test_translation_stays_inside_a_region(void)
{
    static uint8_t mem[0x2000];
    VhostMemMap m = {0};
    VhostMemRegion r = fake(mem, 0x10000, 0x2000, 0x500000);
    unsigned hint = 0;

    vhost_mem_insert(&m, &r);
    g_assert_true(vhost_mem_gpa_to_hva(&m, 0x10000, 0x2000, &hint) == mem);
    g_assert_true(vhost_mem_gpa_to_hva(&m, 0x11fff, 1, &hint) == mem + 0x1fff);
    g_assert_null(vhost_mem_gpa_to_hva(&m, 0x11fff, 2, &hint));
    g_assert_null(vhost_mem_gpa_to_hva(&m, 0xffff, 1, &hint));
    g_assert_null(vhost_mem_gpa_to_hva(&m, 0x12000, 0, &hint));
    g_assert_null(vhost_mem_gpa_to_hva(&m, 0x10000, UINT64_MAX, &hint));
    g_assert_null(vhost_mem_uva_to_hva(&m, 0x501000, 0x1001));
    g_assert_nonnull(vhost_mem_uva_to_hva(&m, 0x501000, 0x1000));
    g_assert_null(vhost_mem_uva_to_hva(&m, 0x4fffff, 1));
    /* A bad hint is only a hint. */
    hint = 99;
    g_assert_true(vhost_mem_gpa_to_hva(&m, 0x10001, 1, &hint) == mem + 1);
    g_assert_cmpuint(hint, ==, 0);
}

static void test_iov_splits_across_adjacent_regions_only(void)
{
    static uint8_t a[0x1000], b[0x1000];
    VhostMemMap m = {0};
    VhostMemRegion ra = fake(a, 0x10000, 0x1000, 0x100000);
    VhostMemRegion rb = fake(b, 0x11000, 0x1000, 0x300000);
    VhostMemRegion rc = fake(b, 0x13000, 0x1000, 0x500000);
    struct iovec iov[4];
    unsigned n = 0;

    vhost_mem_insert(&m, &rb);
    vhost_mem_insert(&m, &ra);
    vhost_mem_insert(&m, &rc);
    g_assert_cmpuint(m.regions[0].gpa, ==, 0x10000); /* sorted */
    g_assert_true(vhost_mem_gpa_to_iov(&m, 0x10f00, 0x200, iov, &n, 4, NULL));
    g_assert_cmpuint(n, ==, 2);
    g_assert_true(iov[0].iov_base == a + 0xf00);
    g_assert_cmpuint(iov[0].iov_len, ==, 0x100);
    g_assert_true(iov[1].iov_base == b);
    g_assert_cmpuint(iov[1].iov_len, ==, 0x100);
    /* A hole between 0x12000 and 0x13000. */
    n = 0;
    g_assert_false(vhost_mem_gpa_to_iov(&m, 0x11f00, 0x200, iov, &n, 4, NULL));
    /* Too few entries. */
    n = 0;
    g_assert_false(vhost_mem_gpa_to_iov(&m, 0x10f00, 0x200, iov, &n, 1, NULL));
    /* Wrap-around is refused before any lookup. */
    n = 0;
    g_assert_false(
        vhost_mem_gpa_to_iov(&m, UINT64_MAX - 0x10, 0x100, iov, &n, 4, NULL));
    /* Nothing to do for nothing. */
    n = 0;
    g_assert_true(vhost_mem_gpa_to_iov(&m, 0x999999, 0, iov, &n, 4, NULL));
    g_assert_cmpuint(n, ==, 0);
}

static void test_find_and_remove(void)
{
    static uint8_t mem[0x1000];
    VhostMemMap m = {0};
    VhostMemRegion r1 = fake(mem, 0x10000, 0x1000, 0x100000);
    VhostMemRegion r2 = fake(mem, 0x20000, 0x1000, 0x200000);
    int i;

    vhost_mem_insert(&m, &r1);
    vhost_mem_insert(&m, &r2);
    g_assert_cmpint(vhost_mem_find(&m, 0x20000, 0x1000, 0x200000), ==, 1);
    g_assert_cmpint(vhost_mem_find(&m, 0x20000, 0x1000, 0x100000), ==, -1);
    g_assert_cmpint(vhost_mem_find(&m, 0x20000, 0x2000, 0x200000), ==, -1);
    i = vhost_mem_find(&m, 0x10000, 0x1000, 0x100000);
    vhost_mem_remove(&m, (unsigned)i);
    g_assert_cmpuint(m.nregions, ==, 1);
    g_assert_null(vhost_mem_gpa_to_hva(&m, 0x10000, 1, NULL));
    g_assert_nonnull(vhost_mem_gpa_to_hva(&m, 0x20000, 1, NULL));
    vhost_mem_remove(&m, 5); /* out of range: nothing */
    g_assert_cmpuint(m.nregions, ==, 1);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vhost-memory/check-refuses-empty-wrapping-and-"
                    "overlapping",
                    test_check_refuses_empty_wrapping_and_overlapping);
    g_test_add_func("/vhost-memory/check-refuses-more-than-the-slots",
                    test_check_refuses_more_than_the_slots);
    g_test_add_func("/vhost-memory/map-refuses-short-files-and-non-files",
                    test_map_refuses_short_files_and_non_files);
    g_test_add_func("/vhost-memory/mapped-region-shares-the-file",
                    test_mapped_region_shares_the_file);
    g_test_add_func("/vhost-memory/translation-stays-inside-a-region",
                    test_translation_stays_inside_a_region);
    g_test_add_func("/vhost-memory/iov-splits-across-adjacent-regions-only",
                    test_iov_splits_across_adjacent_regions_only);
    g_test_add_func("/vhost-memory/find-and-remove", test_find_and_remove);
    return g_test_run();
}
