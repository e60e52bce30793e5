/*
 * A guard against guest memory that shrinks under our mapping.
 *
 * A front-end shares its guest memory as files (memfd, hugetlbfs,
 * /dev/shm).  If such a file is truncated after we mapped it (a memfd
 * without F_SEAL_SHRINK, any hugetlbfs or tmpfs file), touching the missing
 * pages raises SIGBUS, which would kill the daemon.  While a guarded
 * mapping exists, a SIGBUS handler checks the faulting address: inside a
 * guarded mapping, it replaces the rest of that mapping with anonymous
 * zero-filled memory (so the access, and every later one, reads zeroes and
 * writes into memory nobody shares) and records the event; anywhere else,
 * it hands the signal to whatever handled it before.  The connection
 * notices the record at its next look and closes (vhost_mem_guard_tripped).
 *
 * Thread-safety: every function is safe from any thread.  The handler is
 * async-signal-safe (it reads the table with atomic loads and calls only
 * mmap(2), which on Linux is a plain system call).
 */
#ifndef DATAPLANE_VHOST_MEMORY_GUARD_H
#define DATAPLANE_VHOST_MEMORY_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Guards [addr, addr + len), a MAP_SHARED mapping of a file whose pages are
 * page_size bytes (4 KiB, or a huge page size).  Installs the handler the
 * first time.  Returns a slot for vhost_mem_guard_remove(), or -1 if the
 * table is full (the mapping is then simply not guarded).
 */
int vhost_mem_guard_add(void *addr, size_t len, size_t page_size);
/* Before unmapping: stops guarding slot (no-op for -1). */
void vhost_mem_guard_remove(int slot);
/* Whether a fault was absorbed in slot since it was added. */
bool vhost_mem_guard_tripped(int slot);
/* Faults absorbed in all (for tests and logs). */
uint64_t vhost_mem_guard_faults(void);

#endif /* DATAPLANE_VHOST_MEMORY_GUARD_H */
