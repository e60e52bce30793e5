/*
 * NBD handshake: fixed newstyle option haggling, in the main loop.
 *
 * Non-blocking: bytes are read into `in` as they come and consumed one
 * message at a time; replies are appended to `out` and sent as the socket
 * allows.  While replies are waiting to be sent the client is not read
 * from, so a client that never reads cannot make us buffer without bound.
 * The handshake timer (server.c) bounds the whole phase.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane/main-loop.h"
#include "nbd/server-internal.h"
#include "util/ratelimit.h"

/* Handshake failures: a peer can cause them at will, over and over. */
static LogRateLimit handshake_log = LOG_RATELIMIT_INIT;

typedef enum HsState {
    HS_CLIENT_FLAGS,
    HS_OPTION_HEADER,
    HS_OPTION_DATA, /* waiting for opt.len payload bytes */
    HS_OPTION_SKIP, /* discarding an oversized payload */
    HS_DONE,        /* GO/EXPORT_NAME accepted: attach once out is sent */
    HS_CLOSING,     /* close once out is sent (ABORT) */
} HsState;

struct NbdHandshake {
    HsState state;
    GByteArray *in;
    GByteArray *out;
    size_t out_sent;
    NbdOptionHeader opt;
    uint64_t skip_left;
    bool structured;
    bool no_zeroes;
    /* NBD_OPT_SET_META_CONTEXT's selection, for the export it named. */
    bool meta_base_allocation;
    char *meta_export;
    /* Compared, not dereferenced, until nbd_server_export_is_live(). */
    NbdExport *chosen;
};

typedef struct NbdHandshake NbdHandshake;

static void hs_update_handlers(NbdClient *client);

uint16_t nbd_export_eflags(const NbdExport *exp, bool structured)
{
    uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                 NBD_FLAG_SEND_CACHE;

    /* Every connection's writes go to the same node, and a flush on the
     * node makes every completed write stable: multi-conn is safe. */
    f |= NBD_FLAG_CAN_MULTI_CONN;
    if (exp->writable) {
        f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
             NBD_FLAG_SEND_FAST_ZERO;
    } else {
        f |= NBD_FLAG_READ_ONLY;
    }
    if (structured) {
        /* Reads are always answered with one data chunk. */
        f |= NBD_FLAG_SEND_DF;
    }
    return f;
}

static uint64_t export_size(const NbdExport *exp)
{
    int64_t len = bdrv_getlength(exp->bs);

    return len > 0 ? (uint64_t)len : 0;
}

/* ---- replies ---------------------------------------------------------- */

static void reply_ack(NbdHandshake *hs)
{
    nbd_build_opt_reply(hs->out, hs->opt.option, NBD_REP_ACK, NULL, 0);
}

static void reply_error(NbdHandshake *hs, uint32_t type, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static void reply_error(NbdHandshake *hs, uint32_t type, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (strlen(msg) > NBD_MAX_STRING) {
        msg[NBD_MAX_STRING] = '\0';
    }
    nbd_build_opt_error(hs->out, hs->opt.option, type, msg);
    g_free(msg);
}

/* The error reply for a malformed payload. */
static void reply_parse_error(NbdHandshake *hs, NbdParseResult r)
{
    reply_error(
        hs, r == NBD_PARSE_TOO_LONG ? NBD_REP_ERR_TOO_BIG : NBD_REP_ERR_INVALID,
        "%s: %s", nbd_opt_name(hs->opt.option), nbd_parse_result_str(r));
}

/* ---- options ---------------------------------------------------------- */

static void send_export_infos(NbdHandshake *hs, NbdExport *exp,
                              const NbdOptGo *go)
{
    uint16_t i;

    nbd_build_info_export(hs->out, hs->opt.option, export_size(exp),
                          nbd_export_eflags(exp, hs->structured));
    for (i = 0; i < go->n_requests; i++) {
        switch (nbd_opt_go_request(go, i)) {
        case NBD_INFO_NAME:
            nbd_build_info_name(hs->out, hs->opt.option, exp->name);
            break;
        case NBD_INFO_DESCRIPTION:
            if (exp->description) {
                nbd_build_info_description(hs->out, hs->opt.option,
                                           exp->description);
            }
            break;
        case NBD_INFO_BLOCK_SIZE:
            nbd_build_info_block_size(hs->out, hs->opt.option, NBD_MIN_BLOCK,
                                      NBD_PREFERRED_BLOCK, NBD_MAX_PAYLOAD);
            break;
        default:
            /* NBD_INFO_EXPORT is always sent; unknown types are ignored,
             * as the spec asks. */
            break;
        }
    }
    reply_ack(hs);
}

static void opt_info_go(NbdHandshake *hs, const uint8_t *p, size_t len)
{
    NbdOptGo go;
    NbdParseResult r = nbd_parse_opt_go(p, len, &go);
    NbdExport *exp;
    char *name;

    if (r != NBD_PARSE_OK) {
        reply_parse_error(hs, r);
        return;
    }
    name = g_strndup(go.name.data, go.name.len);
    exp = nbd_server_find_export(name);
    if (!exp) {
        reply_error(hs, NBD_REP_ERR_UNKNOWN, "export '%s' not found", name);
        g_free(name);
        return;
    }
    g_free(name);
    send_export_infos(hs, exp, &go);
    if (hs->opt.option == NBD_OPT_GO) {
        hs->chosen = exp;
        hs->state = HS_DONE;
    }
}

static void opt_export_name(NbdClient *client, NbdHandshake *hs,
                            const uint8_t *p, size_t len)
{
    NbdString s;
    NbdExport *exp = NULL;

    if (nbd_parse_opt_export_name(p, len, &s) == NBD_PARSE_OK) {
        char *name = g_strndup(s.data, s.len);

        exp = nbd_server_find_export(name);
        g_free(name);
    }
    if (!exp) {
        /* This option cannot answer an error: the spec says close. */
        error_report_ratelimited(&handshake_log,
                                 "nbd: client %u: NBD_OPT_EXPORT_NAME of an "
                                 "unknown export, disconnecting",
                                 client->id);
        hs->state = HS_CLOSING;
        return;
    }
    nbd_build_export_name_reply(hs->out, export_size(exp),
                                nbd_export_eflags(exp, hs->structured),
                                hs->no_zeroes);
    hs->chosen = exp;
    hs->state = HS_DONE;
}

static void list_one(NbdExport *exp, void *opaque)
{
    NbdHandshake *hs = opaque;

    nbd_build_rep_server(hs->out, exp->name, exp->description);
}

static void opt_list(NbdHandshake *hs, size_t len)
{
    if (nbd_parse_opt_empty(len) != NBD_PARSE_OK) {
        reply_error(hs, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
        return;
    }
    nbd_server_foreach_export(list_one, hs);
    reply_ack(hs);
}

static void opt_meta_context(NbdHandshake *hs, const uint8_t *p, size_t len)
{
    bool set = hs->opt.option == NBD_OPT_SET_META_CONTEXT;
    NbdOptMetaContext meta;
    NbdParseResult r;
    NbdString q;
    size_t pos = 0;
    bool base = false;
    char *name;

    if (set) {
        /* A failed SET leaves nothing selected. */
        hs->meta_base_allocation = false;
        g_clear_pointer(&hs->meta_export, g_free);
    }
    if (!hs->structured) {
        reply_error(hs, NBD_REP_ERR_INVALID,
                    "%s needs NBD_OPT_STRUCTURED_REPLY first",
                    nbd_opt_name(hs->opt.option));
        return;
    }
    r = nbd_parse_opt_meta_context(p, len, &meta);
    if (r != NBD_PARSE_OK) {
        reply_parse_error(hs, r);
        return;
    }
    name = g_strndup(meta.export_name.data, meta.export_name.len);
    if (!nbd_server_find_export(name)) {
        reply_error(hs, NBD_REP_ERR_UNKNOWN, "export '%s' not found", name);
        g_free(name);
        return;
    }
    /* Validate every query before answering any. */
    if (meta.n_queries == 0) {
        /* LIST with no query: every context.  SET with none: none. */
        base = !set;
    }
    while (nbd_opt_meta_next_query(&meta, &pos, &q)) {
        switch (nbd_meta_query_match(q)) {
        case NBD_META_MATCH_BASE_ALLOCATION:
            base = true;
            break;
        case NBD_META_MATCH_NONE:
            break;
        case NBD_META_MATCH_INVALID:
            reply_error(hs, NBD_REP_ERR_INVALID,
                        "meta context query '%.*s' has no namespace",
                        (int)q.len, q.data);
            g_free(name);
            return;
        }
    }
    if (base) {
        nbd_build_rep_meta_context(hs->out, hs->opt.option,
                                   set ? NBD_META_ID_BASE_ALLOCATION : 0,
                                   NBD_META_BASE_ALLOCATION);
    }
    if (set) {
        hs->meta_base_allocation = base;
        hs->meta_export = name;
    } else {
        g_free(name);
    }
    reply_ack(hs);
}

/* Handles the option in hs->opt whose payload is p[0..len). */
static void handle_option(NbdClient *client, NbdHandshake *hs, const uint8_t *p,
                          size_t len)
{
    switch (hs->opt.option) {
    case NBD_OPT_EXPORT_NAME:
        opt_export_name(client, hs, p, len);
        break;
    case NBD_OPT_ABORT:
        reply_ack(hs);
        hs->state = HS_CLOSING;
        break;
    case NBD_OPT_LIST:
        opt_list(hs, len);
        break;
    case NBD_OPT_STARTTLS:
        reply_error(hs, NBD_REP_ERR_POLICY,
                    "TLS is not configured on this server");
        break;
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
        opt_info_go(hs, p, len);
        break;
    case NBD_OPT_STRUCTURED_REPLY:
        if (nbd_parse_opt_empty(len) != NBD_PARSE_OK) {
            reply_error(hs, NBD_REP_ERR_INVALID,
                        "NBD_OPT_STRUCTURED_REPLY takes no data");
            break;
        }
        hs->structured = true;
        reply_ack(hs);
        break;
    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
        opt_meta_context(hs, p, len);
        break;
    default:
        reply_error(hs, NBD_REP_ERR_UNSUP, "option %u not supported",
                    hs->opt.option);
        break;
    }
}

/* ---- the state machine ------------------------------------------------ */

/* Consumes complete messages from hs->in.  Stops at HS_DONE/HS_CLOSING. */
static void hs_process(NbdClient *client, NbdHandshake *hs)
{
    size_t pos = 0;
    uint32_t flags;
    NbdParseResult r;

    for (;;) {
        const uint8_t *p = hs->in->data + pos;
        size_t avail = hs->in->len - pos;

        if (hs->state == HS_CLIENT_FLAGS) {
            r = nbd_parse_client_flags(p, avail, &flags);
            if (r == NBD_PARSE_NEED_MORE) {
                break;
            }
            if (r != NBD_PARSE_OK) {
                /* Unknown client flags: the spec says drop. */
                error_report_ratelimited(&handshake_log,
                                         "nbd: client %u: unknown client "
                                         "flags 0x%x, disconnecting",
                                         client->id, flags);
                hs->state = HS_CLOSING;
                break;
            }
            hs->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
            pos += NBD_CLIENT_FLAGS_LEN;
            hs->state = HS_OPTION_HEADER;
        } else if (hs->state == HS_OPTION_HEADER) {
            r = nbd_parse_option_header(p, avail, &hs->opt);
            if (r == NBD_PARSE_NEED_MORE) {
                break;
            }
            if (r == NBD_PARSE_BAD_MAGIC) {
                error_report_ratelimited(&handshake_log,
                                         "nbd: client %u: bad option magic, "
                                         "disconnecting",
                                         client->id);
                hs->state = HS_CLOSING;
                break;
            }
            pos += NBD_OPTION_HEADER_LEN;
            if (r == NBD_PARSE_TOO_LONG) {
                if (hs->opt.option == NBD_OPT_EXPORT_NAME) {
                    hs->state = HS_CLOSING; /* cannot answer an error */
                    break;
                }
                hs->skip_left = hs->opt.len;
                hs->state = HS_OPTION_SKIP;
            } else {
                hs->state = HS_OPTION_DATA;
            }
        } else if (hs->state == HS_OPTION_DATA) {
            if (avail < hs->opt.len) {
                break;
            }
            hs->state = HS_OPTION_HEADER;
            handle_option(client, hs, p, hs->opt.len);
            pos += hs->opt.len;
            if (hs->state == HS_DONE || hs->state == HS_CLOSING) {
                break;
            }
        } else if (hs->state == HS_OPTION_SKIP) {
            size_t n = MIN((uint64_t)avail, hs->skip_left);

            pos += n;
            hs->skip_left -= n;
            if (hs->skip_left > 0) {
                break;
            }
            reply_error(hs, NBD_REP_ERR_TOO_BIG, "option payload over %u bytes",
                        NBD_MAX_OPTION_LEN);
            hs->state = HS_OPTION_HEADER;
        } else {
            break;
        }
    }
    g_byte_array_remove_range(hs->in, 0, pos);
}

/* Sends what it can of out.  False if the connection failed. */
static bool hs_flush(NbdClient *client, NbdHandshake *hs)
{
    while (hs->out_sent < hs->out->len) {
        ssize_t n =
            send(client->fd, hs->out->data + hs->out_sent,
                 hs->out->len - hs->out_sent, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN;
        }
        hs->out_sent += n;
    }
    g_byte_array_set_size(hs->out, 0);
    hs->out_sent = 0;
    return true;
}

/* After reading or writing: send, then act on the state. */
static void hs_progress(NbdClient *client)
{
    NbdHandshake *hs = client->hs;
    bool pending;

    if (!hs_flush(client, hs)) {
        nbd_server_client_drop(client);
        return;
    }
    pending = hs->out->len > 0;
    if (!pending && hs->state == HS_CLOSING) {
        nbd_server_client_drop(client);
        return;
    }
    if (!pending && hs->state == HS_DONE) {
        NbdExport *exp = hs->chosen;

        if (!nbd_server_export_is_live(exp)) {
            /* Deleted while the reply was being sent: exp may be gone. */
            nbd_server_client_drop(client);
            return;
        }

        client->structured = hs->structured;
        client->no_zeroes = hs->no_zeroes;
        client->limits = (NbdRequestLimits){
            .export_size = export_size(exp),
            .eflags = nbd_export_eflags(exp, hs->structured),
            .structured_replies = hs->structured,
            .base_allocation = hs->meta_base_allocation && hs->meta_export &&
                               strcmp(hs->meta_export, exp->name) == 0,
            .max_payload = NBD_MAX_PAYLOAD,
        };
        if (hs->in->len > NBD_RBUF_SIZE) {
            /* A client may not send requests before the GO reply; one that
             * sent this much is broken. */
            nbd_server_client_drop(client);
            return;
        }
        /* Hands client (and its fd) to the node's context; hs is freed. */
        nbd_server_client_attach(client, exp, hs->in->data, hs->in->len);
        return;
    }
    hs_update_handlers(client);
}

static void hs_read(void *opaque)
{
    NbdClient *client = opaque;
    NbdHandshake *hs = client->hs;
    uint8_t buf[16384];
    ssize_t n;

    n = recv(client->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        nbd_server_client_drop(client);
        return;
    }
    if (n > 0) {
        g_byte_array_append(hs->in, buf, n);
        hs_process(client, hs);
    }
    hs_progress(client);
}

static void hs_write(void *opaque)
{
    hs_progress(opaque);
}

/* Reads while nothing waits to be sent and the haggling goes on; writes
 * while something does. */
static void hs_update_handlers(NbdClient *client)
{
    NbdHandshake *hs = client->hs;
    bool pending = hs->out->len > 0;
    bool reading = !pending && hs->state != HS_DONE && hs->state != HS_CLOSING;

    aio_set_fd_handler(client->ctx, client->fd, reading ? hs_read : NULL,
                       pending ? hs_write : NULL, NULL, client);
}

void nbd_handshake_start(NbdClient *client)
{
    NbdHandshake *hs = g_new0(NbdHandshake, 1);

    hs->in = g_byte_array_new();
    hs->out = g_byte_array_new();
    hs->state = HS_CLIENT_FLAGS;
    client->hs = hs;
    nbd_build_greeting(hs->out, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    hs_progress(client);
}

void nbd_handshake_free(NbdClient *client)
{
    NbdHandshake *hs = client->hs;

    if (client->hs_timer) {
        aio_timer_free(client->hs_timer);
        client->hs_timer = NULL;
    }
    if (!hs) {
        return;
    }
    g_byte_array_unref(hs->in);
    g_byte_array_unref(hs->out);
    g_free(hs->meta_export);
    g_free(hs);
    client->hs = NULL;
}
