/*
 * NBD server: listeners, the connection list and counts, exports, and the
 * close path.  Everything here runs in the main loop thread; connections
 * in IOThreads reach it through nbd_server_client_closed(), which
 * schedules a BH here.  server-internal.h describes who owns what.
 */
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane/main-loop.h"
#include "dataplane/socket.h"
#include "nbd/budget.h"
#include "nbd/server-internal.h"
#include "util/ratelimit.h"
#include "util/utf8.h"

typedef struct NbdServer {
    bool running;
    SocketListener *listener;
    unsigned max_connections;
    int64_t handshake_max_ms; /* 64 bits: 2^31 s in ms does not fit 32 */
    int64_t idle_max_ns;
    bool poll_sockets;
    unsigned n_clients;
    unsigned next_client_id;
    LIST_HEAD(, NbdClient) clients;
    TAILQ_HEAD(, NbdExport) exports;
    TlsCreds *tls_creds; /* referenced; NULL: plaintext */
    Authz *tls_authz;
} NbdServer;

/* Main loop only. */
static NbdServer server = {
    .exports = TAILQ_HEAD_INITIALIZER(server.exports),
};

/* nbd_set_export_gone_handler(); main loop only. */
static NbdExportGoneFunc *export_gone_fn;
static void *export_gone_opaque;

void nbd_set_export_gone_handler(NbdExportGoneFunc *fn, void *opaque)
{
    export_gone_fn = fn;
    export_gone_opaque = opaque;
}

/* Handshake timeouts: a peer can cause them at will. */
static LogRateLimit handshake_log = LOG_RATELIMIT_INIT;

static AioContext *main_ctx(void)
{
    return main_loop_get_aio_context();
}

static void assert_main_thread(void)
{
    g_assert(main_loop_is_main_thread());
}

/* ---- exports ---------------------------------------------------------- */

static void export_unref(NbdExport *exp);

/*
 * The clients of a multi-threaded export live in their own contexts, not
 * the node's: a hook (run with the node's context held) takes each
 * client's context around what it does to the client.  Only the main loop
 * may hold two contexts, so drained sections of a node exported from
 * several IOThreads begin and end in the main loop (the daemon's only
 * callers: moves, blockdev-del, stop).
 */
static void client_lock(NbdClient *c)
{
    if (c->exp->n_ctxs) {
        aio_context_acquire(c->ctx);
    }
}

static void client_unlock(NbdClient *c)
{
    if (c->exp->n_ctxs) {
        aio_context_release(c->ctx);
    }
}

static void export_drained_begin(void *opaque)
{
    NbdExport *exp = opaque;
    NbdClient *c;

    if (exp->quiesce_depth++ > 0) {
        return;
    }
    LIST_FOREACH(c, &exp->clients, exp_link)
    {
        client_lock(c);
        nbd_requests_quiesce(c);
        client_unlock(c);
    }
}

static void export_drained_end(void *opaque)
{
    NbdExport *exp = opaque;
    NbdClient *c;

    g_assert(exp->quiesce_depth > 0);
    if (--exp->quiesce_depth > 0) {
        return;
    }
    LIST_FOREACH(c, &exp->clients, exp_link)
    {
        client_lock(c);
        nbd_requests_resume(c);
        client_unlock(c);
    }
}

/* A single-threaded export's clients follow the node; a multi-threaded
 * export's stay in their IOThreads (only the node's home changes). */
static void export_detach_aio_context(void *opaque)
{
    NbdExport *exp = opaque;
    NbdClient *c;

    if (exp->n_ctxs) {
        return;
    }
    LIST_FOREACH(c, &exp->clients, exp_link)
    {
        nbd_requests_detach(c);
    }
}

static void export_attach_aio_context(AioContext *new_ctx, void *opaque)
{
    NbdExport *exp = opaque;
    NbdClient *c;

    if (exp->n_ctxs) {
        return;
    }
    LIST_FOREACH(c, &exp->clients, exp_link)
    {
        c->ctx = new_ctx;
        nbd_requests_attach(c);
    }
}

static const BlockUserOps export_user_ops = {
    .drained_begin = export_drained_begin,
    .drained_end = export_drained_end,
    .detach_aio_context = export_detach_aio_context,
    .attach_aio_context = export_attach_aio_context,
};

static NbdExport *find_export_by_id(const char *id)
{
    NbdExport *exp;

    TAILQ_FOREACH(exp, &server.exports, next)
    {
        if (strcmp(exp->id, id) == 0) {
            return exp;
        }
    }
    return NULL;
}

NbdExport *nbd_server_find_export(const char *name)
{
    NbdExport *exp;

    assert_main_thread();
    TAILQ_FOREACH(exp, &server.exports, next)
    {
        if (strcmp(exp->name, name) == 0) {
            return exp;
        }
    }
    return NULL;
}

bool nbd_server_export_is_live(const NbdExport *exp)
{
    NbdExport *e;

    assert_main_thread();
    TAILQ_FOREACH(e, &server.exports, next)
    {
        if (e == exp) {
            return true;
        }
    }
    return false;
}

void nbd_server_foreach_export(NbdExportIter *fn, void *opaque)
{
    NbdExport *exp;

    assert_main_thread();
    TAILQ_FOREACH(exp, &server.exports, next)
    {
        fn(exp, opaque);
    }
}

bool nbd_export_add(const char *id, const char *node_name, const char *name,
                    const char *description, bool writable, Error **errp)
{
    NbdExportConfig cfg = {.id = id,
                           .node_name = node_name,
                           .name = name,
                           .description = description,
                           .writable = writable};

    return nbd_export_add_config(&cfg, errp);
}

bool nbd_export_add_config(const NbdExportConfig *cfg, Error **errp)
{
    const char *id = cfg->id;
    const char *node_name = cfg->node_name;
    const char *name = cfg->name;
    const char *description = cfg->description;
    bool writable = cfg->writable;
    AioContext *const *ctxs = cfg->ctxs;
    unsigned n_ctxs = cfg->n_ctxs;
    BlockDriverState *bs;
    NbdExport *exp;

    assert_main_thread();
    if (!server.running) {
        error_setg(errp, "NBD server not running");
        return false;
    }
    if (find_export_by_id(id)) {
        error_setg(errp, "Block export id '%s' is already in use", id);
        return false;
    }
    bs = bdrv_find_node(node_name);
    if (!bs) {
        error_setg(errp, "Cannot find node '%s'", node_name);
        return false;
    }
    if (!name) {
        name = node_name;
    }
    if (strlen(name) > NBD_MAX_STRING) {
        g_autofree char *shown = utf8_abbrev(name, 32);

        error_setg(errp, "export name '%s' too long (at most %u bytes)", shown,
                   NBD_MAX_STRING);
        return false;
    }
    if (description && strlen(description) > NBD_MAX_STRING) {
        error_setg(errp, "export description too long (at most %u bytes)",
                   NBD_MAX_STRING);
        return false;
    }
    if (nbd_server_find_export(name)) {
        error_setg(errp, "NBD export '%s' already exists", name);
        return false;
    }
    if (writable && bdrv_is_read_only(bs)) {
        error_setg(errp, "Cannot export node '%s' writable: it is read-only",
                   node_name);
        return false;
    }
    exp = g_new0(NbdExport, 1);
    exp->id = g_strdup(id);
    exp->name = g_strdup(name);
    exp->description = g_strdup(description);
    exp->writable = writable;
    exp->allocation_depth = cfg->allocation_depth;
    exp->refcnt = 1;
    exp->bs = bs;
    if (n_ctxs) {
        unsigned k;

        exp->n_ctxs = n_ctxs;
        exp->ctxs = g_new(AioContext *, n_ctxs);
        exp->ctx_clients = g_new0(unsigned, n_ctxs);
        for (k = 0; k < n_ctxs; k++) {
            exp->ctxs[k] = ctxs[k];
            aio_context_ref(ctxs[k]);
        }
    }
    LIST_INIT(&exp->clients);
    bdrv_ref(bs);
    bdrv_add_aio_context_notifier(bs, &export_user_ops, exp);
    TAILQ_INSERT_TAIL(&server.exports, exp, next);
    return true;
}

static void export_unref(NbdExport *exp)
{
    g_assert(exp->refcnt > 0);
    if (--exp->refcnt > 0) {
        return;
    }
    g_assert(exp->deleted && exp->n_clients == 0);
    bdrv_remove_aio_context_notifier(exp->bs, &export_user_ops, exp);
    bdrv_unref(exp->bs);
    if (export_gone_fn) {
        export_gone_fn(exp->id, export_gone_opaque);
    }
    for (unsigned k = 0; k < exp->n_ctxs; k++) {
        aio_context_unref(exp->ctxs[k]);
    }
    g_free(exp->ctxs);
    g_free(exp->ctx_clients);
    g_free(exp->id);
    g_free(exp->name);
    g_free(exp->description);
    g_free(exp);
}

/* Closes every attached client of exp (hard): each stops reading, drops
 * what it has not sent and closes once its in-flight requests are done. */
static void export_close_clients(NbdExport *exp)
{
    AioContext *ctx = bdrv_get_aio_context(exp->bs);
    NbdClient *c;

    aio_context_acquire(ctx);
    LIST_FOREACH(c, &exp->clients, exp_link)
    {
        client_lock(c);
        nbd_requests_close(c);
        client_unlock(c);
    }
    aio_context_release(ctx);
}

static void export_delete(NbdExport *exp)
{
    export_close_clients(exp);
    TAILQ_REMOVE(&server.exports, exp, next);
    exp->deleted = true;
    export_unref(exp);
}

bool nbd_export_del(const char *id, NbdExportDelMode mode, Error **errp)
{
    NbdExport *exp;

    assert_main_thread();
    exp = find_export_by_id(id);
    if (!exp) {
        error_setg(errp, "Export '%s' is not found", id);
        return false;
    }
    if (mode == NBD_EXPORT_DEL_SAFE && exp->n_clients > 0) {
        error_setg(errp, "export '%s' still in use (%u connections)", id,
                   exp->n_clients);
        return false;
    }
    export_delete(exp);
    return true;
}

void nbd_export_foreach(NbdExportFunc *fn, void *opaque)
{
    NbdExport *exp;

    assert_main_thread();
    TAILQ_FOREACH(exp, &server.exports, next)
    {
        NbdExportInfo info = {
            .id = exp->id,
            .name = exp->name,
            .description = exp->description,
            .node_name = bdrv_get_node_name(exp->bs),
            .writable = exp->writable,
            .connections = exp->n_clients,
            .n_contexts = exp->n_ctxs,
            .context_connections = exp->ctx_clients,
        };
        fn(&info, opaque);
    }
}

/* ---- connections ------------------------------------------------------ */

static void client_free(NbdClient *client)
{
    LIST_REMOVE(client, server_link);
    g_assert(server.n_clients > 0);
    server.n_clients--;
    tls_session_free(client->tls);
    close(client->fd);
    g_free(client);
}

void nbd_server_client_drop(NbdClient *client)
{
    assert_main_thread();
    g_assert(client->phase == NBD_PHASE_HANDSHAKE);
    aio_set_fd_handler(main_ctx(), client->fd, NULL, NULL, NULL, NULL);
    nbd_handshake_free(client);
    client_free(client);
}

static void handshake_timeout(void *opaque)
{
    NbdClient *client = opaque;

    error_report_ratelimited(&handshake_log,
                             "nbd: client %u: handshake not finished in "
                             "%" PRId64 " ms, disconnecting",
                             client->id, server.handshake_max_ms);
    nbd_server_client_drop(client);
}

void nbd_server_client_attach(NbdClient *client, NbdExport *exp,
                              const uint8_t *leftover, size_t leftover_len)
{
    AioContext *home;
    AioContext *ctx;

    assert_main_thread();
    g_assert(leftover_len <= NBD_RBUF_SIZE);
    aio_set_fd_handler(main_ctx(), client->fd, NULL, NULL, NULL, NULL);
    client->rbuf = g_malloc(NBD_RBUF_SIZE);
    memcpy(client->rbuf, leftover, leftover_len);
    client->rstart = 0;
    client->rend = leftover_len;
    nbd_handshake_free(client);
    STAILQ_INIT(&client->send_queue);

    exp->refcnt++;
    client->exp = exp;
    client->phase = NBD_PHASE_TRANSMISSION;
    /* A node moves only in the main loop (this thread), so its context
     * cannot change until we return; holding it orders our writes to the
     * client before the first callback that runs in the IOThread.  The
     * export's list is under the node's context; the client of a
     * multi-threaded export runs in the listed context with the fewest of
     * the export's clients (the first such after the last one chosen). */
    home = bdrv_get_aio_context(exp->bs);
    if (exp->n_ctxs) {
        unsigned best = exp->next_ctx % exp->n_ctxs;
        unsigned k;

        for (k = 0; k < exp->n_ctxs; k++) {
            unsigned i = (exp->next_ctx + k) % exp->n_ctxs;

            if (exp->ctx_clients[i] < exp->ctx_clients[best]) {
                best = i;
            }
        }
        exp->next_ctx = best + 1;
        exp->ctx_clients[best]++;
        client->ctx_index = best;
        ctx = exp->ctxs[best];
    } else {
        ctx = home;
    }
    aio_context_acquire(home);
    aio_context_acquire(ctx);
    client->ctx = ctx;
    client->quiesced = exp->quiesce_depth > 0;
    LIST_INSERT_HEAD(&exp->clients, client, exp_link);
    exp->n_clients++;
    nbd_requests_attach(client);
    aio_context_release(ctx);
    aio_context_release(home);
}

/* Main loop BH: the client has closed in its context; unlink and free. */
static void client_release_bh(void *opaque)
{
    NbdClient *client = opaque;
    NbdExport *exp = client->exp;
    AioContext *ctx = bdrv_get_aio_context(exp->bs);

    g_assert(client->phase == NBD_PHASE_RELEASED);
    aio_context_acquire(ctx);
    LIST_REMOVE(client, exp_link);
    exp->n_clients--;
    aio_context_release(ctx);
    if (exp->n_ctxs) {
        exp->ctx_clients[client->ctx_index]--;
    }
    client_free(client);
    export_unref(exp);
}

void nbd_server_client_closed(NbdClient *client)
{
    client->phase = NBD_PHASE_RELEASED;
    /* The BH's scheduling publishes every write above to the main loop. */
    aio_bh_schedule_oneshot(main_ctx(), client_release_bh, client);
}

/* A TCP connection: no Nagle delay on replies, and keepalive probes so
 * that a peer that vanished does not hold its slot and memory for the
 * kernel's default two hours.  Best effort: a failure costs only that
 * (and on a unix socket from an inherited fd, these simply fail). */
static void tcp_client_setup(int fd)
{
    int one = 1;
    int idle = NBD_TCP_KEEPIDLE;
    int intvl = NBD_TCP_KEEPINTVL;
    int cnt = NBD_TCP_KEEPCNT;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static void server_accept(SocketListener *l, int fd, void *opaque)
{
    NbdClient *client;

    if (server.max_connections > 0 &&
        server.n_clients >= server.max_connections) {
        /* Over the limit: closing at once costs the server nothing. */
        close(fd);
        return;
    }
    if (socket_listener_get_address(l)->type != SOCKET_ADDRESS_UNIX) {
        tcp_client_setup(fd);
    }
    client = g_new0(NbdClient, 1);
    client->fd = fd;
    client->idle_max_ns = server.idle_max_ns;
    client->poll_socket = server.poll_sockets;
    client->id = ++server.next_client_id;
    client->phase = NBD_PHASE_HANDSHAKE;
    client->ctx = main_ctx();
    LIST_INSERT_HEAD(&server.clients, client, server_link);
    server.n_clients++;
    if (server.handshake_max_ms > 0) {
        client->hs_timer =
            aio_timer_new(main_ctx(), AIO_CLOCK_REALTIME, AIO_SCALE_MS,
                          handshake_timeout, client);
        aio_timer_mod(client->hs_timer,
                      aio_clock_get_ns(AIO_CLOCK_REALTIME) / AIO_SCALE_MS +
                          server.handshake_max_ms);
    }
    nbd_handshake_start(client);
}

/* ---- listening -------------------------------------------------------- */

/* ---- TLS -------------------------------------------------------------- */

TlsCreds *nbd_server_tls_creds(void)
{
    return server.tls_creds;
}

Authz *nbd_server_tls_authz(void)
{
    return server.tls_authz;
}

static bool check_tls(const NbdServerOptions *opts, Error **errp)
{
    if (!opts->tls_creds && opts->tls_authz) {
        error_setg(errp, "tls-authz needs tls-creds");
        return false;
    }
    if (opts->tls_creds &&
        tls_creds_get_endpoint(opts->tls_creds) != TLS_ENDPOINT_SERVER) {
        error_setg(errp,
                   "TLS credentials '%s' have endpoint=client: the NBD "
                   "server needs endpoint=server",
                   tls_creds_get_id(opts->tls_creds));
        return false;
    }
    return true;
}

/* ---- starting and stopping ------------------------------------------- */

bool nbd_server_start(const SocketAddress *addr, const NbdServerOptions *opts,
                      Error **errp)
{
    NbdServerOptions defaults = NBD_SERVER_OPTIONS_DEFAULT;

    assert_main_thread();
    if (!opts) {
        opts = &defaults;
    }
    if (server.running) {
        error_setg(errp, "NBD server already running");
        return false;
    }
    if (opts->max_connections < 0 || opts->handshake_max_seconds < 0 ||
        opts->idle_max_seconds < 0) {
        error_setg(errp, "max-connections, handshake-max-seconds and "
                         "idle-max-seconds must not be negative");
        return false;
    }
    if (!check_tls(opts, errp)) {
        return false;
    }
    server.listener =
        socket_listener_new(main_ctx(), addr, server_accept, NULL, errp);
    if (!server.listener) {
        return false;
    }
    server.max_connections = (unsigned)opts->max_connections;
    server.handshake_max_ms = (int64_t)opts->handshake_max_seconds * 1000;
    server.idle_max_ns = (int64_t)opts->idle_max_seconds * 1000000000;
    server.poll_sockets = opts->poll_sockets;
    nbd_budget_set_limit(opts->max_buffer_size);
    server.tls_creds = opts->tls_creds;
    if (server.tls_creds) {
        tls_creds_ref(server.tls_creds);
    }
    server.tls_authz = opts->tls_authz;
    server.running = true;
    return true;
}

bool nbd_server_stop(Error **errp)
{
    NbdClient *c, *next;

    assert_main_thread();
    if (!server.running) {
        error_setg(errp, "NBD server not running");
        return false;
    }
    g_clear_pointer(&server.listener, socket_listener_free);
    /* Handshaking clients are the main loop's own: drop them now. */
    for (c = LIST_FIRST(&server.clients); c; c = next) {
        next = LIST_NEXT(c, server_link);
        if (c->phase == NBD_PHASE_HANDSHAKE) {
            nbd_server_client_drop(c);
        }
    }
    while (!TAILQ_EMPTY(&server.exports)) {
        export_delete(TAILQ_FIRST(&server.exports));
    }
    /* Sessions still closing in IOThreads hold their own references. */
    if (server.tls_creds) {
        tls_creds_unref(server.tls_creds);
    }
    server.tls_creds = NULL;
    server.tls_authz = NULL;
    server.running = false;
    return true;
}

bool nbd_server_is_running(void)
{
    return server.running;
}

int nbd_server_get_port(void)
{
    return server.listener ? socket_listener_get_port(server.listener) : -1;
}

unsigned nbd_server_get_connection_count(void)
{
    return server.n_clients;
}
