/*
 * The QMP monitor: QEMU's JSON wire protocol on a listening unix socket.
 *
 * Each accepted client gets the greeting
 *   {"QMP": {"version": {"qemu": {...}, "package": ""}, "capabilities": []}}
 * then sends requests, one JSON object each, and reads one response per
 * request in order, plus events once it has negotiated capabilities.  Any
 * number of clients may be connected to one monitor at a time.  Bad input
 * (malformed JSON, a message over MONITOR_MAX_MESSAGE, a non-object) gets an
 * error response and the connection stays usable.
 *
 * A monitor runs on an AioContext's fd handlers: the daemon passes the main
 * loop's context, tests a private one.  Thread-safety: every function here,
 * and every command, runs in that context's thread (the main loop thread in
 * the daemon), never elsewhere.
 */
#ifndef DATAPLANE_DAEMON_MONITOR_H
#define DATAPLANE_DAEMON_MONITOR_H

#include <stdbool.h>
#include <jansson.h>

#include "dataplane/aio.h"
#include "dataplane/error.h"
#include "qmp-dispatch.h"

/* The largest request accepted; larger ones are answered with an error. */
#define MONITOR_MAX_MESSAGE (1024 * 1024)

typedef struct Monitor Monitor;

/*
 * Creates the socket at path with mode 0600 and starts accepting, with the
 * rules of every listener (dataplane/socket.h): a stale socket file nobody
 * listens on is replaced; a live one, or any other kind of file, is an
 * error; accept() at the fd limit backs off.  table is the command table
 * (kept, not copied).
 */
Monitor *monitor_new(AioContext *ctx, const char *path, const QmpCommand *table,
                     Error **errp);

/*
 * Stops accepting, gives each client up to a second to take what is queued
 * for it, closes every connection and removes the socket file.
 */
void monitor_free(Monitor *mon);

/*
 * Stops accepting new clients (the listening socket is closed and its file
 * removed if it is still ours) and reading requests from connected ones,
 * for shutdown: what is
 * queued for them, and events emitted from now on, are still sent.
 */
void monitor_stop_listening(Monitor *mon);

/*
 * Sends {"event": name, "data": data, "timestamp": {...}} to every
 * negotiated client of every monitor.  data (stolen; NULL for none).
 */
void monitor_emit_event(const char *name, json_t *data);

/* How many clients are connected to mon (for tests and introspection). */
unsigned monitor_client_count(Monitor *mon);

#endif /* DATAPLANE_DAEMON_MONITOR_H */
