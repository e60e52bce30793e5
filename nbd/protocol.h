/*
 * NBD protocol codec: constants, parsers of client messages and builders of
 * server messages.  Pure functions over byte buffers: no sockets, no
 * allocation in the parsers, no global state; every function may be called
 * from any thread.
 *
 * Constants follow the NetworkBlockDevice project's doc/proto.md (current
 * numbering: NBD_OPT_LIST_META_CONTEXT is 9, NBD_OPT_SET_META_CONTEXT 10).
 *
 * Parsers never read past the length they are given.  Header parsers
 * (client flags, option header, request header) answer NBD_PARSE_NEED_MORE
 * when the buffer is still too short, so a caller can feed them whatever the
 * socket gave it so far.  Payload parsers are given the complete payload
 * (its length came from the option header) and answer a specific error when
 * it is malformed.  Parsed strings point into the caller's buffer.
 */
#ifndef DATAPLANE_NBD_PROTOCOL_H
#define DATAPLANE_NBD_PROTOCOL_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- magics ----------------------------------------------------------- */

#define NBD_INIT_MAGIC 0x4e42444d41474943ULL /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC 0x49484156454f5054ULL /* "IHAVEOPT" */
#define NBD_OPT_REPLY_MAGIC 0x0003e889045565a9ULL
#define NBD_REQUEST_MAGIC 0x25609513U
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698U
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efU

/* ---- handshake -------------------------------------------------------- */

/* Handshake flags (server, 16 bits). */
#define NBD_FLAG_FIXED_NEWSTYLE (1U << 0)
#define NBD_FLAG_NO_ZEROES (1U << 1)

/* Client flags (32 bits). */
#define NBD_FLAG_C_FIXED_NEWSTYLE (1U << 0)
#define NBD_FLAG_C_NO_ZEROES (1U << 1)
#define NBD_FLAG_C_KNOWN (NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)

/* Transmission flags (16 bits). */
#define NBD_FLAG_HAS_FLAGS (1U << 0)
#define NBD_FLAG_READ_ONLY (1U << 1)
#define NBD_FLAG_SEND_FLUSH (1U << 2)
#define NBD_FLAG_SEND_FUA (1U << 3)
#define NBD_FLAG_ROTATIONAL (1U << 4)
#define NBD_FLAG_SEND_TRIM (1U << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1U << 6)
#define NBD_FLAG_SEND_DF (1U << 7)
#define NBD_FLAG_CAN_MULTI_CONN (1U << 8)
#define NBD_FLAG_SEND_RESIZE (1U << 9)
#define NBD_FLAG_SEND_CACHE (1U << 10)
#define NBD_FLAG_SEND_FAST_ZERO (1U << 11)

/* Options. */
#define NBD_OPT_EXPORT_NAME 1U
#define NBD_OPT_ABORT 2U
#define NBD_OPT_LIST 3U
#define NBD_OPT_STARTTLS 5U
#define NBD_OPT_INFO 6U
#define NBD_OPT_GO 7U
#define NBD_OPT_STRUCTURED_REPLY 8U
#define NBD_OPT_LIST_META_CONTEXT 9U
#define NBD_OPT_SET_META_CONTEXT 10U

/* Option reply types; errors have bit 31 set. */
#define NBD_REP_ACK 1U
#define NBD_REP_SERVER 2U
#define NBD_REP_INFO 3U
#define NBD_REP_META_CONTEXT 4U
#define NBD_REP_ERR(n) ((1U << 31) | (n))
#define NBD_REP_ERR_UNSUP NBD_REP_ERR(1)
#define NBD_REP_ERR_POLICY NBD_REP_ERR(2)
#define NBD_REP_ERR_INVALID NBD_REP_ERR(3)
#define NBD_REP_ERR_PLATFORM NBD_REP_ERR(4)
#define NBD_REP_ERR_TLS_REQD NBD_REP_ERR(5)
#define NBD_REP_ERR_UNKNOWN NBD_REP_ERR(6)
#define NBD_REP_ERR_SHUTDOWN NBD_REP_ERR(7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBD_REP_ERR(8)
#define NBD_REP_ERR_TOO_BIG NBD_REP_ERR(9)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT 0U
#define NBD_INFO_NAME 1U
#define NBD_INFO_DESCRIPTION 2U
#define NBD_INFO_BLOCK_SIZE 3U

/* ---- transmission ----------------------------------------------------- */

#define NBD_CMD_READ 0U
#define NBD_CMD_WRITE 1U
#define NBD_CMD_DISC 2U
#define NBD_CMD_FLUSH 3U
#define NBD_CMD_TRIM 4U
#define NBD_CMD_CACHE 5U
#define NBD_CMD_WRITE_ZEROES 6U
#define NBD_CMD_BLOCK_STATUS 7U

/* Command flags. */
#define NBD_CMD_FLAG_FUA (1U << 0)
#define NBD_CMD_FLAG_NO_HOLE (1U << 1)
#define NBD_CMD_FLAG_DF (1U << 2)
#define NBD_CMD_FLAG_REQ_ONE (1U << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1U << 4)

/* Structured reply flags and chunk types; error chunks have bit 15 set. */
#define NBD_REPLY_FLAG_DONE (1U << 0)
#define NBD_REPLY_TYPE_NONE 0U
#define NBD_REPLY_TYPE_OFFSET_DATA 1U
#define NBD_REPLY_TYPE_OFFSET_HOLE 2U
#define NBD_REPLY_TYPE_BLOCK_STATUS 5U
#define NBD_REPLY_TYPE_ERROR ((1U << 15) + 1)
#define NBD_REPLY_TYPE_ERROR_OFFSET ((1U << 15) + 2)

/* base:allocation status flags. */
#define NBD_STATE_HOLE (1U << 0)
#define NBD_STATE_ZERO (1U << 1)

/* Error values of replies (not the host's errno numbers, though equal on
 * Linux). */
#define NBD_SUCCESS 0U
#define NBD_EPERM 1U
#define NBD_EIO 5U
#define NBD_ENOMEM 12U
#define NBD_EINVAL 22U
#define NBD_ENOSPC 28U
#define NBD_EOVERFLOW 75U
#define NBD_ENOTSUP 95U
#define NBD_ESHUTDOWN 108U

/* ---- sizes and limits ------------------------------------------------- */

#define NBD_MAX_STRING 4096U
/* The largest option payload accepted (a SET_META_CONTEXT with a few
 * queries of NBD_MAX_STRING bytes fits well). */
#define NBD_MAX_OPTION_LEN (64U * 1024)
/* The largest READ/WRITE payload: advertised as the maximum block size. */
#define NBD_MAX_PAYLOAD (32U * 1024 * 1024)
/* The meta context ids the server hands out. */
#define NBD_META_ID_BASE_ALLOCATION 1U
#define NBD_META_ID_ALLOCATION_DEPTH 2U
#define NBD_META_BASE_ALLOCATION "base:allocation"
#define NBD_META_ALLOCATION_DEPTH "qemu:allocation-depth"

#define NBD_SERVER_GREETING_LEN 18 /* magic, opts magic, 16-bit flags */
#define NBD_CLIENT_FLAGS_LEN 4
#define NBD_OPTION_HEADER_LEN 16
#define NBD_OPT_REPLY_HEADER_LEN 20
#define NBD_EXPORT_NAME_REPLY_LEN 134 /* size, flags, 124 zero bytes */
#define NBD_REQUEST_LEN 28
#define NBD_SIMPLE_REPLY_LEN 16
#define NBD_STRUCTURED_REPLY_LEN 20
/* A structured chunk header plus the fixed part of its payload: the
 * largest is OFFSET_HOLE (offset + size) and ERROR (error + msg length). */
#define NBD_CHUNK_MAX_HEAD_LEN (NBD_STRUCTURED_REPLY_LEN + 12)

/* ---- big-endian helpers ----------------------------------------------- */

static inline uint16_t nbd_get_be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t nbd_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static inline uint64_t nbd_get_be64(const uint8_t *p)
{
    return (uint64_t)nbd_get_be32(p) << 32 | nbd_get_be32(p + 4);
}

static inline void nbd_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void nbd_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void nbd_put_be64(uint8_t *p, uint64_t v)
{
    nbd_put_be32(p, (uint32_t)(v >> 32));
    nbd_put_be32(p + 4, (uint32_t)v);
}

/* ---- parsing ---------------------------------------------------------- */

typedef enum NbdParseResult {
    NBD_PARSE_OK = 0,
    NBD_PARSE_NEED_MORE,  /* header parsers: not enough bytes yet */
    NBD_PARSE_BAD_MAGIC,  /* the message does not start with its magic */
    NBD_PARSE_BAD_FLAGS,  /* client flags the server does not know */
    NBD_PARSE_TOO_LONG,   /* a string over NBD_MAX_STRING, or a length over
                             its limit */
    NBD_PARSE_BAD_LENGTH, /* the lengths inside a payload do not add up */
    NBD_PARSE_BAD_STRING, /* a string contains a NUL byte */
} NbdParseResult;

/* A short name for logs and error messages ("bad magic", ...). */
const char *nbd_parse_result_str(NbdParseResult r);
/* "NBD_OPT_GO", "NBD_CMD_READ", ... or "unknown". */
const char *nbd_opt_name(uint32_t opt);
const char *nbd_cmd_name(uint16_t cmd);

/* A string inside a received buffer: not NUL-terminated. */
typedef struct NbdString {
    const char *data;
    uint32_t len;
} NbdString;

/* True if s equals the NUL-terminated c. */
bool nbd_string_eq(NbdString s, const char *c);

/*
 * The client's 32-bit flags.  NBD_PARSE_BAD_FLAGS for any flag the server
 * did not advertise (the server must then drop the connection).
 */
NbdParseResult nbd_parse_client_flags(const uint8_t *buf, size_t len,
                                      uint32_t *flags);

typedef struct NbdOptionHeader {
    uint32_t option;
    uint32_t len; /* payload bytes that follow */
} NbdOptionHeader;

/*
 * An option header.  NBD_PARSE_TOO_LONG when len > NBD_MAX_OPTION_LEN:
 * the header itself is valid (hdr is filled), and the server may skip
 * the payload and answer NBD_REP_ERR_TOO_BIG, or drop the connection.
 */
NbdParseResult nbd_parse_option_header(const uint8_t *buf, size_t len,
                                       NbdOptionHeader *hdr);

/* Options without data (ABORT, LIST, STARTTLS, STRUCTURED_REPLY):
 * NBD_PARSE_BAD_LENGTH if len != 0. */
NbdParseResult nbd_parse_opt_empty(size_t len);

/* NBD_OPT_EXPORT_NAME: the whole payload is the name. */
NbdParseResult nbd_parse_opt_export_name(const uint8_t *buf, size_t len,
                                         NbdString *name);

/* NBD_OPT_INFO and NBD_OPT_GO. */
typedef struct NbdOptGo {
    NbdString name;
    uint16_t n_requests;
    const uint8_t *requests; /* n_requests big-endian 16-bit info types */
} NbdOptGo;

NbdParseResult nbd_parse_opt_go(const uint8_t *buf, size_t len, NbdOptGo *go);
/* The i-th requested info type, 0 <= i < go->n_requests. */
uint16_t nbd_opt_go_request(const NbdOptGo *go, uint16_t i);

/* NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT. */
typedef struct NbdOptMetaContext {
    NbdString export_name;
    uint32_t n_queries;
    const uint8_t *queries; /* n_queries of (be32 length, string) */
    size_t queries_len;
} NbdOptMetaContext;

/* Validates every query too: each fits, none over NBD_MAX_STRING or with a
 * NUL, and no bytes are left over. */
NbdParseResult nbd_parse_opt_meta_context(const uint8_t *buf, size_t len,
                                          NbdOptMetaContext *meta);
/*
 * Iterates the queries of a successfully parsed meta: *pos starts at 0;
 * returns false after the last one.
 */
bool nbd_opt_meta_next_query(const NbdOptMetaContext *meta, size_t *pos,
                             NbdString *query);

/* What a meta context query selects on this server. */
typedef enum NbdMetaMatch {
    NBD_META_MATCH_NONE,             /* valid, but names nothing we have */
    NBD_META_MATCH_BASE_ALLOCATION,  /* "base:allocation" or "base:" */
    NBD_META_MATCH_ALLOCATION_DEPTH, /* "qemu:allocation-depth", "qemu:" */
    NBD_META_MATCH_INVALID,          /* no namespace ("foo") */
} NbdMetaMatch;

NbdMetaMatch nbd_meta_query_match(NbdString query);

typedef struct NbdRequest {
    uint16_t flags;
    uint16_t type;
    uint64_t cookie;
    uint64_t offset;
    uint32_t len;
} NbdRequest;

/* A request header (NBD_REQUEST_LEN bytes).  NBD_PARSE_BAD_MAGIC means the
 * stream is out of sync: the server must drop the connection. */
NbdParseResult nbd_parse_request(const uint8_t *buf, size_t len,
                                 NbdRequest *req);

/* True if the request is followed by req->len payload bytes. */
static inline bool nbd_request_has_payload(const NbdRequest *req)
{
    return req->type == NBD_CMD_WRITE;
}

/* What the server offers on one connection: the facts nbd_request_check()
 * needs. */
typedef struct NbdRequestLimits {
    uint64_t export_size;
    uint16_t eflags;         /* transmission flags sent to the client */
    bool structured_replies; /* NBD_OPT_STRUCTURED_REPLY was acked */
    bool base_allocation;    /* base:allocation was selected */
    bool allocation_depth;   /* qemu:allocation-depth was selected */
    uint32_t max_payload;    /* NBD_MAX_PAYLOAD */
} NbdRequestLimits;

/*
 * Checks a parsed request against the export: NBD_SUCCESS, or the NBD
 * error value to answer (NBD_EINVAL for an unknown command, flag or a range
 * outside the export, NBD_EPERM for a write to a read-only export,
 * NBD_ENOSPC for a write past the end, NBD_EINVAL for a READ or WRITE
 * larger than max_payload).  NBD_CMD_DISC is always NBD_SUCCESS.  When a
 * WRITE is refused, the caller must still consume its payload (without
 * keeping it) or drop the connection: the stream is in sync only after it.
 */
uint32_t nbd_request_check(const NbdRequest *req, const NbdRequestLimits *lim);

/* Maps a negative errno of the block layer to an NBD error value. */
uint32_t nbd_errno_to_nbd(int err);

/* ---- building --------------------------------------------------------- */

/*
 * Builders of variable-length handshake messages append to a GByteArray.
 * Strings given as (data, len) need not be NUL-terminated; their length
 * must not exceed NBD_MAX_STRING (asserted: the server never sends a string
 * it would refuse itself).
 */

/* NBDMAGIC, IHAVEOPT, handshake flags. */
void nbd_build_greeting(GByteArray *out, uint16_t handshake_flags);

/* Reply to NBD_OPT_EXPORT_NAME: size, flags and (unless no_zeroes) 124 zero
 * bytes. */
void nbd_build_export_name_reply(GByteArray *out, uint64_t size,
                                 uint16_t eflags, bool no_zeroes);

/* A fixed-newstyle option reply with an arbitrary payload. */
void nbd_build_opt_reply(GByteArray *out, uint32_t option, uint32_t type,
                         const void *data, uint32_t len);
/* An error reply (type has bit 31 set) with an optional message (msg may be
 * NULL). */
void nbd_build_opt_error(GByteArray *out, uint32_t option, uint32_t type,
                         const char *msg);
/* NBD_REP_SERVER for NBD_OPT_LIST: name and optional description. */
void nbd_build_rep_server(GByteArray *out, const char *name,
                          const char *description);
/* NBD_REP_INFO variants. */
void nbd_build_info_export(GByteArray *out, uint32_t option, uint64_t size,
                           uint16_t eflags);
void nbd_build_info_name(GByteArray *out, uint32_t option, const char *name);
void nbd_build_info_description(GByteArray *out, uint32_t option,
                                const char *description);
void nbd_build_info_block_size(GByteArray *out, uint32_t option,
                               uint32_t min_block, uint32_t preferred,
                               uint32_t max_block);
/* NBD_REP_META_CONTEXT. */
void nbd_build_rep_meta_context(GByteArray *out, uint32_t option,
                                uint32_t context_id, const char *name);

/*
 * Transmission headers are fixed-size and written into a caller's buffer
 * (no allocation on the data path); each returns the number of bytes
 * written.  The data of a read follows separately (vectored send).
 */
size_t nbd_build_simple_reply(uint8_t *out, uint32_t error, uint64_t cookie);
/* A structured chunk header announcing payload_len bytes of payload. */
size_t nbd_build_chunk_header(uint8_t *out, uint16_t flags, uint16_t type,
                              uint64_t cookie, uint32_t payload_len);
/* NBD_REPLY_TYPE_OFFSET_DATA header + offset; data_len bytes must follow. */
size_t nbd_build_chunk_offset_data(uint8_t *out, uint16_t flags,
                                   uint64_t cookie, uint64_t offset,
                                   uint32_t data_len);
/* NBD_REPLY_TYPE_OFFSET_HOLE: a complete chunk. */
size_t nbd_build_chunk_offset_hole(uint8_t *out, uint16_t flags,
                                   uint64_t cookie, uint64_t offset,
                                   uint32_t hole_len);
/* NBD_REPLY_TYPE_NONE with NBD_REPLY_FLAG_DONE. */
size_t nbd_build_chunk_none(uint8_t *out, uint64_t cookie);
/*
 * NBD_REPLY_TYPE_ERROR header and fixed fields; msg_len bytes of message
 * must follow.  error must be nonzero.
 */
size_t nbd_build_chunk_error(uint8_t *out, uint16_t flags, uint64_t cookie,
                             uint32_t error, uint16_t msg_len);

/* One base:allocation extent (flags: NBD_STATE_*), or one
 * qemu:allocation-depth extent (flags: the depth). */
typedef struct NbdExtent {
    uint32_t length; /* nonzero */
    uint32_t flags;  /* NBD_STATE_* */
} NbdExtent;

/*
 * A complete NBD_REPLY_TYPE_BLOCK_STATUS chunk into out, which must hold
 * NBD_STRUCTURED_REPLY_LEN + 4 + 8 * n bytes (n >= 1).  Returns its size.
 */
size_t nbd_build_chunk_block_status(uint8_t *out, uint16_t flags,
                                    uint64_t cookie, uint32_t context_id,
                                    const NbdExtent *extents, size_t n);

#endif /* DATAPLANE_NBD_PROTOCOL_H */
