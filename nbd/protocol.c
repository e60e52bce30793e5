/*
 * NBD protocol codec: see protocol.h.  Every parser checks a length before
 * it reads the bytes it covers, and computes sums in 64 bits so that no
 * client-chosen 32-bit length can wrap around.
 */
#include <errno.h>
#include <string.h>

#include "nbd/protocol.h"

const char *nbd_parse_result_str(NbdParseResult r)
{
    switch (r) {
    case NBD_PARSE_OK:
        return "ok";
    case NBD_PARSE_NEED_MORE:
        return "message incomplete";
    case NBD_PARSE_BAD_MAGIC:
        return "bad magic";
    case NBD_PARSE_BAD_FLAGS:
        return "unknown flags";
    case NBD_PARSE_TOO_LONG:
        return "length over the limit";
    case NBD_PARSE_BAD_LENGTH:
        return "lengths do not add up";
    case NBD_PARSE_BAD_STRING:
        return "string contains a NUL byte";
    }
    return "unknown parse result";
}

const char *nbd_opt_name(uint32_t opt)
{
    switch (opt) {
    case NBD_OPT_EXPORT_NAME:
        return "NBD_OPT_EXPORT_NAME";
    case NBD_OPT_ABORT:
        return "NBD_OPT_ABORT";
    case NBD_OPT_LIST:
        return "NBD_OPT_LIST";
    case NBD_OPT_STARTTLS:
        return "NBD_OPT_STARTTLS";
    case NBD_OPT_INFO:
        return "NBD_OPT_INFO";
    case NBD_OPT_GO:
        return "NBD_OPT_GO";
    case NBD_OPT_STRUCTURED_REPLY:
        return "NBD_OPT_STRUCTURED_REPLY";
    case NBD_OPT_LIST_META_CONTEXT:
        return "NBD_OPT_LIST_META_CONTEXT";
    case NBD_OPT_SET_META_CONTEXT:
        return "NBD_OPT_SET_META_CONTEXT";
    }
    return "unknown";
}

const char *nbd_cmd_name(uint16_t cmd)
{
    switch (cmd) {
    case NBD_CMD_READ:
        return "NBD_CMD_READ";
    case NBD_CMD_WRITE:
        return "NBD_CMD_WRITE";
    case NBD_CMD_DISC:
        return "NBD_CMD_DISC";
    case NBD_CMD_FLUSH:
        return "NBD_CMD_FLUSH";
    case NBD_CMD_TRIM:
        return "NBD_CMD_TRIM";
    case NBD_CMD_CACHE:
        return "NBD_CMD_CACHE";
    case NBD_CMD_WRITE_ZEROES:
        return "NBD_CMD_WRITE_ZEROES";
    case NBD_CMD_BLOCK_STATUS:
        return "NBD_CMD_BLOCK_STATUS";
    }
    return "unknown";
}

bool nbd_string_eq(NbdString s, const char *c)
{
    size_t n = strlen(c);

    return n == s.len && (n == 0 || memcmp(s.data, c, n) == 0);
}

/* A string of len bytes at buf: checks the length limit and for NULs. */
static NbdParseResult parse_string(const uint8_t *buf, uint64_t len,
                                   NbdString *s)
{
    if (len > NBD_MAX_STRING) {
        return NBD_PARSE_TOO_LONG;
    }
    if (len > 0 && memchr(buf, '\0', len) != NULL) {
        return NBD_PARSE_BAD_STRING;
    }
    s->data = (const char *)buf;
    s->len = (uint32_t)len;
    return NBD_PARSE_OK;
}

NbdParseResult nbd_parse_client_flags(const uint8_t *buf, size_t len,
                                      uint32_t *flags)
{
    if (len < NBD_CLIENT_FLAGS_LEN) {
        return NBD_PARSE_NEED_MORE;
    }
    *flags = nbd_get_be32(buf);
    if (*flags & ~NBD_FLAG_C_KNOWN) {
        return NBD_PARSE_BAD_FLAGS;
    }
    return NBD_PARSE_OK;
}

NbdParseResult nbd_parse_option_header(const uint8_t *buf, size_t len,
                                       NbdOptionHeader *hdr)
{
    if (len < NBD_OPTION_HEADER_LEN) {
        return NBD_PARSE_NEED_MORE;
    }
    if (nbd_get_be64(buf) != NBD_OPTS_MAGIC) {
        return NBD_PARSE_BAD_MAGIC;
    }
    hdr->option = nbd_get_be32(buf + 8);
    hdr->len = nbd_get_be32(buf + 12);
    if (hdr->len > NBD_MAX_OPTION_LEN) {
        return NBD_PARSE_TOO_LONG;
    }
    return NBD_PARSE_OK;
}

NbdParseResult nbd_parse_opt_empty(size_t len)
{
    return len == 0 ? NBD_PARSE_OK : NBD_PARSE_BAD_LENGTH;
}

NbdParseResult nbd_parse_opt_export_name(const uint8_t *buf, size_t len,
                                         NbdString *name)
{
    return parse_string(buf, len, name);
}

/*
 * A be32 length followed by that many bytes of string, starting at *pos
 * within buf[0..len).  Advances *pos past it.
 */
static NbdParseResult parse_lstring(const uint8_t *buf, size_t len, size_t *pos,
                                    NbdString *s)
{
    uint64_t slen;
    NbdParseResult r;

    if (len - *pos < 4) {
        return NBD_PARSE_BAD_LENGTH;
    }
    slen = nbd_get_be32(buf + *pos);
    *pos += 4;
    if (slen > len - *pos) {
        /* Past the payload: over-long claims are reported as such so
         * that the client learns which limit it broke. */
        return slen > NBD_MAX_STRING ? NBD_PARSE_TOO_LONG
                                     : NBD_PARSE_BAD_LENGTH;
    }
    r = parse_string(buf + *pos, slen, s);
    if (r != NBD_PARSE_OK) {
        return r;
    }
    *pos += slen;
    return NBD_PARSE_OK;
}

NbdParseResult nbd_parse_opt_go(const uint8_t *buf, size_t len, NbdOptGo *go)
{
    size_t pos = 0;
    NbdParseResult r;

    r = parse_lstring(buf, len, &pos, &go->name);
    if (r != NBD_PARSE_OK) {
        return r;
    }
    if (len - pos < 2) {
        return NBD_PARSE_BAD_LENGTH;
    }
    go->n_requests = nbd_get_be16(buf + pos);
    pos += 2;
    if ((uint64_t)go->n_requests * 2 != len - pos) {
        return NBD_PARSE_BAD_LENGTH;
    }
    go->requests = buf + pos;
    return NBD_PARSE_OK;
}

uint16_t nbd_opt_go_request(const NbdOptGo *go, uint16_t i)
{
    g_assert(i < go->n_requests);
    return nbd_get_be16(go->requests + 2 * (size_t)i);
}

NbdParseResult nbd_parse_opt_meta_context(const uint8_t *buf, size_t len,
                                          NbdOptMetaContext *meta)
{
    size_t pos = 0;
    uint32_t i;
    NbdParseResult r;

    r = parse_lstring(buf, len, &pos, &meta->export_name);
    if (r != NBD_PARSE_OK) {
        return r;
    }
    if (len - pos < 4) {
        return NBD_PARSE_BAD_LENGTH;
    }
    meta->n_queries = nbd_get_be32(buf + pos);
    pos += 4;
    meta->queries = buf + pos;
    meta->queries_len = len - pos;
    /* Each query takes at least its 4-byte length: a count that cannot fit
     * is refused before the loop, which is then bounded by len / 4. */
    if ((uint64_t)meta->n_queries * 4 > meta->queries_len) {
        return NBD_PARSE_BAD_LENGTH;
    }
    for (i = 0; i < meta->n_queries; i++) {
        NbdString q;

        r = parse_lstring(buf, len, &pos, &q);
        if (r != NBD_PARSE_OK) {
            return r;
        }
    }
    if (pos != len) {
        return NBD_PARSE_BAD_LENGTH;
    }
    return NBD_PARSE_OK;
}

bool nbd_opt_meta_next_query(const NbdOptMetaContext *meta, size_t *pos,
                             NbdString *query)
{
    uint32_t slen;

    if (*pos >= meta->queries_len) {
        return false;
    }
    /* Already validated by nbd_parse_opt_meta_context(). */
    g_assert(meta->queries_len - *pos >= 4);
    slen = nbd_get_be32(meta->queries + *pos);
    *pos += 4;
    g_assert(slen <= meta->queries_len - *pos);
    query->data = (const char *)meta->queries + *pos;
    query->len = slen;
    *pos += slen;
    return true;
}

NbdMetaMatch nbd_meta_query_match(NbdString query)
{
    const char *colon = memchr(query.data, ':', query.len);

    if (colon == NULL || colon == query.data) {
        return NBD_META_MATCH_INVALID;
    }
    /* "base:" alone asks for every context of the base namespace. */
    if (nbd_string_eq(query, "base:") ||
        nbd_string_eq(query, NBD_META_BASE_ALLOCATION)) {
        return NBD_META_MATCH_BASE_ALLOCATION;
    }
    /* qemu-nbd's extra context; "qemu:" lists every qemu: context (the
     * dirty bitmaps qemu-nbd also has are not offered here). */
    if (nbd_string_eq(query, "qemu:") ||
        nbd_string_eq(query, NBD_META_ALLOCATION_DEPTH)) {
        return NBD_META_MATCH_ALLOCATION_DEPTH;
    }
    return NBD_META_MATCH_NONE;
}

NbdParseResult nbd_parse_request(const uint8_t *buf, size_t len,
                                 NbdRequest *req)
{
    if (len < NBD_REQUEST_LEN) {
        return NBD_PARSE_NEED_MORE;
    }
    if (nbd_get_be32(buf) != NBD_REQUEST_MAGIC) {
        return NBD_PARSE_BAD_MAGIC;
    }
    req->flags = nbd_get_be16(buf + 4);
    req->type = nbd_get_be16(buf + 6);
    req->cookie = nbd_get_be64(buf + 8);
    req->offset = nbd_get_be64(buf + 16);
    req->len = nbd_get_be32(buf + 24);
    return NBD_PARSE_OK;
}

/* The command flags valid for each command, given what was advertised. */
static uint16_t allowed_flags(const NbdRequest *req,
                              const NbdRequestLimits *lim)
{
    uint16_t ok = 0;

    if (lim->eflags & NBD_FLAG_SEND_FUA) {
        ok |= NBD_CMD_FLAG_FUA;
    }
    switch (req->type) {
    case NBD_CMD_READ:
        if (lim->eflags & NBD_FLAG_SEND_DF) {
            ok |= NBD_CMD_FLAG_DF;
        }
        break;
    case NBD_CMD_WRITE_ZEROES:
        ok |= NBD_CMD_FLAG_NO_HOLE;
        if (lim->eflags & NBD_FLAG_SEND_FAST_ZERO) {
            ok |= NBD_CMD_FLAG_FAST_ZERO;
        }
        break;
    case NBD_CMD_BLOCK_STATUS:
        ok |= NBD_CMD_FLAG_REQ_ONE;
        break;
    }
    return ok;
}

uint32_t nbd_request_check(const NbdRequest *req, const NbdRequestLimits *lim)
{
    bool writes = false;
    bool in_range;

    switch (req->type) {
    case NBD_CMD_DISC:
        return NBD_SUCCESS;
    case NBD_CMD_READ:
        break;
    case NBD_CMD_WRITE:
        writes = true;
        break;
    case NBD_CMD_FLUSH:
        if (!(lim->eflags & NBD_FLAG_SEND_FLUSH)) {
            return NBD_EINVAL;
        }
        break;
    case NBD_CMD_TRIM:
        if (lim->eflags & NBD_FLAG_READ_ONLY) {
            return NBD_EPERM; /* before "not advertised": the spec's error */
        }
        if (!(lim->eflags & NBD_FLAG_SEND_TRIM)) {
            return NBD_EINVAL;
        }
        writes = true;
        break;
    case NBD_CMD_CACHE:
        if (!(lim->eflags & NBD_FLAG_SEND_CACHE)) {
            return NBD_EINVAL;
        }
        break;
    case NBD_CMD_WRITE_ZEROES:
        if (lim->eflags & NBD_FLAG_READ_ONLY) {
            return NBD_EPERM;
        }
        if (!(lim->eflags & NBD_FLAG_SEND_WRITE_ZEROES)) {
            return NBD_EINVAL;
        }
        writes = true;
        break;
    case NBD_CMD_BLOCK_STATUS:
        if (!lim->structured_replies ||
            !(lim->base_allocation || lim->allocation_depth) || req->len == 0) {
            return NBD_EINVAL;
        }
        break;
    default:
        return NBD_EINVAL;
    }
    if (req->flags & ~allowed_flags(req, lim)) {
        return NBD_EINVAL;
    }
    if ((req->type == NBD_CMD_READ || req->type == NBD_CMD_WRITE) &&
        req->len > lim->max_payload) {
        return NBD_EINVAL;
    }
    if (writes && (lim->eflags & NBD_FLAG_READ_ONLY)) {
        return NBD_EPERM;
    }
    if (req->type == NBD_CMD_FLUSH) {
        return NBD_SUCCESS; /* offset and length are reserved */
    }
    in_range = req->offset <= lim->export_size &&
               req->len <= lim->export_size - req->offset;
    if (!in_range) {
        return req->type == NBD_CMD_WRITE ? NBD_ENOSPC : NBD_EINVAL;
    }
    return NBD_SUCCESS;
}

uint32_t nbd_errno_to_nbd(int err)
{
    switch (-err) {
    case 0:
        return NBD_SUCCESS;
    case EPERM:
    case EROFS:
    case EACCES:
        return NBD_EPERM;
    case ENOMEM:
        return NBD_ENOMEM;
    case EINVAL:
        return NBD_EINVAL;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return NBD_ENOSPC;
    case EOVERFLOW:
        return NBD_EOVERFLOW;
    case ENOTSUP:
        return NBD_ENOTSUP;
    case ESHUTDOWN:
        return NBD_ESHUTDOWN;
    default:
        return NBD_EIO;
    }
}

/* ---- builders --------------------------------------------------------- */

static void append_be16(GByteArray *out, uint16_t v)
{
    uint8_t b[2];

    nbd_put_be16(b, v);
    g_byte_array_append(out, b, sizeof(b));
}

static void append_be32(GByteArray *out, uint32_t v)
{
    uint8_t b[4];

    nbd_put_be32(b, v);
    g_byte_array_append(out, b, sizeof(b));
}

static void append_be64(GByteArray *out, uint64_t v)
{
    uint8_t b[8];

    nbd_put_be64(b, v);
    g_byte_array_append(out, b, sizeof(b));
}

static uint32_t checked_strlen(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    g_assert(n <= NBD_MAX_STRING);
    return (uint32_t)n;
}

void nbd_build_greeting(GByteArray *out, uint16_t handshake_flags)
{
    append_be64(out, NBD_INIT_MAGIC);
    append_be64(out, NBD_OPTS_MAGIC);
    append_be16(out, handshake_flags);
}

void nbd_build_export_name_reply(GByteArray *out, uint64_t size,
                                 uint16_t eflags, bool no_zeroes)
{
    static const uint8_t zeroes[124];

    append_be64(out, size);
    append_be16(out, eflags);
    if (!no_zeroes) {
        g_byte_array_append(out, zeroes, sizeof(zeroes));
    }
}

static void opt_reply_header(GByteArray *out, uint32_t option, uint32_t type,
                             uint32_t len)
{
    append_be64(out, NBD_OPT_REPLY_MAGIC);
    append_be32(out, option);
    append_be32(out, type);
    append_be32(out, len);
}

void nbd_build_opt_reply(GByteArray *out, uint32_t option, uint32_t type,
                         const void *data, uint32_t len)
{
    opt_reply_header(out, option, type, len);
    if (len > 0) {
        g_byte_array_append(out, data, len);
    }
}

void nbd_build_opt_error(GByteArray *out, uint32_t option, uint32_t type,
                         const char *msg)
{
    uint32_t n = checked_strlen(msg);

    g_assert(type & (1U << 31));
    nbd_build_opt_reply(out, option, type, msg, n);
}

void nbd_build_rep_server(GByteArray *out, const char *name,
                          const char *description)
{
    uint32_t nlen = checked_strlen(name);
    uint32_t dlen = checked_strlen(description);

    opt_reply_header(out, NBD_OPT_LIST, NBD_REP_SERVER, 4 + nlen + dlen);
    append_be32(out, nlen);
    g_byte_array_append(out, (const uint8_t *)name, nlen);
    if (dlen > 0) {
        g_byte_array_append(out, (const uint8_t *)description, dlen);
    }
}

void nbd_build_info_export(GByteArray *out, uint32_t option, uint64_t size,
                           uint16_t eflags)
{
    opt_reply_header(out, option, NBD_REP_INFO, 12);
    append_be16(out, NBD_INFO_EXPORT);
    append_be64(out, size);
    append_be16(out, eflags);
}

static void info_string(GByteArray *out, uint32_t option, uint16_t info,
                        const char *s)
{
    uint32_t n = checked_strlen(s);

    opt_reply_header(out, option, NBD_REP_INFO, 2 + n);
    append_be16(out, info);
    if (n > 0) {
        g_byte_array_append(out, (const uint8_t *)s, n);
    }
}

void nbd_build_info_name(GByteArray *out, uint32_t option, const char *name)
{
    info_string(out, option, NBD_INFO_NAME, name);
}

void nbd_build_info_description(GByteArray *out, uint32_t option,
                                const char *description)
{
    info_string(out, option, NBD_INFO_DESCRIPTION, description);
}

void nbd_build_info_block_size(GByteArray *out, uint32_t option,
                               uint32_t min_block, uint32_t preferred,
                               uint32_t max_block)
{
    opt_reply_header(out, option, NBD_REP_INFO, 14);
    append_be16(out, NBD_INFO_BLOCK_SIZE);
    append_be32(out, min_block);
    append_be32(out, preferred);
    append_be32(out, max_block);
}

void nbd_build_rep_meta_context(GByteArray *out, uint32_t option,
                                uint32_t context_id, const char *name)
{
    uint32_t n = checked_strlen(name);

    opt_reply_header(out, option, NBD_REP_META_CONTEXT, 4 + n);
    append_be32(out, context_id);
    g_byte_array_append(out, (const uint8_t *)name, n);
}

size_t nbd_build_simple_reply(uint8_t *out, uint32_t error, uint64_t cookie)
{
    nbd_put_be32(out, NBD_SIMPLE_REPLY_MAGIC);
    nbd_put_be32(out + 4, error);
    nbd_put_be64(out + 8, cookie);
    return NBD_SIMPLE_REPLY_LEN;
}

size_t nbd_build_chunk_header(uint8_t *out, uint16_t flags, uint16_t type,
                              uint64_t cookie, uint32_t payload_len)
{
    nbd_put_be32(out, NBD_STRUCTURED_REPLY_MAGIC);
    nbd_put_be16(out + 4, flags);
    nbd_put_be16(out + 6, type);
    nbd_put_be64(out + 8, cookie);
    nbd_put_be32(out + 16, payload_len);
    return NBD_STRUCTURED_REPLY_LEN;
}

size_t nbd_build_chunk_offset_data(uint8_t *out, uint16_t flags,
                                   uint64_t cookie, uint64_t offset,
                                   uint32_t data_len)
{
    /* The chunk length counts the offset too: 8 + data_len must fit. */
    g_assert(data_len > 0 && data_len <= UINT32_MAX - 8);
    nbd_build_chunk_header(out, flags, NBD_REPLY_TYPE_OFFSET_DATA, cookie,
                           8 + data_len);
    nbd_put_be64(out + NBD_STRUCTURED_REPLY_LEN, offset);
    return NBD_STRUCTURED_REPLY_LEN + 8;
}

size_t nbd_build_chunk_offset_hole(uint8_t *out, uint16_t flags,
                                   uint64_t cookie, uint64_t offset,
                                   uint32_t hole_len)
{
    g_assert(hole_len > 0);
    nbd_build_chunk_header(out, flags, NBD_REPLY_TYPE_OFFSET_HOLE, cookie, 12);
    nbd_put_be64(out + NBD_STRUCTURED_REPLY_LEN, offset);
    nbd_put_be32(out + NBD_STRUCTURED_REPLY_LEN + 8, hole_len);
    return NBD_STRUCTURED_REPLY_LEN + 12;
}

size_t nbd_build_chunk_none(uint8_t *out, uint64_t cookie)
{
    return nbd_build_chunk_header(out, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE,
                                  cookie, 0);
}

size_t nbd_build_chunk_error(uint8_t *out, uint16_t flags, uint64_t cookie,
                             uint32_t error, uint16_t msg_len)
{
    g_assert(error != 0);
    nbd_build_chunk_header(out, flags, NBD_REPLY_TYPE_ERROR, cookie,
                           6 + (uint32_t)msg_len);
    nbd_put_be32(out + NBD_STRUCTURED_REPLY_LEN, error);
    nbd_put_be16(out + NBD_STRUCTURED_REPLY_LEN + 4, msg_len);
    return NBD_STRUCTURED_REPLY_LEN + 6;
}

size_t nbd_build_chunk_block_status(uint8_t *out, uint16_t flags,
                                    uint64_t cookie, uint32_t context_id,
                                    const NbdExtent *extents, size_t n)
{
    uint8_t *p = out + NBD_STRUCTURED_REPLY_LEN;
    size_t i;

    g_assert(n >= 1 && n <= (UINT32_MAX - 4) / 8);
    nbd_build_chunk_header(out, flags, NBD_REPLY_TYPE_BLOCK_STATUS, cookie,
                           (uint32_t)(4 + 8 * n));
    nbd_put_be32(p, context_id);
    p += 4;
    for (i = 0; i < n; i++) {
        g_assert(extents[i].length > 0);
        nbd_put_be32(p, extents[i].length);
        nbd_put_be32(p + 4, extents[i].flags);
        p += 8;
    }
    return (size_t)(p - out);
}
