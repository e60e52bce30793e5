/*
 * A vhost-user front-end connection: reading messages and the file
 * descriptors that come with them, replying, deferring a message until the
 * queues it affects are idle, and closing.
 *
 * Framing: the 12-byte header is read first (the file descriptors of a
 * message arrive with its first byte), then exactly the payload it
 * announces, so that one read never takes bytes of the next message.  A
 * header the codec refuses, more descriptors than a message may carry, a
 * truncated control message or EOF close the connection.  At most
 * VHOST_CONN_MSG_BUDGET messages are handled per wake-up.
 *
 * Replies are small; if the socket does not take one whole, reading stops
 * until it is sent (the front-end must read its replies to go on).
 *
 * Deferral: a message that changes what requests in flight point into
 * (the memory table, a ring, the inflight area) or that stops a ring waits
 * until no request is in flight on the queues concerned; meanwhile those
 * queues take nothing new and the socket is not read.  The last completion
 * schedules resume_bh, which handles the message and reads on.
 *
 * Closing: the socket handler and every kick handler go, the rings stop;
 * requests in flight complete into the used rings (the memory is still
 * mapped); when none is left the memory is unmapped, every fd closed and
 * the connection handed to the main loop (vhost_export_conn_closed).
 *
 * Queues on IOThreads of their own are handed over and recalled instead
 * (vhost-internal.h): a close recalls them and finishes once all are back.
 *
 * Everything here runs in conn->ctx, except vhost_conn_wake_locked()
 * (any thread, conn->hand_lock held).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vhost/vhost-internal.h"

static void conn_read(void *opaque);
static void conn_write(void *opaque);
static void conn_update_handlers(VhostConn *conn);

void vhost_conn_log(VhostConn *conn, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    error_report("vhost-user-blk export '%s': front-end %u: %s", conn->exp->id,
                 conn->id, msg);
}

static void close_msg_fds(VhostConn *conn)
{
    unsigned i;

    for (i = 0; i < conn->nfds; i++) {
        if (conn->fds[i] >= 0) {
            close(conn->fds[i]);
        }
    }
    conn->nfds = 0;
}

/* ---- replies ------------------------------------------------------------ */

/* Sends what is queued; false if the connection died. */
static bool conn_flush(VhostConn *conn)
{
    while (conn->wsent < conn->wlen) {
        struct iovec iov = {
            .iov_base = conn->wbuf + conn->wsent,
            .iov_len = conn->wlen - conn->wsent,
        };
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } control;
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n;

        if (conn->wfd >= 0) {
            struct cmsghdr *cmsg;

            memset(&control, 0, sizeof(control));
            msg.msg_control = control.buf;
            msg.msg_controllen = sizeof(control.buf);
            cmsg = CMSG_FIRSTHDR(&msg);
            cmsg->cmsg_level = SOL_SOCKET;
            cmsg->cmsg_type = SCM_RIGHTS;
            cmsg->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cmsg), &conn->wfd, sizeof(int));
        }
        n = sendmsg(conn->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                break;
            }
            vhost_conn_close(conn, NULL);
            return false;
        }
        /* The fd went with the first byte. */
        conn->wfd = -1;
        conn->wsent += (size_t)n;
    }
    if (conn->wsent == conn->wlen) {
        conn->wsent = conn->wlen = 0;
    }
    return true;
}

void vhost_conn_reply(VhostConn *conn, const uint8_t *buf, size_t len, int fd)
{
    g_assert(conn->wlen == 0 && len <= sizeof(conn->wbuf));
    memcpy(conn->wbuf, buf, len);
    conn->wlen = len;
    conn->wsent = 0;
    conn->wfd = fd;
    conn_flush(conn);
}

/* ---- reading ------------------------------------------------------------ */

/*
 * Reads into rbuf up to want bytes in all, keeping the fds that come
 * along.  Returns 1 when rbuf holds want bytes, 0 to wait for more, -1
 * after closing the connection.
 */
static int conn_recv(VhostConn *conn, size_t want)
{
    while (conn->rlen < want) {
        struct iovec iov = {
            .iov_base = conn->rbuf + conn->rlen,
            .iov_len = want - conn->rlen,
        };
        union {
            char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
            struct cmsghdr align;
        } control;
        struct msghdr msg = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = control.buf,
            .msg_controllen = sizeof(control.buf),
        };
        struct cmsghdr *cmsg;
        bool too_many = false;
        ssize_t n;

        n = recvmsg(conn->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            return 0;
        }
        /* Keep every fd that arrived, even on the error paths below, so
         * that close_msg_fds() closes them. */
        for (cmsg = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; cmsg;
             cmsg = CMSG_NXTHDR(&msg, cmsg)) {
            size_t k, i;

            if (cmsg->cmsg_level != SOL_SOCKET ||
                cmsg->cmsg_type != SCM_RIGHTS) {
                continue;
            }
            k = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (i = 0; i < k; i++) {
                int fd;

                memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
                if (conn->nfds < VHOST_USER_MAX_FDS) {
                    conn->fds[conn->nfds++] = fd;
                } else {
                    close(fd);
                    too_many = true;
                }
            }
        }
        if (n == 0) {
            vhost_conn_close(conn, NULL); /* EOF: the front-end went away */
            return -1;
        }
        if (n < 0) {
            vhost_conn_close(conn, g_strerror(errno));
            return -1;
        }
        if (too_many || (msg.msg_flags & MSG_CTRUNC)) {
            vhost_conn_close(conn, "too many file descriptors with one "
                                   "message");
            return -1;
        }
        conn->rlen += (size_t)n;
    }
    return 1;
}

/* A whole message is in rbuf: check and handle it.  False if it waits. */
static bool conn_dispatch(VhostConn *conn)
{
    const char *why;
    const char *err = NULL;
    bool need_reply;

    why = vhost_user_check_message(&conn->hdr, conn->rbuf + VHOST_USER_HDR_SIZE,
                                   conn->nfds, conn->protocol_features);
    if (why) {
        char msg[160];

        snprintf(msg, sizeof(msg), "%s (request %u, %s): %s",
                 vhost_user_request_name(conn->hdr.request), conn->hdr.request,
                 "closing the connection", why);
        vhost_conn_close(conn, msg);
        return true;
    }
    if (!vhost_msg_handle(conn, &err)) {
        conn->deferred = true;
        return false;
    }
    conn->deferred = false;
    close_msg_fds(conn);
    need_reply =
        (conn->hdr.flags & VHOST_USER_NEED_REPLY_MASK) &&
        (conn->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK)) &&
        !vhost_user_request_has_reply(conn->hdr.request);
    if (need_reply && !conn->dead) {
        uint8_t buf[VHOST_USER_HDR_SIZE + 8];
        size_t len =
            vhost_user_build_reply_u64(buf, conn->hdr.request, err ? 1 : 0);

        if (err) {
            vhost_conn_log(conn, "%s failed: %s",
                           vhost_user_request_name(conn->hdr.request), err);
        }
        vhost_conn_reply(conn, buf, len, -1);
    } else if (err && !conn->dead) {
        char msg[200];

        /* Nobody asked for a reply: the front-end would carry on as if it
         * had worked.  Stop here instead. */
        snprintf(msg, sizeof(msg), "%s failed, closing the connection: %s",
                 vhost_user_request_name(conn->hdr.request), err);
        vhost_conn_close(conn, msg);
    }
    conn->rlen = 0;
    return true;
}

/* Reads and handles messages while there are some and nothing blocks. */
static void conn_process(VhostConn *conn)
{
    int budget = VHOST_CONN_MSG_BUDGET;

    while (budget-- > 0 && !conn->dead && !conn->deferred && conn->wlen == 0) {
        const char *why;
        int r;

        r = conn_recv(conn, VHOST_USER_HDR_SIZE);
        if (r <= 0) {
            break;
        }
        if (conn->rlen == VHOST_USER_HDR_SIZE) {
            why = vhost_user_parse_header(conn->rbuf, conn->rlen, &conn->hdr);
            if (why) {
                vhost_conn_close(conn, why);
                break;
            }
        }
        r = conn_recv(conn, VHOST_USER_HDR_SIZE + conn->hdr.size);
        if (r <= 0) {
            break;
        }
        conn_dispatch(conn);
    }
    if (budget < 0 && !conn->dead && !conn->deferred) {
        /* More may be buffered: come back after others had their turn. */
        aio_bh_schedule(conn->resume_bh);
    }
    conn_update_handlers(conn);
}

static void conn_read(void *opaque)
{
    VhostConn *conn = opaque;

    conn_process(conn);
    vhost_conn_maybe_finish(conn);
}

static void conn_write(void *opaque)
{
    VhostConn *conn = opaque;

    if (conn_flush(conn)) {
        conn_process(conn);
    }
    vhost_conn_maybe_finish(conn);
}

static void conn_update_handlers(VhostConn *conn)
{
    bool want_read, want_write;

    if (conn->phase != VHOST_CONN_RUNNING) {
        return;
    }
    want_write = !conn->dead && conn->wlen > 0;
    want_read = !conn->dead && !conn->deferred && !want_write;
    if (want_read == conn->read_enabled && want_write == conn->write_enabled) {
        return;
    }
    conn->read_enabled = want_read;
    conn->write_enabled = want_write;
    aio_set_fd_handler(conn->ctx, conn->fd, want_read ? conn_read : NULL,
                       want_write ? conn_write : NULL, NULL, conn);
}

/* A deferred message may be able to proceed; or the connection finish. */
static void resume_bh_cb(void *opaque)
{
    VhostConn *conn = opaque;

    if (!conn->dead && conn->exp->n_ctxs && vhost_mem_truncated(&conn->mem)) {
        /* A queue in another context found it (queue_check_memory). */
        vhost_conn_close(conn, "the guest memory file was truncated under "
                               "the mapping, closing");
    }
    if (!conn->dead && conn->deferred) {
        conn_dispatch(conn);
    }
    if (!conn->dead && !conn->deferred && conn->wlen == 0) {
        conn_process(conn);
    }
    conn_update_handlers(conn);
    vhost_conn_maybe_finish(conn);
}

void vhost_conn_queue_idle(VhostConn *conn)
{
    aio_bh_schedule(conn->resume_bh);
}

void vhost_conn_wake_locked(VhostConn *conn)
{
    /* NULL while the node moves: the attach schedules the new one. */
    if (conn->resume_bh) {
        aio_bh_schedule(conn->resume_bh);
    }
}

/* ---- life cycle --------------------------------------------------------- */

VhostConn *vhost_conn_new(VhostBlkExport *exp, int fd, unsigned id,
                          AioContext *ctx)
{
    VhostConn *conn = g_new0(VhostConn, 1);
    unsigned i;

    conn->exp = exp;
    conn->fd = fd;
    conn->id = id;
    conn->ctx = ctx;
    conn->phase = VHOST_CONN_RUNNING;
    conn->wfd = -1;
    conn->backend_fd = -1;
    conn->inflight_fd = -1;
    conn->quiesced = exp->quiesce_depth > 0;
    dp_mutex_init(&conn->hand_lock);
    conn->nqueues = exp->num_queues;
    conn->queues = g_new0(VhostBlkQueue, conn->nqueues);
    for (i = 0; i < conn->nqueues; i++) {
        vhost_queue_init(&conn->queues[i], conn, i);
    }
    conn->resume_bh = aio_bh_new(ctx, resume_bh_cb, conn);
    conn_update_handlers(conn);
    return conn;
}

void vhost_conn_close(VhostConn *conn, const char *why)
{
    unsigned i;

    if (conn->dead) {
        return;
    }
    if (why) {
        vhost_conn_log(conn, "%s", why);
    }
    conn->dead = true;
    for (i = 0; i < conn->nqueues; i++) {
        vhost_queue_stop(&conn->queues[i]);
    }
    close_msg_fds(conn);
    conn->deferred = false;
    conn->wlen = conn->wsent = 0;
    conn->wfd = -1;
    conn_update_handlers(conn);
    /* The last completion (or this) finishes the close. */
    aio_bh_schedule(conn->resume_bh);
}

void vhost_conn_inflight_free(VhostConn *conn)
{
    if (conn->inflight_map) {
        munmap(conn->inflight_map, conn->inflight_map_len);
    }
    if (conn->inflight_fd >= 0) {
        close(conn->inflight_fd);
    }
    conn->inflight_map = NULL;
    conn->inflight_base = NULL;
    conn->inflight_map_len = 0;
    conn->inflight_fd = -1;
    conn->inflight_queues = 0;
    conn->inflight_queue_size = 0;
}

VhostInflightRegion *vhost_conn_inflight_region(VhostConn *conn, unsigned index)
{
    if (!conn->inflight_base || index >= conn->inflight_queues) {
        return NULL;
    }
    if (conn->queues[index].num != conn->inflight_queue_size) {
        vhost_conn_log(conn,
                       "queue %u: size %u differs from the inflight "
                       "area's %u: requests are not tracked",
                       index, conn->queues[index].num,
                       conn->inflight_queue_size);
        return NULL;
    }
    return (VhostInflightRegion *)(conn->inflight_base +
                                   index * vhost_inflight_region_size(
                                               conn->inflight_queue_size));
}

void vhost_conn_maybe_finish(VhostConn *conn)
{
    unsigned i;

    if (conn->phase != VHOST_CONN_RUNNING || !conn->dead) {
        return;
    }
    for (i = 0; i < conn->nqueues; i++) {
        VhostBlkQueue *q = &conn->queues[i];

        /* Its completion (or its context giving it back) schedules
         * resume_bh. */
        if (q->own_ctx ? !vhost_queue_recall(q) : q->in_flight > 0) {
            return;
        }
    }
    conn->phase = VHOST_CONN_CLOSING;
    aio_set_fd_handler(conn->ctx, conn->fd, NULL, NULL, NULL, NULL);
    conn->read_enabled = conn->write_enabled = false;
    for (i = 0; i < conn->nqueues; i++) {
        vhost_queue_reset(&conn->queues[i]);
    }
    g_free(conn->queues);
    conn->queues = NULL;
    conn->nqueues = 0;
    vhost_mem_clear(&conn->mem);
    vhost_conn_inflight_free(conn);
    if (conn->backend_fd >= 0) {
        close(conn->backend_fd);
        conn->backend_fd = -1;
    }
    /* Every queue is back: no other context takes the lock again. */
    dp_mutex_lock(&conn->hand_lock);
    aio_bh_delete(conn->resume_bh);
    conn->resume_bh = NULL;
    dp_mutex_unlock(&conn->hand_lock);
    dp_mutex_destroy(&conn->hand_lock);
    close(conn->fd);
    conn->fd = -1;
    conn->phase = VHOST_CONN_RELEASED;
    vhost_export_conn_closed(conn);
}

/* ---- hooks -------------------------------------------------------------- */

void vhost_conn_quiesce(VhostConn *conn)
{
    unsigned i;

    conn->quiesced = true;
    for (i = 0; i < conn->nqueues; i++) {
        if (conn->queues[i].own_ctx) {
            vhost_queue_quiesce(&conn->queues[i], true);
        }
    }
}

void vhost_conn_resume(VhostConn *conn)
{
    unsigned i;

    conn->quiesced = false;
    if (conn->phase != VHOST_CONN_RUNNING) {
        return;
    }
    for (i = 0; i < conn->nqueues; i++) {
        if (conn->queues[i].own_ctx) {
            vhost_queue_quiesce(&conn->queues[i], false);
        } else {
            vhost_queue_kick_soon(&conn->queues[i]);
        }
    }
}

void vhost_conn_config_changed(VhostConn *conn)
{
    uint8_t buf[VHOST_USER_HDR_SIZE];
    size_t len;
    ssize_t n;

    if (conn->phase != VHOST_CONN_RUNNING || conn->dead) {
        return;
    }
    if (conn->backend_fd < 0 ||
        !(conn->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_CONFIG))) {
        vhost_conn_log(conn, "the disk's size changed, but the front-end set "
                             "up no channel to be told on");
        return;
    }
    /* No reply asked for: nothing here waits, nothing reads that socket.
     * The front-end answers by asking GET_CONFIG on the main socket. */
    len = vhost_user_build_backend_request(
        buf, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, false);
    do {
        n = send(conn->backend_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)len) {
        vhost_conn_log(conn, "cannot tell the front-end the size changed: %s",
                       n < 0 ? g_strerror(errno) : "short write");
    }
}

void vhost_conn_detach(VhostConn *conn)
{
    unsigned i;

    if (conn->phase != VHOST_CONN_RUNNING) {
        return;
    }
    aio_set_fd_handler(conn->ctx, conn->fd, NULL, NULL, NULL, NULL);
    conn->read_enabled = conn->write_enabled = false;
    for (i = 0; i < conn->nqueues; i++) {
        /* Queues of an iothread list stay where the list put them. */
        if (!conn->queues[i].own_ctx) {
            vhost_queue_detach(&conn->queues[i]);
        }
    }
    dp_mutex_lock(&conn->hand_lock);
    aio_bh_delete(conn->resume_bh);
    conn->resume_bh = NULL;
    dp_mutex_unlock(&conn->hand_lock);
}

void vhost_conn_attach(VhostConn *conn, AioContext *new_ctx)
{
    unsigned i;

    if (conn->phase != VHOST_CONN_RUNNING) {
        return;
    }
    conn->ctx = new_ctx;
    dp_mutex_lock(&conn->hand_lock);
    conn->resume_bh = aio_bh_new(new_ctx, resume_bh_cb, conn);
    dp_mutex_unlock(&conn->hand_lock);
    for (i = 0; i < conn->nqueues; i++) {
        if (!conn->queues[i].own_ctx) {
            vhost_queue_attach(&conn->queues[i], new_ctx);
        }
    }
    conn_update_handlers(conn);
    /* A deferred message, a close or buffered messages pick up here. */
    aio_bh_schedule(conn->resume_bh);
}
