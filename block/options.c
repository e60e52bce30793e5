/*
 * --blockdev style options: flat char * -> char * tables with dotted keys,
 * checked against the driver's table before its open runs, so that a
 * driver reads only values it knows are well formed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/block-int.h"

static const char *const detect_zeroes_choices[] = {"off", "on", "unmap", NULL};

/* The --blockdev keys every driver takes (QEMU's BlockdevOptions base). */
static const BlockOptDesc common_opts[] = {
    {"driver", BLOCK_OPT_STRING, NULL},
    {"node-name", BLOCK_OPT_STRING, NULL},
    {"read-only", BLOCK_OPT_BOOL, NULL},
    {"auto-read-only", BLOCK_OPT_BOOL, NULL},
    {"cache.no-flush", BLOCK_OPT_BOOL, NULL},
    {"detect-zeroes", BLOCK_OPT_STRING, detect_zeroes_choices},
    {NULL},
};

const char *bdrv_opt_get(GHashTable *opts, const char *key)
{
    return g_hash_table_lookup(opts, key);
}

bool bdrv_parse_bool(const char *value, bool *out)
{
    if (!strcmp(value, "on") || !strcmp(value, "yes") ||
        !strcmp(value, "true")) {
        *out = true;
    } else if (!strcmp(value, "off") || !strcmp(value, "no") ||
               !strcmp(value, "false")) {
        *out = false;
    } else {
        return false;
    }
    return true;
}

/* The binary shift of a size suffix, -1 if c is none. */
static int size_suffix_shift(char c)
{
    switch (g_ascii_tolower(c)) {
    case 'b':
        return 0;
    case 'k':
        return 10;
    case 'm':
        return 20;
    case 'g':
        return 30;
    case 't':
        return 40;
    case 'p':
        return 50;
    case 'e':
        return 60;
    }
    return -1;
}

/*
 * Sizes as QEMU writes them: a decimal number of bytes with an optional
 * binary suffix (b, k, M, G, T, P, E, either case).  With a suffix the
 * number may have a fraction ("1.5G") as long as it makes whole bytes.
 * "0x" hex is a plain number of bytes.
 */
bool bdrv_parse_size(const char *value, int64_t *out)
{
    unsigned long long n, frac = 0, frac_div = 1;
    char *end;
    int shift = 0;

    if (!g_ascii_isdigit(*value)) {
        return false;
    }
    /* 0x hex, as QEMU's integer and size options take, without a suffix
     * (QEMU refuses "0x1M" too). */
    if (value[0] == '0' && (value[1] == 'x' || value[1] == 'X')) {
        if (!g_ascii_isxdigit(value[2])) {
            return false;
        }
        errno = 0;
        n = strtoull(value + 2, &end, 16);
        if (errno || *end || n > INT64_MAX) {
            return false;
        }
        *out = (int64_t)n;
        return true;
    }
    errno = 0;
    n = strtoull(value, &end, 10);
    if (errno) {
        return false;
    }
    if (*end == '.') {
        const char *p = end + 1;

        if (!g_ascii_isdigit(*p)) {
            return false;
        }
        for (; g_ascii_isdigit(*p); p++) {
            if (frac_div > UINT64_C(100000000000000000)) {
                return false; /* more digits than any size needs */
            }
            frac = frac * 10 + (unsigned)(*p - '0');
            frac_div *= 10;
        }
        end = (char *)p;
        if (!*end) {
            return false; /* a fraction of a byte */
        }
    }
    if (*end) {
        shift = size_suffix_shift(*end);
        if (shift < 0 || end[1]) {
            return false;
        }
    }
    if (n > (unsigned long long)(INT64_MAX >> shift)) {
        return false;
    }
    n <<= shift;
    if (frac) {
        /* frac / frac_div of one unit, in whole bytes only; shift <= 60
         * and frac < frac_div <= 1e18 keep this in 128 bits. */
        unsigned __int128 bytes = ((unsigned __int128)frac << shift);

        if (bytes % frac_div) {
            return false;
        }
        bytes /= frac_div;
        if (bytes > (unsigned __int128)(INT64_MAX - n)) {
            return false;
        }
        n += (unsigned long long)bytes;
    }
    *out = (int64_t)n;
    return true;
}

bool bdrv_opt_get_bool(GHashTable *opts, const char *key, bool def)
{
    const char *v = bdrv_opt_get(opts, key);
    bool b;

    return v && bdrv_parse_bool(v, &b) ? b : def;
}

int64_t bdrv_opt_get_size(GHashTable *opts, const char *key, int64_t def)
{
    const char *v = bdrv_opt_get(opts, key);
    int64_t n;

    return v && bdrv_parse_size(v, &n) ? n : def;
}

/* key matches name, where a "*" fragment of name stands for a list index
 * ("server.*.host" matches "server.0.host"). */
static bool desc_name_matches(const char *name, const char *key)
{
    while (*name) {
        if (name[0] == '*' && (name[1] == '.' || !name[1])) {
            if (!g_ascii_isdigit(*key)) {
                return false;
            }
            while (g_ascii_isdigit(*key)) {
                key++;
            }
            name++;
            continue;
        }
        if (*name++ != *key++) {
            return false;
        }
    }
    return !*key;
}

static const BlockOptDesc *find_desc(const BlockOptDesc *table, const char *key)
{
    for (; table && table->name; table++) {
        if (desc_name_matches(table->name, key)) {
            return table;
        }
    }
    return NULL;
}

/* key: as given (a list key names its index, not the table's "*"). */
static bool check_value(const BlockOptDesc *desc, const char *key,
                        const char *value, Error **errp)
{
    bool b;
    int64_t n;
    const char *const *c;

    switch (desc->type) {
    case BLOCK_OPT_BOOL:
        if (!bdrv_parse_bool(value, &b)) {
            error_setg(errp, "Parameter '%s' expects 'on' or 'off', not '%s'",
                       key, value);
            return false;
        }
        return true;
    case BLOCK_OPT_SIZE:
        if (!bdrv_parse_size(value, &n)) {
            error_setg(errp, "Parameter '%s' expects a size, not '%s'", key,
                       value);
            return false;
        }
        return true;
    case BLOCK_OPT_STRING:
        if (!desc->choices) {
            return true;
        }
        for (c = desc->choices; *c; c++) {
            if (!strcmp(*c, value)) {
                return true;
            }
        }
        {
            g_autofree char *list = g_strjoinv("', '", (char **)desc->choices);

            error_setg(errp,
                       "Parameter '%s' does not accept value '%s' "
                       "(one of '%s')",
                       key, value, list);
        }
        return false;
    }
    return false;
}

bool bdrv_opts_validate(const BlockDriver *drv, GHashTable *opts, Error **errp)
{
    GHashTableIter iter;
    gpointer k, v;
    /* Sorted, so that the error names the same key on every run. */
    g_autoptr(GPtrArray) keys = g_ptr_array_new();
    guint i;

    g_hash_table_iter_init(&iter, opts);
    while (g_hash_table_iter_next(&iter, &k, &v)) {
        g_ptr_array_add(keys, k);
    }
    g_ptr_array_sort(keys, (GCompareFunc)g_strcmp0);
    for (i = 0; i < keys->len; i++) {
        const char *key = *(const char **)&keys->pdata[i];
        const char *value = g_hash_table_lookup(opts, key);
        const BlockOptDesc *desc = find_desc(common_opts, key);

        if (!desc) {
            desc = find_desc(drv->options, key);
        }
        if (!desc && drv->has_file_child &&
            (!strcmp(key, "file") || g_str_has_prefix(key, "file."))) {
            continue; /* the child's own open checks its keys */
        }
        if (!desc) {
            error_setg(errp, "Invalid parameter '%s' for driver '%s'", key,
                       drv->format_name);
            return false;
        }
        if (!value) {
            error_setg(errp, "Parameter '%s' has no value", key);
            return false;
        }
        if (!check_value(desc, key, value, errp)) {
            return false;
        }
    }
    return true;
}

GHashTable *bdrv_opts_extract_child(GHashTable *opts, const char *child)
{
    g_autofree char *prefix = g_strconcat(child, ".", NULL);
    size_t plen = strlen(prefix);
    GHashTable *sub = NULL;
    GHashTableIter iter;
    gpointer k, v;

    g_hash_table_iter_init(&iter, opts);
    while (g_hash_table_iter_next(&iter, &k, &v)) {
        if (g_str_has_prefix(k, prefix)) {
            if (!sub) {
                sub = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                            g_free);
            }
            g_hash_table_insert(sub, g_strdup((char *)k + plen),
                                g_strdup(v ? v : ""));
        }
    }
    return sub;
}
