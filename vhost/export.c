/*
 * vhost-user-blk exports: the table, each export's listener (io/'s
 * SocketListener, paused while a front-end is connected), the node's drain
 * and move hooks, and the hand-over of connections between
 * the main loop and the node's context.  Everything here runs in the main
 * loop thread except the hooks (ctx acquired) and
 * vhost_export_conn_closed() (node's context).  vhost-internal.h says who
 * owns what.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "dataplane/main-loop.h"
#include "vhost/vhost-internal.h"

/* Main loop only. */
static TAILQ_HEAD(, VhostBlkExport) exports = TAILQ_HEAD_INITIALIZER(exports);
static unsigned n_connections;
static unsigned next_conn_id;
static VhostUserBlkExportGoneFunc *gone_fn;
static void *gone_opaque;

static AioContext *main_ctx(void)
{
    return main_loop_get_aio_context();
}

static void assert_main_thread(void)
{
    g_assert(main_loop_is_main_thread());
}

void vhost_user_blk_set_export_gone_handler(VhostUserBlkExportGoneFunc *fn,
                                            void *opaque)
{
    gone_fn = fn;
    gone_opaque = opaque;
}

/* ---- node hooks (ctx acquired) ------------------------------------------ */

static void export_drained_begin(void *opaque)
{
    VhostBlkExport *exp = opaque;

    if (exp->quiesce_depth++ == 0 && exp->conn) {
        vhost_conn_quiesce(exp->conn);
    }
}

static void export_drained_end(void *opaque)
{
    VhostBlkExport *exp = opaque;

    g_assert(exp->quiesce_depth > 0);
    if (--exp->quiesce_depth == 0 && exp->conn) {
        vhost_conn_resume(exp->conn);
    }
}

static void export_detach_aio_context(void *opaque)
{
    VhostBlkExport *exp = opaque;

    if (exp->conn) {
        vhost_conn_detach(exp->conn);
    }
}

static void export_attach_aio_context(AioContext *new_ctx, void *opaque)
{
    VhostBlkExport *exp = opaque;

    if (exp->conn) {
        vhost_conn_attach(exp->conn, new_ctx);
    }
}

/* The node's size changed (block_resize): tell the front-end, which then
 * reads the config space again and tells the guest. */
static void export_resize(void *opaque)
{
    VhostBlkExport *exp = opaque;

    if (exp->conn) {
        vhost_conn_config_changed(exp->conn);
    }
}

static const BlockUserOps export_user_ops = {
    .drained_begin = export_drained_begin,
    .drained_end = export_drained_end,
    .detach_aio_context = export_detach_aio_context,
    .attach_aio_context = export_attach_aio_context,
    .resize = export_resize,
};

/* ---- connections -------------------------------------------------------- */

static void export_unref(VhostBlkExport *exp)
{
    g_assert(exp->refcnt > 0);
    if (--exp->refcnt > 0) {
        return;
    }
    g_assert(exp->deleted && !exp->conn);
    bdrv_remove_aio_context_notifier(exp->bs, &export_user_ops, exp);
    bdrv_unref(exp->bs);
    if (gone_fn) {
        gone_fn(exp->id, gone_opaque);
    }
    for (unsigned i = 0; i < exp->n_ctxs; i++) {
        aio_context_unref(exp->ctxs[i]);
    }
    g_free(exp->ctxs);
    g_free(exp->id);
    g_free(exp->address);
    g_free(exp);
}

/* Accept only while no front-end is connected: the next one waits in the
 * backlog until this one is gone. */
static void export_accept(SocketListener *l, int fd, void *opaque)
{
    VhostBlkExport *exp = opaque;
    AioContext *ctx;

    socket_listener_set_accepting(l, false);
    exp->refcnt++;
    n_connections++;
    /* The node moves only in this thread, so its context stays put until
     * we return; holding it orders our writes before the first callback
     * of the connection in the IOThread. */
    ctx = bdrv_get_aio_context(exp->bs);
    aio_context_acquire(ctx);
    exp->conn = vhost_conn_new(exp, fd, ++next_conn_id, ctx);
    aio_context_release(ctx);
}

/* Main loop BH: the connection has closed in its context. */
static void conn_release_bh(void *opaque)
{
    VhostConn *conn = opaque;
    VhostBlkExport *exp = conn->exp;
    AioContext *ctx = bdrv_get_aio_context(exp->bs);

    g_assert(conn->phase == VHOST_CONN_RELEASED);
    aio_context_acquire(ctx);
    g_assert(exp->conn == conn);
    exp->conn = NULL;
    aio_context_release(ctx);
    g_free(conn);
    g_assert(n_connections > 0);
    n_connections--;
    if (!exp->deleted) {
        socket_listener_set_accepting(exp->listener, true);
    }
    export_unref(exp);
}

void vhost_export_conn_closed(VhostConn *conn)
{
    /* The BH's scheduling publishes every write of the connection to the
     * main loop. */
    aio_bh_schedule_oneshot(main_ctx(), conn_release_bh, conn);
}

/* ---- the table ---------------------------------------------------------- */

static VhostBlkExport *find_export(const char *id)
{
    VhostBlkExport *exp;

    TAILQ_FOREACH(exp, &exports, next)
    {
        if (strcmp(exp->id, id) == 0) {
            return exp;
        }
    }
    return NULL;
}

bool vhost_user_blk_export_exists(const char *id)
{
    assert_main_thread();
    return find_export(id) != NULL;
}

bool vhost_user_blk_export_add(const VhostUserBlkExportOptions *opts,
                               Error **errp)
{
    VhostBlkExport *exp;
    BlockDriverState *bs;
    unsigned lbs = opts->logical_block_size;

    assert_main_thread();
    if (find_export(opts->id)) {
        error_setg(errp, "Block export id '%s' is already in use", opts->id);
        return false;
    }
    bs = bdrv_find_node(opts->node_name);
    if (!bs) {
        error_setg(errp, "Cannot find node '%s'", opts->node_name);
        return false;
    }
    if (opts->num_queues < 1 || opts->num_queues > VHOST_USER_BLK_MAX_QUEUES) {
        error_setg(errp, "num-queues must be between 1 and %d",
                   VHOST_USER_BLK_MAX_QUEUES);
        return false;
    }
    if (lbs < 512 || lbs > 65536 || (lbs & (lbs - 1))) {
        error_setg(errp,
                   "logical-block-size must be a power of two between 512 "
                   "and 65536, not %u",
                   lbs);
        return false;
    }
    if (bdrv_getlength(bs) % lbs) {
        error_setg(errp,
                   "the size of node '%s' is not a multiple of the logical "
                   "block size %u",
                   opts->node_name, lbs);
        return false;
    }
    if (opts->writable && bdrv_is_read_only(bs)) {
        error_setg(errp, "Cannot export node '%s' writable: it is read-only",
                   opts->node_name);
        return false;
    }
    if (opts->n_ctxs > VHOST_USER_BLK_MAX_QUEUES ||
        (opts->n_ctxs && !opts->ctxs)) {
        error_setg(errp, "an iothread list of 1 to %d IOThreads",
                   VHOST_USER_BLK_MAX_QUEUES);
        return false;
    }
    if (opts->addr->type == SOCKET_ADDRESS_INET) {
        error_setg(errp, "A vhost-user-blk export listens on a unix socket "
                         "(addr.type=unix or fd): its front-end passes file "
                         "descriptors");
        return false;
    }
    exp = g_new0(VhostBlkExport, 1);
    exp->listener =
        socket_listener_new(main_ctx(), opts->addr, export_accept, exp, errp);
    if (!exp->listener) {
        g_free(exp);
        return false;
    }
    exp->id = g_strdup(opts->id);
    exp->address = socket_address_to_string(opts->addr);
    exp->bs = bs;
    exp->writable = opts->writable;
    exp->num_queues = opts->num_queues;
    exp->blk_size = lbs;
    memcpy(exp->serial, opts->id,
           MIN(strlen(opts->id), sizeof(exp->serial))); /* zero padded */
    if (opts->n_ctxs) {
        exp->n_ctxs = opts->n_ctxs;
        exp->ctxs = g_new(AioContext *, opts->n_ctxs);
        for (unsigned i = 0; i < opts->n_ctxs; i++) {
            exp->ctxs[i] = opts->ctxs[i];
            aio_context_ref(exp->ctxs[i]);
        }
    }
    exp->refcnt = 1;
    bdrv_ref(bs);
    bdrv_add_aio_context_notifier(bs, &export_user_ops, exp);
    TAILQ_INSERT_TAIL(&exports, exp, next);
    return true;
}

bool vhost_user_blk_export_del(const char *id, bool hard, Error **errp)
{
    VhostBlkExport *exp;
    AioContext *ctx;

    assert_main_thread();
    exp = find_export(id);
    if (!exp) {
        error_setg(errp, "Export '%s' is not found", id);
        return false;
    }
    ctx = bdrv_get_aio_context(exp->bs);
    aio_context_acquire(ctx);
    if (exp->conn && !hard) {
        aio_context_release(ctx);
        error_setg(errp, "export '%s' still in use (a front-end is connected)",
                   id);
        return false;
    }
    if (exp->conn) {
        vhost_conn_close(exp->conn, "export deleted, disconnecting");
    }
    aio_context_release(ctx);
    TAILQ_REMOVE(&exports, exp, next);
    exp->deleted = true;
    /* No new front-end; the socket file goes, if it is still ours. */
    socket_listener_free(exp->listener);
    exp->listener = NULL;
    export_unref(exp);
    return true;
}

/* Main loop: adds up the requests each queue took in its own thread, per
 * context of the export's list. */
static void export_count_requests(VhostBlkExport *exp, uint64_t *reqs)
{
    AioContext *home = bdrv_get_aio_context(exp->bs);
    VhostConn *conn;

    aio_context_acquire(home);
    conn = exp->conn;
    if (conn && conn->phase == VHOST_CONN_RUNNING) {
        for (unsigned i = 0; i < conn->nqueues; i++) {
            VhostBlkQueue *q = &conn->queues[i];

            /* The main loop may hold a second context. */
            aio_context_acquire(q->ctx);
            reqs[i % exp->n_ctxs] += q->stats.in_own_thread;
            aio_context_release(q->ctx);
        }
    }
    aio_context_release(home);
}

void vhost_user_blk_export_foreach(VhostUserBlkExportFunc *fn, void *opaque)
{
    VhostBlkExport *exp;

    assert_main_thread();
    TAILQ_FOREACH(exp, &exports, next)
    {
        g_autofree uint64_t *reqs = g_new0(uint64_t, exp->n_ctxs + 1);
        VhostUserBlkExportInfo info = {
            .id = exp->id,
            .node_name = bdrv_get_node_name(exp->bs),
            .address = exp->address,
            .writable = exp->writable,
            .num_queues = exp->num_queues,
            .logical_block_size = exp->blk_size,
            .connected = exp->conn != NULL,
            .n_contexts = exp->n_ctxs,
            .context_requests = reqs,
        };

        if (exp->n_ctxs) {
            export_count_requests(exp, reqs);
        }
        fn(&info, opaque);
    }
}

unsigned vhost_user_blk_get_connection_count(void)
{
    assert_main_thread();
    return n_connections;
}

bool vhost_export_queue_stats(const char *id, unsigned index, AioContext **ctx,
                              VhostBlkQueueStats *stats)
{
    VhostBlkExport *exp;
    AioContext *home;
    bool found = false;

    assert_main_thread();
    exp = find_export(id);
    if (!exp) {
        return false;
    }
    home = bdrv_get_aio_context(exp->bs);
    aio_context_acquire(home);
    if (exp->conn && exp->conn->phase == VHOST_CONN_RUNNING &&
        index < exp->conn->nqueues) {
        VhostBlkQueue *q = &exp->conn->queues[index];

        /* The main loop may hold a second context. */
        aio_context_acquire(q->ctx);
        *ctx = q->ctx;
        *stats = q->stats;
        aio_context_release(q->ctx);
        found = true;
    }
    aio_context_release(home);
    return found;
}
