/*
 * The QMP monitor: listening socket, client connections, framing, greeting,
 * negotiation state and events.  Commands are run by qmp-dispatch.c.
 *
 * Everything here runs in the monitor's AioContext thread; the lists below
 * are touched only there, so they need no lock.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "dataplane/socket.h"
#include "daemon-version.h"
#include "monitor.h"
#include "qmp-stream.h"

/* A client that leaves this much output unread is dropped: it is not
 * reading, and the daemon must not grow without bound on its account. */
#define MONITOR_MAX_OUTPUT (16 * 1024 * 1024)
/* Reads per wake-up, so that one chatty client cannot starve the loop. */
#define MONITOR_READS_PER_WAKEUP 4

typedef struct MonitorClient MonitorClient;

struct MonitorClient {
    Monitor *mon;
    int fd;
    QmpStream stream;
    GByteArray *out; /* queued output not yet written */
    bool negotiated;
    bool dead;       /* to be closed once the current callback returns */
    bool want_write; /* the io_write handler is installed */
    bool reading;    /* the io_read handler is installed */
    bool busy;       /* inside its own read handler: not to be freed */
    LIST_ENTRY(MonitorClient) link;
};

struct Monitor {
    AioContext *ctx;
    SocketListener *listener; /* NULL once closed */
    bool quiesced;            /* no longer reads requests (shutting down) */
    const QmpCommand *table;
    LIST_HEAD(, MonitorClient) clients;
    LIST_ENTRY(Monitor) link;
};

/* Every live monitor, for events. */
static LIST_HEAD(, Monitor) monitors = LIST_HEAD_INITIALIZER(monitors);

static void client_update_handlers(MonitorClient *c);

/* ---- output ------------------------------------------------------------- */

/* Writes as much queued output as the socket takes; marks the client dead
 * on a write error. */
static void client_flush(MonitorClient *c)
{
    while (c->out->len > 0) {
        ssize_t n =
            send(c->fd, c->out->data, c->out->len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                c->dead = true;
            }
            break;
        }
        g_byte_array_remove_range(c->out, 0, n);
    }
}

static void client_send(MonitorClient *c, json_t *msg)
{
    char *text;

    if (c->dead) {
        return;
    }
    text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    g_byte_array_append(c->out, (const guint8 *)text, strlen(text));
    /* QEMU's monitor ends every line with CR LF. */
    g_byte_array_append(c->out, (const guint8 *)"\r\n", 2);
    free(text);
    client_flush(c);
    if (c->out->len > MONITOR_MAX_OUTPUT) {
        c->dead = true;
    }
}

/* ---- connection life ---------------------------------------------------- */

static void client_close(MonitorClient *c)
{
    aio_set_fd_handler(c->mon->ctx, c->fd, NULL, NULL, NULL, NULL);
    LIST_REMOVE(c, link);
    close(c->fd);
    qmp_stream_destroy(&c->stream);
    g_byte_array_free(c->out, TRUE);
    g_free(c);
}

static void client_handle_message(void *opaque, const char *text, size_t len,
                                  const char *why)
{
    MonitorClient *c = opaque;
    json_error_t jerr;
    json_t *req;
    json_t *resp;
    char *desc;

    if (c->dead) {
        return;
    }
    if (!text) {
        resp = qmp_error_response(ERROR_CLASS_GENERIC_ERROR, why);
        client_send(c, resp);
        json_decref(resp);
        return;
    }
    req =
        json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!req) {
        desc = g_strdup_printf("JSON parse error, %s", jerr.text);
        resp = qmp_error_response(ERROR_CLASS_GENERIC_ERROR, desc);
        g_free(desc);
    } else {
        resp = qmp_dispatch(c->mon->table, req, &c->negotiated);
        json_decref(req);
    }
    client_send(c, resp);
    json_decref(resp);
}

static void client_read(void *opaque)
{
    MonitorClient *c = opaque;
    char buf[65536];

    c->busy = true;
    for (int i = 0; i < MONITOR_READS_PER_WAKEUP && !c->dead; i++) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (n <= 0) {
            c->dead = true;
            break;
        }
        qmp_stream_feed(&c->stream, buf, n);
    }
    c->busy = false;
    if (c->dead) {
        client_close(c);
    } else {
        client_update_handlers(c);
    }
}

static void client_write(void *opaque)
{
    MonitorClient *c = opaque;

    client_flush(c);
    if (c->dead) {
        client_close(c);
    } else {
        client_update_handlers(c);
    }
}

static void client_update_handlers(MonitorClient *c)
{
    bool want_write = c->out->len > 0;
    bool want_read = !c->mon->quiesced;

    if (want_write != c->want_write || want_read != c->reading) {
        c->want_write = want_write;
        c->reading = want_read;
        aio_set_fd_handler(c->mon->ctx, c->fd, want_read ? client_read : NULL,
                           want_write ? client_write : NULL, NULL, c);
    }
}

static void monitor_send_greeting(MonitorClient *c)
{
    json_t *greeting = json_pack(
        "{s:{s:{s:{s:i,s:i,s:i},s:s},s:[]}}", "QMP", "version", "qemu", "major",
        DATAPLANE_VERSION_MAJOR, "minor", DATAPLANE_VERSION_MINOR, "micro",
        DATAPLANE_VERSION_MICRO, "package", "", "capabilities");

    client_send(c, greeting);
    json_decref(greeting);
}

/* A new client on the socket (the listener's callback). */
static void monitor_accept(SocketListener *l, int fd, void *opaque)
{
    Monitor *mon = opaque;
    MonitorClient *c = g_new0(MonitorClient, 1);

    c->mon = mon;
    c->fd = fd;
    c->out = g_byte_array_new();
    qmp_stream_init(&c->stream, MONITOR_MAX_MESSAGE, client_handle_message, c);
    LIST_INSERT_HEAD(&mon->clients, c, link);
    aio_set_fd_handler(mon->ctx, fd, client_read, NULL, NULL, c);
    c->reading = true;
    monitor_send_greeting(c);
    if (c->dead) {
        client_close(c);
    } else {
        client_update_handlers(c);
    }
}

/* ---- monitor life ------------------------------------------------------- */

Monitor *monitor_new(AioContext *ctx, const char *path, const QmpCommand *table,
                     Error **errp)
{
    g_autoptr(SocketAddress) addr = socket_address_new_unix(path);
    Monitor *mon = g_new0(Monitor, 1);

    addr->mode = 0600; /* whoever reaches the monitor controls the daemon */
    mon->listener = socket_listener_new(ctx, addr, monitor_accept, mon, errp);
    if (!mon->listener) {
        g_free(mon);
        return NULL;
    }
    mon->ctx = ctx;
    mon->table = table;
    LIST_INIT(&mon->clients);
    LIST_INSERT_HEAD(&monitors, mon, link);
    return mon;
}

void monitor_stop_listening(Monitor *mon)
{
    MonitorClient *c;

    /* Requests would race with the teardown; replies and events still go
     * out. */
    mon->quiesced = true;
    LIST_FOREACH(c, &mon->clients, link)
    {
        client_update_handlers(c);
    }
    /* The socket file goes too, if it is still ours. */
    g_clear_pointer(&mon->listener, socket_listener_free);
}

/* Blocks for at most deadline_ms in all to hand c its queued output. */
static void client_drain_output(MonitorClient *c, int64_t deadline_ns)
{
    while (!c->dead && c->out->len > 0) {
        int64_t left_ms =
            (deadline_ns - aio_clock_get_ns(AIO_CLOCK_REALTIME)) / 1000000;
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};

        if (left_ms <= 0 || poll(&pfd, 1, (int)left_ms) <= 0) {
            return;
        }
        client_flush(c);
    }
}

void monitor_free(Monitor *mon)
{
    int64_t deadline =
        aio_clock_get_ns(AIO_CLOCK_REALTIME) + 1000 * (int64_t)1000000;

    if (!mon) {
        return;
    }
    monitor_stop_listening(mon);
    while (!LIST_EMPTY(&mon->clients)) {
        MonitorClient *c = LIST_FIRST(&mon->clients);

        client_drain_output(c, deadline);
        client_close(c);
    }
    LIST_REMOVE(mon, link);
    g_free(mon);
}

unsigned monitor_client_count(Monitor *mon)
{
    unsigned n = 0;
    MonitorClient *c;

    LIST_FOREACH(c, &mon->clients, link)
    {
        n++;
    }
    return n;
}

void monitor_emit_event(const char *name, json_t *data)
{
    struct timeval tv;
    json_t *ev;
    Monitor *mon;
    MonitorClient *c;

    gettimeofday(&tv, NULL);
    ev = json_pack("{s:s,s:{s:I,s:I}}", "event", name, "timestamp", "seconds",
                   (json_int_t)tv.tv_sec, "microseconds",
                   (json_int_t)tv.tv_usec);
    if (data) {
        json_object_set_new(ev, "data", data);
    }
    LIST_FOREACH(mon, &monitors, link)
    {
        MonitorClient *next;

        for (c = LIST_FIRST(&mon->clients); c; c = next) {
            next = LIST_NEXT(c, link);
            if (!c->negotiated) {
                continue;
            }
            client_send(c, ev);
            if (!c->dead) {
                client_update_handlers(c);
            } else if (!c->busy) {
                client_close(c);
            }
            /* A busy client (the event comes from its own command) is
             * closed by its read handler when the command returns. */
        }
    }
    json_decref(ev);
}
