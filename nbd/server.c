/*
 * NBD server: listeners, the connection list and counts, exports, and the
 * close path.  Everything here runs in the main loop thread; connections
 * in IOThreads reach it through nbd_server_client_closed(), which
 * schedules a BH here.  server-internal.h describes who owns what.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dataplane/main-loop.h"
#include "nbd/budget.h"
#include "nbd/server-internal.h"
#include "util/utf8.h"

typedef struct NbdListener {
    int fd;
    int port; /* TCP; -1 for unix */
} NbdListener;

typedef struct NbdServer {
    bool running;
    GArray *listeners; /* NbdListener */
    char *unix_path;   /* unlinked on stop */
    unsigned max_connections;
    int64_t handshake_max_ms; /* 64 bits: 2^31 s in ms does not fit 32 */
    int64_t idle_max_ns;
    unsigned n_clients;
    unsigned next_client_id;
    LIST_HEAD(, NbdClient) clients;
    TAILQ_HEAD(, NbdExport) exports;
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

static void export_drained_begin(void *opaque)
{
    NbdExport *exp = opaque;
    NbdClient *c;

    if (exp->quiesce_depth++ > 0) {
        return;
    }
    LIST_FOREACH(c, &exp->clients, exp_link)
    {
        nbd_requests_quiesce(c);
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
        nbd_requests_resume(c);
    }
}

static void export_detach_aio_context(void *opaque)
{
    NbdExport *exp = opaque;
    NbdClient *c;

    LIST_FOREACH(c, &exp->clients, exp_link)
    {
        nbd_requests_detach(c);
    }
}

static void export_attach_aio_context(AioContext *new_ctx, void *opaque)
{
    NbdExport *exp = opaque;
    NbdClient *c;

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
    exp->refcnt = 1;
    exp->bs = bs;
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
        nbd_requests_close(c);
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

    error_report("nbd: client %u: handshake not finished in %" PRId64
                 " ms, disconnecting",
                 client->id, server.handshake_max_ms);
    nbd_server_client_drop(client);
}

void nbd_server_client_attach(NbdClient *client, NbdExport *exp,
                              const uint8_t *leftover, size_t leftover_len)
{
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
     * client before the first callback that runs in the IOThread. */
    ctx = bdrv_get_aio_context(exp->bs);
    aio_context_acquire(ctx);
    client->ctx = ctx;
    client->quiesced = exp->quiesce_depth > 0;
    LIST_INSERT_HEAD(&exp->clients, client, exp_link);
    exp->n_clients++;
    nbd_requests_attach(client);
    aio_context_release(ctx);
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
 * kernel's default two hours.  Best effort: a failure costs only that. */
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

static void listener_accept(void *opaque)
{
    NbdListener *l = opaque;
    NbdClient *client;
    int fd;

    fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            error_report("nbd: accept: %s", g_strerror(errno));
        }
        return;
    }
    if (server.max_connections > 0 &&
        server.n_clients >= server.max_connections) {
        /* Over the limit: closing at once costs the server nothing. */
        close(fd);
        return;
    }
    if (l->port >= 0) {
        tcp_client_setup(fd);
    }
    client = g_new0(NbdClient, 1);
    client->fd = fd;
    client->idle_max_ns = server.idle_max_ns;
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

static bool add_listener(int fd, int port)
{
    NbdListener l = {.fd = fd, .port = port};

    g_array_append_val(server.listeners, l);
    return true;
}

static bool listen_unix(const char *path, Error **errp)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        error_setg(errp, "unix socket path '%s' too long", path);
        return false;
    }
    strcpy(sun.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "socket");
        return false;
    }
    /* Replace a stale socket, never another kind of file. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(fd, SOMAXCONN) < 0) {
        error_setg_errno(errp, errno, "cannot listen on '%s'", path);
        close(fd);
        return false;
    }
    server.unix_path = g_strdup(path);
    return add_listener(fd, -1);
}

/* Splits "host:port", "[v6]:port" or ":port". */
static bool split_host_port(const char *addr, char **host, char **port,
                            Error **errp)
{
    const char *colon;

    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');

        if (!end || end[1] != ':') {
            error_setg(errp, "bad address '%s': expected [host]:port", addr);
            return false;
        }
        *host = g_strndup(addr + 1, end - addr - 1);
        *port = g_strdup(end + 2);
    } else {
        colon = strrchr(addr, ':');
        if (!colon) {
            error_setg(errp, "bad address '%s': expected host:port", addr);
            return false;
        }
        *host = g_strndup(addr, colon - addr);
        *port = g_strdup(colon + 1);
    }
    if (**port == '\0') {
        error_setg(errp, "bad address '%s': missing port", addr);
        g_free(*host);
        g_free(*port);
        return false;
    }
    return true;
}

static int sockaddr_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        return -1;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static bool listen_inet(const char *addr, Error **errp)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_ADDRCONFIG,
    };
    struct addrinfo *res, *ai;
    char *host, *port;
    int err, one = 1, first_errno = 0;
    int bound_port = -1;

    if (!split_host_port(addr, &host, &port, errp)) {
        return false;
    }
    err = getaddrinfo(*host ? host : NULL, port, &hints, &res);
    if (err != 0) {
        error_setg(errp, "cannot resolve '%s': %s", addr, gai_strerror(err));
        g_free(host);
        g_free(port);
        return false;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family,
                        ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);

        if (fd < 0) {
            first_errno = first_errno ? first_errno : errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6) {
            /* One listener per family, so that both bind the same port. */
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        }
        if (bound_port > 0) {
            /* Port 0: every family listens on the port the first got. */
            if (ai->ai_family == AF_INET) {
                ((struct sockaddr_in *)ai->ai_addr)->sin_port =
                    htons(bound_port);
            } else if (ai->ai_family == AF_INET6) {
                ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port =
                    htons(bound_port);
            }
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
            listen(fd, SOMAXCONN) < 0) {
            first_errno = first_errno ? first_errno : errno;
            close(fd);
            continue;
        }
        bound_port = sockaddr_port(fd);
        add_listener(fd, bound_port);
    }
    freeaddrinfo(res);
    g_free(host);
    g_free(port);
    if (server.listeners->len == 0) {
        error_setg_errno(errp, first_errno ? first_errno : EADDRNOTAVAIL,
                         "cannot listen on '%s'", addr);
        return false;
    }
    return true;
}

static void close_listeners(void)
{
    guint i;

    for (i = 0; i < server.listeners->len; i++) {
        NbdListener *l = &g_array_index(server.listeners, NbdListener, i);

        aio_set_fd_handler(main_ctx(), l->fd, NULL, NULL, NULL, NULL);
        close(l->fd);
    }
    g_array_free(server.listeners, TRUE);
    server.listeners = NULL;
    if (server.unix_path) {
        unlink(server.unix_path);
        g_free(server.unix_path);
        server.unix_path = NULL;
    }
}

bool nbd_server_start(const char *addr, const NbdServerOptions *opts,
                      Error **errp)
{
    NbdServerOptions o = opts ? *opts : NBD_SERVER_OPTIONS_DEFAULT;
    bool ok;
    guint i;

    assert_main_thread();
    if (server.running) {
        error_setg(errp, "NBD server already running");
        return false;
    }
    if (o.max_connections < 0 || o.handshake_max_seconds < 0 ||
        o.idle_max_seconds < 0) {
        error_setg(errp, "max-connections, handshake-max-seconds and "
                         "idle-max-seconds must not be negative");
        return false;
    }
    if (server.listeners == NULL) {
        server.listeners = g_array_new(FALSE, FALSE, sizeof(NbdListener));
    }
    if (g_str_has_prefix(addr, "unix:")) {
        ok = listen_unix(addr + 5, errp);
    } else if (addr[0] == '/') {
        ok = listen_unix(addr, errp);
    } else {
        ok = listen_inet(addr, errp);
    }
    if (!ok) {
        close_listeners();
        return false;
    }
    server.max_connections = (unsigned)o.max_connections;
    server.handshake_max_ms = (int64_t)o.handshake_max_seconds * 1000;
    server.idle_max_ns = (int64_t)o.idle_max_seconds * 1000000000;
    nbd_budget_set_limit(o.max_buffer_size);
    /* The listener array no longer grows: its elements' addresses are
     * stable and can be the handlers' opaque. */
    for (i = 0; i < server.listeners->len; i++) {
        NbdListener *l = &g_array_index(server.listeners, NbdListener, i);

        aio_set_fd_handler(main_ctx(), l->fd, listener_accept, NULL, NULL, l);
    }
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
    close_listeners();
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
    server.running = false;
    return true;
}

bool nbd_server_is_running(void)
{
    return server.running;
}

int nbd_server_get_port(void)
{
    if (!server.listeners || server.listeners->len == 0) {
        return -1;
    }
    return g_array_index(server.listeners, NbdListener, 0).port;
}

unsigned nbd_server_get_connection_count(void)
{
    return server.n_clients;
}
