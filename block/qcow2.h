/*
 * qcow2 internals shared by block/qcow2*.c.  Not installed.
 *
 * Files:
 *   qcow2-header.c   the first cluster: parsing and checking the header and
 *                    its extensions (pure functions, fuzzed), entry layouts
 *   qcow2-cache.c    the table cache (L2 tables, refcount blocks)
 *   qcow2-refcount.c refcounts: lookup, cluster allocation, deferred frees,
 *                    refcount table growth
 *   qcow2-cluster.c  guest -> host mapping, L2 allocation, metadata
 *                    writeback in crash-safe order
 *   qcow2-compress.c compressed clusters (deflate, zstd)
 *   qcow2-co.c       coroutine plumbing: wake-ups, the lock, child I/O
 *   qcow2-io.c       mapping, reads, block status, request dispatch
 *   qcow2-write.c    writes (copy on write), write-zeroes, discard
 *   qcow2.c          the driver: open/close, resize, snapshot listing
 *
 * Threading: everything here runs in the node's AioContext, most of it in
 * a coroutine per request (block/coroutine.h).  No locks: the metadata
 * state is owned by that context.  Coroutines of one node take turns on
 * s->lock around metadata changes (see qcow2-cluster.c for why).
 *
 * Every offset, size and entry read from the image is untrusted: it is
 * checked before it is used as an offset, a size or an allocation length.
 */
#ifndef DATAPLANE_BLOCK_QCOW2_H
#define DATAPLANE_BLOCK_QCOW2_H

#include <stdint.h>
#include <sys/queue.h>

#include "block/block-int.h"
#include "block/coroutine.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21 /* QEMU's limit: 2 MiB */
#define QCOW2_MAX_L1_BYTES (32 * 1024 * 1024)
#define QCOW2_MAX_REFTABLE_BYTES (8 * 1024 * 1024)
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_LEN 104

/* Table entries. */
#define QCOW2_OFFSET_MASK UINT64_C(0x00fffffffffffe00) /* bits 9-55 */
#define QCOW2_OFLAG_COPIED (UINT64_C(1) << 63)
#define QCOW2_OFLAG_COMPRESSED (UINT64_C(1) << 62)
#define QCOW2_OFLAG_ZERO UINT64_C(1)
#define QCOW2_L1E_RESERVED UINT64_C(0x7f000000000001ff)
#define QCOW2_L2E_RESERVED UINT64_C(0x3f000000000001fe)
#define QCOW2_RTE_RESERVED UINT64_C(0x1ff)

/* Feature bits. */
#define QCOW2_INCOMPAT_DIRTY (UINT64_C(1) << 0)
#define QCOW2_INCOMPAT_CORRUPT (UINT64_C(1) << 1)
#define QCOW2_INCOMPAT_DATA_FILE (UINT64_C(1) << 2)
#define QCOW2_INCOMPAT_COMPRESSION (UINT64_C(1) << 3)
#define QCOW2_INCOMPAT_EXTL2 (UINT64_C(1) << 4)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (UINT64_C(1) << 0)

/* Header extensions. */
#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u

/* Header field offsets that the driver rewrites (nothing else is). */
#define QCOW2_HDR_REFTABLE_OFFSET 48 /* + clusters at 56: one write */
#define QCOW2_HDR_INCOMPAT 72
#define QCOW2_HDR_AUTOCLEAR 88

enum { QCOW2_COMPRESS_ZLIB = 0, QCOW2_COMPRESS_ZSTD = 1 };

typedef struct Qcow2Header {
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;
} Qcow2Header;

/* The parsed and checked first cluster. */
typedef struct Qcow2Image {
    Qcow2Header h;
    char *backing_file;   /* NUL-terminated, or NULL */
    char *backing_format; /* NUL-terminated, or NULL */
    bool has_bitmaps;
} Qcow2Image;

/*
 * Parses the header in buf (the image's first len bytes; len may be
 * shorter than a cluster if the file is) for an image file of file_size
 * bytes.  Checks every field that later code uses as an offset or size:
 * alignment, ranges, the implementation limits above, and that the tables
 * lie inside the file.  Refuses what the driver does not implement with a
 * sentence naming it (feature names come from the image's own feature
 * table when it has one).  Pure: no I/O.  True, or false with *errp.
 */
bool qcow2_parse_header(const uint8_t *buf, size_t len, int64_t file_size,
                        Qcow2Image *img, Error **errp);

/*
 * Parses snapshot table entries from buf[0..len) into list
 * (BdrvSnapshotInfo), at most `max` of them.  Returns how many bytes the
 * parsed entries took, or -1 with *errp for a malformed entry; an entry cut
 * off by len ends the parse early (the caller reads more and calls again).
 * Pure.
 */
int64_t qcow2_parse_snapshots(const uint8_t *buf, size_t len, uint32_t max,
                              GPtrArray *list, Error **errp);
void qcow2_image_clear(Qcow2Image *img);

/* Guest cluster types, from an L2 entry. */
typedef enum Qcow2ClusterType {
    QCOW2_CLUSTER_UNALLOCATED,
    QCOW2_CLUSTER_ZERO_PLAIN, /* zero flag, no host cluster */
    QCOW2_CLUSTER_ZERO_ALLOC, /* zero flag over a preallocated cluster */
    QCOW2_CLUSTER_NORMAL,
    QCOW2_CLUSTER_COMPRESSED,
} Qcow2ClusterType;

/* The type of an L2 entry (version: 2 has no zero flag). */
Qcow2ClusterType qcow2_entry_type(uint64_t entry, int version);
/* A compressed entry's byte range in the file: [*offset, +*bytes). */
void qcow2_compressed_range(uint64_t entry, unsigned cluster_bits,
                            uint64_t *offset, uint64_t *bytes);
/* Refcount block entry i at width 1 << order bits. */
uint64_t qcow2_refcount_get(const void *block, uint64_t i, unsigned order);
void qcow2_refcount_set(void *block, uint64_t i, unsigned order, uint64_t v);

/* ---- the table cache (qcow2-cache.c) ------------------------------------ */

typedef struct Qcow2State Qcow2State;
typedef struct Qcow2Cache Qcow2Cache;

typedef struct Qcow2CacheEntry {
    int64_t offset;
    uint64_t *table; /* cluster_size bytes, big-endian as on disk */
    unsigned ref;    /* pins: in use by a coroutine, not evictable */
    bool dirty;
    uint64_t dirty_gen; /* bumped by every change, see writeback */
    bool loading;
    GQueue waiters; /* coroutines waiting for the load */
    int load_ret;
    uint64_t lru;
} Qcow2CacheEntry;

Qcow2Cache *qcow2_cache_new(Qcow2State *s, unsigned capacity);
void qcow2_cache_free(Qcow2Cache *c);
/* In a coroutine: the table at offset, loaded if needed, pinned. */
int qcow2_cache_get(Qcow2Cache *c, int64_t offset, Qcow2CacheEntry **e);
/* In a coroutine: a new all-zero table at offset (no read), pinned and
 * dirty. */
int qcow2_cache_get_empty(Qcow2Cache *c, int64_t offset, Qcow2CacheEntry **e);
/* The loaded table at offset or NULL, without pinning: for synchronous
 * use only (the fast path). */
Qcow2CacheEntry *qcow2_cache_peek(Qcow2Cache *c, int64_t offset);
void qcow2_cache_put(Qcow2Cache *c, Qcow2CacheEntry *e);
void qcow2_cache_mark_dirty(Qcow2Cache *c, Qcow2CacheEntry *e);
bool qcow2_cache_has_dirty(Qcow2Cache *c);
/* In a coroutine: writes every dirty table (in parallel); 0 or -errno. */
int qcow2_cache_write_dirty(Qcow2Cache *c);
/* Forgets the table at offset (a freed cluster); it must not be pinned. */
void qcow2_cache_discard(Qcow2Cache *c, int64_t offset);

/* ---- node state ---------------------------------------------------------- */

/* A coroutine mutex: FIFO, handed to the next waiter on unlock. */
typedef struct Qcow2Lock {
    Coroutine *owner;
    GQueue waiters;
} Qcow2Lock;

/* An operation that changes the L2 entries of guest clusters
 * [start, end): others that change them wait (qcow2-cluster.c). */
typedef struct Qcow2Op {
    int64_t start, end;
    GQueue waiters;
    TAILQ_ENTRY(Qcow2Op) next;
} Qcow2Op;

/* Host clusters to free once nothing can still use them. */
typedef struct Qcow2Free {
    uint64_t offset; /* cluster-aligned */
    uint64_t clusters;
} Qcow2Free;

struct Qcow2State {
    BlockDriverState *bs;
    Qcow2Image img;
    int version;
    unsigned cluster_bits;
    int64_t cluster_size;
    unsigned l2_bits; /* log2 entries per L2 table */
    int64_t l2_size;
    unsigned refcount_order;
    unsigned rb_bits; /* log2 entries per refcount block */
    uint64_t refcount_max;
    int compression_type;
    bool discard_unmap;

    /* The active L1 table, host byte order; dirty per L1 cluster. */
    uint64_t *l1;
    uint32_t l1_size;
    int64_t l1_offset;
    uint8_t *l1_dirty;
    /* The refcount table, host byte order; dirty per table cluster. */
    uint64_t *rt;
    uint64_t rt_size; /* entries */
    int64_t rt_offset;
    uint8_t *rt_dirty;

    Qcow2Cache *l2_cache;
    Qcow2Cache *rb_cache;

    Qcow2Lock lock;
    TAILQ_HEAD(, Qcow2Op) ops;
    int64_t free_hint; /* cluster index: no free cluster below it */

    /*
     * Freed clusters wait for two things before their refcount drops:
     * the table change that dropped their last reference must be on disk
     * (a writeback), and every request that may have looked the old
     * mapping up must have finished (its I/O may still target them).
     * Requests count themselves in epoch_inflight[their epoch & 1].
     */
    GArray *frees[2]; /* Qcow2Free, by epoch & 1 */
    unsigned epoch;
    unsigned epoch_inflight[2];
    Coroutine *epoch_waiter;
    bool applying_frees;

    /* Coroutines to enter from the node's BH (never nested). */
    AioBH *wake_bh;
    GQueue wake;

    GPtrArray *snapshots; /* BdrvSnapshotInfo, from the snapshot table */
    bool corrupt;         /* found bad metadata: no more writes */
    bool warned_decompress;
    bool bitmaps_cleared;
};

/* qcow2-co.c */
/* The node's wake BH: enters the coroutines queued by qcow2_co_wake. */
void qcow2_wake_bh(void *opaque);
void qcow2_co_wake(Qcow2State *s, Coroutine *co);
void qcow2_co_lock(Qcow2State *s);
void qcow2_co_unlock(Qcow2State *s);
bool qcow2_co_locked(Qcow2State *s);
/* Child I/O from a coroutine; 0 or -errno. */
int qcow2_co_pread(Qcow2State *s, int64_t offset, void *buf, int64_t len);
int qcow2_co_pwrite(Qcow2State *s, int64_t offset, const void *buf,
                    int64_t len);
int qcow2_co_preadv(BlockDriverState *child, int64_t offset, IOVector *v);
int qcow2_co_pwritev(Qcow2State *s, int64_t offset, IOVector *v, int flags);
int qcow2_co_flush_file(Qcow2State *s);
int qcow2_co_discard_file(Qcow2State *s, int64_t offset, int64_t len);
int qcow2_co_block_status(BlockDriverState *child, int64_t offset,
                          int64_t bytes, int64_t *pnum, unsigned *status,
                          int *depth);
/* Marks the image corrupt (logs why); later writes fail with -EIO. */
int qcow2_signal_corruption(Qcow2State *s, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

/* qcow2-refcount.c (coroutine, s->lock held unless said) */
int qcow2_get_refcount(Qcow2State *s, uint64_t cluster, uint64_t *rc);
int qcow2_alloc_cluster(Qcow2State *s, int64_t *offset);
/* `clusters` contiguous clusters (at the end of the image). */
int qcow2_alloc_contiguous(Qcow2State *s, uint64_t clusters, int64_t *offset);
/* Drops a reference at once: only for a cluster nothing points to. */
int qcow2_unref_cluster(Qcow2State *s, uint64_t offset);
/* Queues the clusters of [offset, offset + bytes) to be freed. */
void qcow2_free_later(Qcow2State *s, uint64_t offset, uint64_t bytes);
/* Without the lock, after a writeback that made the table changes of
 * epoch `old` durable: waits out that epoch's requests (their I/O may
 * still target the clusters), then drops the references queued in it. */
int qcow2_apply_frees(Qcow2State *s, unsigned old);
bool qcow2_rt_dirty(Qcow2State *s);
int qcow2_write_rt(Qcow2State *s);

/* qcow2-cluster.c */
int qcow2_writeback(Qcow2State *s); /* lock held */
/* Metadata not yet on disk (a FUA write must then flush it). */
bool qcow2_metadata_dirty(Qcow2State *s);
int qcow2_flush(Qcow2State *s); /* lock not held */
int qcow2_get_l2(Qcow2State *s, uint64_t l1_index, bool alloc,
                 Qcow2CacheEntry **e);
uint64_t qcow2_l2_entry(Qcow2State *s, Qcow2CacheEntry *e, int64_t index);
void qcow2_set_l2_entry(Qcow2State *s, Qcow2CacheEntry *e, int64_t index,
                        uint64_t v);
void qcow2_op_begin(Qcow2State *s, Qcow2Op *op, int64_t start, int64_t end);
void qcow2_op_end(Qcow2State *s, Qcow2Op *op);

/* qcow2-io.c: what [offset, +bytes) maps to, for as long as the answer
 * stays the same (see the function). */
typedef struct Qcow2Map {
    Qcow2ClusterType type;
    uint64_t entry; /* the first cluster's L2 entry */
    uint64_t host;  /* NORMAL: host offset of the first byte */
    int64_t bytes;  /* how far the same answer goes */
} Qcow2Map;
bool qcow2_host_offset_ok(Qcow2State *s, uint64_t host);
int qcow2_map_range(Qcow2State *s, int64_t offset, int64_t bytes,
                    bool for_status, Qcow2Map *m);
int qcow2_read_backing(Qcow2State *s, int64_t offset, IOVector *v, size_t voff,
                       int64_t len);
int qcow2_read_compressed(Qcow2State *s, uint64_t entry, void *buf);
/* The request ops (the driver table in qcow2.c). */
void qcow2_preadv(BlockDriverState *bs, BdrvRequest *req);
void qcow2_pwritev(BlockDriverState *bs, BdrvRequest *req);
void qcow2_co_submit(BlockDriverState *bs, BdrvRequest *req);

/* qcow2-write.c (coroutines); *meta is set when the mapping changed. */
int qcow2_co_write(Qcow2State *s, int64_t offset, IOVector *qiov, int flags,
                   bool *meta);
int qcow2_co_zeroes(Qcow2State *s, int64_t offset, int64_t bytes, int flags,
                    bool *meta);
int qcow2_co_discard(Qcow2State *s, int64_t offset, int64_t bytes, bool *meta);

/* qcow2-compress.c: decompresses src into a cluster of dst_len bytes. */
int qcow2_decompress(int type, const void *src, size_t src_len, void *dst,
                     size_t dst_len);

#endif /* DATAPLANE_BLOCK_QCOW2_H */
