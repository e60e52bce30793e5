/*
 * The vhost-user codec: framing rules per request type, payload decoding,
 * replies.  See protocol.h.
 */
#include <string.h>

#include "vhost/protocol.h"

/* How many file descriptors a request takes. */
typedef enum FdRule {
    FDS_NONE,      /* none */
    FDS_ONE,       /* exactly one */
    FDS_VRING,     /* one, or none if the payload has the NOFD bit */
    FDS_MEM_TABLE, /* one per region */
    FDS_OPTIONAL,  /* none or one (REM_MEM_REG, for old front-ends) */
} FdRule;

typedef struct RequestRule {
    const char *name;
    uint32_t min_size; /* payload bytes */
    uint32_t max_size;
    FdRule fds;
    int needs_pfeature; /* a protocol feature bit, or -1 */
    bool has_reply;
    bool implemented;
} RequestRule;

#define RULE(req, mn, mx, f, pf, reply)                                        \
    [VHOST_USER_##req] = {#req, mn, mx, f, pf, reply, true}
#define NAME_ONLY(req) [VHOST_USER_##req] = {#req, 0, 0, FDS_NONE, -1, 0, false}

static const RequestRule rules[] = {
    RULE(GET_FEATURES, 0, 0, FDS_NONE, -1, true),
    RULE(SET_FEATURES, 8, 8, FDS_NONE, -1, false),
    RULE(SET_OWNER, 0, 0, FDS_NONE, -1, false),
    RULE(RESET_OWNER, 0, 0, FDS_NONE, -1, false),
    RULE(SET_MEM_TABLE, VHOST_USER_MEM_TABLE_HDR_SIZE + 32,
         VHOST_USER_MEM_TABLE_HDR_SIZE + 32 * VHOST_USER_MEM_TABLE_MAX_REGIONS,
         FDS_MEM_TABLE, -1, false),
    NAME_ONLY(SET_LOG_BASE),
    NAME_ONLY(SET_LOG_FD),
    RULE(SET_VRING_NUM, 8, 8, FDS_NONE, -1, false),
    RULE(SET_VRING_ADDR, 40, 40, FDS_NONE, -1, false),
    RULE(SET_VRING_BASE, 8, 8, FDS_NONE, -1, false),
    RULE(GET_VRING_BASE, 8, 8, FDS_NONE, -1, true),
    RULE(SET_VRING_KICK, 8, 8, FDS_VRING, -1, false),
    RULE(SET_VRING_CALL, 8, 8, FDS_VRING, -1, false),
    RULE(SET_VRING_ERR, 8, 8, FDS_VRING, -1, false),
    RULE(GET_PROTOCOL_FEATURES, 0, 0, FDS_NONE, -1, true),
    RULE(SET_PROTOCOL_FEATURES, 8, 8, FDS_NONE, -1, false),
    RULE(GET_QUEUE_NUM, 0, 0, FDS_NONE, -1, true),
    RULE(SET_VRING_ENABLE, 8, 8, FDS_NONE, -1, false),
    NAME_ONLY(SEND_RARP),
    NAME_ONLY(NET_SET_MTU),
    RULE(SET_BACKEND_REQ_FD, 0, 0, FDS_ONE, VHOST_USER_PROTOCOL_F_BACKEND_REQ,
         false),
    NAME_ONLY(IOTLB_MSG),
    NAME_ONLY(SET_VRING_ENDIAN),
    RULE(GET_CONFIG, VHOST_USER_CONFIG_HDR_SIZE, VHOST_USER_PAYLOAD_MAX,
         FDS_NONE, VHOST_USER_PROTOCOL_F_CONFIG, true),
    RULE(SET_CONFIG, VHOST_USER_CONFIG_HDR_SIZE, VHOST_USER_PAYLOAD_MAX,
         FDS_NONE, VHOST_USER_PROTOCOL_F_CONFIG, false),
    NAME_ONLY(CREATE_CRYPTO_SESSION),
    NAME_ONLY(CLOSE_CRYPTO_SESSION),
    NAME_ONLY(POSTCOPY_ADVISE),
    NAME_ONLY(POSTCOPY_LISTEN),
    NAME_ONLY(POSTCOPY_END),
    RULE(GET_INFLIGHT_FD, VHOST_USER_INFLIGHT_MIN_SIZE,
         VHOST_USER_INFLIGHT_SIZE, FDS_NONE,
         VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD, true),
    RULE(SET_INFLIGHT_FD, VHOST_USER_INFLIGHT_MIN_SIZE,
         VHOST_USER_INFLIGHT_SIZE, FDS_ONE,
         VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD, false),
    NAME_ONLY(GPU_SET_SOCKET),
    NAME_ONLY(RESET_DEVICE),
    NAME_ONLY(VRING_KICK),
    RULE(GET_MAX_MEM_SLOTS, 0, 0, FDS_NONE,
         VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, true),
    RULE(ADD_MEM_REG, VHOST_USER_SINGLE_REGION_SIZE,
         VHOST_USER_SINGLE_REGION_SIZE, FDS_ONE,
         VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, false),
    RULE(REM_MEM_REG, VHOST_USER_SINGLE_REGION_SIZE,
         VHOST_USER_SINGLE_REGION_SIZE, FDS_OPTIONAL,
         VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, false),
    NAME_ONLY(SET_STATUS),
    NAME_ONLY(GET_STATUS),
};

static const RequestRule *rule_of(uint32_t request)
{
    if (request >= sizeof(rules) / sizeof(rules[0]) || !rules[request].name) {
        return NULL;
    }
    return &rules[request];
}

const char *vhost_user_request_name(uint32_t request)
{
    const RequestRule *r = rule_of(request);

    return r ? r->name : "UNKNOWN";
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static uint16_t get_u16(const uint8_t *p)
{
    uint16_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, sizeof(v));
}

static void put_u16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, sizeof(v));
}

const char *vhost_user_parse_header(const uint8_t *buf, size_t len,
                                    VhostUserHeader *hdr)
{
    if (len < VHOST_USER_HDR_SIZE) {
        return "short header";
    }
    hdr->request = get_u32(buf);
    hdr->flags = get_u32(buf + 4);
    hdr->size = get_u32(buf + 8);
    if ((hdr->flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION) {
        return "unsupported protocol version";
    }
    if (hdr->flags & VHOST_USER_REPLY_MASK) {
        return "a reply where a request was expected";
    }
    if (hdr->size > VHOST_USER_PAYLOAD_MAX) {
        return "payload too large";
    }
    return NULL;
}

const char *vhost_user_check_message(const VhostUserHeader *hdr,
                                     const uint8_t *payload, size_t nfds,
                                     uint64_t protocol_features)
{
    const RequestRule *r = rule_of(hdr->request);
    size_t want_fds = 0;

    if (!r || !r->implemented) {
        return "unsupported request";
    }
    if (r->needs_pfeature >= 0 &&
        !(protocol_features & (1ULL << r->needs_pfeature))) {
        return "request needs a protocol feature that was not negotiated";
    }
    if (hdr->size < r->min_size || hdr->size > r->max_size) {
        return "wrong payload size";
    }
    switch (hdr->request) {
    case VHOST_USER_SET_MEM_TABLE: {
        uint32_t n = get_u32(payload);

        if (n == 0 || n > VHOST_USER_MEM_TABLE_MAX_REGIONS) {
            return "bad number of memory regions";
        }
        if (hdr->size != VHOST_USER_MEM_TABLE_HDR_SIZE + n * 32) {
            return "memory table size does not match its region count";
        }
        break;
    }
    case VHOST_USER_GET_CONFIG:
    case VHOST_USER_SET_CONFIG: {
        uint32_t size = get_u32(payload + 4);

        if (size > VHOST_USER_MAX_CONFIG_SIZE ||
            hdr->size != VHOST_USER_CONFIG_HDR_SIZE + size) {
            return "config size does not match the payload";
        }
        break;
    }
    default:
        break;
    }
    switch (r->fds) {
    case FDS_NONE:
        want_fds = 0;
        break;
    case FDS_ONE:
        want_fds = 1;
        break;
    case FDS_VRING:
        want_fds = (get_u64(payload) & VHOST_USER_VRING_NOFD_MASK) ? 0 : 1;
        break;
    case FDS_MEM_TABLE:
        want_fds = get_u32(payload);
        break;
    case FDS_OPTIONAL:
        if (nfds > 1) {
            return "too many file descriptors";
        }
        return NULL;
    }
    if (nfds != want_fds) {
        return nfds < want_fds ? "missing file descriptor"
                               : "unexpected file descriptors";
    }
    return NULL;
}

bool vhost_user_request_has_reply(uint32_t request)
{
    const RequestRule *r = rule_of(request);

    return r && r->has_reply;
}

uint64_t vhost_user_decode_u64(const uint8_t *payload)
{
    return get_u64(payload);
}

void vhost_user_decode_vring_state(const uint8_t *payload, VhostVringState *s)
{
    s->index = get_u32(payload);
    s->num = get_u32(payload + 4);
}

void vhost_user_decode_vring_addr(const uint8_t *payload, VhostVringAddr *a)
{
    a->index = get_u32(payload);
    a->flags = get_u32(payload + 4);
    a->desc_user_addr = get_u64(payload + 8);
    a->used_user_addr = get_u64(payload + 16);
    a->avail_user_addr = get_u64(payload + 24);
    a->log_guest_addr = get_u64(payload + 32);
}

void vhost_user_decode_mem_region(const uint8_t *payload, VhostUserMemRegion *r)
{
    r->guest_phys_addr = get_u64(payload);
    r->memory_size = get_u64(payload + 8);
    r->userspace_addr = get_u64(payload + 16);
    r->mmap_offset = get_u64(payload + 24);
}

void vhost_user_decode_mem_table(const uint8_t *payload, VhostUserMemTable *t)
{
    uint32_t i;

    t->nregions = get_u32(payload);
    for (i = 0; i < t->nregions && i < VHOST_USER_MEM_TABLE_MAX_REGIONS; i++) {
        vhost_user_decode_mem_region(payload + VHOST_USER_MEM_TABLE_HDR_SIZE +
                                         i * VHOST_USER_MEM_REGION_SIZE,
                                     &t->regions[i]);
    }
}

void vhost_user_decode_single_region(const uint8_t *payload,
                                     VhostUserMemRegion *r)
{
    vhost_user_decode_mem_region(payload + 8, r);
}

void vhost_user_decode_config_hdr(const uint8_t *payload, VhostUserConfigHdr *c)
{
    c->offset = get_u32(payload);
    c->size = get_u32(payload + 4);
    c->flags = get_u32(payload + 8);
}

void vhost_user_decode_inflight(const uint8_t *payload, size_t size,
                                VhostUserInflight *in)
{
    (void)size;
    in->mmap_size = get_u64(payload);
    in->mmap_offset = get_u64(payload + 8);
    in->num_queues = get_u16(payload + 16);
    in->queue_size = get_u16(payload + 18);
}

size_t vhost_user_build_request(uint8_t *out, uint32_t request, uint32_t flags,
                                const void *payload, uint32_t size)
{
    put_u32(out, request);
    put_u32(out + 4, flags | VHOST_USER_VERSION);
    put_u32(out + 8, size);
    if (size) {
        memcpy(out + VHOST_USER_HDR_SIZE, payload, size);
    }
    return VHOST_USER_HDR_SIZE + size;
}

size_t vhost_user_build_reply(uint8_t *out, uint32_t request,
                              const void *payload, uint32_t size)
{
    return vhost_user_build_request(out, request, VHOST_USER_REPLY_MASK,
                                    payload, size);
}

size_t vhost_user_build_reply_u64(uint8_t *out, uint32_t request,
                                  uint64_t value)
{
    uint8_t p[8];

    put_u64(p, value);
    return vhost_user_build_reply(out, request, p, sizeof(p));
}

size_t vhost_user_build_reply_vring_state(uint8_t *out, uint32_t request,
                                          const VhostVringState *s)
{
    uint8_t p[8];

    put_u32(p, s->index);
    put_u32(p + 4, s->num);
    return vhost_user_build_reply(out, request, p, sizeof(p));
}

void vhost_user_encode_inflight(uint8_t *out, const VhostUserInflight *in)
{
    memset(out, 0, VHOST_USER_INFLIGHT_SIZE);
    put_u64(out, in->mmap_size);
    put_u64(out + 8, in->mmap_offset);
    put_u16(out + 16, in->num_queues);
    put_u16(out + 18, in->queue_size);
}

size_t vhost_user_build_reply_inflight(uint8_t *out,
                                       const VhostUserInflight *in)
{
    uint8_t p[VHOST_USER_INFLIGHT_SIZE];

    vhost_user_encode_inflight(p, in);
    return vhost_user_build_reply(out, VHOST_USER_GET_INFLIGHT_FD, p,
                                  sizeof(p));
}

size_t vhost_user_build_backend_request(uint8_t *out, uint32_t request,
                                        bool need_reply)
{
    return vhost_user_build_request(
        out, request, need_reply ? VHOST_USER_NEED_REPLY_MASK : 0, NULL, 0);
}

void vhost_user_encode_vring_addr(uint8_t *out, const VhostVringAddr *a)
{
    put_u32(out, a->index);
    put_u32(out + 4, a->flags);
    put_u64(out + 8, a->desc_user_addr);
    put_u64(out + 16, a->used_user_addr);
    put_u64(out + 24, a->avail_user_addr);
    put_u64(out + 32, a->log_guest_addr);
}

void vhost_user_encode_mem_region(uint8_t *out, const VhostUserMemRegion *r)
{
    put_u64(out, r->guest_phys_addr);
    put_u64(out + 8, r->memory_size);
    put_u64(out + 16, r->userspace_addr);
    put_u64(out + 24, r->mmap_offset);
}
