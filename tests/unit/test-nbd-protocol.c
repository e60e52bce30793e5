/* NBD codec: every parser on good and malformed input, every builder's
 * bytes. */
#include <glib.h>
#include <errno.h>
#include <string.h>

#include "nbd/protocol.h"

/* A growing buffer to write client messages into. */
typedef struct Msg {
    uint8_t b[3 * NBD_MAX_STRING];
    size_t len;
} Msg;

static void put16(Msg *m, uint16_t v)
{
    nbd_put_be16(m->b + m->len, v);
    m->len += 2;
}

static void put32(Msg *m, uint32_t v)
{
    nbd_put_be32(m->b + m->len, v);
    m->len += 4;
}

static void put64(Msg *m, uint64_t v)
{
    nbd_put_be64(m->b + m->len, v);
    m->len += 8;
}

static void putstr(Msg *m, const char *s, size_t n)
{
    memcpy(m->b + m->len, s, n);
    m->len += n;
}

static void putlstr(Msg *m, const char *s)
{
    put32(m, (uint32_t)strlen(s));
    putstr(m, s, strlen(s));
}

/* ---- big-endian helpers ----------------------------------------------- */

static void test_be_helpers_round_trip_in_network_order(void)
{
    uint8_t b[8];

    nbd_put_be16(b, 0x1234);
    g_assert_cmpint(b[0], ==, 0x12);
    g_assert_cmpint(b[1], ==, 0x34);
    g_assert_cmpint(nbd_get_be16(b), ==, 0x1234);
    nbd_put_be32(b, 0xdeadbeef);
    g_assert_cmpint(b[0], ==, 0xde);
    g_assert_cmpint(b[3], ==, 0xef);
    g_assert_cmpuint(nbd_get_be32(b), ==, 0xdeadbeef);
    nbd_put_be64(b, 0x0102030405060708ULL);
    g_assert_cmpint(b[0], ==, 1);
    g_assert_cmpint(b[7], ==, 8);
    g_assert_cmpuint(nbd_get_be64(b), ==, 0x0102030405060708ULL);
}

/* ---- client flags ----------------------------------------------------- */

static void test_client_flags_known_accepted(void)
{
    Msg m = {.len = 0};
    uint32_t flags;

    put32(&m, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    g_assert_cmpint(nbd_parse_client_flags(m.b, m.len, &flags), ==,
                    NBD_PARSE_OK);
    g_assert_cmpuint(flags, ==, 3);
}

static void test_client_flags_short_needs_more(void)
{
    uint8_t b[3] = {0};
    uint32_t flags;

    g_assert_cmpint(nbd_parse_client_flags(b, sizeof(b), &flags), ==,
                    NBD_PARSE_NEED_MORE);
}

static void test_client_flags_unknown_refused(void)
{
    Msg m = {.len = 0};
    uint32_t flags;

    put32(&m, NBD_FLAG_C_FIXED_NEWSTYLE | (1U << 7));
    g_assert_cmpint(nbd_parse_client_flags(m.b, m.len, &flags), ==,
                    NBD_PARSE_BAD_FLAGS);
}

/* ---- option header ---------------------------------------------------- */

static void test_option_header_parsed(void)
{
    Msg m = {.len = 0};
    NbdOptionHeader h;

    put64(&m, NBD_OPTS_MAGIC);
    put32(&m, NBD_OPT_GO);
    put32(&m, 42);
    g_assert_cmpint(nbd_parse_option_header(m.b, m.len, &h), ==, NBD_PARSE_OK);
    g_assert_cmpuint(h.option, ==, NBD_OPT_GO);
    g_assert_cmpuint(h.len, ==, 42);
}

static void test_option_header_short_needs_more(void)
{
    Msg m = {.len = 0};
    NbdOptionHeader h;

    put64(&m, NBD_OPTS_MAGIC);
    put32(&m, NBD_OPT_GO);
    g_assert_cmpint(nbd_parse_option_header(m.b, m.len, &h), ==,
                    NBD_PARSE_NEED_MORE);
}

static void test_option_header_wrong_magic_refused(void)
{
    Msg m = {.len = 0};
    NbdOptionHeader h;

    put64(&m, NBD_INIT_MAGIC);
    put32(&m, NBD_OPT_GO);
    put32(&m, 0);
    g_assert_cmpint(nbd_parse_option_header(m.b, m.len, &h), ==,
                    NBD_PARSE_BAD_MAGIC);
}

static void test_option_header_huge_length_too_long(void)
{
    Msg m = {.len = 0};
    NbdOptionHeader h;

    put64(&m, NBD_OPTS_MAGIC);
    put32(&m, NBD_OPT_GO);
    put32(&m, 0xffffffffU);
    g_assert_cmpint(nbd_parse_option_header(m.b, m.len, &h), ==,
                    NBD_PARSE_TOO_LONG);
    /* The header is still usable so the server can skip the payload. */
    g_assert_cmpuint(h.len, ==, 0xffffffffU);
}

static void test_opt_empty_with_data_refused(void)
{
    g_assert_cmpint(nbd_parse_opt_empty(0), ==, NBD_PARSE_OK);
    g_assert_cmpint(nbd_parse_opt_empty(1), ==, NBD_PARSE_BAD_LENGTH);
}

/* ---- EXPORT_NAME ------------------------------------------------------ */

static void test_export_name_parsed(void)
{
    NbdString s;

    g_assert_cmpint(nbd_parse_opt_export_name((const uint8_t *)"disk0", 5, &s),
                    ==, NBD_PARSE_OK);
    g_assert_true(nbd_string_eq(s, "disk0"));
    g_assert_cmpint(nbd_parse_opt_export_name(NULL, 0, &s), ==, NBD_PARSE_OK);
    g_assert_true(nbd_string_eq(s, ""));
}

static void test_export_name_over_4096_refused(void)
{
    static uint8_t big[NBD_MAX_STRING + 1];
    NbdString s;

    memset(big, 'a', sizeof(big));
    g_assert_cmpint(nbd_parse_opt_export_name(big, NBD_MAX_STRING, &s), ==,
                    NBD_PARSE_OK);
    g_assert_cmpint(nbd_parse_opt_export_name(big, sizeof(big), &s), ==,
                    NBD_PARSE_TOO_LONG);
}

static void test_export_name_with_nul_refused(void)
{
    NbdString s;

    g_assert_cmpint(nbd_parse_opt_export_name((const uint8_t *)"a\0b", 3, &s),
                    ==, NBD_PARSE_BAD_STRING);
}

/* ---- INFO / GO -------------------------------------------------------- */

static void test_go_with_info_requests_parsed(void)
{
    Msg m = {.len = 0};
    NbdOptGo go;

    putlstr(&m, "disk");
    put16(&m, 2);
    put16(&m, NBD_INFO_NAME);
    put16(&m, NBD_INFO_BLOCK_SIZE);
    g_assert_cmpint(nbd_parse_opt_go(m.b, m.len, &go), ==, NBD_PARSE_OK);
    g_assert_true(nbd_string_eq(go.name, "disk"));
    g_assert_cmpuint(go.n_requests, ==, 2);
    g_assert_cmpuint(nbd_opt_go_request(&go, 0), ==, NBD_INFO_NAME);
    g_assert_cmpuint(nbd_opt_go_request(&go, 1), ==, NBD_INFO_BLOCK_SIZE);
}

static void test_go_without_requests_parsed(void)
{
    Msg m = {.len = 0};
    NbdOptGo go;

    putlstr(&m, "");
    put16(&m, 0);
    g_assert_cmpint(nbd_parse_opt_go(m.b, m.len, &go), ==, NBD_PARSE_OK);
    g_assert_cmpuint(go.name.len, ==, 0);
    g_assert_cmpuint(go.n_requests, ==, 0);
}

static void test_go_short_refused(void)
{
    Msg m = {.len = 0};
    NbdOptGo go;

    /* Too short for the name length, for the name, for the count. */
    g_assert_cmpint(nbd_parse_opt_go(m.b, 3, &go), ==, NBD_PARSE_BAD_LENGTH);
    put32(&m, 10);
    putstr(&m, "abc", 3);
    g_assert_cmpint(nbd_parse_opt_go(m.b, m.len, &go), ==,
                    NBD_PARSE_BAD_LENGTH);
    m.len = 0;
    putlstr(&m, "abc");
    put16(&m, 0);
    g_assert_cmpint(nbd_parse_opt_go(m.b, m.len - 1, &go), ==,
                    NBD_PARSE_BAD_LENGTH);
}

static void test_go_request_count_not_matching_length_refused(void)
{
    Msg m = {.len = 0};
    NbdOptGo go;

    putlstr(&m, "abc");
    put16(&m, 3);
    put16(&m, NBD_INFO_NAME);
    g_assert_cmpint(nbd_parse_opt_go(m.b, m.len, &go), ==,
                    NBD_PARSE_BAD_LENGTH);
    /* Trailing bytes after the requests are malformed too. */
    m.len = 0;
    putlstr(&m, "abc");
    put16(&m, 0);
    put16(&m, 0);
    g_assert_cmpint(nbd_parse_opt_go(m.b, m.len, &go), ==,
                    NBD_PARSE_BAD_LENGTH);
}

static void test_go_name_over_4096_refused(void)
{
    Msg m = {.len = 0};
    NbdOptGo go;
    char name[NBD_MAX_STRING + 1];

    memset(name, 'x', sizeof(name));
    put32(&m, sizeof(name));
    putstr(&m, name, sizeof(name));
    put16(&m, 0);
    g_assert_cmpint(nbd_parse_opt_go(m.b, m.len, &go), ==, NBD_PARSE_TOO_LONG);
    /* A huge claimed length beyond the payload is "too long" as well. */
    m.len = 0;
    put32(&m, 0xffffffffU);
    put16(&m, 0);
    g_assert_cmpint(nbd_parse_opt_go(m.b, m.len, &go), ==, NBD_PARSE_TOO_LONG);
}

/* ---- LIST/SET_META_CONTEXT -------------------------------------------- */

static void test_meta_context_queries_parsed(void)
{
    Msg m = {.len = 0};
    NbdOptMetaContext meta;
    NbdString q;
    size_t pos = 0;

    putlstr(&m, "disk");
    put32(&m, 2);
    putlstr(&m, "base:allocation");
    putlstr(&m, "qemu:dirty-bitmap:b0");
    g_assert_cmpint(nbd_parse_opt_meta_context(m.b, m.len, &meta), ==,
                    NBD_PARSE_OK);
    g_assert_true(nbd_string_eq(meta.export_name, "disk"));
    g_assert_cmpuint(meta.n_queries, ==, 2);
    g_assert_true(nbd_opt_meta_next_query(&meta, &pos, &q));
    g_assert_true(nbd_string_eq(q, "base:allocation"));
    g_assert_true(nbd_opt_meta_next_query(&meta, &pos, &q));
    g_assert_true(nbd_string_eq(q, "qemu:dirty-bitmap:b0"));
    g_assert_false(nbd_opt_meta_next_query(&meta, &pos, &q));
}

static void test_meta_context_no_queries_parsed(void)
{
    Msg m = {.len = 0};
    NbdOptMetaContext meta;
    NbdString q;
    size_t pos = 0;

    putlstr(&m, "");
    put32(&m, 0);
    g_assert_cmpint(nbd_parse_opt_meta_context(m.b, m.len, &meta), ==,
                    NBD_PARSE_OK);
    g_assert_false(nbd_opt_meta_next_query(&meta, &pos, &q));
}

static void test_meta_context_count_larger_than_payload_refused(void)
{
    Msg m = {.len = 0};
    NbdOptMetaContext meta;

    putlstr(&m, "disk");
    put32(&m, 0x40000000U);
    putlstr(&m, "base:allocation");
    g_assert_cmpint(nbd_parse_opt_meta_context(m.b, m.len, &meta), ==,
                    NBD_PARSE_BAD_LENGTH);
}

static void test_meta_context_query_past_end_refused(void)
{
    Msg m = {.len = 0};
    NbdOptMetaContext meta;

    putlstr(&m, "disk");
    put32(&m, 1);
    put32(&m, 20);
    putstr(&m, "base:", 5);
    g_assert_cmpint(nbd_parse_opt_meta_context(m.b, m.len, &meta), ==,
                    NBD_PARSE_BAD_LENGTH);
}

static void test_meta_context_trailing_bytes_refused(void)
{
    Msg m = {.len = 0};
    NbdOptMetaContext meta;

    putlstr(&m, "disk");
    put32(&m, 1);
    putlstr(&m, "base:allocation");
    putstr(&m, "zz", 2);
    g_assert_cmpint(nbd_parse_opt_meta_context(m.b, m.len, &meta), ==,
                    NBD_PARSE_BAD_LENGTH);
}

static void test_meta_context_query_over_4096_refused(void)
{
    Msg m = {.len = 0};
    NbdOptMetaContext meta;
    char q[NBD_MAX_STRING + 1];

    memset(q, 'q', sizeof(q));
    putlstr(&m, "disk");
    put32(&m, 1);
    put32(&m, sizeof(q));
    putstr(&m, q, sizeof(q));
    g_assert_cmpint(nbd_parse_opt_meta_context(m.b, m.len, &meta), ==,
                    NBD_PARSE_TOO_LONG);
}

static void test_meta_context_missing_count_refused(void)
{
    Msg m = {.len = 0};
    NbdOptMetaContext meta;

    putlstr(&m, "disk");
    put16(&m, 0);
    g_assert_cmpint(nbd_parse_opt_meta_context(m.b, m.len, &meta), ==,
                    NBD_PARSE_BAD_LENGTH);
}

static void test_meta_query_match_rules(void)
{
    NbdString s;

#define Q(str) (s = (NbdString){(str), (uint32_t)strlen(str)})
    g_assert_cmpint(nbd_meta_query_match(Q("base:allocation")), ==,
                    NBD_META_MATCH_BASE_ALLOCATION);
    g_assert_cmpint(nbd_meta_query_match(Q("base:")), ==,
                    NBD_META_MATCH_BASE_ALLOCATION);
    g_assert_cmpint(nbd_meta_query_match(Q("base:allocationx")), ==,
                    NBD_META_MATCH_NONE);
    g_assert_cmpint(nbd_meta_query_match(Q("qemu:dirty-bitmap:x")), ==,
                    NBD_META_MATCH_NONE);
    g_assert_cmpint(nbd_meta_query_match(Q("nonamespace")), ==,
                    NBD_META_MATCH_INVALID);
    g_assert_cmpint(nbd_meta_query_match(Q(":x")), ==, NBD_META_MATCH_INVALID);
    g_assert_cmpint(nbd_meta_query_match(Q("")), ==, NBD_META_MATCH_INVALID);
#undef Q
}

/* ---- requests --------------------------------------------------------- */

static void put_request(Msg *m, uint16_t flags, uint16_t type, uint64_t cookie,
                        uint64_t offset, uint32_t len)
{
    put32(m, NBD_REQUEST_MAGIC);
    put16(m, flags);
    put16(m, type);
    put64(m, cookie);
    put64(m, offset);
    put32(m, len);
}

static void test_request_parsed(void)
{
    Msg m = {.len = 0};
    NbdRequest r;

    put_request(&m, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 0xabcdef0123456789ULL,
                4096, 512);
    g_assert_cmpuint(m.len, ==, NBD_REQUEST_LEN);
    g_assert_cmpint(nbd_parse_request(m.b, m.len, &r), ==, NBD_PARSE_OK);
    g_assert_cmpuint(r.flags, ==, NBD_CMD_FLAG_FUA);
    g_assert_cmpuint(r.type, ==, NBD_CMD_WRITE);
    g_assert_cmpuint(r.cookie, ==, 0xabcdef0123456789ULL);
    g_assert_cmpuint(r.offset, ==, 4096);
    g_assert_cmpuint(r.len, ==, 512);
    g_assert_true(nbd_request_has_payload(&r));
}

static void test_request_short_needs_more(void)
{
    Msg m = {.len = 0};
    NbdRequest r;

    put_request(&m, 0, NBD_CMD_READ, 1, 0, 512);
    g_assert_cmpint(nbd_parse_request(m.b, NBD_REQUEST_LEN - 1, &r), ==,
                    NBD_PARSE_NEED_MORE);
}

static void test_request_wrong_magic_refused(void)
{
    Msg m = {.len = 0};
    NbdRequest r;

    put_request(&m, 0, NBD_CMD_READ, 1, 0, 512);
    m.b[0] ^= 0xff;
    g_assert_cmpint(nbd_parse_request(m.b, m.len, &r), ==, NBD_PARSE_BAD_MAGIC);
}

static const NbdRequestLimits rw_limits = {
    .export_size = 1 << 20,
    .eflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
              NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
              NBD_FLAG_SEND_CACHE | NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_SEND_DF,
    .structured_replies = true,
    .base_allocation = true,
    .max_payload = NBD_MAX_PAYLOAD,
};

static uint32_t check(uint16_t flags, uint16_t type, uint64_t offset,
                      uint32_t len, const NbdRequestLimits *lim)
{
    NbdRequest r = {flags, type, 7, offset, len};

    return nbd_request_check(&r, lim);
}

static void test_request_check_valid_commands_succeed(void)
{
    g_assert_cmpuint(check(0, NBD_CMD_READ, 0, 4096, &rw_limits), ==, 0);
    g_assert_cmpuint(check(NBD_CMD_FLAG_DF, NBD_CMD_READ, 0, 4096, &rw_limits),
                     ==, 0);
    g_assert_cmpuint(
        check(NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 1024, 512, &rw_limits), ==, 0);
    g_assert_cmpuint(check(0, NBD_CMD_FLUSH, 0, 0, &rw_limits), ==, 0);
    g_assert_cmpuint(check(0, NBD_CMD_TRIM, 0, 1 << 20, &rw_limits), ==, 0);
    g_assert_cmpuint(check(0, NBD_CMD_CACHE, 0, 1 << 20, &rw_limits), ==, 0);
    g_assert_cmpuint(check(NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO,
                           NBD_CMD_WRITE_ZEROES, 0, 1 << 20, &rw_limits),
                     ==, 0);
    g_assert_cmpuint(check(NBD_CMD_FLAG_REQ_ONE, NBD_CMD_BLOCK_STATUS, 0,
                           1 << 20, &rw_limits),
                     ==, 0);
    g_assert_cmpuint(check(0, NBD_CMD_DISC, 0, 0, &rw_limits), ==, 0);
}

static void test_request_check_unknown_command_einval(void)
{
    g_assert_cmpuint(check(0, 42, 0, 0, &rw_limits), ==, NBD_EINVAL);
}

static void test_request_check_misplaced_flag_einval(void)
{
    g_assert_cmpuint(
        check(NBD_CMD_FLAG_NO_HOLE, NBD_CMD_WRITE, 0, 512, &rw_limits), ==,
        NBD_EINVAL);
    g_assert_cmpuint(
        check(NBD_CMD_FLAG_REQ_ONE, NBD_CMD_READ, 0, 512, &rw_limits), ==,
        NBD_EINVAL);
    g_assert_cmpuint(check(1U << 12, NBD_CMD_READ, 0, 512, &rw_limits), ==,
                     NBD_EINVAL);
}

static void test_request_check_out_of_range_einval(void)
{
    g_assert_cmpuint(check(0, NBD_CMD_READ, (1 << 20) - 511, 512, &rw_limits),
                     ==, NBD_EINVAL);
    /* offset + len wraps around 2^64: still out of range. */
    g_assert_cmpuint(check(0, NBD_CMD_READ, UINT64_MAX - 10, 512, &rw_limits),
                     ==, NBD_EINVAL);
    g_assert_cmpuint(check(0, NBD_CMD_TRIM, 1 << 20, 1, &rw_limits), ==,
                     NBD_EINVAL);
    g_assert_cmpuint(check(0, NBD_CMD_WRITE, 1 << 20, 512, &rw_limits), ==,
                     NBD_ENOSPC);
}

static void test_request_check_payload_over_32m_einval(void)
{
    g_assert_cmpuint(
        check(0, NBD_CMD_WRITE, 0, NBD_MAX_PAYLOAD + 1, &rw_limits), ==,
        NBD_EINVAL);
    g_assert_cmpuint(check(0, NBD_CMD_READ, 0, NBD_MAX_PAYLOAD + 1, &rw_limits),
                     ==, NBD_EINVAL);
}

static void test_request_check_write_on_read_only_eperm(void)
{
    NbdRequestLimits ro = rw_limits;

    ro.eflags |= NBD_FLAG_READ_ONLY;
    g_assert_cmpuint(check(0, NBD_CMD_WRITE, 0, 512, &ro), ==, NBD_EPERM);
    g_assert_cmpuint(check(0, NBD_CMD_TRIM, 0, 512, &ro), ==, NBD_EPERM);
    g_assert_cmpuint(check(0, NBD_CMD_WRITE_ZEROES, 0, 512, &ro), ==,
                     NBD_EPERM);
    g_assert_cmpuint(check(0, NBD_CMD_READ, 0, 512, &ro), ==, 0);
    /* Even where trim and zero are not advertised (as for our read-only
     * exports), the answer is EPERM. */
    ro.eflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY;
    g_assert_cmpuint(check(0, NBD_CMD_TRIM, 0, 512, &ro), ==, NBD_EPERM);
    g_assert_cmpuint(check(0, NBD_CMD_WRITE_ZEROES, 0, 512, &ro), ==,
                     NBD_EPERM);
}

static void test_request_check_block_status_needs_meta_context(void)
{
    NbdRequestLimits no_meta = rw_limits;

    no_meta.base_allocation = false;
    g_assert_cmpuint(check(0, NBD_CMD_BLOCK_STATUS, 0, 512, &no_meta), ==,
                     NBD_EINVAL);
    g_assert_cmpuint(check(0, NBD_CMD_BLOCK_STATUS, 0, 0, &rw_limits), ==,
                     NBD_EINVAL);
}

static void test_request_check_unadvertised_command_einval(void)
{
    NbdRequestLimits bare = rw_limits;

    bare.eflags = NBD_FLAG_HAS_FLAGS;
    g_assert_cmpuint(check(0, NBD_CMD_FLUSH, 0, 0, &bare), ==, NBD_EINVAL);
    g_assert_cmpuint(check(0, NBD_CMD_TRIM, 0, 512, &bare), ==, NBD_EINVAL);
    g_assert_cmpuint(check(0, NBD_CMD_CACHE, 0, 512, &bare), ==, NBD_EINVAL);
    g_assert_cmpuint(check(NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 0, 512, &bare), ==,
                     NBD_EINVAL);
    g_assert_cmpuint(check(NBD_CMD_FLAG_DF, NBD_CMD_READ, 0, 512, &bare), ==,
                     NBD_EINVAL);
}

static void test_errno_mapping(void)
{
    g_assert_cmpuint(nbd_errno_to_nbd(0), ==, NBD_SUCCESS);
    g_assert_cmpuint(nbd_errno_to_nbd(-EPERM), ==, NBD_EPERM);
    g_assert_cmpuint(nbd_errno_to_nbd(-EROFS), ==, NBD_EPERM);
    g_assert_cmpuint(nbd_errno_to_nbd(-EDQUOT), ==, NBD_ENOSPC);
    g_assert_cmpuint(nbd_errno_to_nbd(-ENOTSUP), ==, NBD_ENOTSUP);
    g_assert_cmpuint(nbd_errno_to_nbd(-EBADF), ==, NBD_EIO);
}

/* ---- builders --------------------------------------------------------- */

static void test_build_greeting_bytes(void)
{
    g_autoptr(GByteArray) out = g_byte_array_new();

    nbd_build_greeting(out, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    g_assert_cmpuint(out->len, ==, NBD_SERVER_GREETING_LEN);
    g_assert_cmpmem(out->data, 8, "NBDMAGIC", 8);
    g_assert_cmpmem(out->data + 8, 8, "IHAVEOPT", 8);
    g_assert_cmpuint(nbd_get_be16(out->data + 16), ==, 3);
}

static void test_build_export_name_reply_with_and_without_zeroes(void)
{
    g_autoptr(GByteArray) out = g_byte_array_new();

    nbd_build_export_name_reply(out, 1 << 20, NBD_FLAG_HAS_FLAGS, false);
    g_assert_cmpuint(out->len, ==, NBD_EXPORT_NAME_REPLY_LEN);
    g_assert_cmpuint(nbd_get_be64(out->data), ==, 1 << 20);
    g_assert_cmpuint(nbd_get_be16(out->data + 8), ==, NBD_FLAG_HAS_FLAGS);
    g_byte_array_set_size(out, 0);
    nbd_build_export_name_reply(out, 1 << 20, NBD_FLAG_HAS_FLAGS, true);
    g_assert_cmpuint(out->len, ==, 10);
}

/* Checks an option reply header at p and returns its payload length. */
static uint32_t check_opt_reply(const uint8_t *p, uint32_t opt, uint32_t type)
{
    g_assert_cmpuint(nbd_get_be64(p), ==, NBD_OPT_REPLY_MAGIC);
    g_assert_cmpuint(nbd_get_be32(p + 8), ==, opt);
    g_assert_cmpuint(nbd_get_be32(p + 12), ==, type);
    return nbd_get_be32(p + 16);
}

static void test_build_opt_ack_and_error(void)
{
    g_autoptr(GByteArray) out = g_byte_array_new();

    nbd_build_opt_reply(out, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NULL, 0);
    g_assert_cmpuint(out->len, ==, NBD_OPT_REPLY_HEADER_LEN);
    g_assert_cmpuint(
        check_opt_reply(out->data, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK), ==,
        0);
    g_byte_array_set_size(out, 0);
    nbd_build_opt_error(out, 99, NBD_REP_ERR_UNSUP, "no");
    g_assert_cmpuint(check_opt_reply(out->data, 99, NBD_REP_ERR_UNSUP), ==, 2);
    g_assert_cmpmem(out->data + 20, 2, "no", 2);
}

static void test_build_rep_server(void)
{
    g_autoptr(GByteArray) out = g_byte_array_new();

    nbd_build_rep_server(out, "disk", "my disk");
    g_assert_cmpuint(check_opt_reply(out->data, NBD_OPT_LIST, NBD_REP_SERVER),
                     ==, 4 + 4 + 7);
    g_assert_cmpuint(nbd_get_be32(out->data + 20), ==, 4);
    g_assert_cmpmem(out->data + 24, 11, "diskmy disk", 11);
}

static void test_build_info_variants(void)
{
    g_autoptr(GByteArray) out = g_byte_array_new();
    const uint8_t *p;

    nbd_build_info_export(out, NBD_OPT_GO, 12345, 0x1ff);
    nbd_build_info_name(out, NBD_OPT_GO, "disk");
    nbd_build_info_description(out, NBD_OPT_GO, "desc");
    nbd_build_info_block_size(out, NBD_OPT_GO, 1, 4096, NBD_MAX_PAYLOAD);
    p = out->data;
    g_assert_cmpuint(check_opt_reply(p, NBD_OPT_GO, NBD_REP_INFO), ==, 12);
    g_assert_cmpuint(nbd_get_be16(p + 20), ==, NBD_INFO_EXPORT);
    g_assert_cmpuint(nbd_get_be64(p + 22), ==, 12345);
    g_assert_cmpuint(nbd_get_be16(p + 30), ==, 0x1ff);
    p += 32;
    g_assert_cmpuint(check_opt_reply(p, NBD_OPT_GO, NBD_REP_INFO), ==, 6);
    g_assert_cmpuint(nbd_get_be16(p + 20), ==, NBD_INFO_NAME);
    g_assert_cmpmem(p + 22, 4, "disk", 4);
    p += 26;
    g_assert_cmpuint(check_opt_reply(p, NBD_OPT_GO, NBD_REP_INFO), ==, 6);
    g_assert_cmpuint(nbd_get_be16(p + 20), ==, NBD_INFO_DESCRIPTION);
    p += 26;
    g_assert_cmpuint(check_opt_reply(p, NBD_OPT_GO, NBD_REP_INFO), ==, 14);
    g_assert_cmpuint(nbd_get_be16(p + 20), ==, NBD_INFO_BLOCK_SIZE);
    g_assert_cmpuint(nbd_get_be32(p + 22), ==, 1);
    g_assert_cmpuint(nbd_get_be32(p + 26), ==, 4096);
    g_assert_cmpuint(nbd_get_be32(p + 30), ==, NBD_MAX_PAYLOAD);
    p += 34;
    g_assert_true(p == out->data + out->len);
}

static void test_build_rep_meta_context(void)
{
    g_autoptr(GByteArray) out = g_byte_array_new();

    nbd_build_rep_meta_context(out, NBD_OPT_SET_META_CONTEXT, 1,
                               "base:allocation");
    g_assert_cmpuint(check_opt_reply(out->data, NBD_OPT_SET_META_CONTEXT,
                                     NBD_REP_META_CONTEXT),
                     ==, 4 + 15);
    g_assert_cmpuint(nbd_get_be32(out->data + 20), ==, 1);
    g_assert_cmpmem(out->data + 24, 15, "base:allocation", 15);
}

static void test_build_simple_reply(void)
{
    uint8_t b[NBD_SIMPLE_REPLY_LEN];

    g_assert_cmpuint(nbd_build_simple_reply(b, NBD_EIO, 77), ==, 16);
    g_assert_cmpuint(nbd_get_be32(b), ==, NBD_SIMPLE_REPLY_MAGIC);
    g_assert_cmpuint(nbd_get_be32(b + 4), ==, NBD_EIO);
    g_assert_cmpuint(nbd_get_be64(b + 8), ==, 77);
}

static void check_chunk(const uint8_t *b, uint16_t flags, uint16_t type,
                        uint64_t cookie, uint32_t len)
{
    g_assert_cmpuint(nbd_get_be32(b), ==, NBD_STRUCTURED_REPLY_MAGIC);
    g_assert_cmpuint(nbd_get_be16(b + 4), ==, flags);
    g_assert_cmpuint(nbd_get_be16(b + 6), ==, type);
    g_assert_cmpuint(nbd_get_be64(b + 8), ==, cookie);
    g_assert_cmpuint(nbd_get_be32(b + 16), ==, len);
}

static void test_build_chunks(void)
{
    uint8_t b[NBD_CHUNK_MAX_HEAD_LEN];

    g_assert_cmpuint(
        nbd_build_chunk_offset_data(b, NBD_REPLY_FLAG_DONE, 5, 4096, 512), ==,
        28);
    check_chunk(b, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, 5, 520);
    g_assert_cmpuint(nbd_get_be64(b + 20), ==, 4096);

    g_assert_cmpuint(nbd_build_chunk_offset_hole(b, 0, 6, 8192, 1024), ==, 32);
    check_chunk(b, 0, NBD_REPLY_TYPE_OFFSET_HOLE, 6, 12);
    g_assert_cmpuint(nbd_get_be64(b + 20), ==, 8192);
    g_assert_cmpuint(nbd_get_be32(b + 28), ==, 1024);

    g_assert_cmpuint(nbd_build_chunk_none(b, 7), ==, 20);
    check_chunk(b, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, 7, 0);

    g_assert_cmpuint(
        nbd_build_chunk_error(b, NBD_REPLY_FLAG_DONE, 8, NBD_EINVAL, 3), ==,
        26);
    check_chunk(b, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, 8, 9);
    g_assert_cmpuint(nbd_get_be32(b + 20), ==, NBD_EINVAL);
    g_assert_cmpuint(nbd_get_be16(b + 24), ==, 3);
}

static void test_build_chunk_block_status(void)
{
    const NbdExtent ext[2] = {{4096, 0},
                              {8192, NBD_STATE_HOLE | NBD_STATE_ZERO}};
    uint8_t b[NBD_STRUCTURED_REPLY_LEN + 4 + 16];

    g_assert_cmpuint(
        nbd_build_chunk_block_status(b, NBD_REPLY_FLAG_DONE, 9, 1, ext, 2), ==,
        sizeof(b));
    check_chunk(b, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, 9, 20);
    g_assert_cmpuint(nbd_get_be32(b + 20), ==, 1);
    g_assert_cmpuint(nbd_get_be32(b + 24), ==, 4096);
    g_assert_cmpuint(nbd_get_be32(b + 28), ==, 0);
    g_assert_cmpuint(nbd_get_be32(b + 32), ==, 8192);
    g_assert_cmpuint(nbd_get_be32(b + 36), ==, 3);
}

static void test_names_of_known_and_unknown_values(void)
{
    g_assert_cmpstr(nbd_opt_name(NBD_OPT_GO), ==, "NBD_OPT_GO");
    g_assert_cmpstr(nbd_opt_name(1000), ==, "unknown");
    g_assert_cmpstr(nbd_cmd_name(NBD_CMD_BLOCK_STATUS), ==,
                    "NBD_CMD_BLOCK_STATUS");
    g_assert_cmpstr(nbd_parse_result_str(NBD_PARSE_BAD_MAGIC), ==, "bad magic");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define T(name) g_test_add_func("/nbd/protocol/" #name, test_##name)
    T(be_helpers_round_trip_in_network_order);
    T(client_flags_known_accepted);
    T(client_flags_short_needs_more);
    T(client_flags_unknown_refused);
    T(option_header_parsed);
    T(option_header_short_needs_more);
    T(option_header_wrong_magic_refused);
    T(option_header_huge_length_too_long);
    T(opt_empty_with_data_refused);
    T(export_name_parsed);
    T(export_name_over_4096_refused);
    T(export_name_with_nul_refused);
    T(go_with_info_requests_parsed);
    T(go_without_requests_parsed);
    T(go_short_refused);
    T(go_request_count_not_matching_length_refused);
    T(go_name_over_4096_refused);
    T(meta_context_queries_parsed);
    T(meta_context_no_queries_parsed);
    T(meta_context_count_larger_than_payload_refused);
    T(meta_context_query_past_end_refused);
    T(meta_context_trailing_bytes_refused);
    T(meta_context_query_over_4096_refused);
    T(meta_context_missing_count_refused);
    T(meta_query_match_rules);
    T(request_parsed);
    T(request_short_needs_more);
    T(request_wrong_magic_refused);
    T(request_check_valid_commands_succeed);
    T(request_check_unknown_command_einval);
    T(request_check_misplaced_flag_einval);
    T(request_check_out_of_range_einval);
    T(request_check_payload_over_32m_einval);
    T(request_check_write_on_read_only_eperm);
    T(request_check_block_status_needs_meta_context);
    T(request_check_unadvertised_command_einval);
    T(errno_mapping);
    T(build_greeting_bytes);
    T(build_export_name_reply_with_and_without_zeroes);
    T(build_opt_ack_and_error);
    T(build_rep_server);
    T(build_info_variants);
    T(build_rep_meta_context);
    T(build_simple_reply);
    T(build_chunks);
    T(build_chunk_block_status);
    T(names_of_known_and_unknown_values);
#undef T
    return g_test_run();
}
