/*
 * The guest memory map: region checks, mapping, translations.  See
 * memory.h.  Tables are small (at most VHOST_USER_MAX_MEM_SLOTS regions,
 * usually one or two), so lookups scan linearly after trying the caller's
 * hint, which is right almost every time.
 */
#include <errno.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "vhost/memory-guard.h"
#include "vhost/memory.h"

/* Whether [start, start + len) wraps past 2^64 (len > 0). */
static bool range_wraps(uint64_t start, uint64_t len)
{
    return len - 1 > UINT64_MAX - start;
}

/* Whether [a, a + alen) and [b, b + blen) intersect (both non-empty, not
 * wrapping). */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a <= b + (blen - 1) && b <= a + (alen - 1);
}

const char *vhost_mem_check_region(const VhostMemMap *map,
                                   const VhostUserMemRegion *r)
{
    unsigned i;

    if (map->nregions >= VHOST_USER_MAX_MEM_SLOTS) {
        return "too many memory regions";
    }
    if (r->memory_size == 0) {
        return "empty memory region";
    }
    if (range_wraps(r->guest_phys_addr, r->memory_size) ||
        range_wraps(r->userspace_addr, r->memory_size) ||
        range_wraps(r->mmap_offset, r->memory_size)) {
        return "memory region wraps around the address space";
    }
    if (r->mmap_offset + r->memory_size > (uint64_t)INT64_MAX ||
        r->memory_size > (uint64_t)SIZE_MAX / 2) {
        return "memory region too large";
    }
    for (i = 0; i < map->nregions; i++) {
        const VhostMemRegion *m = &map->regions[i];

        if (ranges_overlap(m->gpa, m->size, r->guest_phys_addr,
                           r->memory_size)) {
            return "memory region overlaps another in guest addresses";
        }
        if (ranges_overlap(m->uva, m->size, r->userspace_addr,
                           r->memory_size)) {
            return "memory region overlaps another in user addresses";
        }
    }
    return NULL;
}

const char *vhost_mem_map_region(const VhostUserMemRegion *r, int fd,
                                 VhostMemRegion *out)
{
    long page = sysconf(_SC_PAGESIZE);
    uint64_t aligned_off = r->mmap_offset & ~(uint64_t)(page - 1);
    uint64_t delta = r->mmap_offset - aligned_off;
    size_t fault_page = (size_t)page;
    struct statfs sfs;
    struct stat st;
    void *p;

    if (fstat(fd, &st) < 0) {
        return "cannot stat the memory region's file descriptor";
    }
    if (!S_ISREG(st.st_mode)) {
        return "memory region file descriptor is not a file (memfd, shm "
               "or hugetlbfs)";
    }
    if ((uint64_t)st.st_size < r->mmap_offset + r->memory_size) {
        return "memory region extends past the end of its file";
    }
    p = mmap(NULL, r->memory_size + delta, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_NORESERVE, fd, (off_t)aligned_off);
    if (p == MAP_FAILED) {
        return errno == ENOMEM ? "cannot map memory region: out of address "
                                 "space"
                               : "cannot map memory region";
    }
    /* Huge pages fault (and must be replaced) a huge page at a time. */
    if (fstatfs(fd, &sfs) == 0 && sfs.f_type == HUGETLBFS_MAGIC) {
        fault_page = (size_t)sfs.f_bsize;
    }
    *out = (VhostMemRegion){
        .gpa = r->guest_phys_addr,
        .size = r->memory_size,
        .uva = r->userspace_addr,
        .hva = (uint8_t *)p + delta,
        .mmap_addr = p,
        .mmap_len = r->memory_size + delta,
        .guard = vhost_mem_guard_add(p, r->memory_size + delta, fault_page),
    };
    return NULL;
}

void vhost_mem_unmap_region(VhostMemRegion *reg)
{
    if (reg->mmap_addr) {
        vhost_mem_guard_remove(reg->guard);
        munmap(reg->mmap_addr, reg->mmap_len);
        reg->mmap_addr = NULL;
        reg->guard = -1;
    }
    reg->hva = NULL;
}

bool vhost_mem_truncated(const VhostMemMap *map)
{
    /* The fast answer, on every poll: no fault ever in this process. */
    if (vhost_mem_guard_faults() == 0) {
        return false;
    }
    for (unsigned i = 0; i < map->nregions; i++) {
        if (map->regions[i].mmap_addr &&
            vhost_mem_guard_tripped(map->regions[i].guard)) {
            return true;
        }
    }
    return false;
}

void vhost_mem_insert(VhostMemMap *map, const VhostMemRegion *reg)
{
    unsigned i = map->nregions;

    while (i > 0 && map->regions[i - 1].gpa > reg->gpa) {
        map->regions[i] = map->regions[i - 1];
        i--;
    }
    map->regions[i] = *reg;
    map->nregions++;
}

int vhost_mem_find(const VhostMemMap *map, uint64_t gpa, uint64_t size,
                   uint64_t uva)
{
    unsigned i;

    for (i = 0; i < map->nregions; i++) {
        const VhostMemRegion *m = &map->regions[i];

        if (m->gpa == gpa && m->size == size && m->uva == uva) {
            return (int)i;
        }
    }
    return -1;
}

void vhost_mem_remove(VhostMemMap *map, unsigned i)
{
    if (i >= map->nregions) {
        return;
    }
    memmove(&map->regions[i], &map->regions[i + 1],
            (map->nregions - i - 1) * sizeof(map->regions[0]));
    map->nregions--;
}

void vhost_mem_clear(VhostMemMap *map)
{
    unsigned i;

    for (i = 0; i < map->nregions; i++) {
        vhost_mem_unmap_region(&map->regions[i]);
    }
    map->nregions = 0;
}

/* The region holding guest address gpa, or NULL. */
static const VhostMemRegion *find_gpa(const VhostMemMap *map, uint64_t gpa,
                                      unsigned *hint)
{
    unsigned h = hint ? *hint : 0;
    unsigned i;

    if (h < map->nregions) {
        const VhostMemRegion *m = &map->regions[h];

        if (gpa >= m->gpa && gpa - m->gpa < m->size) {
            return m;
        }
    }
    for (i = 0; i < map->nregions; i++) {
        const VhostMemRegion *m = &map->regions[i];

        if (gpa >= m->gpa && gpa - m->gpa < m->size) {
            if (hint) {
                *hint = i;
            }
            return m;
        }
    }
    return NULL;
}

void *vhost_mem_gpa_to_hva(const VhostMemMap *map, uint64_t gpa, uint64_t len,
                           unsigned *hint)
{
    const VhostMemRegion *m = find_gpa(map, gpa, hint);
    uint64_t off;

    if (!m) {
        return NULL;
    }
    off = gpa - m->gpa;
    if (len > m->size - off) {
        return NULL;
    }
    return m->hva + off;
}

bool vhost_mem_gpa_to_iov(const VhostMemMap *map, uint64_t gpa, uint64_t len,
                          struct iovec *iov, unsigned *niov, unsigned max_iov,
                          unsigned *hint)
{
    if (len > 0 && range_wraps(gpa, len)) {
        return false;
    }
    while (len > 0) {
        const VhostMemRegion *m = find_gpa(map, gpa, hint);
        uint64_t off, n;

        if (!m || *niov >= max_iov) {
            return false;
        }
        off = gpa - m->gpa;
        n = m->size - off;
        if (n > len) {
            n = len;
        }
        iov[*niov].iov_base = m->hva + off;
        iov[*niov].iov_len = n;
        (*niov)++;
        len -= n;
        /* No wrap: [gpa, gpa + len) was checked above. */
        gpa += n;
    }
    return true;
}

void *vhost_mem_uva_to_hva(const VhostMemMap *map, uint64_t uva, uint64_t len)
{
    unsigned i;

    for (i = 0; i < map->nregions; i++) {
        const VhostMemRegion *m = &map->regions[i];

        if (uva >= m->uva && uva - m->uva < m->size) {
            uint64_t off = uva - m->uva;

            return len <= m->size - off ? m->hva + off : NULL;
        }
    }
    return NULL;
}
