/* Valid UTF-8 from arbitrary bytes; see utf8.h. */
#include <string.h>
#include <glib.h>

#include "util/utf8.h"

static int is_continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

size_t utf8_cut_len(const char *s, size_t max)
{
    size_t len = strnlen(s, max + 1);
    size_t n;

    if (len <= max) {
        return len;
    }
    /* s[max] starts the first byte left out.  If it continues a character,
     * back up to that character's first byte: at most 3 steps, since no
     * character is longer than 4 bytes (past that, s is not UTF-8 there
     * and any cut is as good as another). */
    for (n = max; n > 0 && max - n < 3; n--) {
        if (!is_continuation((unsigned char)s[n])) {
            return n;
        }
    }
    return is_continuation((unsigned char)s[n]) ? max : n;
}

char *utf8_make_valid(const char *s, size_t len)
{
    GString *out;
    const char *end = s + len;
    const char *p = s;

    if (memchr(s, '\0', len) == NULL && g_utf8_validate(s, (gssize)len, NULL)) {
        return g_strndup(s, len);
    }
    /* Linear: each step copies a valid run or replaces one byte. */
    out = g_string_sized_new(len + 16);
    while (p < end) {
        const char *bad;

        g_utf8_validate(p, end - p, &bad);
        g_string_append_len(out, p, bad - p);
        if (bad == end) {
            break;
        }
        g_string_append(out, "\xEF\xBF\xBD"); /* U+FFFD */
        p = bad + 1;
    }
    return g_string_free(out, FALSE);
}

char *utf8_abbrev(const char *s, size_t max)
{
    size_t len;
    size_t cut;
    char *valid;
    char *ret;

    if (!s) {
        return g_strdup("");
    }
    len = strlen(s);
    cut = utf8_cut_len(s, max);
    valid = utf8_make_valid(s, cut);
    if (cut == len) {
        return valid;
    }
    ret = g_strconcat(valid, "...", NULL);
    g_free(valid);
    return ret;
}
