/*
 * JSON for the monitor's wire: strings that are always valid, and encoding
 * that never fails.
 *
 * JSON text must be UTF-8, and jansson refuses anything else: json_string()
 * and json_pack("s") return NULL for bytes that are not UTF-8, and
 * json_dumps() returns NULL for a tree holding such a string.  User text
 * (ids, node names, export names, file names from the command line) need
 * not be UTF-8, so every C string that enters a reply or an event goes
 * through qmp_json_str(), and every message through qmp_json_encode().
 *
 * Thread-safety: pure functions, safe from any thread.
 */
#ifndef DATAPLANE_DAEMON_QMP_JSON_H
#define DATAPLANE_DAEMON_QMP_JSON_H

#include <jansson.h>

/* A JSON string holding s (NULL: ""), bytes that are not UTF-8 (and NULs)
 * replaced by U+FFFD.  Never NULL. */
json_t *qmp_json_str(const char *s);

/*
 * The wire text of msg, without the line end (free with free()).  Never
 * NULL: a message that cannot be encoded (a string that is not UTF-8 got
 * in past qmp_json_str) is replaced, a reply by a GenericError reply with
 * the same id, an event by the same event without its data.
 */
char *qmp_json_encode(json_t *msg);

#endif /* DATAPLANE_DAEMON_QMP_JSON_H */
