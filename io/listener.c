/*
 * Socket listeners: listening on a typed address, accepting in an
 * AioContext, backing off at the fd limit.  See include/dataplane/socket.h
 * for the rules; unix-socket.c has the unix file's.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataplane/socket.h"
#include "io/unix-socket.h"
#include "util/ratelimit.h"

/* One listening socket; an inet address may need several. */
typedef struct ListenFd {
    SocketListener *l;
    int fd;
} ListenFd;

struct SocketListener {
    AioContext *ctx;
    SocketAddress *addr;
    SocketAcceptFunc *cb;
    void *opaque;
    ListenFd *fds;
    unsigned n_fds;
    int port;            /* inet; -1 otherwise */
    UnixSocketFile file; /* unix: the file we created */
    AioTimer *retry;     /* re-enables accepting after a backoff */
    unsigned backoffs;   /* times accept() ran out of fds */
    bool paused;         /* socket_listener_set_accepting(false) */
    bool *freed;         /* set by free while a callback runs */
};

/* Shared by every listener: one flood, one stream of (few) lines. */
static LogRateLimit accept_log = LOG_RATELIMIT_INIT;

static void listener_accept(void *opaque);

static void set_watching(SocketListener *l, bool on)
{
    for (unsigned i = 0; i < l->n_fds; i++) {
        aio_set_fd_handler(l->ctx, l->fds[i].fd, on ? listener_accept : NULL,
                           NULL, NULL, on ? &l->fds[i] : NULL);
    }
}

static void listener_retry(void *opaque)
{
    SocketListener *l = opaque;

    if (!l->paused) {
        set_watching(l, true);
    }
}

/*
 * Out of file descriptors (or memory), accept() fails while the listening
 * socket stays readable: watching it would spin.  Stop for a while; the
 * connections wait in the backlog meanwhile.
 */
static void back_off(SocketListener *l, int err)
{
    g_autofree char *where = socket_address_to_string(l->addr);

    l->backoffs++;
    set_watching(l, false);
    aio_timer_mod(l->retry,
                  aio_clock_get_ns(AIO_CLOCK_REALTIME) / AIO_SCALE_MS +
                      SOCKET_ACCEPT_RETRY_MS);
    error_report_ratelimited(&accept_log, "accept on %s: %s; retrying in %d ms",
                             where, g_strerror(err), SOCKET_ACCEPT_RETRY_MS);
}

static void listener_accept(void *opaque)
{
    ListenFd *lfd = opaque;
    SocketListener *l = lfd->l;

    for (int i = 0; i < SOCKET_ACCEPT_BURST; i++) {
        bool freed = false;
        int fd = accept4(lfd->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            int err = errno;

            if (err == EINTR || err == ECONNABORTED) {
                continue; /* that one is gone; there may be more */
            }
            if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
                err == ENOMEM) {
                back_off(l, err);
            } else if (err != EAGAIN && err != EWOULDBLOCK) {
                g_autofree char *where = socket_address_to_string(l->addr);

                error_report_ratelimited(&accept_log, "accept on %s: %s", where,
                                         g_strerror(err));
            }
            return;
        }
        l->freed = &freed;
        l->cb(l, fd, l->opaque);
        if (freed) {
            return;
        }
        l->freed = NULL;
        if (l->paused) {
            return; /* the rest wait in the backlog */
        }
    }
}

/* ---- binding ----------------------------------------------------------- */

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
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return -1;
}

static void set_port(struct sockaddr *sa, int port)
{
    if (sa->sa_family == AF_INET) {
        ((struct sockaddr_in *)sa)->sin_port = htons(port);
    } else if (sa->sa_family == AF_INET6) {
        ((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
    }
}

/* Listens on every address host:port resolves to, on one port. */
static bool listen_inet(SocketListener *l, GArray *fds, Error **errp)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_ADDRCONFIG,
    };
    const char *host = l->addr->host;
    struct addrinfo *res, *ai;
    int err, one = 1, first_errno = 0;

    err = getaddrinfo(host && *host ? host : NULL, l->addr->port, &hints, &res);
    if (err != 0) {
        g_autofree char *where = socket_address_to_string(l->addr);

        error_setg(errp, "Cannot resolve '%s': %s", where, gai_strerror(err));
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
            /* One socket per family, so that both can bind the port. */
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        }
        if (l->port > 0) {
            /* Port 0: every family listens on the port the first got. */
            set_port(ai->ai_addr, l->port);
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
            listen(fd, SOMAXCONN) < 0) {
            first_errno = first_errno ? first_errno : errno;
            close(fd);
            continue;
        }
        l->port = sockaddr_port(fd);
        g_array_append_val(fds, fd);
    }
    freeaddrinfo(res);
    if (fds->len == 0) {
        g_autofree char *where = socket_address_to_string(l->addr);

        error_setg_errno(errp, first_errno ? first_errno : EADDRNOTAVAIL,
                         "Cannot listen on '%s'", where);
        return false;
    }
    return true;
}

/* An inherited fd: it must be a listening stream socket. */
static bool listen_fd(SocketListener *l, GArray *fds, Error **errp)
{
    int fd = l->addr->fd;
    int accepting = 0, type = 0;
    socklen_t len = sizeof(accepting);
    struct stat st;

    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        error_setg(errp, "File descriptor %d is not a socket", fd);
        return false;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) < 0 ||
        !accepting) {
        error_setg(errp, "Socket %d is not listening", fd);
        return false;
    }
    len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        type != SOCK_STREAM) {
        error_setg(errp, "Socket %d is not a stream socket", fd);
        return false;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        error_setg_errno(errp, errno, "Cannot set up socket %d", fd);
        return false;
    }
    l->port = sockaddr_port(fd);
    g_array_append_val(fds, fd);
    return true;
}

SocketListener *socket_listener_new(AioContext *ctx, const SocketAddress *addr,
                                    SocketAcceptFunc *cb, void *opaque,
                                    Error **errp)
{
    SocketListener *l = g_new0(SocketListener, 1);
    g_autoptr(GArray) fds = g_array_new(FALSE, FALSE, sizeof(int));
    bool ok = false;
    int fd;

    l->ctx = ctx;
    l->addr = socket_address_copy(addr);
    l->cb = cb;
    l->opaque = opaque;
    l->port = -1;
    switch (addr->type) {
    case SOCKET_ADDRESS_UNIX:
        fd = unix_socket_listen(
            addr->path, addr->mode >= 0 ? addr->mode : SOCKET_DEFAULT_MODE,
            &l->file, errp);
        if (fd >= 0) {
            g_array_append_val(fds, fd);
            ok = true;
        }
        break;
    case SOCKET_ADDRESS_INET:
        ok = listen_inet(l, fds, errp);
        break;
    case SOCKET_ADDRESS_FD:
        ok = listen_fd(l, fds, errp);
        break;
    }
    if (!ok) {
        socket_address_free(l->addr);
        g_free(l);
        return NULL;
    }
    l->n_fds = fds->len;
    l->fds = g_new0(ListenFd, l->n_fds);
    for (unsigned i = 0; i < l->n_fds; i++) {
        l->fds[i].l = l;
        l->fds[i].fd = g_array_index(fds, int, i);
    }
    l->retry =
        aio_timer_new(ctx, AIO_CLOCK_REALTIME, AIO_SCALE_MS, listener_retry, l);
    set_watching(l, true);
    return l;
}

void socket_listener_free(SocketListener *l)
{
    if (!l) {
        return;
    }
    if (l->freed) {
        *l->freed = true;
    }
    aio_timer_free(l->retry);
    set_watching(l, false);
    for (unsigned i = 0; i < l->n_fds; i++) {
        close(l->fds[i].fd);
    }
    unix_socket_file_remove(&l->file);
    socket_address_free(l->addr);
    g_free(l->fds);
    g_free(l);
}

void socket_listener_set_accepting(SocketListener *l, bool on)
{
    if (l->paused == !on) {
        return;
    }
    l->paused = !on;
    /* While backing off, the retry timer resumes (if still wanted). */
    if (!aio_timer_pending(l->retry)) {
        set_watching(l, on);
    }
}

const SocketAddress *socket_listener_get_address(SocketListener *l)
{
    return l->addr;
}

int socket_listener_get_port(SocketListener *l)
{
    return l->port;
}

unsigned socket_listener_get_backoff_count(SocketListener *l)
{
    return l->backoffs;
}
