/* vhost-user codec: header framing, the per-request size and fd rules, the
 * payload decoders and the reply builders. */
#include <glib.h>
#include <string.h>

#include "vhost/protocol.h"

#define ALL_PF (~0ULL)

static VhostUserHeader hdr(uint32_t request, uint32_t size)
{
    return (VhostUserHeader){
        .request = request,
        .flags = VHOST_USER_VERSION,
        .size = size,
    };
}

static void test_header_good_is_accepted(void)
{
    uint8_t buf[VHOST_USER_HDR_SIZE];
    VhostUserHeader h;
    uint64_t v = 7;

    vhost_user_build_request(buf, VHOST_USER_SET_FEATURES,
                             VHOST_USER_NEED_REPLY_MASK, &v, 0);
    memcpy(buf + 8, &(uint32_t){8}, 4);
    g_assert_null(vhost_user_parse_header(buf, sizeof(buf), &h));
    g_assert_cmpuint(h.request, ==, VHOST_USER_SET_FEATURES);
    g_assert_cmpuint(h.size, ==, 8);
    g_assert_true(h.flags & VHOST_USER_NEED_REPLY_MASK);
}

static void test_header_bad_version_reply_or_size_is_refused(void)
{
    uint8_t buf[VHOST_USER_HDR_SIZE];
    VhostUserHeader h;

    vhost_user_build_request(buf, 1, 0, NULL, 0);
    memcpy(buf + 4, &(uint32_t){0}, 4); /* version 0 */
    g_assert_nonnull(vhost_user_parse_header(buf, sizeof(buf), &h));
    memcpy(buf + 4, &(uint32_t){2}, 4); /* version 2 */
    g_assert_nonnull(vhost_user_parse_header(buf, sizeof(buf), &h));
    memcpy(buf + 4, &(uint32_t){VHOST_USER_VERSION | VHOST_USER_REPLY_MASK}, 4);
    g_assert_nonnull(vhost_user_parse_header(buf, sizeof(buf), &h));
    memcpy(buf + 4, &(uint32_t){VHOST_USER_VERSION}, 4);
    memcpy(buf + 8, &(uint32_t){VHOST_USER_PAYLOAD_MAX + 1}, 4);
    g_assert_nonnull(vhost_user_parse_header(buf, sizeof(buf), &h));
    memcpy(buf + 8, &(uint32_t){0xffffffff}, 4);
    g_assert_nonnull(vhost_user_parse_header(buf, sizeof(buf), &h));
    g_assert_nonnull(vhost_user_parse_header(buf, 11, &h));
}

static void test_sizes_must_match_the_request(void)
{
    uint8_t p[VHOST_USER_PAYLOAD_MAX] = {0};
    VhostUserHeader h;

    h = hdr(VHOST_USER_GET_FEATURES, 0);
    g_assert_null(vhost_user_check_message(&h, p, 0, 0));
    h.size = 8;
    g_assert_nonnull(vhost_user_check_message(&h, p, 0, 0));
    h = hdr(VHOST_USER_SET_FEATURES, 8);
    g_assert_null(vhost_user_check_message(&h, p, 0, 0));
    h.size = 4;
    g_assert_nonnull(vhost_user_check_message(&h, p, 0, 0));
    h = hdr(VHOST_USER_SET_VRING_ADDR, 40);
    g_assert_null(vhost_user_check_message(&h, p, 0, 0));
    h.size = 39;
    g_assert_nonnull(vhost_user_check_message(&h, p, 0, 0));
    h = hdr(VHOST_USER_GET_VRING_BASE, 8);
    g_assert_null(vhost_user_check_message(&h, p, 0, 0));
    h = hdr(VHOST_USER_SET_OWNER, 8);
    g_assert_nonnull(vhost_user_check_message(&h, p, 0, 0));
}

static void test_unknown_and_unimplemented_requests_are_refused(void)
{
    uint8_t p[VHOST_USER_PAYLOAD_MAX] = {0};
    VhostUserHeader h = hdr(999, 0);

    g_assert_nonnull(vhost_user_check_message(&h, p, 0, ALL_PF));
    h = hdr(0, 0);
    g_assert_nonnull(vhost_user_check_message(&h, p, 0, ALL_PF));
    h = hdr(VHOST_USER_SET_LOG_BASE, 8);
    g_assert_nonnull(vhost_user_check_message(&h, p, 1, ALL_PF));
    h = hdr(VHOST_USER_IOTLB_MSG, 8);
    g_assert_nonnull(vhost_user_check_message(&h, p, 0, ALL_PF));
    g_assert_cmpstr(vhost_user_request_name(999), ==, "UNKNOWN");
    g_assert_cmpstr(vhost_user_request_name(VHOST_USER_SET_MEM_TABLE), ==,
                    "SET_MEM_TABLE");
}

static void test_mem_table_counts_regions_and_fds(void)
{
    uint8_t p[VHOST_USER_PAYLOAD_MAX] = {0};
    VhostUserHeader h;
    uint32_t n;

    for (n = 0; n <= 9; n++) {
        memcpy(p, &n, 4);
        h = hdr(VHOST_USER_SET_MEM_TABLE, 8 + 32 * MAX(n, 1));
        if (n >= 1 && n <= 8) {
            g_assert_null(vhost_user_check_message(&h, p, n, 0));
            g_assert_nonnull(vhost_user_check_message(&h, p, n - 1, 0));
            g_assert_nonnull(vhost_user_check_message(&h, p, n + 1, 0));
        } else {
            g_assert_nonnull(vhost_user_check_message(&h, p, n, 0));
        }
    }
    /* Two regions announced, one region of payload. */
    n = 2;
    memcpy(p, &n, 4);
    h = hdr(VHOST_USER_SET_MEM_TABLE, 8 + 32);
    g_assert_nonnull(vhost_user_check_message(&h, p, 2, 0));
}

static void test_vring_fd_follows_the_nofd_bit(void)
{
    uint8_t p[8];
    uint64_t u = 3;
    VhostUserHeader h = hdr(VHOST_USER_SET_VRING_KICK, 8);

    memcpy(p, &u, 8);
    g_assert_null(vhost_user_check_message(&h, p, 1, 0));
    g_assert_nonnull(vhost_user_check_message(&h, p, 0, 0));
    g_assert_nonnull(vhost_user_check_message(&h, p, 2, 0));
    u |= VHOST_USER_VRING_NOFD_MASK;
    memcpy(p, &u, 8);
    h.request = VHOST_USER_SET_VRING_CALL;
    g_assert_null(vhost_user_check_message(&h, p, 0, 0));
    g_assert_nonnull(vhost_user_check_message(&h, p, 1, 0));
}

static void test_feature_gated_requests_need_the_feature(void)
{
    uint8_t p[VHOST_USER_PAYLOAD_MAX] = {0};
    VhostUserHeader h = hdr(VHOST_USER_GET_INFLIGHT_FD, 24);

    g_assert_nonnull(vhost_user_check_message(&h, p, 0, 0));
    g_assert_null(vhost_user_check_message(
        &h, p, 0, 1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
    h.size = 20;
    g_assert_null(vhost_user_check_message(
        &h, p, 0, 1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
    h.size = 19;
    g_assert_nonnull(vhost_user_check_message(
        &h, p, 0, 1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
    h = hdr(VHOST_USER_ADD_MEM_REG, 40);
    g_assert_nonnull(vhost_user_check_message(&h, p, 1, 0));
    g_assert_null(vhost_user_check_message(
        &h, p, 1, 1ULL << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
    g_assert_nonnull(vhost_user_check_message(
        &h, p, 0, 1ULL << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
    h = hdr(VHOST_USER_REM_MEM_REG, 40);
    g_assert_null(vhost_user_check_message(
        &h, p, 0, 1ULL << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
    g_assert_null(vhost_user_check_message(
        &h, p, 1, 1ULL << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
    g_assert_nonnull(vhost_user_check_message(
        &h, p, 2, 1ULL << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
}

static void test_config_size_must_match_payload(void)
{
    uint8_t p[VHOST_USER_PAYLOAD_MAX] = {0};
    uint64_t pf = 1ULL << VHOST_USER_PROTOCOL_F_CONFIG;
    VhostUserHeader h = hdr(VHOST_USER_GET_CONFIG, 12 + 60);

    memcpy(p + 4, &(uint32_t){60}, 4);
    g_assert_null(vhost_user_check_message(&h, p, 0, pf));
    memcpy(p + 4, &(uint32_t){61}, 4);
    g_assert_nonnull(vhost_user_check_message(&h, p, 0, pf));
    memcpy(p + 4, &(uint32_t){257}, 4);
    h.size = 12 + 257;
    g_assert_nonnull(vhost_user_check_message(&h, p, 0, pf));
    memcpy(p + 4, &(uint32_t){256}, 4);
    h.size = 12 + 256;
    g_assert_null(vhost_user_check_message(&h, p, 0, pf));
}

static void test_decoders_read_the_wire_layout(void)
{
    uint8_t p[64];
    VhostVringAddr a = {1, 0, 0x1000, 0x2000, 0x3000, 0x4000}, b;
    VhostUserMemRegion r = {0x100000, 0x200000, 0x7f0000000000, 0x1000}, r2;
    VhostUserInflight in = {8192, 4096, 4, 256}, in2;
    VhostVringState s;

    vhost_user_encode_vring_addr(p, &a);
    vhost_user_decode_vring_addr(p, &b);
    g_assert_cmpmem(&a, sizeof(a), &b, sizeof(b));
    vhost_user_encode_mem_region(p + 8, &r);
    vhost_user_decode_single_region(p, &r2);
    g_assert_cmpmem(&r, sizeof(r), &r2, sizeof(r2));
    vhost_user_encode_inflight(p, &in);
    vhost_user_decode_inflight(p, 24, &in2);
    g_assert_cmpuint(in2.mmap_size, ==, 8192);
    g_assert_cmpuint(in2.mmap_offset, ==, 4096);
    g_assert_cmpuint(in2.num_queues, ==, 4);
    g_assert_cmpuint(in2.queue_size, ==, 256);
    memcpy(p, &(uint32_t){5}, 4);
    memcpy(p + 4, &(uint32_t){77}, 4);
    vhost_user_decode_vring_state(p, &s);
    g_assert_cmpuint(s.index, ==, 5);
    g_assert_cmpuint(s.num, ==, 77);
}

static void test_replies_carry_the_reply_flag(void)
{
    uint8_t buf[VHOST_USER_HDR_SIZE + VHOST_USER_PAYLOAD_MAX];
    VhostVringState s = {2, 1234};
    uint32_t req, flags, size;
    uint64_t v;
    size_t len;

    len = vhost_user_build_reply_u64(buf, VHOST_USER_GET_FEATURES, 0xabc);
    g_assert_cmpuint(len, ==, 20);
    memcpy(&req, buf, 4);
    memcpy(&flags, buf + 4, 4);
    memcpy(&size, buf + 8, 4);
    memcpy(&v, buf + 12, 8);
    g_assert_cmpuint(req, ==, VHOST_USER_GET_FEATURES);
    g_assert_cmpuint(flags, ==, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK);
    g_assert_cmpuint(size, ==, 8);
    g_assert_cmpuint(v, ==, 0xabc);
    len =
        vhost_user_build_reply_vring_state(buf, VHOST_USER_GET_VRING_BASE, &s);
    g_assert_cmpuint(len, ==, 20);
    memcpy(&size, buf + 12 + 4, 4);
    g_assert_cmpuint(size, ==, 1234);
    len = vhost_user_build_backend_request(
        buf, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, true);
    g_assert_cmpuint(len, ==, 12);
    memcpy(&flags, buf + 4, 4);
    g_assert_cmpuint(flags, ==,
                     VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK);
    g_assert_true(vhost_user_request_has_reply(VHOST_USER_GET_VRING_BASE));
    g_assert_false(vhost_user_request_has_reply(VHOST_USER_SET_VRING_BASE));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vhost-protocol/header-good-is-accepted",
                    test_header_good_is_accepted);
    g_test_add_func("/vhost-protocol/header-bad-version-reply-or-size-is-"
                    "refused",
                    test_header_bad_version_reply_or_size_is_refused);
    g_test_add_func("/vhost-protocol/sizes-must-match-the-request",
                    test_sizes_must_match_the_request);
    g_test_add_func("/vhost-protocol/unknown-and-unimplemented-requests-are-"
                    "refused",
                    test_unknown_and_unimplemented_requests_are_refused);
    g_test_add_func("/vhost-protocol/mem-table-counts-regions-and-fds",
                    test_mem_table_counts_regions_and_fds);
    g_test_add_func("/vhost-protocol/vring-fd-follows-the-nofd-bit",
                    test_vring_fd_follows_the_nofd_bit);
    g_test_add_func("/vhost-protocol/feature-gated-requests-need-the-feature",
                    test_feature_gated_requests_need_the_feature);
    g_test_add_func("/vhost-protocol/config-size-must-match-payload",
                    test_config_size_must_match_payload);
    g_test_add_func("/vhost-protocol/decoders-read-the-wire-layout",
                    test_decoders_read_the_wire_layout);
    g_test_add_func("/vhost-protocol/replies-carry-the-reply-flag",
                    test_replies_carry_the_reply_flag);
    return g_test_run();
}
