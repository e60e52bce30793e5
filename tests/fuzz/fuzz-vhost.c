/*
 * libFuzzer target for the vhost-user codec and the split virtqueue walker:
 * the two places where bytes from an untrusted front-end (its messages)
 * and an untrusted guest (its rings, descriptors and inflight area) are
 * interpreted.
 *
 * The first input byte picks the mode:
 *   even: a stream of messages, each one byte (its fd count) then a
 *         12-byte header and the payload the header announces; every
 *         message the codec accepts is decoded;
 *   odd:  a ring: one byte of queue size (a power of two up to 64), one of
 *         flags (event index, indirect, the chain limit), two of starting
 *         index, then the guest memory itself (the descriptor table at 0,
 *         the available ring at 1 KiB, the used ring at 2 KiB), shared as
 *         two adjacent regions; chains are popped until the ring is empty
 *         or broken, every returned buffer is touched, and the used ring,
 *         the signal decisions and inflight recovery run on what is there.
 * Every buffer handed to the code under test is a heap copy of exactly the
 * bytes it may read, so AddressSanitizer sees any overrun.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "vhost/inflight.h"
#include "vhost/memory.h"
#include "vhost/protocol.h"
#include "vhost/virtqueue.h"

#define GPA 0x10000
#define MAX_MEM 65536

static void fuzz_messages(const uint8_t *data, size_t size)
{
    while (size >= 1 + VHOST_USER_HDR_SIZE) {
        unsigned nfds = data[0] % 10;
        uint64_t pf = data[0] & 0x80 ? ~0ULL : 0;
        VhostUserHeader hdr;
        uint8_t *payload;

        if (vhost_user_parse_header(data + 1, VHOST_USER_HDR_SIZE, &hdr)) {
            return;
        }
        data += 1 + VHOST_USER_HDR_SIZE;
        size -= 1 + VHOST_USER_HDR_SIZE;
        if (hdr.size > size) {
            return;
        }
        payload = g_malloc(hdr.size ? hdr.size : 1);
        memcpy(payload, data, hdr.size);
        if (!vhost_user_check_message(&hdr, payload, nfds, pf)) {
            union {
                VhostVringState s;
                VhostVringAddr a;
                VhostUserMemTable t;
                VhostUserMemRegion r;
                VhostUserConfigHdr c;
                VhostUserInflight in;
            } u;
            VhostMemMap map = {0};

            switch (hdr.request) {
            case VHOST_USER_SET_FEATURES:
            case VHOST_USER_SET_PROTOCOL_FEATURES:
            case VHOST_USER_SET_VRING_KICK:
            case VHOST_USER_SET_VRING_CALL:
            case VHOST_USER_SET_VRING_ERR:
                (void)vhost_user_decode_u64(payload);
                break;
            case VHOST_USER_SET_VRING_NUM:
            case VHOST_USER_SET_VRING_BASE:
            case VHOST_USER_GET_VRING_BASE:
            case VHOST_USER_SET_VRING_ENABLE:
                vhost_user_decode_vring_state(payload, &u.s);
                break;
            case VHOST_USER_SET_VRING_ADDR:
                vhost_user_decode_vring_addr(payload, &u.a);
                break;
            case VHOST_USER_SET_MEM_TABLE:
                vhost_user_decode_mem_table(payload, &u.t);
                for (uint32_t i = 0; i < u.t.nregions; i++) {
                    if (!vhost_mem_check_region(&map, &u.t.regions[i])) {
                        VhostMemRegion reg = {
                            .gpa = u.t.regions[i].guest_phys_addr,
                            .size = u.t.regions[i].memory_size,
                            .uva = u.t.regions[i].userspace_addr,
                        };

                        vhost_mem_insert(&map, &reg);
                    }
                }
                break;
            case VHOST_USER_ADD_MEM_REG:
            case VHOST_USER_REM_MEM_REG:
                vhost_user_decode_single_region(payload, &u.r);
                (void)vhost_mem_check_region(&map, &u.r);
                break;
            case VHOST_USER_GET_CONFIG:
            case VHOST_USER_SET_CONFIG:
                vhost_user_decode_config_hdr(payload, &u.c);
                break;
            case VHOST_USER_GET_INFLIGHT_FD:
            case VHOST_USER_SET_INFLIGHT_FD:
                vhost_user_decode_inflight(payload, hdr.size, &u.in);
                break;
            default:
                break;
            }
        }
        g_free(payload);
        data += hdr.size;
        size -= hdr.size;
    }
}

static void touch(const struct iovec *iov, unsigned n)
{
    volatile uint8_t sink = 0;

    for (unsigned i = 0; i < n; i++) {
        const uint8_t *p = iov[i].iov_base;

        if (iov[i].iov_len) {
            sink ^= p[0];
            sink ^= p[iov[i].iov_len - 1];
        }
    }
    (void)sink;
}

static void fuzz_ring(const uint8_t *data, size_t size)
{
    unsigned num, max_descs;
    bool event_idx, indirect;
    uint16_t start;
    size_t mem_size;
    uint8_t *mem;
    VhostMemMap map = {0};
    VhostMemRegion r;
    VhostVring vr;
    struct iovec iov[64];
    VringElem elem;
    unsigned hint = 0;

    if (size < 4) {
        return;
    }
    num = 1u << (data[0] % 7);
    event_idx = data[1] & 1;
    indirect = data[1] & 2;
    max_descs = (data[1] >> 2) % 17;
    memcpy(&start, data + 2, 2);
    data += 4;
    size -= 4;
    mem_size = size < 4096 ? 4096 : size > MAX_MEM ? MAX_MEM : size;
    mem = g_malloc0(mem_size);
    memcpy(mem, data, size < mem_size ? size : mem_size);
    /* Two regions meeting in the middle, so chains can cross. */
    r = (VhostMemRegion){
        .gpa = GPA, .size = mem_size / 2, .uva = 0, .hva = mem};
    vhost_mem_insert(&map, &r);
    r = (VhostMemRegion){.gpa = GPA + mem_size / 2,
                         .size = mem_size - mem_size / 2,
                         .uva = 1 << 20,
                         .hva = mem + mem_size / 2};
    vhost_mem_insert(&map, &r);
    vring_init(&vr, num, (VringDesc *)mem, mem + 1024, mem + 2048, start,
               event_idx, indirect);
    for (unsigned i = 0; i < 2 * num + 2; i++) {
        const char *why = NULL;
        VringPopResult res;

        res = vring_pop(&vr, &map, &hint, &elem, iov, 64, max_descs, &why);
        if (res != VRING_POP_OK) {
            break;
        }
        touch(iov, elem.out_num + elem.in_num);
        vring_push(&vr, elem.head, (uint32_t)elem.in_len);
        vring_publish(&vr);
        (void)vring_should_signal(&vr);
        (void)vring_set_kicks(&vr, i & 1);
    }
    /* Inflight recovery over whatever the tail of the memory holds. */
    if (mem_size >= 3072 + vhost_inflight_region_size(num)) {
        VhostInflightQueue q = {0};
        uint16_t resubmit[64];
        unsigned n = 0;

        (void)vhost_inflight_start(&q, (VhostInflightRegion *)(mem + 3072), num,
                                   vring_used_idx_published(&vr), start,
                                   resubmit, &n);
        for (unsigned i = 0; i < n; i++) {
            const char *why = NULL;

            if (vring_walk_chain(&vr, &map, &hint, resubmit[i], &elem, iov, 64,
                                 max_descs, &why) == VRING_POP_OK) {
                touch(iov, elem.out_num + elem.in_num);
                vhost_inflight_take(&q, resubmit[i]);
                vhost_inflight_push(&q, resubmit[i]);
            }
        }
        vhost_inflight_pre_publish(&q);
        vhost_inflight_commit(&q, vring_used_idx_published(&vr));
        vhost_inflight_stop(&q);
    }
    g_free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    if (data[0] & 1) {
        fuzz_ring(data + 1, size - 1);
    } else {
        fuzz_messages(data + 1, size - 1);
    }
    return 0;
}
