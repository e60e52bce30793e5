/*
 * driver=rbd: an image on a Ceph cluster, through librbd.
 *
 *   driver=rbd,pool=,image=[,namespace=][,snapshot=][,conf=][,user=]
 *              [,key-secret=][,server.N.host=,server.N.port=]
 *              [,auth-client-required.N=cephx|none][,cache.direct=]
 *              [,discard=unmap|ignore][,x-mount-timeout=]
 *              [,x-osd-op-timeout=][,x-mon-op-timeout=]
 *
 * qemu-storage-daemon's option names; the x- timeouts (seconds) set
 * librados's client_mount_timeout, rados_osd_op_timeout and
 * rados_mon_op_timeout on the node's cluster connection.
 *
 * Threads (docs/rbd.md has the long version):
 *  - Opening waits on the network: bdrv_open() parses the options in the
 *    main loop (rbd_drv_open), then rbd_drv_open_blocking() connects
 *    (rbd-conn.c: one rados_t per identical connection settings) and
 *    opens the image, on a threadlet when the node comes from
 *    bdrv_open_async().
 *  - Multiqueue: requests go to librbd's rbd_aio_* calls from the context
 *    that submitted them (any IOThread, several at once: librbd's calls on
 *    one rbd_image_t are thread-safe).  librbd completes them in its own
 *    threads, where rbd_finish_cb() only pushes the request on the
 *    CompletionQueue of the submitting context (one per context, shared by
 *    every rbd node, in context-local storage); that context takes them in
 *    batches and finishes them (block layer code never runs in librbd's
 *    threads).  Nothing per request depends on the node's home context,
 *    so a node that moves has nothing to hand over.
 *  - Block status calls rbd_diff_iterate2(), which blocks, on a threadlet
 *    of the submitting context; it uses the object map (whole objects, no
 *    listing) when the image has a valid fast-diff map.
 *  - What a request shares with other contexts is set at open and only
 *    read until close: the image handle and the discard setting.
 *  - Open, close and block_resize's rbd_resize (on a threadlet,
 *    truncate_blocks, the node drained) start in the main loop.
 *  - Closing flushes librbd's cache and may shut the connection down:
 *    the main loop hands both to a threadlet and goes on.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <rbd/librbd.h>

#include "block/block-int.h"
#include "block/completion-queue.h"
#include "block/rbd-conn.h"
#include "dataplane/main-loop.h"
#include "dataplane/secret.h"
#include "dataplane/threadlet.h"

/* Block status: most bytes described per call, with the object map (a
 * lookup per object in memory) and without it (librbd lists each object
 * on the OSDs, one round trip each). */
#define RBD_STATUS_MAX_MAP (INT64_C(1) << 34)
#define RBD_STATUS_MAX_LIST (INT64_C(256) << 20)
/* Returned by the diff callback to stop the iteration early. */
#define RBD_DIFF_STOP (-9000)

static const char *const auth_choices[] = {"cephx", "none", NULL};
static const char *const discard_choices[] = {"unmap", "ignore", NULL};

static const BlockOptDesc rbd_opts[] = {
    {"pool", BLOCK_OPT_STRING, NULL},
    {"namespace", BLOCK_OPT_STRING, NULL},
    {"image", BLOCK_OPT_STRING, NULL},
    {"snapshot", BLOCK_OPT_STRING, NULL},
    {"conf", BLOCK_OPT_STRING, NULL},
    {"user", BLOCK_OPT_STRING, NULL},
    {"key-secret", BLOCK_OPT_STRING, NULL},
    {"server.*.host", BLOCK_OPT_STRING, NULL},
    {"server.*.port", BLOCK_OPT_STRING, NULL},
    {"auth-client-required.*", BLOCK_OPT_STRING, auth_choices},
    {"cache.direct", BLOCK_OPT_BOOL, NULL},
    {"discard", BLOCK_OPT_STRING, discard_choices},
    {"x-mount-timeout", BLOCK_OPT_STRING, NULL},
    {"x-osd-op-timeout", BLOCK_OPT_STRING, NULL},
    {"x-mon-op-timeout", BLOCK_OPT_STRING, NULL},
    {NULL},
};

typedef struct RbdState {
    /* Options, read in rbd_drv_open(); the connection's are cleared (the
     * key wiped) once the connection is made. */
    RbdConnParams params;
    char *pool;
    char *ns;
    char *image_name;
    char *snapshot;
    bool discard_ignore;

    /* The open image: set by rbd_drv_open_blocking(), released on a
     * threadlet after rbd_drv_close().  Read-only in between, by every
     * context that submits requests. */
    RbdConn *conn;
    rados_ioctx_t io;
    rbd_image_t image;
} RbdState;

/* A context's way back from librbd's threads, shared by all rbd nodes. */
typedef struct RbdContextQueue {
    CompletionQueue cq;
    bool ready; /* false: no eventfd; completions go through aio_defer */
} RbdContextQueue;

/* One request in librbd's hands. */
typedef struct RbdReq {
    CompletionEntry entry; /* first: the queue hands us this pointer */
    BdrvRequest *req;
    /* The context the request runs and completes in (its submitter's),
     * holding a reference until librbd's thread is done with it, and the
     * queue that leads there (NULL: aio_defer). */
    AioContext *ctx;
    CompletionQueue *cq;
    AioDeferred defer; /* the way back when the context has no queue */
    char *bounce;      /* vectors longer than librbd takes (IOV_MAX) */
    ssize_t ret;       /* written by librbd's thread before the push */
} RbdReq;

static void rbd_complete_entry(CompletionEntry *e, void *opaque);

/* ---- completions -------------------------------------------------------- */

static void rbd_complete_deferred(AioDeferred *d)
{
    rbd_complete_entry((CompletionEntry *)container_of(d, RbdReq, defer), NULL);
}

/*
 * librbd's thread: record the result, hand the request over, nothing else.
 * The push (or aio_defer) orders the write of r->ret before the context
 * reads it.  The context may finish and free r as soon as it is pushed,
 * and the push still writes the queue's eventfd afterwards: the reference
 * taken at submission keeps the context, and so its queue, alive until
 * then (an IOThread deleted right after its last request completed).
 */
static void rbd_finish_cb(rbd_completion_t c, void *arg)
{
    RbdReq *r = arg;
    AioContext *ctx = r->ctx;

    r->ret = rbd_aio_get_return_value(c);
    rbd_aio_release(c);
    if (r->cq) {
        completion_queue_push(r->cq, &r->entry);
    } else {
        aio_defer(ctx, &r->defer, rbd_complete_deferred);
    }
    aio_context_unref(ctx);
}

/* librbd's errors, as the block layer's callers take them: a request that
 * timed out (rados_osd_op_timeout) is an I/O error. */
static int rbd_errno(ssize_t ret)
{
    if (ret >= 0) {
        return 0;
    }
    return ret == -ETIMEDOUT ? -EIO : (int)ret;
}

/* The request's context, from its CompletionQueue (or aio_defer). */
static void rbd_complete_entry(CompletionEntry *e, void *opaque)
{
    RbdReq *r = (RbdReq *)e;
    BdrvRequest *req = r->req;
    int ret = rbd_errno(r->ret);

    g_assert(!r->cq || r->ctx == r->cq->ctx);
    g_assert(r->ctx == bdrv_request_run_ctx(req));
    g_assert(aio_context_in_current_thread(r->ctx));
    if (req->type == BDRV_REQUEST_READ && r->ret >= 0) {
        if (r->bounce) {
            iov_from_buf(req->qiov, 0, r->bounce, MIN(r->ret, req->bytes));
        }
        if (r->ret < req->bytes) {
            /* Past the image's end (shrunk by someone else): zeroes. */
            iov_memset(req->qiov, r->ret, 0, req->bytes - r->ret);
        }
    }
    free(r->bounce);
    g_free(r);
    bdrv_request_complete(req, ret);
}

/* ---- one completion queue per context ------------------------------------
 */

/* In ctx's thread (or with ctx held), on the first rbd request there. */
static void *rbd_context_queue_create(AioContext *ctx)
{
    RbdContextQueue *q = g_new0(RbdContextQueue, 1);

    if (completion_queue_init(&q->cq, rbd_complete_entry, NULL) == 0) {
        completion_queue_attach(&q->cq, ctx);
        q->ready = true;
    }
    return q;
}

/* When ctx is freed: no request runs in it any more, and the reference
 * each request holds means no librbd thread is still pushing. */
static void rbd_context_queue_destroy(AioContext *ctx, void *value)
{
    RbdContextQueue *q = value;

    if (q->ready) {
        completion_queue_detach(&q->cq);
        completion_queue_cleanup(&q->cq);
    }
    g_free(q);
}

static AioContextLocalKey rbd_context_queue_key = {
    .create = rbd_context_queue_create,
    .destroy = rbd_context_queue_destroy,
};

/* The queue a request running in ctx completes through; NULL if ctx could
 * not get an eventfd (then aio_defer, one BH per batch, no polling). */
static CompletionQueue *rbd_queue_for(AioContext *ctx)
{
    RbdContextQueue *q = aio_context_get_local(ctx, &rbd_context_queue_key);

    return q->ready ? &q->cq : NULL;
}

uint64_t bdrv_rbd_context_completions(AioContext *ctx)
{
    RbdContextQueue *q = aio_context_get_local(ctx, &rbd_context_queue_key);

    return q->ready ? q->cq.completions : 0;
}

/* ---- requests ----------------------------------------------------------- */

static int rbd_start(RbdState *s, RbdReq *r, rbd_completion_t c)
{
    BdrvRequest *req = r->req;
    IOVector *q = req->qiov;

    switch (req->type) {
    case BDRV_REQUEST_READ:
    case BDRV_REQUEST_WRITE:
        if (q->niov > IOV_MAX) {
            /* librbd refuses more: one linear buffer instead. */
            r->bounce = g_try_malloc(req->bytes);
            if (!r->bounce) {
                return -ENOMEM;
            }
            if (req->type == BDRV_REQUEST_READ) {
                return rbd_aio_read(s->image, req->offset, req->bytes,
                                    r->bounce, c);
            }
            iov_to_buf(q, 0, r->bounce, req->bytes);
            return rbd_aio_write(s->image, req->offset, req->bytes, r->bounce,
                                 c);
        }
        if (req->type == BDRV_REQUEST_READ) {
            return rbd_aio_readv(s->image, q->iov, q->niov, req->offset, c);
        }
        return rbd_aio_writev(s->image, q->iov, q->niov, req->offset, c);
    case BDRV_REQUEST_FLUSH:
        return rbd_aio_flush(s->image, c);
    case BDRV_REQUEST_DISCARD:
        return rbd_aio_discard(s->image, req->offset, req->bytes, c);
    case BDRV_REQUEST_ZEROES:
        /* Without permission to unmap, the range stays allocated (thick
         * provisioning writes the zeroes: no fast zeroing then). */
        if (!(req->flags & BDRV_REQ_MAY_UNMAP) &&
            (req->flags & BDRV_REQ_NO_FALLBACK)) {
            return -ENOTSUP;
        }
        return rbd_aio_write_zeroes(s->image, req->offset, req->bytes, c,
                                    (req->flags & BDRV_REQ_MAY_UNMAP)
                                        ? 0
                                        : RBD_WRITE_ZEROES_FLAG_THICK_PROVISION,
                                    0);
    default:
        g_assert_not_reached();
    }
}

static void rbd_submit(BlockDriverState *bs, BdrvRequest *req)
{
    RbdState *s = bs->opaque;
    RbdReq *r = g_new0(RbdReq, 1);
    rbd_completion_t c;
    int ret;

    r->req = req;
    r->ctx = bdrv_request_run_ctx(req);
    r->cq = rbd_queue_for(r->ctx);
    ret = rbd_aio_create_completion(r, rbd_finish_cb, &c);
    if (ret < 0) {
        goto fail;
    }
    aio_context_ref(r->ctx); /* dropped by rbd_finish_cb */
    ret = rbd_start(s, r, c);
    if (ret < 0) {
        /* Refused before librbd took it: no callback will come. */
        rbd_aio_release(c);
        aio_context_unref(r->ctx);
        goto fail;
    }
    return;

fail:
    free(r->bounce);
    g_free(r);
    bdrv_request_complete_later(req, rbd_errno(ret));
}

static void rbd_pdiscard(BlockDriverState *bs, BdrvRequest *req)
{
    RbdState *s = bs->opaque;

    if (s->discard_ignore) {
        bdrv_request_complete_later(req, 0);
        return;
    }
    rbd_submit(bs, req);
}

/* ---- block status ---------------------------------------------------------
 */

typedef struct RbdStatus {
    BdrvRequest *req;
    rbd_image_t image;
    int64_t start;
    int64_t end;
    /* The answer: the first extent of [start, end). */
    int64_t pnum;
    unsigned status;
} RbdStatus;

/*
 * librbd's extents that hold data, in increasing order: the answer is the
 * hole before the first one, or the data extents that follow each other
 * from the start.  (With whole objects an extent may begin before start.)
 */
static int rbd_diff_cb(uint64_t offs, size_t len, int exists, void *arg)
{
    RbdStatus *st = arg;
    int64_t from = MAX((int64_t)offs, st->start);
    int64_t to = MIN((int64_t)(offs + len), st->end);

    if (!exists || from >= to) {
        return 0; /* a removed extent reads as a hole: not data */
    }
    if (st->pnum == 0) {
        if (from > st->start) {
            st->pnum = from - st->start;
            st->status = BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO;
            return RBD_DIFF_STOP;
        }
        st->status = 0;
        st->pnum = to - st->start;
        return 0;
    }
    if (from != st->start + st->pnum) {
        return RBD_DIFF_STOP; /* a hole after the data */
    }
    st->pnum = to - st->start;
    return 0;
}

/* A threadlet of the request's context. */
static int rbd_status_run(void *arg)
{
    RbdStatus *st = arg;
    uint64_t features = 0;
    uint64_t flags = 0;
    bool map;
    int ret;

    map = rbd_get_features(st->image, &features) == 0 &&
          (features & RBD_FEATURE_FAST_DIFF) &&
          rbd_get_flags(st->image, &flags) == 0 &&
          !(flags & RBD_FLAG_FAST_DIFF_INVALID);
    st->end = st->start + MIN(st->end - st->start,
                              map ? RBD_STATUS_MAX_MAP : RBD_STATUS_MAX_LIST);
    ret = rbd_diff_iterate2(st->image, NULL, st->start, st->end - st->start, 1,
                            map, rbd_diff_cb, st);
    if (ret < 0 && ret != RBD_DIFF_STOP) {
        return ret;
    }
    if (st->pnum == 0) {
        st->pnum = st->end - st->start;
        st->status = BDRV_BLOCK_HOLE | BDRV_BLOCK_ZERO;
    }
    return 0;
}

static void rbd_status_done(void *opaque, int ret)
{
    RbdStatus *st = opaque;
    BdrvRequest *req = st->req;

    req->pnum = st->pnum;
    req->status = st->status;
    g_free(st);
    bdrv_request_complete(req, rbd_errno(ret));
}

static void rbd_block_status(BlockDriverState *bs, BdrvRequest *req)
{
    RbdState *s = bs->opaque;
    RbdStatus *st = g_new0(RbdStatus, 1);

    st->req = req;
    st->image = s->image;
    st->start = req->offset;
    st->end = req->offset + req->bytes;
    threadlet_submit_aio(bdrv_request_run_ctx(req), rbd_status_run, st,
                         rbd_status_done, st);
}

/* ---- open ------------------------------------------------------------------
 */

/* A number of seconds, as librados takes it; NULL and *errp if not. */
static char *parse_seconds(GHashTable *opts, const char *key, Error **errp)
{
    const char *v = bdrv_opt_get(opts, key);
    guint64 n;

    if (!v) {
        return NULL;
    }
    if (!g_ascii_string_to_unsigned(v, 10, 1, 86400 * 365, &n, NULL)) {
        error_setg(errp,
                   "Parameter '%s' expects a number of seconds (1 or "
                   "more), not '%s'",
                   key, v);
        return NULL;
    }
    return g_strdup_printf("%" G_GUINT64_FORMAT, n);
}

/* server.N.host/port as librados's mon_host; NULL if none.  IPv6
 * addresses get brackets. */
static char *parse_servers(GHashTable *opts, Error **errp, bool *ok)
{
    GString *mon = g_string_new(NULL);
    int i;

    *ok = true;
    for (i = 0;; i++) {
        g_autofree char *hk = g_strdup_printf("server.%d.host", i);
        g_autofree char *pk = g_strdup_printf("server.%d.port", i);
        const char *host = bdrv_opt_get(opts, hk);
        const char *port = bdrv_opt_get(opts, pk);

        if (!host && !port) {
            break;
        }
        if (!host || !port) {
            error_setg(errp, "Parameter '%s' is missing", host ? pk : hk);
            *ok = false;
            break;
        }
        g_string_append_printf(mon, "%s%s%s%s:%s", mon->len ? "," : "",
                               strchr(host, ':') ? "[" : "", host,
                               strchr(host, ':') ? "]" : "", port);
    }
    if (!*ok || mon->len == 0) {
        g_string_free(mon, true);
        return NULL;
    }
    return g_string_free(mon, false);
}

static char *parse_auth(GHashTable *opts)
{
    GString *auth = g_string_new(NULL);
    int i;

    for (i = 0;; i++) {
        g_autofree char *k = g_strdup_printf("auth-client-required.%d", i);
        const char *v = bdrv_opt_get(opts, k);

        if (!v) {
            break;
        }
        g_string_append_printf(auth, "%s%s", auth->len ? ";" : "", v);
    }
    if (auth->len == 0) {
        g_string_free(auth, true);
        return NULL;
    }
    return g_string_free(auth, false);
}

static void rbd_free_options(RbdState *s)
{
    rbd_conn_params_clear(&s->params);
    g_free(s->pool);
    g_free(s->ns);
    g_free(s->image_name);
    g_free(s->snapshot);
}

/* Main loop, node's context acquired: the options.  Nothing here
 * waits. */
static int rbd_drv_open(BlockDriverState *bs, GHashTable *opts, Error **errp)
{
    RbdState *s = bs->opaque;
    const char *secret = bdrv_opt_get(opts, "key-secret");
    const char *discard = bdrv_opt_get(opts, "discard");
    Error *local_err = NULL;
    bool ok;

    s->pool = g_strdup(bdrv_opt_get(opts, "pool"));
    s->image_name = g_strdup(bdrv_opt_get(opts, "image"));
    s->ns = g_strdup(bdrv_opt_get(opts, "namespace"));
    s->snapshot = g_strdup(bdrv_opt_get(opts, "snapshot"));
    s->discard_ignore = !discard || !strcmp(discard, "ignore");
    if (!s->pool || !s->image_name) {
        error_setg(errp, "Parameter '%s' is required by driver 'rbd'",
                   s->pool ? "image" : "pool");
        goto fail;
    }
    if (s->snapshot && !bs->read_only) {
        if (!bdrv_opt_get_bool(opts, "auto-read-only", false)) {
            error_setg(errp,
                       "rbd snapshots are always read-only: snapshot '%s' "
                       "needs read-only=on",
                       s->snapshot);
            goto fail;
        }
        bs->read_only = true;
    }
    s->params.conf = g_strdup(bdrv_opt_get(opts, "conf"));
    s->params.user = g_strdup(bdrv_opt_get(opts, "user"));
    s->params.auth = parse_auth(opts);
    s->params.rbd_cache = !bdrv_opt_get_bool(opts, "cache.direct", false);
    s->params.mon_host = parse_servers(opts, errp, &ok);
    if (!ok) {
        goto fail;
    }
#define SECONDS(field, key)                                                    \
    s->params.field = parse_seconds(opts, key, &local_err);                    \
    if (local_err) {                                                           \
        error_propagate(errp, local_err);                                      \
        goto fail;                                                             \
    }
    SECONDS(mount_timeout, "x-mount-timeout");
    SECONDS(osd_op_timeout, "x-osd-op-timeout");
    SECONDS(mon_op_timeout, "x-mon-op-timeout");
#undef SECONDS
    if (secret) {
        s->params.key = secret_lookup_as_base64(secret, &local_err);
        if (!s->params.key) {
            error_propagate(errp, local_err);
            error_prepend(errp, "Parameter 'key-secret': ");
            goto fail;
        }
    }
    return 0;

fail:
    rbd_free_options(s);
    return -EINVAL;
}

/* "pool/namespace/image", for messages. */
static char *rbd_image_spec(RbdState *s)
{
    return g_strdup_printf("%s/%s%s%s", s->pool, s->ns ? s->ns : "",
                           s->ns ? "/" : "", s->image_name);
}

/* Opens the image in s->io; 0 or -errno with *errp naming what is
 * missing. */
static int rbd_open_image(BlockDriverState *bs, RbdState *s, Error **errp)
{
    g_autofree char *spec = rbd_image_spec(s);
    rbd_image_t probe;
    int ret;

    if (bs->read_only) {
        /* No exclusive lock (never a writer): read-only
         * nodes of one image may be open on many hosts. */
        ret = rbd_open_read_only(s->io, s->image_name, &s->image, s->snapshot);
    } else {
        ret = rbd_open(s->io, s->image_name, &s->image, NULL);
    }
    if (ret == 0) {
        return 0;
    }
    s->image = NULL;
    if (ret == -ENOENT && s->snapshot &&
        rbd_open_read_only(s->io, s->image_name, &probe, NULL) == 0) {
        rbd_close(probe);
        error_setg(errp, "Snapshot '%s' of image '%s' does not exist",
                   s->snapshot, spec);
    } else if (ret == -ENOENT) {
        error_setg(errp, "Image '%s' does not exist", spec);
    } else {
        error_setg(errp, "Cannot open image '%s': %s", spec, g_strerror(-ret));
    }
    return ret;
}

/* The wait: connect, open the pool and the image.  A threadlet (or the
 * main loop, for bdrv_open()); touches only s and bs->total_bytes. */
static int rbd_drv_open_blocking(BlockDriverState *bs, Error **errp)
{
    RbdState *s = bs->opaque;
    uint64_t size;
    int ret;

    s->conn = rbd_conn_get(&s->params, errp);
    rbd_conn_params_clear(&s->params);
    if (!s->conn) {
        return -EIO;
    }
    ret = rados_ioctx_create(rbd_conn_get_cluster(s->conn), s->pool, &s->io);
    if (ret < 0) {
        s->io = NULL;
        if (ret == -ENOENT) {
            error_setg(errp, "Pool '%s' does not exist (cluster at %s)",
                       s->pool, rbd_conn_describe(s->conn));
        } else {
            error_setg(errp, "Cannot open pool '%s': %s", s->pool,
                       g_strerror(-ret));
        }
        goto fail;
    }
    if (s->ns) {
        bool exists = false;

        ret = rbd_namespace_exists(s->io, s->ns, &exists);
        if (ret < 0 || !exists) {
            error_setg(errp, "Namespace '%s' does not exist in pool '%s'%s%s",
                       s->ns, s->pool, ret < 0 ? ": " : "",
                       ret < 0 ? g_strerror(-ret) : "");
            ret = ret < 0 ? ret : -ENOENT;
            goto fail;
        }
        rados_ioctx_set_namespace(s->io, s->ns);
    }
    ret = rbd_open_image(bs, s, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = rbd_get_size(s->image, &size);
    if (ret < 0) {
        error_setg(errp, "Cannot get the size of image '%s': %s", s->image_name,
                   g_strerror(-ret));
        goto fail;
    }
    bs->total_bytes = (int64_t)size;
    return 0;

fail:
    if (s->image) {
        rbd_close(s->image);
        s->image = NULL;
    }
    if (s->io) {
        rados_ioctx_destroy(s->io);
        s->io = NULL;
    }
    rbd_conn_put(s->conn);
    s->conn = NULL;
    return ret;
}

/* ---- close, resize ---------------------------------------------------------
 */

typedef struct RbdCloseJob {
    RbdConn *conn;
    rados_ioctx_t io;
    rbd_image_t image;
} RbdCloseJob;

/* A threadlet: rbd_close flushes librbd's cache to the OSDs, and the last
 * user of a connection shuts it down (joining librados's threads). */
static int rbd_close_run(void *arg)
{
    RbdCloseJob *job = arg;

    if (job->image) {
        rbd_close(job->image);
    }
    if (job->io) {
        rados_ioctx_destroy(job->io);
    }
    if (job->conn) {
        rbd_conn_put(job->conn);
    }
    return 0;
}

static void rbd_close_done(void *opaque, int ret)
{
    g_free(opaque);
    bdrv_background_end();
}

static void rbd_drv_close(BlockDriverState *bs)
{
    RbdState *s = bs->opaque;
    RbdCloseJob *job;

    rbd_free_options(s);
    if (!s->conn) {
        return; /* the open never got as far */
    }
    job = g_new0(RbdCloseJob, 1);
    job->conn = s->conn;
    job->io = s->io;
    job->image = s->image;
    bdrv_background_begin();
    threadlet_submit_aio(main_loop_get_aio_context(), rbd_close_run, job,
                         rbd_close_done, job);
}

/* block_resize: a metadata update of the image's header (librbd deletes
 * the objects past a new, smaller end).  On a threadlet for
 * bdrv_truncate_async() (truncate_blocks), the node drained; in the main
 * loop for bdrv_truncate(). */
static int rbd_truncate(BlockDriverState *bs, int64_t size, Error **errp)
{
    RbdState *s = bs->opaque;
    int ret = rbd_resize(s->image, (uint64_t)size);

    if (ret < 0) {
        g_autofree char *spec = rbd_image_spec(s);

        error_setg(errp, "Cannot resize image '%s': %s", spec,
                   g_strerror(-ret));
    }
    return ret;
}

const BlockDriver bdrv_rbd = {
    .format_name = "rbd",
    .instance_size = sizeof(RbdState),
    .multiqueue = true,
    .options = rbd_opts,
    .supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK,
    .bdrv_open = rbd_drv_open,
    .bdrv_open_blocking = rbd_drv_open_blocking,
    .bdrv_close = rbd_drv_close,
    .bdrv_aio_preadv = rbd_submit,
    .bdrv_aio_pwritev = rbd_submit,
    .bdrv_aio_flush = rbd_submit,
    .bdrv_aio_pdiscard = rbd_pdiscard,
    .bdrv_aio_pwrite_zeroes = rbd_submit,
    .bdrv_aio_block_status = rbd_block_status,
    .bdrv_truncate = rbd_truncate,
    .supports_shrink = true,
    .truncate_blocks = true,
};
