/* Typed input: text to bool, integer, size, identifier; see
 * include/dataplane/input.h for the syntax. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "dataplane/input.h"

bool input_parse_bool(const char *name, const char *text, bool *out,
                      Error **errp)
{
    static const char *const yes[] = {"on", "yes", "true", "y"};
    static const char *const no[] = {"off", "no", "false", "n"};

    for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
        if (!strcmp(text, yes[i])) {
            *out = true;
            return true;
        }
        if (!strcmp(text, no[i])) {
            *out = false;
            return true;
        }
    }
    error_setg(errp, "Parameter '%s' expects 'on' or 'off'", name);
    return false;
}

bool input_parse_int(const char *name, const char *text, int64_t min,
                     int64_t max, int64_t *out, Error **errp)
{
    char *end;
    gint64 v;

    /* GLib's strtoll is strtoll() in the C locale, whatever the process's
     * locale: blanks, sign, base prefix 0x or 0, ERANGE on overflow. */
    errno = 0;
    v = g_ascii_strtoll(text, &end, 0);
    if (end == text || *end || errno) {
        error_setg(errp, "Parameter '%s' expects integer", name);
        return false;
    }
    if (v < min || v > max) {
        error_setg(errp,
                   "Parameter '%s' must be between %" PRId64 " and %" PRId64,
                   name, min, max);
        return false;
    }
    *out = v;
    return true;
}

/* The multiplier of a size suffix (powers of 1024), 0 if c is none. */
static uint64_t size_suffix(char c)
{
    static const char suffixes[] = "BKMGTPE";
    const char *p = c ? strchr(suffixes, g_ascii_toupper(c)) : NULL;

    return p ? UINT64_C(1) << (10 * (p - suffixes)) : 0;
}

/* Digits of a fraction that are taken into account; 10^19 < 2^64. */
#define SIZE_FRACTION_DIGITS 19

/*
 * The fraction at *p (digits after the '.'), scaled by mul and rounded to
 * the nearest byte (halves up).  Advances *p past every digit.
 */
static uint64_t size_fraction(const char **p, uint64_t mul)
{
    uint64_t digits = 0, scale = 1;
    const char *s = *p;

    for (; g_ascii_isdigit(*s); s++) {
        if (scale < UINT64_C(10000000000000000000)) {
            digits = digits * 10 + (uint64_t)(*s - '0');
            scale *= 10;
        }
    }
    *p = s;
    /* digits < scale <= 10^19 and mul <= 2^60: the product fits. */
    return (uint64_t)(((unsigned __int128)digits * mul + scale / 2) / scale);
}

/* QEMU's qemu_strtosz() grammar; false on any error, overflow included. */
static bool parse_size(const char *text, uint64_t *out)
{
    const char *p = text;
    uint64_t val = 0, mul, frac = 0;
    bool has_frac = false, any_digit = false;
    char *end;

    while (g_ascii_isspace(*p)) {
        p++;
    }
    if (*p == '+') {
        p++;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        /* Hex: a plain byte count, neither fraction nor suffix. */
        if (!g_ascii_isxdigit(p[2])) {
            return false;
        }
        errno = 0;
        val = g_ascii_strtoull(p + 2, &end, 16);
        if (errno || *end) {
            return false;
        }
        *out = val;
        return true;
    }
    for (; g_ascii_isdigit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');

        if (val > (UINT64_MAX - d) / 10) {
            return false;
        }
        val = val * 10 + d;
        any_digit = true;
    }
    if (*p == '.') {
        const char *f = ++p;

        has_frac = true;
        while (g_ascii_isdigit(*p)) {
            p++;
        }
        any_digit |= p != f;
        p = f; /* scaled below, once the suffix is known */
    }
    if (!any_digit) {
        return false;
    }
    {
        const char *s = p;

        while (g_ascii_isdigit(*s)) {
            s++;
        }
        mul = size_suffix(*s);
        if (mul == 0) {
            mul = 1;
        } else {
            s++;
        }
        if (*s) {
            return false; /* junk, an exponent, a second suffix */
        }
    }
    if (has_frac) {
        const char *f = p;

        frac = size_fraction(&f, mul);
        /* A fraction needs a unit to be a fraction of (QEMU's rule), except
         * that "1.0" is still one byte. */
        if (mul == 1 && strspn(p, "0") != (size_t)(f - p)) {
            return false;
        }
    }
    if (val > UINT64_MAX / mul || val * mul > UINT64_MAX - frac) {
        return false;
    }
    *out = val * mul + frac;
    return true;
}

bool input_parse_size(const char *name, const char *text, uint64_t max,
                      uint64_t *out, Error **errp)
{
    uint64_t v;

    if (!parse_size(text, &v)) {
        error_setg(errp, "Parameter '%s' expects size", name);
        return false;
    }
    if (v > max) {
        error_setg(errp, "Parameter '%s' must be at most %" PRIu64, name, max);
        return false;
    }
    *out = v;
    return true;
}

bool input_id_wellformed(const char *id)
{
    size_t i;

    if (!id || !g_ascii_isalpha(id[0])) {
        return false;
    }
    for (i = 1; id[i]; i++) {
        if (!g_ascii_isalnum(id[i]) && id[i] != '-' && id[i] != '.' &&
            id[i] != '_') {
            return false;
        }
    }
    return i <= INPUT_ID_MAX;
}

bool input_check_id(const char *name, const char *id, Error **errp)
{
    if (!id) {
        error_setg(errp, "Parameter '%s' is missing", name);
        return false;
    }
    if (!input_id_wellformed(id)) {
        error_setg(errp, "Parameter '%s' expects an identifier", name);
        return false;
    }
    return true;
}
