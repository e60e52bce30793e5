/*
 * Text that must be valid UTF-8 (JSON strings, NBD messages) built from
 * bytes that need not be (file names, command-line arguments, names a
 * client sends).
 *
 * Thread-safety: pure functions, safe from any thread.
 */
#ifndef DATAPLANE_UTIL_UTF8_H
#define DATAPLANE_UTIL_UTF8_H

#include <stddef.h>

/*
 * The length of the longest prefix of s (NUL-terminated) that is at most
 * max bytes and does not end inside a multibyte character.  Whatever s
 * holds, the result is within 3 bytes of min(strlen(s), max).
 */
size_t utf8_cut_len(const char *s, size_t max);

/*
 * A copy of the first len bytes of s in which every byte that is not part
 * of a valid UTF-8 sequence (and every NUL) is replaced by U+FFFD, as
 * QEMU's JSON writer does.  Never NULL; free with g_free().
 */
char *utf8_make_valid(const char *s, size_t len);

/*
 * utf8_make_valid() of s (NULL: "") cut to at most max bytes of s on a
 * character boundary, with "..." appended when it was cut.
 */
char *utf8_abbrev(const char *s, size_t max);

#endif /* DATAPLANE_UTIL_UTF8_H */
