/*
 * Typed input: the one place where text a user wrote (a command-line
 * option, a QMP argument flattened to keyval, an object property, a
 * --blockdev key) becomes a bool, an integer, a size or an identifier.
 * Every consumer in the project goes through these functions, so one
 * spelling means the same everywhere, and the same as in QEMU (scripts
 * written for qemu-storage-daemon mean the same here).
 *
 *   bool        on, yes, true, y  /  off, no, false, n   (exactly these,
 *               case-sensitive: QEMU's qapi_bool_parse)
 *   integer     C's strtoll() with base 0, as QEMU's qemu_strtoi64: leading
 *               blanks, an optional sign, then decimal digits, or 0x/0X and
 *               hex digits, or a leading 0 and octal digits ("010" is 8);
 *               nothing may follow; overflow is an error
 *   size        QEMU's qemu_strtosz: a decimal number of bytes with an
 *               optional suffix B, K, M, G, T, P or E (either case, powers
 *               of 1024); with a suffix other than B the number may have a
 *               fraction ("1.5G"), rounded to the nearest byte; "0x" hex is
 *               a plain byte count without fraction or suffix; a leading 0
 *               is decimal here ("010" is 10); negative numbers, exponents
 *               and overflow of 64 bits are errors
 *   identifier  QEMU's id_wellformed: an ASCII letter, then letters,
 *               digits, '-', '.' and '_'; here also at most INPUT_ID_MAX
 *               bytes (QEMU has no limit on object ids and 31 on node
 *               names; one limit serves every kind of id here)
 *
 * name is the parameter named in the error sentence ("Parameter
 * 'poll-max-ns' expects integer", QEMU's wording).
 *
 * Thread-safety: every function is safe from any thread (no state; the
 * integer and size syntax does not depend on the locale).
 */
#ifndef DATAPLANE_INPUT_H
#define DATAPLANE_INPUT_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/error.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

/* The longest identifier accepted, in bytes. */
#define INPUT_ID_MAX 128

bool input_parse_bool(const char *name, const char *text, bool *out,
                      Error **errp);

/*
 * Parses an integer and checks it is within [min, max]:
 * "Parameter 'x' expects integer" / "Parameter 'x' must be between min
 * and max".
 */
bool input_parse_int(const char *name, const char *text, int64_t min,
                     int64_t max, int64_t *out, Error **errp);

/*
 * Parses a size in bytes and checks it is at most max:
 * "Parameter 'x' expects size" / "Parameter 'x' must be at most max".
 */
bool input_parse_size(const char *name, const char *text, uint64_t max,
                      uint64_t *out, Error **errp);

/* True if id is a well-formed identifier (the rule above). */
bool input_id_wellformed(const char *id);

/*
 * As input_id_wellformed(), with "Parameter '<name>' expects an identifier"
 * (QEMU's sentence) in *errp when it is not.  id NULL is "Parameter
 * '<name>' is missing".
 */
bool input_check_id(const char *name, const char *id, Error **errp);

DP_API_END

#endif /* DATAPLANE_INPUT_H */
