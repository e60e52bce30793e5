/*
 * libFuzzer target over the option parsers: KEY=VALUE text (with and
 * without an implied key, with and without help), its JSON form, the
 * option rule that picks between them, and the whole dataplaned command
 * line.  What parses is then taken apart the way the daemon's consumers
 * do (prefixes, single keys, every value as bool, integer, size and
 * identifier, the leftover check).
 *
 * Input: one byte that picks the parser and the implied key, then the
 * text.  For the command line, the text's lines are the arguments.
 */
#include <stdlib.h>
#include <string.h>

#include "dataplane/input.h"
#include "dataplane/keyval.h"
#include "cmdline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const implied_keys[] = {NULL, "qom-type", "driver", "type"};

/* What the daemon does to a parsed table: take children, read values. */
static void consume(GHashTable *t)
{
    g_autoptr(GHashTable) child = keyval_take_prefix(t, "file");
    GHashTableIter it;
    gpointer k, v;

    /* A subtree of a consistent table is consistent. */
    g_assert(keyval_check(child, NULL));
    g_free(keyval_take(t, "driver"));
    g_hash_table_iter_init(&it, t);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        bool b;
        int64_t i;
        uint64_t u;

        input_parse_bool(k, v, &b, NULL);
        input_parse_int(k, v, INT64_MIN, INT64_MAX, &i, NULL);
        input_parse_size(k, v, UINT64_MAX, &u, NULL);
        input_id_wellformed(v);
    }
    keyval_check_empty(t, "--fuzz", NULL);
}

static void fuzz_cmdline(char *text)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    DaemonConfig cfg;
    Error *err = NULL;

    g_ptr_array_add(argv, "dataplaned");
    for (char *line = strtok(text, "\n"); line && argv->len < 64;
         line = strtok(NULL, "\n")) {
        g_ptr_array_add(argv, line);
    }
    g_ptr_array_add(argv, NULL);
    if (cmdline_parse(argv->len - 1, (char **)argv->pdata, &cfg, &err)) {
        for (guint i = 0; i < cfg.options->len; i++) {
            DaemonOption *o = g_ptr_array_index(cfg.options, i);

            consume(o->opts);
        }
    } else {
        g_assert(err && g_utf8_validate(error_get_pretty(err), -1, NULL));
        error_free(err);
    }
    cmdline_config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = NULL;
    const char *implied;
    GHashTable *t = NULL;
    Error *err = NULL;
    bool help = false;

    if (size < 1) {
        return 0;
    }
    implied = implied_keys[(data[0] >> 2) % G_N_ELEMENTS(implied_keys)];
    text = g_strndup((const char *)data + 1, size - 1);
    switch (data[0] & 3) {
    case 0:
        t = keyval_parse(text, implied, (data[0] & 0x80) ? &help : NULL, &err);
        break;
    case 1:
        t = keyval_parse_json(text, &err);
        break;
    case 2:
        t = keyval_parse_option(text, implied, &err);
        break;
    default:
        fuzz_cmdline(text);
        return 0;
    }
    if (t) {
        g_assert(!err);
        g_assert(g_hash_table_size(t) <= KEYVAL_MAX_KEYS);
        consume(t);
        g_hash_table_destroy(t);
    } else {
        /* Every failure says why, in text a QMP reply can carry. */
        g_assert(err && g_utf8_validate(error_get_pretty(err), -1, NULL));
        error_free(err);
    }
    return 0;
}
