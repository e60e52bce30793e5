/*
 * The qcow2 first cluster: header, header extensions, and the layouts of
 * table entries (docs/interop/qcow2.txt in QEMU).  Pure functions over
 * byte buffers: the fuzz target tests/fuzz/fuzz-qcow2-header.c calls them
 * with anything.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "block/qcow2.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

void qcow2_image_clear(Qcow2Image *img)
{
    g_clear_pointer(&img->backing_file, g_free);
    g_clear_pointer(&img->backing_format, g_free);
}

/* The image's own name for an incompatible feature bit, else a generic
 * one ("unknown incompatible feature bit 9"). */
static char *feature_name(const uint8_t *table, size_t table_len, int bit)
{
    size_t i;

    for (i = 0; table && i + 48 <= table_len; i += 48) {
        if (table[i] == 0 && table[i + 1] == bit) {
            return g_strndup((const char *)table + i + 2, 46);
        }
    }
    switch (bit) {
    case 2:
        return g_strdup("external data file");
    case 4:
        return g_strdup("extended L2 entries");
    }
    return g_strdup_printf("unknown incompatible feature bit %d", bit);
}

/* Table of n entries of esize bytes at offset: aligned, inside the file,
 * no overflow. */
static bool check_table(const char *what, uint64_t offset, uint64_t n,
                        uint64_t esize, uint64_t max_bytes, int64_t cs,
                        int64_t file_size, Error **errp)
{
    if (n > max_bytes / esize) {
        error_setg(errp, "Image is not in qcow2 format: %s is too large", what);
        return false;
    }
    if (offset & (uint64_t)(cs - 1)) {
        error_setg(errp,
                   "Image is not in qcow2 format: %s offset 0x%" PRIx64
                   " is not aligned to a cluster",
                   what, offset);
        return false;
    }
    if (n && (offset == 0 || offset > (uint64_t)file_size ||
              n * esize > (uint64_t)file_size - offset)) {
        error_setg(errp,
                   "Image is not in qcow2 format: %s (offset 0x%" PRIx64
                   ", %" PRIu64 " bytes) is not inside the file",
                   what, offset, n * esize);
        return false;
    }
    return true;
}

static bool parse_fields(const uint8_t *buf, size_t len, Qcow2Header *h,
                         Error **errp)
{
    if (len < QCOW2_V2_HEADER_LEN || be32(buf) != QCOW2_MAGIC) {
        error_setg(errp, "Image is not in qcow2 format (no qcow2 magic)");
        return false;
    }
    memset(h, 0, sizeof(*h));
    h->version = be32(buf + 4);
    if (h->version != 2 && h->version != 3) {
        error_setg(errp, "Unsupported qcow2 version %u (2 and 3 are)",
                   h->version);
        return false;
    }
    h->backing_file_offset = be64(buf + 8);
    h->backing_file_size = be32(buf + 16);
    h->cluster_bits = be32(buf + 20);
    h->size = be64(buf + 24);
    h->crypt_method = be32(buf + 32);
    h->l1_size = be32(buf + 36);
    h->l1_table_offset = be64(buf + 40);
    h->refcount_table_offset = be64(buf + 48);
    h->refcount_table_clusters = be32(buf + 56);
    h->nb_snapshots = be32(buf + 60);
    h->snapshots_offset = be64(buf + 64);
    if (h->version == 2) {
        h->refcount_order = 4;
        h->header_length = QCOW2_V2_HEADER_LEN;
        return true;
    }
    if (len < QCOW2_V3_HEADER_LEN) {
        error_setg(errp, "Image is not in qcow2 format: the version 3 header "
                         "is truncated");
        return false;
    }
    h->incompatible_features = be64(buf + 72);
    h->compatible_features = be64(buf + 80);
    h->autoclear_features = be64(buf + 88);
    h->refcount_order = be32(buf + 96);
    h->header_length = be32(buf + 100);
    if (h->header_length < QCOW2_V3_HEADER_LEN || h->header_length % 8 ||
        h->header_length > len) {
        error_setg(errp, "Image is not in qcow2 format: bad header length %u",
                   h->header_length);
        return false;
    }
    if (h->header_length > QCOW2_V3_HEADER_LEN) {
        h->compression_type = buf[104];
    }
    return true;
}

static bool check_features(const Qcow2Header *h, const uint8_t *ftable,
                           size_t ftable_len, Error **errp)
{
    uint64_t known = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT |
                     QCOW2_INCOMPAT_COMPRESSION;
    uint64_t bad = h->incompatible_features & ~known;

    if (bad) {
        int bit = __builtin_ctzll(bad);
        g_autofree char *name = feature_name(ftable, ftable_len, bit);

        error_setg(errp,
                   "Unsupported qcow2 feature: %s (incompatible feature bit "
                   "%d); dataplaned cannot open this image",
                   name, bit);
        return false;
    }
    if (h->crypt_method) {
        error_setg(errp,
                   "Encrypted qcow2 images are not supported (crypt_method "
                   "%u); decrypt it with qemu-img convert",
                   h->crypt_method);
        return false;
    }
    if (!!(h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) !=
        (h->compression_type != 0)) {
        error_setg(errp,
                   "Image is not in qcow2 format: compression type %u "
                   "disagrees with the compression type feature bit",
                   h->compression_type);
        return false;
    }
    if (h->compression_type > QCOW2_COMPRESS_ZSTD) {
        error_setg(errp, "Unsupported qcow2 compression type %u",
                   h->compression_type);
        return false;
    }
    return true;
}

/* Walks the extensions after the header; fills img's strings. */
static bool parse_extensions(const uint8_t *buf, size_t len, Qcow2Image *img,
                             const uint8_t **ftable, size_t *ftable_len,
                             Error **errp)
{
    size_t pos = img->h.header_length;

    if (img->h.version == 2) {
        pos = QCOW2_V2_HEADER_LEN;
    }
    while (pos + 8 <= len) {
        uint32_t type = be32(buf + pos);
        uint32_t elen = be32(buf + pos + 4);

        pos += 8;
        if (type == QCOW2_EXT_END) {
            return true;
        }
        if (elen > len - pos) {
            error_setg(errp,
                       "Image is not in qcow2 format: header extension "
                       "0x%08x runs past the first cluster",
                       type);
            return false;
        }
        switch (type) {
        case QCOW2_EXT_BACKING_FORMAT:
            if (elen == 0 || elen > 31 || memchr(buf + pos, 0, elen)) {
                error_setg(errp, "Image is not in qcow2 format: bad backing "
                                 "format extension");
                return false;
            }
            g_free(img->backing_format);
            img->backing_format = g_strndup((const char *)buf + pos, elen);
            break;
        case QCOW2_EXT_FEATURE_TABLE:
            *ftable = buf + pos;
            *ftable_len = elen;
            break;
        case QCOW2_EXT_BITMAPS:
            img->has_bitmaps = true;
            break;
        default:
            /* Crypto, external data file names, unknown: kept intact (the
             * driver never rewrites the extension area). */
            break;
        }
        pos += (elen + 7) & ~(size_t)7;
    }
    /* The first cluster ended without an end marker: as QEMU, fine. */
    return true;
}

bool qcow2_parse_header(const uint8_t *buf, size_t len, int64_t file_size,
                        Qcow2Image *img, Error **errp)
{
    Qcow2Header *h = &img->h;
    const uint8_t *ftable = NULL;
    size_t ftable_len = 0;
    int64_t cs;
    uint64_t l2_entries, need_l1;

    memset(img, 0, sizeof(*img));
    if (!parse_fields(buf, len, h, errp)) {
        return false;
    }
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        error_setg(errp,
                   "Unsupported qcow2 cluster size: 2^%u bytes (512 bytes "
                   "to 2 MiB are)",
                   h->cluster_bits);
        return false;
    }
    cs = INT64_C(1) << h->cluster_bits;
    if (len > (size_t)cs) {
        len = cs; /* the header and its extensions live in cluster 0 */
    }
    if (h->header_length > len) {
        error_setg(errp, "Image is not in qcow2 format: the header is longer "
                         "than the first cluster");
        return false;
    }
    if (!parse_extensions(buf, len, img, &ftable, &ftable_len, errp) ||
        !check_features(h, ftable, ftable_len, errp)) {
        goto fail;
    }
    if (h->refcount_order > 6) {
        error_setg(errp,
                   "Image is not in qcow2 format: refcount order %u "
                   "is above 6",
                   h->refcount_order);
        goto fail;
    }
    if (h->size > (uint64_t)BDRV_MAX_LENGTH) {
        error_setg(errp, "Image is too large: %" PRIu64 " bytes", h->size);
        goto fail;
    }
    l2_entries = (uint64_t)cs / 8;
    need_l1 =
        (h->size + (uint64_t)cs * l2_entries - 1) / ((uint64_t)cs * l2_entries);
    if (h->l1_size < need_l1) {
        error_setg(errp,
                   "Image is not in qcow2 format: L1 table too small (%u "
                   "entries, %" PRIu64 " needed)",
                   h->l1_size, need_l1);
        goto fail;
    }
    if (!check_table("the L1 table", h->l1_table_offset, h->l1_size, 8,
                     QCOW2_MAX_L1_BYTES, cs, file_size, errp) ||
        !check_table("the refcount table", h->refcount_table_offset,
                     (uint64_t)h->refcount_table_clusters * (uint64_t)cs, 1,
                     QCOW2_MAX_REFTABLE_BYTES, cs, file_size, errp)) {
        goto fail;
    }
    if (h->refcount_table_clusters == 0) {
        error_setg(errp, "Image is not in qcow2 format: empty refcount "
                         "table");
        goto fail;
    }
    if (h->nb_snapshots && (h->snapshots_offset & (uint64_t)(cs - 1))) {
        error_setg(errp, "Image is not in qcow2 format: snapshot table "
                         "offset is not aligned to a cluster");
        goto fail;
    }
    if (h->backing_file_offset) {
        if (h->backing_file_size > QCOW2_MAX_BACKING_NAME ||
            h->backing_file_size == 0 || h->backing_file_offset > len ||
            h->backing_file_size > len - h->backing_file_offset) {
            error_setg(errp, "Image is not in qcow2 format: the backing file "
                             "name is too long or outside the first cluster");
            goto fail;
        }
        if (memchr(buf + h->backing_file_offset, 0, h->backing_file_size)) {
            error_setg(errp, "Image is not in qcow2 format: the backing file "
                             "name holds a NUL byte");
            goto fail;
        }
        img->backing_file = g_strndup(
            (const char *)buf + h->backing_file_offset, h->backing_file_size);
    }
    return true;

fail:
    qcow2_image_clear(img);
    return false;
}

int64_t qcow2_parse_snapshots(const uint8_t *buf, size_t len, uint32_t max,
                              GPtrArray *list, Error **errp)
{
    size_t pos = 0;
    uint32_t n;

    for (n = 0; n < max; n++) {
        uint32_t id_len, name_len, extra;
        size_t entry_len;
        BdrvSnapshotInfo *sn;
        const uint8_t *p = buf + pos;

        if (len - pos < 40) {
            break;
        }
        id_len = (uint32_t)p[12] << 8 | p[13];
        name_len = (uint32_t)p[14] << 8 | p[15];
        extra = be32(p + 36);
        if (extra > 1024) {
            error_setg(errp,
                       "Snapshot table entry %u has %u bytes of extra "
                       "data (at most 1024 are accepted)",
                       n, extra);
            return -1;
        }
        entry_len = 40 + (size_t)extra + id_len + name_len;
        entry_len = (entry_len + 7) & ~(size_t)7;
        if (entry_len > len - pos) {
            break;
        }
        sn = g_new0(BdrvSnapshotInfo, 1);
        sn->date_sec = be32(p + 16);
        sn->date_nsec = be32(p + 20);
        sn->vm_clock_nsec = be64(p + 24);
        sn->vm_state_size = be32(p + 32);
        sn->icount = UINT64_MAX;
        if (extra >= 8) {
            sn->vm_state_size = be64(p + 40);
        }
        if (extra >= 24) {
            sn->icount = be64(p + 56);
        }
        sn->id = g_strndup((const char *)p + 40 + extra, id_len);
        sn->name = g_strndup((const char *)p + 40 + extra + id_len, name_len);
        g_ptr_array_add(list, sn);
        pos += entry_len;
    }
    return (int64_t)pos;
}

Qcow2ClusterType qcow2_entry_type(uint64_t entry, int version)
{
    if (entry & QCOW2_OFLAG_COMPRESSED) {
        return QCOW2_CLUSTER_COMPRESSED;
    }
    if (version >= 3 && (entry & QCOW2_OFLAG_ZERO)) {
        return (entry & QCOW2_OFFSET_MASK) ? QCOW2_CLUSTER_ZERO_ALLOC
                                           : QCOW2_CLUSTER_ZERO_PLAIN;
    }
    return (entry & QCOW2_OFFSET_MASK) ? QCOW2_CLUSTER_NORMAL
                                       : QCOW2_CLUSTER_UNALLOCATED;
}

void qcow2_compressed_range(uint64_t entry, unsigned cluster_bits,
                            uint64_t *offset, uint64_t *bytes)
{
    unsigned x = 62 - (cluster_bits - 8);
    uint64_t off = entry & ((UINT64_C(1) << x) - 1);
    uint64_t sectors =
        ((entry >> x) & ((UINT64_C(1) << (cluster_bits - 8)) - 1)) + 1;

    /* The data starts at off and runs to the end of the last 512-byte
     * sector counted (the first being the one holding off). */
    *offset = off;
    *bytes = (off & ~UINT64_C(511)) + sectors * 512 - off;
}

uint64_t qcow2_refcount_get(const void *block, uint64_t i, unsigned order)
{
    const uint8_t *p = block;
    unsigned bits = 1u << order;

    switch (order) {
    case 0:
    case 1:
    case 2:
        /* Sub-byte widths: entry 0 in the least significant bits. */
        return (p[i * bits / 8] >> (i * bits % 8)) & ((1u << bits) - 1);
    case 3:
        return p[i];
    case 4:
        return (uint64_t)p[i * 2] << 8 | p[i * 2 + 1];
    case 5:
        return be32(p + i * 4);
    default:
        return be64(p + i * 8);
    }
}

void qcow2_refcount_set(void *block, uint64_t i, unsigned order, uint64_t v)
{
    uint8_t *p = block;
    unsigned bits = 1u << order;
    int k;

    switch (order) {
    case 0:
    case 1:
    case 2: {
        unsigned shift = i * bits % 8;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << shift);

        p[i * bits / 8] =
            (uint8_t)((p[i * bits / 8] & ~mask) | ((v << shift) & mask));
        return;
    }
    case 3:
        p[i] = (uint8_t)v;
        return;
    default:
        for (k = (int)(bits / 8) - 1; k >= 0; k--) {
            p[i * (bits / 8) + k] = (uint8_t)v;
            v >>= 8;
        }
        return;
    }
}
