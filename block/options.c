/*
 * --blockdev style options: flat char * -> char * tables with dotted keys,
 * checked against the driver's table before its open runs, so that a
 * driver reads only values it knows are well formed.  Values have the
 * project's one syntax (dataplane/input.h).
 */
#include <string.h>

#include "dataplane/input.h"
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

bool bdrv_opt_get_bool(GHashTable *opts, const char *key, bool def)
{
    const char *v = bdrv_opt_get(opts, key);
    bool b;

    return v && input_parse_bool(key, v, &b, NULL) ? b : def;
}

int64_t bdrv_opt_get_size(GHashTable *opts, const char *key, int64_t def)
{
    const char *v = bdrv_opt_get(opts, key);
    uint64_t n;

    return v && input_parse_size(key, v, INT64_MAX, &n, NULL) ? (int64_t)n
                                                              : def;
}

static const BlockOptDesc *find_desc(const BlockOptDesc *table, const char *key)
{
    for (; table && table->name; table++) {
        if (!strcmp(table->name, key)) {
            return table;
        }
    }
    return NULL;
}

static bool check_value(const BlockOptDesc *desc, const char *value,
                        Error **errp)
{
    bool b;
    uint64_t n;
    const char *const *c;

    switch (desc->type) {
    case BLOCK_OPT_BOOL:
        return input_parse_bool(desc->name, value, &b, errp);
    case BLOCK_OPT_SIZE:
        return input_parse_size(desc->name, value, INT64_MAX, &n, errp);
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
                       desc->name, value, list);
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
        if (!check_value(desc, value, errp)) {
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
