/*
 * libFuzzer target over the NBD codec's parsers.  The first input byte
 * picks the parser, the rest is the message.  Whatever a parser accepts is
 * fed back through the builders and accessors, so an accepted-but-wrong
 * length shows up as an out-of-bounds read under ASan.
 */
#include <stdint.h>
#include <string.h>

#include "nbd/protocol.h"

static void rebuild_string(NbdString s)
{
    /* g_strndup(NULL, 0) is NULL: an empty payload has no buffer. */
    char *c = s.len ? g_strndup(s.data, s.len) : g_strdup("");
    g_autoptr(GByteArray) out = g_byte_array_new();

    /* An accepted string has no NUL, so the copy keeps its length. */
    g_assert(strlen(c) == s.len);
    nbd_build_info_name(out, NBD_OPT_GO, c);
    nbd_build_rep_server(out, c, NULL);
    g_assert(out->len == 2 * NBD_OPT_REPLY_HEADER_LEN + 2 + 4 + 2 * s.len);
    g_free(c);
}

static void fuzz_go(const uint8_t *p, size_t n)
{
    NbdOptGo go;
    uint16_t i;
    unsigned sum = 0;

    if (nbd_parse_opt_go(p, n, &go) != NBD_PARSE_OK) {
        return;
    }
    rebuild_string(go.name);
    for (i = 0; i < go.n_requests; i++) {
        sum += nbd_opt_go_request(&go, i);
    }
    (void)sum;
}

static void fuzz_meta(const uint8_t *p, size_t n)
{
    NbdOptMetaContext meta;
    NbdString q;
    size_t pos = 0;
    uint32_t count = 0;

    if (nbd_parse_opt_meta_context(p, n, &meta) != NBD_PARSE_OK) {
        return;
    }
    rebuild_string(meta.export_name);
    while (nbd_opt_meta_next_query(&meta, &pos, &q)) {
        g_assert(q.len <= NBD_MAX_STRING);
        nbd_meta_query_match(q);
        count++;
    }
    g_assert(count == meta.n_queries);
}

static void fuzz_request(const uint8_t *p, size_t n)
{
    NbdRequest req;
    NbdRequestLimits lim;
    uint32_t err;

    if (nbd_parse_request(p, n, &req) != NBD_PARSE_OK) {
        return;
    }
    /* Limits drawn from the bytes after the header, when there are any. */
    memset(&lim, 0, sizeof(lim));
    lim.max_payload = NBD_MAX_PAYLOAD;
    if (n >= NBD_REQUEST_LEN + 11) {
        lim.export_size = nbd_get_be64(p + NBD_REQUEST_LEN);
        lim.eflags = nbd_get_be16(p + NBD_REQUEST_LEN + 8);
        lim.structured_replies = p[NBD_REQUEST_LEN + 10] & 1;
        lim.base_allocation = p[NBD_REQUEST_LEN + 10] & 2;
    }
    err = nbd_request_check(&req, &lim);
    if (err == NBD_SUCCESS && req.type != NBD_CMD_DISC &&
        req.type != NBD_CMD_FLUSH) {
        /* Accepted ranges lie inside the export. */
        g_assert(req.offset + req.len <= lim.export_size);
        g_assert(req.offset + req.len >= req.offset);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p;
    size_t n;
    uint32_t flags;
    NbdOptionHeader hdr;
    NbdString s;

    if (size < 1) {
        return 0;
    }
    /* A private copy: ASan then catches reads one past the end exactly. */
    n = size - 1;
    p = g_memdup2(data + 1, n);
    switch (data[0] % 6) {
    case 0:
        nbd_parse_client_flags(p, n, &flags);
        break;
    case 1:
        if (nbd_parse_option_header(p, n, &hdr) == NBD_PARSE_OK) {
            g_assert(hdr.len <= NBD_MAX_OPTION_LEN);
            nbd_opt_name(hdr.option);
        }
        break;
    case 2:
        if (nbd_parse_opt_export_name(p, n, &s) == NBD_PARSE_OK) {
            rebuild_string(s);
        }
        break;
    case 3:
        fuzz_go(p, n);
        break;
    case 4:
        fuzz_meta(p, n);
        break;
    case 5:
        fuzz_request(p, n);
        break;
    }
    g_free((void *)p);
    return 0;
}
