/*
 * KEY=VALUE,... option strings and their JSON form, into one flat table of
 * dotted keys.  See include/dataplane/keyval.h for the syntax.
 */
#include <string.h>

#include <jansson.h>

#include "dataplane/keyval.h"

/* QEMU's limit on one key fragment; longer ones are almost surely typos. */
#define KEYVAL_FRAGMENT_MAX 127

GHashTable *keyval_new(void)
{
    return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

static bool is_name_start(char c)
{
    return g_ascii_isalpha(c);
}

static bool is_name_char(char c)
{
    return g_ascii_isalnum(c) || c == '-' || c == '_';
}

/*
 * Length of the key fragment at the start of s (ending at '.', or at
 * s + maxlen), or 0 if it is not a valid fragment.  Fragments after the
 * first may be list indexes.
 */
static size_t fragment_len(const char *s, size_t maxlen, bool allow_index)
{
    size_t n = 0;

    if (maxlen == 0) {
        return 0;
    }
    if (allow_index && g_ascii_isdigit(s[0])) {
        while (n < maxlen && g_ascii_isdigit(s[n])) {
            n++;
        }
    } else if (is_name_start(s[0])) {
        n = 1;
        while (n < maxlen && is_name_char(s[n])) {
            n++;
        }
    } else {
        return 0;
    }
    if (n < maxlen && s[n] != '.') {
        return 0;
    }
    return n;
}

/* Checks that key (keylen bytes) is a valid dotted key. */
static bool key_validate(const char *key, size_t keylen, Error **errp)
{
    size_t pos = 0;

    for (;;) {
        size_t n = fragment_len(key + pos, keylen - pos, pos != 0);

        if (n == 0) {
            error_setg(errp, "Invalid parameter '%.*s'", (int)keylen, key);
            return false;
        }
        if (n > KEYVAL_FRAGMENT_MAX) {
            error_setg(errp, "Parameter '%.*s' is too long", (int)n, key + pos);
            return false;
        }
        pos += n;
        if (pos == keylen) {
            return true;
        }
        pos++; /* the '.' */
    }
}

static bool is_help(const char *s, size_t len)
{
    return (len == 4 && !strncmp(s, "help", 4)) || (len == 1 && s[0] == '?');
}

/*
 * Parses the key-val at the start of s into dict; returns where the next
 * one starts, or NULL on error.
 */
static const char *keyval_parse_one(GHashTable *dict, const char *s,
                                    const char *implied_key, bool *help,
                                    Error **errp)
{
    size_t len = strcspn(s, "=,");
    GString *val;

    if (len != 0 && s[len] != '=') {
        /* A bare word: help, or the value of the implied key. */
        if (is_help(s, len)) {
            *help = true;
            s += len;
            return *s == ',' ? s + 1 : s;
        }
        if (implied_key) {
            g_hash_table_insert(dict, g_strdup(implied_key), g_strndup(s, len));
            s += len;
            return *s == ',' ? s + 1 : s;
        }
        if (!key_validate(s, len, errp)) {
            return NULL;
        }
        error_setg(errp, "Expected '=' after parameter '%.*s'", (int)len, s);
        return NULL;
    }
    if (!key_validate(s, len, errp)) {
        return NULL;
    }

    val = g_string_new(NULL);
    const char *p = s + len + 1;
    for (;; p++) {
        if (*p == '\0') {
            break;
        }
        if (*p == ',') {
            if (p[1] == ',') {
                g_string_append_c(val, ',');
                p++;
                continue;
            }
            p++;
            break;
        }
        g_string_append_c(val, *p);
    }
    /* A repeated key: the last one wins, as in QEMU. */
    g_hash_table_insert(dict, g_strndup(s, len), g_string_free(val, FALSE));
    return p;
}

GHashTable *keyval_parse(const char *params, const char *implied_key,
                         bool *help, Error **errp)
{
    GHashTable *dict = keyval_new();
    bool seen_help = false;
    const char *s = params;

    while (*s) {
        s = keyval_parse_one(dict, s, implied_key, &seen_help, errp);
        if (!s) {
            goto fail;
        }
        /* Only the first element may leave out its key. */
        implied_key = NULL;
    }
    if (seen_help && !help) {
        error_setg(errp, "Help is not available for this option");
        goto fail;
    }
    if (help) {
        *help = seen_help;
    }
    if (!keyval_check(dict, errp)) {
        goto fail;
    }
    return dict;

fail:
    g_hash_table_destroy(dict);
    return NULL;
}

/* ---- consistency of the flat table ------------------------------------ */

static bool all_digits(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        if (!g_ascii_isdigit(*s)) {
            return false;
        }
    }
    return true;
}

/* The children of one parent key: how many are names, and which indexes. */
typedef struct KeyvalChildren {
    unsigned names;
    GHashTable *indexes; /* index value (as a pointer-sized int) -> itself */
} KeyvalChildren;

static void children_free(gpointer p)
{
    KeyvalChildren *c = p;

    g_hash_table_destroy(c->indexes);
    g_free(c);
}

static void children_add(GHashTable *parents, const char *key, size_t plen,
                         const char *child, size_t clen)
{
    char *parent = g_strndup(key, plen);
    char *frag = g_strndup(child, clen);
    KeyvalChildren *c = g_hash_table_lookup(parents, parent);

    if (!c) {
        c = g_new0(KeyvalChildren, 1);
        c->indexes = g_hash_table_new(g_direct_hash, g_direct_equal);
        g_hash_table_insert(parents, parent, c);
    } else {
        g_free(parent);
    }
    if (all_digits(frag)) {
        /* Indexes beyond the table size cannot be gap-free; cap them so
         * that they still count as "an index". */
        guint64 v = g_ascii_strtoull(frag, NULL, 10);
        gsize cap = G_MAXINT;
        gsize idx = v > cap ? cap : (gsize)v;
        g_hash_table_add(c->indexes, GSIZE_TO_POINTER(idx + 1));
    } else {
        c->names++;
    }
    g_free(frag);
}

bool keyval_check(GHashTable *dict, Error **errp)
{
    GHashTable *parents =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, children_free);
    GHashTableIter it;
    gpointer k, v;
    bool ok = false;

    g_hash_table_iter_init(&it, dict);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        const char *key = k;
        const char *start = key;

        for (const char *dot = strchr(key, '.'); dot;
             dot = strchr(dot + 1, '.')) {
            char *prefix = g_strndup(key, dot - key);
            bool clash = g_hash_table_contains(dict, prefix);

            if (clash) {
                error_setg(errp, "Parameters '%s.*' used inconsistently",
                           prefix);
                g_free(prefix);
                goto out;
            }
            g_free(prefix);
            if (start != key) {
                children_add(parents, key, start - key - 1, start, dot - start);
            }
            start = dot + 1;
        }
        if (start != key) {
            children_add(parents, key, start - key - 1, start, strlen(start));
        }
    }

    g_hash_table_iter_init(&it, parents);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        KeyvalChildren *c = v;
        guint n = g_hash_table_size(c->indexes);

        if (n && c->names) {
            error_setg(errp, "Parameters '%s.*' used inconsistently",
                       (char *)k);
            goto out;
        }
        /* n distinct indexes are gap-free iff they are exactly 0..n-1. */
        for (guint i = 0; i < n; i++) {
            if (!g_hash_table_contains(c->indexes, GSIZE_TO_POINTER(i + 1))) {
                error_setg(errp, "Parameter '%s.%u' missing", (char *)k, i);
                goto out;
            }
        }
    }
    ok = true;

out:
    g_hash_table_destroy(parents);
    return ok;
}

/* ---- JSON ------------------------------------------------------------- */

static bool add_json_value(GHashTable *dict, json_t *value, const char *key,
                           Error **errp);

static bool add_json_object(GHashTable *dict, json_t *obj, const char *prefix,
                            Error **errp)
{
    const char *name;
    json_t *value;

    json_object_foreach(obj, name, value)
    {
        char *key;
        bool ok;

        size_t nlen = strlen(name);

        /* A member name is one key fragment: no dots, not empty. */
        if (fragment_len(name, nlen, false) != nlen || nlen == 0 ||
            nlen > KEYVAL_FRAGMENT_MAX) {
            error_setg(errp, "Invalid parameter '%s%s%s'", prefix ? prefix : "",
                       prefix ? "." : "", name);
            return false;
        }
        key = prefix ? g_strdup_printf("%s.%s", prefix, name) : g_strdup(name);
        ok = add_json_value(dict, value, key, errp);
        g_free(key);
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool add_json_value(GHashTable *dict, json_t *value, const char *key,
                           Error **errp)
{
    size_t i;
    json_t *elem;

    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return add_json_object(dict, value, key, errp);
    case JSON_ARRAY:
        json_array_foreach(value, i, elem)
        {
            char *ekey = g_strdup_printf("%s.%zu", key, i);
            bool ok = add_json_value(dict, elem, ekey, errp);

            g_free(ekey);
            if (!ok) {
                return false;
            }
        }
        return true;
    case JSON_STRING:
        g_hash_table_insert(dict, g_strdup(key),
                            g_strdup(json_string_value(value)));
        return true;
    case JSON_INTEGER:
        g_hash_table_insert(dict, g_strdup(key),
                            g_strdup_printf("%" JSON_INTEGER_FORMAT,
                                            json_integer_value(value)));
        return true;
    case JSON_REAL:
        g_hash_table_insert(dict, g_strdup(key),
                            g_strdup_printf("%.17g", json_real_value(value)));
        return true;
    case JSON_TRUE:
    case JSON_FALSE:
        g_hash_table_insert(dict, g_strdup(key),
                            g_strdup(json_is_true(value) ? "on" : "off"));
        return true;
    case JSON_NULL:
    default:
        error_setg(errp, "Parameter '%s' must not be null", key);
        return false;
    }
}

bool keyval_add_json(GHashTable *dict, json_t *obj, const char *prefix,
                     Error **errp)
{
    if (!json_is_object(obj)) {
        error_setg(errp, "Expected a JSON object");
        return false;
    }
    if (prefix && !*prefix) {
        prefix = NULL;
    }
    return add_json_object(dict, obj, prefix, errp);
}

GHashTable *keyval_parse_json(const char *json, Error **errp)
{
    json_error_t jerr;
    json_t *obj = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    GHashTable *dict;

    if (!obj) {
        error_setg(errp, "JSON parse error at column %d: %s", jerr.column,
                   jerr.text);
        return NULL;
    }
    dict = keyval_new();
    if (!keyval_add_json(dict, obj, NULL, errp) || !keyval_check(dict, errp)) {
        g_hash_table_destroy(dict);
        dict = NULL;
    }
    json_decref(obj);
    return dict;
}

GHashTable *keyval_parse_option(const char *str, const char *implied_key,
                                Error **errp)
{
    const char *p = str;

    while (g_ascii_isspace(*p)) {
        p++;
    }
    if (*p == '{') {
        return keyval_parse_json(str, errp);
    }
    return keyval_parse(str, implied_key, NULL, errp);
}

/* ---- consuming a table ------------------------------------------------ */

GHashTable *keyval_take_prefix(GHashTable *dict, const char *prefix)
{
    GHashTable *sub = keyval_new();
    size_t plen = strlen(prefix);
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, dict);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const char *key = k;

        if (!strncmp(key, prefix, plen) && key[plen] == '.') {
            g_hash_table_insert(sub, g_strdup(key + plen + 1), g_strdup(v));
            g_hash_table_iter_remove(&it);
        }
    }
    return sub;
}

char *keyval_take(GHashTable *dict, const char *key)
{
    gpointer orig_key, value;

    if (!g_hash_table_steal_extended(dict, key, &orig_key, &value)) {
        return NULL;
    }
    g_free(orig_key);
    return value;
}

bool keyval_check_empty(GHashTable *dict, const char *what, Error **errp)
{
    GHashTableIter it;
    gpointer k;
    const char *first = NULL;

    /* Name the alphabetically first one, so the message is deterministic. */
    g_hash_table_iter_init(&it, dict);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        if (!first || strcmp(k, first) < 0) {
            first = k;
        }
    }
    if (first) {
        error_setg(errp, "%s: Invalid parameter '%s'", what, first);
        return false;
    }
    return true;
}
