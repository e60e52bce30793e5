/*
 * qcow2 compressed clusters: raw deflate (zlib without header, as QEMU
 * writes them) or zstd frames, per the image's compression type.  Only
 * decompression: writes never compress (a rewritten compressed cluster
 * becomes a normal one).  Pure; any thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <zlib.h>
#include <zstd.h>

#include "block/qcow2.h"

static int inflate_raw(const void *src, size_t src_len, void *dst,
                       size_t dst_len)
{
    z_stream z = {0};
    int ret;

    if (inflateInit2(&z, -12) != Z_OK) {
        return -EIO;
    }
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)src_len;
    z.next_out = dst;
    z.avail_out = (uInt)dst_len;
    ret = inflate(&z, Z_FINISH);
    /* The data may end before the last sector does, and may decompress
     * to the whole cluster before the input runs out: a full output is
     * success, as in QEMU. */
    if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && z.avail_out == 0) {
        ret = 0;
    } else {
        ret = -EIO;
    }
    inflateEnd(&z);
    return ret;
}

static int zstd_frame(const void *src, size_t src_len, void *dst,
                      size_t dst_len)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    ZSTD_inBuffer in = {src, src_len, 0};
    ZSTD_outBuffer out = {dst, dst_len, 0};
    size_t r;
    int ret = -EIO;

    if (!dctx) {
        return -ENOMEM;
    }
    /* Streaming: the input may carry padding after the frame. */
    while (out.pos < out.size) {
        r = ZSTD_decompressStream(dctx, &out, &in);
        if (ZSTD_isError(r)) {
            break;
        }
        if (r == 0 || in.pos == in.size) {
            break;
        }
    }
    if (out.pos == out.size) {
        ret = 0;
    }
    ZSTD_freeDCtx(dctx);
    return ret;
}

int qcow2_decompress(int type, const void *src, size_t src_len, void *dst,
                     size_t dst_len)
{
    if (type == QCOW2_COMPRESS_ZSTD) {
        return zstd_frame(src, src_len, dst, dst_len);
    }
    return inflate_raw(src, src_len, dst, dst_len);
}
