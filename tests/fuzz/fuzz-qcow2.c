/*
 * libFuzzer target over qcow2's handling of untrusted image bytes.  The
 * first input byte picks the mode:
 *   even: the header parser (qcow2_parse_header) and the snapshot table
 *         parser on the rest;
 *   odd:  the rest is a whole image in a memory node; the driver opens it
 *         read-only and reads and maps its first clusters, which walks
 *         the L1 and L2 tables, compressed clusters and the refcount
 *         table as the image describes them.
 * Every offset, size and entry is then hostile: the driver must fail
 * requests with errors, never read outside its buffers, never allocate
 * more than the image's own size says (bounded by the input), never hang.
 * The corpus (tests/fuzz/corpus-qcow2) holds images made by qemu-img.
 */
#include <inttypes.h>
#include <string.h>

#include "block/qcow2.h"
#include "dataplane/block.h"
#include "dataplane/main-loop.h"
#include "tests/unit/block-test-util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    main_loop_init(&error_abort);
    bdrv_init();
    return 0;
}

static void snapshot_free(gpointer p)
{
    BdrvSnapshotInfo *sn = p;

    g_free(sn->id);
    g_free(sn->name);
    g_free(sn);
}

static void fuzz_header(const uint8_t *p, size_t n)
{
    Qcow2Image img;
    Error *err = NULL;
    g_autoptr(GPtrArray) snaps = g_ptr_array_new_with_free_func(snapshot_free);
    int64_t used;

    /* The same bytes as a snapshot table. */
    used = qcow2_parse_snapshots(p, n, 1000, snaps, &err);
    g_assert(used <= (int64_t)n && (used >= 0 || err));
    g_clear_pointer(&err, error_free);

    if (qcow2_parse_header(p, n, (int64_t)n, &img, &err)) {
        g_assert(img.h.cluster_bits >= QCOW2_MIN_CLUSTER_BITS &&
                 img.h.cluster_bits <= QCOW2_MAX_CLUSTER_BITS);
        qcow2_image_clear(&img);
    } else {
        g_assert(err);
        error_free(err);
    }
}

static void fuzz_image(const uint8_t *p, size_t n)
{
    int64_t size = (int64_t)((n + 511) & ~(size_t)511);
    g_autofree char *spec = NULL;
    g_autoptr(GHashTable) opts = NULL;
    BlockDriverState *mem, *bs;
    Error *err = NULL;
    uint8_t *buf;
    int64_t len, off, pnum;
    unsigned status;

    if (size == 0 || size > (8 << 20)) {
        return;
    }
    spec = g_strdup_printf("driver=memory,node-name=img,size=%" PRId64, size);
    mem = test_open(spec);
    g_assert(test_pwrite(mem, 0, p, n, 0) == 0);
    opts = test_opts("driver=qcow2,file=img,read-only=on,backing=null");
    bs = bdrv_open(opts, &err);
    if (!bs) {
        error_free(err);
        bdrv_unref(mem);
        return;
    }
    len = bdrv_getlength(bs);
    buf = g_malloc(65536);
    /* The first 1 MiB, and block status over the whole disk in steps. */
    for (off = 0; off < MIN(len, 1 << 20); off += 65536) {
        test_pread(bs, off, buf, MIN(65536, len - off));
    }
    for (off = 0, len = MIN(len, INT64_C(1) << 40); off < len;) {
        if (test_block_status(bs, off, len - off, &pnum, &status) < 0 ||
            pnum <= 0) {
            break;
        }
        off += pnum;
        if (off > (64 << 20)) {
            break; /* bounded work per input */
        }
    }
    g_free(buf);
    bdrv_unref(bs);
    bdrv_unref(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    if (data[0] & 1) {
        fuzz_image(data + 1, size - 1);
    } else {
        fuzz_header(data + 1, size - 1);
    }
    return 0;
}
