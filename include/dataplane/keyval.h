/*
 * Option strings in QEMU's KEY=VALUE,... syntax, and their JSON form.
 *
 * Both forms become one flat table: char * key -> char * value, where a
 * nested member is spelled with dots ("addr.path", "cache.direct") and a
 * list element with its index ("server.0.host").  Every value is a string;
 * whoever consumes the table converts and validates it (the object registry,
 * bdrv_open, the daemon's option code), with the functions of
 * dataplane/input.h, so that a value has one syntax everywhere.
 *
 * The KEY=VALUE syntax, as QEMU's keyval parser accepts it:
 *
 *   key-vals     = [ key-val { ',' key-val } [ ',' ] ]
 *   key-val      = key '=' val | 'help' | '?'
 *   key          = key-fragment { '.' key-fragment }
 *   key-fragment = name | index          (name: a letter, then letters,
 *                                         digits, '-' or '_'; index: digits,
 *                                         never the first fragment)
 *   val          = any text, where ',,' stands for one ','
 *
 * With an implied key ("qom-type" for --object, "driver" for --blockdev,
 * "type" for --export) the first key-val may be a bare value: `iothread,id=x`
 * means `qom-type=iothread,id=x`.  A later key-val repeating a key replaces
 * the earlier value.  A key that is both a value and a parent of other keys
 * ("a=1,a.b=2"), or a list with a gap ("x.0=a,x.2=b"), is an error.
 *
 * Thread-safety: every function is safe from any thread; a table belongs to
 * one thread at a time.
 */
#ifndef DATAPLANE_KEYVAL_H
#define DATAPLANE_KEYVAL_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "dataplane/error.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

struct json_t;

/* An empty table with string keys and values that it owns (g_free). */
GHashTable *keyval_new(void);

/*
 * Parses params in KEY=VALUE,... syntax.  implied_key may be NULL.  help,
 * if not NULL, is set to whether a bare "help" or "?" appeared; if it is
 * NULL such an element is an error.  Returns a new table, or NULL and
 * *errp set with a sentence that names the offending parameter.
 */
GHashTable *keyval_parse(const char *params, const char *implied_key,
                         bool *help, Error **errp);

/* Parses a JSON object given as text into the flat table. */
GHashTable *keyval_parse_json(const char *json, Error **errp);

/*
 * The rule of qemu-storage-daemon's options: text whose first
 * non-blank character is '{' is JSON, anything else KEY=VALUE with
 * implied_key.  "help" is an error here.
 */
GHashTable *keyval_parse_option(const char *str, const char *implied_key,
                                Error **errp);

/*
 * Adds the members of the JSON object obj to dict, flattened: nested
 * objects become dotted keys, arrays indexed keys, integers decimal text,
 * booleans "on"/"off".  null is refused.  prefix (may be NULL or "") is put
 * in front of every key, followed by a dot.
 */
bool keyval_add_json(GHashTable *dict, struct json_t *obj, const char *prefix,
                     Error **errp);

/*
 * Checks the whole table for keys used both as a value and as a parent,
 * and for lists with gaps.  keyval_parse() and keyval_parse_json() call it;
 * it is public for tables built by hand.
 */
bool keyval_check(GHashTable *dict, Error **errp);

/*
 * Moves every key under "prefix." out of dict into a new table, without
 * the prefix.  The result is empty if there are none.
 */
GHashTable *keyval_take_prefix(GHashTable *dict, const char *prefix);

/*
 * Takes key out of dict and returns its value (the caller frees it), or
 * NULL if it is absent.
 */
char *keyval_take(GHashTable *dict, const char *key);

/*
 * Fails, naming one of them, if dict still has keys (something nobody
 * consumed: an unknown parameter).  what names the option in the message
 * ("--nbd-server").
 */
bool keyval_check_empty(GHashTable *dict, const char *what, Error **errp);

DP_API_END

#endif /* DATAPLANE_KEYVAL_H */
