/*
 * NBD server internals shared by server.c (listeners, bookkeeping, exports),
 * handshake.c (option haggling) and the transmission phase (transmission.c
 * and the files of nbd/transmission.h).  Not installed.
 *
 * A connection's life, in order:
 *   server.c     accept, count it, arm the handshake timer    (main loop)
 *   handshake.c  greeting, options, GO/EXPORT_NAME           (main loop)
 *   server.c     join the export, move into the node's ctx   (main loop,
 *                or, for a multi-threaded export, into one     ctx acquired)
 *                of its IOThreads
 *   receive.c, commands.c, replies.c                           (node's ctx)
 *                requests in, block layer calls, replies out
 *   transmission.c  close: stop reading, wait for in-flight I/O (node's ctx)
 *   server.c     release: unlink, uncount, close fd, free    (main loop BH)
 *
 * Ownership (who may touch what):
 *   - NbdServer, its client list and counts, the export table and each
 *     export's refcount: main loop thread only.
 *   - NbdExport.clients and .quiesce_depth: changed by the main loop with
 *     the export's AioContext acquired, read by the node's drain/move hooks
 *     (which run with that context acquired).  So every access holds the
 *     context.
 *   - NbdClient: during the handshake, main loop only; from attach to
 *     close, the node's AioContext only (the main loop touches it then only
 *     with the context acquired: in the export's hooks); after the close
 *     BH is scheduled, main loop only again.  The hand-offs are ordered by
 *     the AioContext lock and by the BH (whose scheduling publishes).
 */
#ifndef DATAPLANE_NBD_SERVER_INTERNAL_H
#define DATAPLANE_NBD_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "dataplane/aio.h"
#include "dataplane/block.h"
#include "dataplane/nbd.h"
#include "dataplane/tls-session.h"
#include "nbd/protocol.h"

typedef struct NbdClient NbdClient;
typedef struct NbdExport NbdExport;
typedef struct NbdRequestState NbdRequestState;

/* ---- tuning ----------------------------------------------------------- */

/* Handshake: option replies waiting to be sent, past which no further
 * option is handled until the client has read them. */
#define NBD_HS_OUT_MAX (64 * 1024)
/* Bytes read from the socket at once: many small requests per wake-up. */
#define NBD_RBUF_SIZE (64 * 1024)
/* Backpressure: stop reading when this many requests are in flight, or
 * their READ/WRITE buffers hold this many bytes... */
#define NBD_MAX_IN_FLIGHT 128
#define NBD_MAX_IN_FLIGHT_BYTES (128U * 1024 * 1024)
/* ...or when replies not yet sent hold this many bytes, or are this many
 * (a client that sends flushes and never reads must not grow the queue by
 * a small reply at a time). */
#define NBD_MAX_QUEUED_BYTES (64U * 1024 * 1024)
#define NBD_MAX_QUEUED_REPLIES 1024
/* At most this many iovecs in one sendmsg() (batched replies). */
#define NBD_SEND_IOV_MAX 64
/* BLOCK_STATUS: descriptors in one reply, at most. */
#define NBD_MAX_EXTENTS 256
/* Data buffers of up to NBD_BUF_CACHE_MAX bytes are kept per client for
 * reuse, in power-of-two classes from 4 KiB, at most NBD_BUF_CACHE_DEPTH
 * per class and NBD_BUF_CACHE_BYTES in all: no malloc, trim, mmap or page
 * fault per request. */
#define NBD_BUF_CACHE_MIN_SHIFT 12
#define NBD_BUF_CACHE_CLASSES 9 /* 4 KiB .. 1 MiB */
#define NBD_BUF_CACHE_MAX                                                      \
    (1U << (NBD_BUF_CACHE_MIN_SHIFT + NBD_BUF_CACHE_CLASSES - 1))
#define NBD_BUF_CACHE_DEPTH 16
#define NBD_BUF_CACHE_BYTES (4U * 1024 * 1024)
/* ...and at most this much over every client of the server (budget.c). */
#define NBD_BUF_CACHE_SERVER_BYTES (64U * 1024 * 1024)
/* CACHE reads its range in pieces of this size into one buffer: the data
 * is thrown away, so a bigger buffer would only hold memory. */
#define NBD_CACHE_PIECE (256U * 1024)
/* TCP keepalive on accepted connections: a peer that vanished (power
 * loss, a dropped route) is found within IDLE + INTVL x CNT seconds
 * instead of the kernel's default two hours. */
#define NBD_TCP_KEEPIDLE 60
#define NBD_TCP_KEEPINTVL 10
#define NBD_TCP_KEEPCNT 6
/* Advertised block sizes. */
#define NBD_MIN_BLOCK 1
#define NBD_PREFERRED_BLOCK 4096

struct NbdExport {
    char *id;
    char *name;
    char *description; /* NULL if none */
    BlockDriverState *bs;
    bool writable;
    bool allocation_depth; /* offers qemu:allocation-depth */
    bool deleted;          /* removed from the table, waiting for its clients */
    unsigned refcnt;       /* the table's + one per attached client */
    /* A multi-threaded export (n_ctxs > 0): the contexts its clients are
     * spread over (referenced), and how many run in each.  Main loop. */
    AioContext **ctxs;
    unsigned n_ctxs;
    unsigned *ctx_clients;
    unsigned next_ctx;
    /* Under the node's AioContext, see the header comment. */
    LIST_HEAD(, NbdClient) clients;
    unsigned n_clients;
    int quiesce_depth;
    TAILQ_ENTRY(NbdExport) next;
};

/* One queued reply: header bytes, then an optional data buffer, then an
 * optional message (error chunks).  A block status chunk is built whole
 * into data. */
typedef struct NbdReply {
    uint8_t head[NBD_CHUNK_MAX_HEAD_LEN];
    size_t head_len;
    void *data; /* owned; freed when sent */
    size_t data_len;
    size_t data_alloc; /* the size data was allocated with */
    const char *msg;   /* error chunk message (static string) */
    size_t msg_len;
    size_t sent; /* bytes of head + data + msg already sent */
    STAILQ_ENTRY(NbdReply) next;
} NbdReply;

typedef enum NbdClientPhase {
    NBD_PHASE_HANDSHAKE,    /* main loop */
    NBD_PHASE_TRANSMISSION, /* node's context */
    NBD_PHASE_CLOSING,      /* node's context, waiting for in-flight I/O */
    NBD_PHASE_RELEASED,     /* close BH scheduled: main loop owns it */
} NbdClientPhase;

struct NbdClient {
    int fd;
    unsigned id; /* for log lines */
    NbdClientPhase phase;
    AioContext *ctx;    /* where its handlers live now */
    unsigned ctx_index; /* multi-threaded export: index in exp->ctxs */

    /* ---- handshake (main loop) ---- */
    struct NbdHandshake *hs;
    AioTimer *hs_timer;

    /* TLS, once NBD_OPT_STARTTLS has succeeded (NULL: plaintext).  It goes
     * with the client: main loop during the handshake, then the node's
     * context; freed with the client. */
    TlsSession *tls;

    /* ---- negotiated ---- */
    NbdExport *exp;
    NbdRequestLimits limits;
    bool structured;
    bool no_zeroes;

    /* ---- transmission (node's context) ---- */
    uint8_t *rbuf; /* NBD_RBUF_SIZE */
    size_t rstart, rend;
    NbdRequestState *cur;    /* a WRITE whose payload is being read */
    uint64_t discard_left;   /* payload bytes of a refused WRITE to skip */
    unsigned in_flight;      /* requests submitted, reply not queued yet */
    size_t in_flight_bytes;  /* their data buffers, and cur's */
    size_t queued_bytes;     /* bytes in send_queue */
    unsigned queued_replies; /* entries in send_queue */
    STAILQ_HEAD(, NbdReply) send_queue;
    /* Free data buffers by size class: each free buffer's first bytes
     * point to the next one. */
    void *buf_cache[NBD_BUF_CACHE_CLASSES];
    unsigned buf_cache_len[NBD_BUF_CACHE_CLASSES];
    size_t buf_cache_bytes; /* in all classes */
    AioBH *flush_bh;        /* batches the replies of one loop iteration */
    AioBH *resume_bh;       /* processes buffered requests after a drain */
    bool quiesced;          /* a drained section: submit nothing */
    bool read_enabled;      /* the fd handler has io_read set */
    bool write_enabled;     /* ... and io_write */
    bool send_blocked;      /* the last sendmsg() hit EAGAIN */
    bool recv_drained;      /* the last recv() into rbuf was short: wait for
                               the fd handler rather than recv() to EAGAIN */
    bool disc_received;     /* NBD_CMD_DISC: close once the queue is sent */
    bool dead;              /* hard close: drop unsent replies */
    bool completing;        /* in a completion: it decides how to flush */
    /* idle-max-seconds (0: none): closed after this long without a byte
     * in either direction while nothing is in flight. */
    int64_t idle_max_ns;
    bool poll_socket;       /* x-poll-sockets: nbd_receive_poll while reading */
    int64_t last_active_ns; /* the last recv() or send() that moved bytes */
    AioTimer *idle_timer;   /* in ctx; NULL without a limit */
    /* On budget.c's waiting list (under its lock). */
    bool budget_waiting;
    LIST_ENTRY(NbdClient) budget_link;

    LIST_ENTRY(NbdClient) exp_link;    /* export's clients (under ctx) */
    LIST_ENTRY(NbdClient) server_link; /* server's clients (main loop) */
};

/* ---- server.c ---------------------------------------------------------- */

/* Main loop.  The export named name, or NULL. */
NbdExport *nbd_server_find_export(const char *name);
/* Main loop.  The credentials every new connection must use (NULL: TLS is
 * not configured), and the authorization its identity must pass (NULL:
 * none). */
TlsCreds *nbd_server_tls_creds(void);
Authz *nbd_server_tls_authz(void);
/* Main loop.  False once exp has been deleted (it may be freed). */
bool nbd_server_export_is_live(const NbdExport *exp);
typedef void NbdExportIter(NbdExport *exp, void *opaque);
/* Main loop.  Every export not being deleted. */
void nbd_server_foreach_export(NbdExportIter *fn, void *opaque);
/* Main loop.  The handshake chose exp: join it and move the client into the
 * node's AioContext.  leftover: bytes already read after the last option
 * (a pipelining client's first requests). */
void nbd_server_client_attach(NbdClient *client, NbdExport *exp,
                              const uint8_t *leftover, size_t leftover_len);
/* Main loop.  The handshake ended without transmission: close now. */
void nbd_server_client_drop(NbdClient *client);
/* Node's context.  The client has stopped everything: hand it to the main
 * loop for release.  After this, the caller must not touch client. */
void nbd_server_client_closed(NbdClient *client);

/* ---- handshake.c ------------------------------------------------------- */

/* Main loop.  Sends the greeting and starts haggling on client->fd. */
void nbd_handshake_start(NbdClient *client);
/* Main loop.  Frees handshake state (after attach or drop). */
void nbd_handshake_free(NbdClient *client);
/* Builds the transmission flags of exp for a client with these
 * negotiated features. */
uint16_t nbd_export_eflags(const NbdExport *exp, bool structured);

/* ---- transmission.c ---------------------------------------------------- */

/* Node's context (or acquired): registers the fd handlers in client->ctx
 * and begins the transmission phase. */
void nbd_requests_attach(NbdClient *client);
/* Context acquired, from the export's move hook: removes the handlers and
 * BHs from the old context. */
void nbd_requests_detach(NbdClient *client);
/* Context acquired, from the export's drain hooks. */
void nbd_requests_quiesce(NbdClient *client);
void nbd_requests_resume(NbdClient *client);
/* Context acquired (main loop: export deleted, server stopped): a hard
 * close.  The client stops reading, drops unsent replies and hands itself
 * to nbd_server_client_closed() once its in-flight requests are done. */
void nbd_requests_close(NbdClient *client);

#endif /* DATAPLANE_NBD_SERVER_INTERNAL_H */
