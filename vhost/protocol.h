/*
 * The vhost-user protocol, backend side: constants, message framing and
 * payload decoding as QEMU's docs/interop/vhost-user.rst specifies them,
 * and the virtio constants the virtio-blk export needs.
 *
 * Everything here is a pure function over byte buffers: no I/O, no
 * allocation, no global state.  The connection code (vhost/conn.c) reads
 * bytes and file descriptors from the socket and asks this module whether a
 * message is well-formed before it acts on it; the fuzz target
 * (tests/fuzz/fuzz-vhost.c) drives the same functions with random input.
 *
 * Every number on the wire is in the host's byte order (the protocol says
 * "machine native"); virtio structures in guest memory are little-endian,
 * which is the host's order on every platform this project builds on (the
 * build asserts it in vhost/virtqueue.c).
 *
 * Thread-safety: every function is safe from any thread.
 */
#ifndef DATAPLANE_VHOST_PROTOCOL_H
#define DATAPLANE_VHOST_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- message header ----------------------------------------------------- */

#define VHOST_USER_HDR_SIZE 12
#define VHOST_USER_VERSION 0x1
#define VHOST_USER_VERSION_MASK 0x3u
#define VHOST_USER_REPLY_MASK (1u << 2)
#define VHOST_USER_NEED_REPLY_MASK (1u << 3)

/* The largest payload the backend accepts: a GET_CONFIG/SET_CONFIG of the
 * whole 256-byte config space (12 + 256) is the biggest legal one. */
#define VHOST_USER_MAX_CONFIG_SIZE 256
#define VHOST_USER_PAYLOAD_MAX (12 + VHOST_USER_MAX_CONFIG_SIZE)
/* File descriptors one message may carry (SET_MEM_TABLE's eight). */
#define VHOST_USER_MAX_FDS 8

/* Regions in one SET_MEM_TABLE, and in all (ADD_MEM_REG); the second is
 * what GET_MAX_MEM_SLOTS reports. */
#define VHOST_USER_MEM_TABLE_MAX_REGIONS 8
#define VHOST_USER_MAX_MEM_SLOTS 32

/* Front-end requests (vhost-user.rst, "Front-end message types"). */
typedef enum VhostUserRequest {
    VHOST_USER_GET_FEATURES = 1,
    VHOST_USER_SET_FEATURES = 2,
    VHOST_USER_SET_OWNER = 3,
    VHOST_USER_RESET_OWNER = 4,
    VHOST_USER_SET_MEM_TABLE = 5,
    VHOST_USER_SET_LOG_BASE = 6,
    VHOST_USER_SET_LOG_FD = 7,
    VHOST_USER_SET_VRING_NUM = 8,
    VHOST_USER_SET_VRING_ADDR = 9,
    VHOST_USER_SET_VRING_BASE = 10,
    VHOST_USER_GET_VRING_BASE = 11,
    VHOST_USER_SET_VRING_KICK = 12,
    VHOST_USER_SET_VRING_CALL = 13,
    VHOST_USER_SET_VRING_ERR = 14,
    VHOST_USER_GET_PROTOCOL_FEATURES = 15,
    VHOST_USER_SET_PROTOCOL_FEATURES = 16,
    VHOST_USER_GET_QUEUE_NUM = 17,
    VHOST_USER_SET_VRING_ENABLE = 18,
    VHOST_USER_SEND_RARP = 19,
    VHOST_USER_NET_SET_MTU = 20,
    VHOST_USER_SET_BACKEND_REQ_FD = 21,
    VHOST_USER_IOTLB_MSG = 22,
    VHOST_USER_SET_VRING_ENDIAN = 23,
    VHOST_USER_GET_CONFIG = 24,
    VHOST_USER_SET_CONFIG = 25,
    VHOST_USER_CREATE_CRYPTO_SESSION = 26,
    VHOST_USER_CLOSE_CRYPTO_SESSION = 27,
    VHOST_USER_POSTCOPY_ADVISE = 28,
    VHOST_USER_POSTCOPY_LISTEN = 29,
    VHOST_USER_POSTCOPY_END = 30,
    VHOST_USER_GET_INFLIGHT_FD = 31,
    VHOST_USER_SET_INFLIGHT_FD = 32,
    VHOST_USER_GPU_SET_SOCKET = 33,
    VHOST_USER_RESET_DEVICE = 34,
    VHOST_USER_VRING_KICK = 35,
    VHOST_USER_GET_MAX_MEM_SLOTS = 36,
    VHOST_USER_ADD_MEM_REG = 37,
    VHOST_USER_REM_MEM_REG = 38,
    VHOST_USER_SET_STATUS = 39,
    VHOST_USER_GET_STATUS = 40,
} VhostUserRequest;

/* Back-end requests, sent on the channel of SET_BACKEND_REQ_FD. */
#define VHOST_USER_BACKEND_CONFIG_CHANGE_MSG 2

/* Protocol feature bits. */
#define VHOST_USER_PROTOCOL_F_MQ 0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD 1
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ 5
#define VHOST_USER_PROTOCOL_F_CONFIG 9
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD 12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE 13
#define VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS 14
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15

/* The feature bit that says the backend speaks protocol features. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* SET_VRING_KICK/CALL/ERR payload: bits 0-7 the index, bit 8 "no fd". */
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD_MASK (1u << 8)

/* SET_CONFIG flags. */
#define VHOST_USER_CONFIG_FLAG_WRITABLE 0
#define VHOST_USER_CONFIG_FLAG_MIGRATION 1

/* ---- virtio ------------------------------------------------------------- */

#define VIRTIO_F_NOTIFY_ON_EMPTY 24
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED 34

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_GEOMETRY 4
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_CONFIG_WCE 11
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_SECTOR_BITS 9
#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u

/* The request header at the start of the driver's buffers. */
typedef struct VirtioBlkOutHdr {
    uint32_t type;
    uint32_t ioprio;
    uint64_t sector;
} VirtioBlkOutHdr;

/* One range of a DISCARD or WRITE_ZEROES request. */
typedef struct VirtioBlkDiscardWriteZeroes {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
} VirtioBlkDiscardWriteZeroes;

/* The virtio-blk configuration space, as far as this backend fills it (the
 * first 60 bytes; the secure-erase and zoned fields after them read as
 * zero).  Packed: the layout is the wire's. */
typedef struct __attribute__((packed)) VirtioBlkConfig {
    uint64_t capacity; /* in 512-byte sectors */
    uint32_t size_max;
    uint32_t seg_max;
    uint16_t geometry_cylinders;
    uint8_t geometry_heads;
    uint8_t geometry_sectors;
    uint32_t blk_size;
    uint8_t physical_block_exp;
    uint8_t alignment_offset;
    uint16_t min_io_size;
    uint32_t opt_io_size;
    uint8_t wce;
    uint8_t unused;
    uint16_t num_queues;
    uint32_t max_discard_sectors;
    uint32_t max_discard_seg;
    uint32_t discard_sector_alignment;
    uint32_t max_write_zeroes_sectors;
    uint32_t max_write_zeroes_seg;
    uint8_t write_zeroes_may_unmap;
    uint8_t unused1[3];
} VirtioBlkConfig;

#define VIRTIO_BLK_CONFIG_WCE_OFFSET 32

/* ---- payloads ----------------------------------------------------------- */

typedef struct VhostUserHeader {
    uint32_t request;
    uint32_t flags;
    uint32_t size;
} VhostUserHeader;

typedef struct VhostVringState {
    uint32_t index;
    uint32_t num;
} VhostVringState;

typedef struct VhostVringAddr {
    uint32_t index;
    uint32_t flags;
    uint64_t desc_user_addr;
    uint64_t used_user_addr;
    uint64_t avail_user_addr;
    uint64_t log_guest_addr;
} VhostVringAddr;

typedef struct VhostUserMemRegion {
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
    uint64_t mmap_offset;
} VhostUserMemRegion;

typedef struct VhostUserMemTable {
    uint32_t nregions;
    VhostUserMemRegion regions[VHOST_USER_MEM_TABLE_MAX_REGIONS];
} VhostUserMemTable;

typedef struct VhostUserConfigHdr {
    uint32_t offset;
    uint32_t size;
    uint32_t flags;
} VhostUserConfigHdr;

typedef struct VhostUserInflight {
    uint64_t mmap_size;
    uint64_t mmap_offset;
    uint16_t num_queues;
    uint16_t queue_size;
} VhostUserInflight;

/* The wire sizes of the payloads. */
#define VHOST_USER_U64_SIZE 8
#define VHOST_USER_VRING_STATE_SIZE 8
#define VHOST_USER_VRING_ADDR_SIZE 40
#define VHOST_USER_MEM_REGION_SIZE 32
#define VHOST_USER_MEM_TABLE_HDR_SIZE 8
#define VHOST_USER_SINGLE_REGION_SIZE (8 + VHOST_USER_MEM_REGION_SIZE)
#define VHOST_USER_CONFIG_HDR_SIZE 12
/* QEMU sends the C struct with its tail padding (24); 20 are meaningful. */
#define VHOST_USER_INFLIGHT_SIZE 24
#define VHOST_USER_INFLIGHT_MIN_SIZE 20

/* ---- framing and checking ----------------------------------------------- */

/* A request's name ("SET_MEM_TABLE"), or "UNKNOWN". */
const char *vhost_user_request_name(uint32_t request);

/*
 * Decodes the 12-byte header at buf (len >= VHOST_USER_HDR_SIZE).  Returns
 * NULL if it is acceptable to read the payload that follows (version 1, not
 * a reply, size <= VHOST_USER_PAYLOAD_MAX), else a sentence saying why the
 * stream cannot go on.
 */
const char *vhost_user_parse_header(const uint8_t *buf, size_t len,
                                    VhostUserHeader *hdr);

/*
 * Checks a whole message the backend knows: the payload size is the one
 * its request type has, and it came with the number of file descriptors
 * that type takes (nfds).  Returns NULL if well-formed, else a sentence.
 * A request type this backend does not implement is not well-formed.
 * protocol_features are the negotiated ones (some requests are legal only
 * with a feature).
 */
const char *vhost_user_check_message(const VhostUserHeader *hdr,
                                     const uint8_t *payload, size_t nfds,
                                     uint64_t protocol_features);

/* Whether the front-end waits for a reply to this request whatever the
 * need_reply flag says (GET_* requests). */
bool vhost_user_request_has_reply(uint32_t request);

/*
 * Payload decoders, for messages vhost_user_check_message() accepted: they
 * read fields and check nothing (the check did the sizes and counts; what
 * the values mean is the caller's to check).
 */
uint64_t vhost_user_decode_u64(const uint8_t *payload);
void vhost_user_decode_vring_state(const uint8_t *payload, VhostVringState *s);
void vhost_user_decode_vring_addr(const uint8_t *payload, VhostVringAddr *a);
void vhost_user_decode_mem_region(const uint8_t *payload,
                                  VhostUserMemRegion *r);
void vhost_user_decode_mem_table(const uint8_t *payload, VhostUserMemTable *t);
/* The region of ADD_MEM_REG / REM_MEM_REG (after the 8 padding bytes). */
void vhost_user_decode_single_region(const uint8_t *payload,
                                     VhostUserMemRegion *r);
void vhost_user_decode_config_hdr(const uint8_t *payload,
                                  VhostUserConfigHdr *c);
void vhost_user_decode_inflight(const uint8_t *payload, size_t size,
                                VhostUserInflight *in);

/*
 * Builds a reply (header with the REPLY flag, then payload) into out, which
 * has room for VHOST_USER_HDR_SIZE + VHOST_USER_PAYLOAD_MAX bytes.  Returns
 * the total length.
 */
size_t vhost_user_build_reply(uint8_t *out, uint32_t request,
                              const void *payload, uint32_t size);
size_t vhost_user_build_reply_u64(uint8_t *out, uint32_t request,
                                  uint64_t value);
size_t vhost_user_build_reply_vring_state(uint8_t *out, uint32_t request,
                                          const VhostVringState *s);
size_t vhost_user_build_reply_inflight(uint8_t *out,
                                       const VhostUserInflight *in);
/* A request of the backend channel (no payload). */
size_t vhost_user_build_backend_request(uint8_t *out, uint32_t request,
                                        bool need_reply);

/*
 * Encoders for the front-end side (the project's own client and the tests
 * use them): a request with the given payload bytes.
 */
size_t vhost_user_build_request(uint8_t *out, uint32_t request, uint32_t flags,
                                const void *payload, uint32_t size);
void vhost_user_encode_vring_addr(uint8_t *out, const VhostVringAddr *a);
void vhost_user_encode_mem_region(uint8_t *out, const VhostUserMemRegion *r);
void vhost_user_encode_inflight(uint8_t *out, const VhostUserInflight *in);

#endif /* DATAPLANE_VHOST_PROTOCOL_H */
