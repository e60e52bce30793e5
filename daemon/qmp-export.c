/*
 * Block exports of every type: block-export-add, block-export-del,
 * query-block-exports and --export, dispatched by "type" to the file of
 * that type (qmp-nbd.c, qmp-vhost-user-blk.c).  Export ids are unique
 * across types, as in QEMU.  Also the teardown of every export.
 *
 * What is common to every type is handled here: id, node-name, iothread
 * (one: the node moves there before the export is created; a list: the
 * type spreads its work over them and the IOThreads are held until the
 * export is gone), fixed-iothread, writable, writethrough.  The type's
 * own keys stay in the table for its add function, which must consume
 * them all.
 */
#include <string.h>

#include "dataplane/block.h"
#include "dataplane/input.h"
#include "dataplane/iothread.h"
#include "dataplane/keyval.h"
#include "dataplane/main-loop.h"
#include "dataplane/object.h"
#include "daemon.h"
#include "monitor.h"
#include "qmp-commands.h"
#include "qmp-json.h"

/* How long teardown waits for export connections to finish closing. */
#define EXPORT_CLOSE_WAIT_NS (5 * (int64_t)1000000000)

typedef struct ExportType {
    const char *name;
    bool (*add)(GHashTable *o, const DaemonExportCommon *c, Error **errp);
    bool (*exists)(const char *id);
    bool (*del)(const char *id, bool hard, Error **errp);
    /* Appends {type, id, node-name, shutting-down} objects to list. */
    void (*query)(json_t *list);
    /* The id of an export of node_name, or NULL. */
    const char *(*using_node)(const char *node_name);
    /* Drops every export of the type (hard). */
    void (*cleanup)(void);
    /* Connections still closing. */
    unsigned (*connections)(void);
} ExportType;

static const ExportType export_types[] = {
    {"nbd", daemon_nbd_export_add, daemon_nbd_export_exists,
     daemon_nbd_export_del, daemon_nbd_export_query,
     daemon_nbd_export_using_node, daemon_nbd_exports_cleanup,
     daemon_nbd_connections},
    {"vhost-user-blk", daemon_vhost_user_blk_export_add,
     daemon_vhost_user_blk_export_exists, daemon_vhost_user_blk_export_del,
     daemon_vhost_user_blk_export_query,
     daemon_vhost_user_blk_export_using_node,
     daemon_vhost_user_blk_exports_cleanup, daemon_vhost_user_blk_connections},
};

#define N_TYPES (sizeof(export_types) / sizeof(export_types[0]))

static const ExportType *type_of_id(const char *id)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        if (export_types[i].exists(id)) {
            return &export_types[i];
        }
    }
    return NULL;
}

/* Copies a table, so that consuming keys leaves the caller's intact. */
GHashTable *daemon_opts_copy(GHashTable *opts)
{
    GHashTable *copy = keyval_new();
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, opts);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_hash_table_insert(copy, g_strdup(k), g_strdup(v));
    }
    return copy;
}

bool daemon_take_int(GHashTable *o, const char *key, int64_t min, int64_t max,
                     int64_t *out, Error **errp)
{
    g_autofree char *v = keyval_take(o, key);

    return !v || input_parse_int(key, v, min, max, out, errp);
}

bool daemon_take_bool(GHashTable *o, const char *key, bool *out, Error **errp)
{
    g_autofree char *v = keyval_take(o, key);

    return !v || input_parse_bool(key, v, out, errp);
}

bool daemon_take_size(GHashTable *o, const char *key, uint64_t *out,
                      Error **errp)
{
    g_autofree char *v = keyval_take(o, key);

    return !v || input_parse_size(key, v, INT64_MAX, out, errp);
}

/*
 * The list under key (key.0, key.1, ...) as a NULL-terminated vector, its
 * keys taken from o; NULL if there is no key.0.  keyval guarantees there
 * is no gap.
 */
static GStrv take_list(GHashTable *o, const char *key)
{
    g_autoptr(GPtrArray) items = g_ptr_array_new();
    unsigned i;

    for (i = 0;; i++) {
        g_autofree char *k = g_strdup_printf("%s.%u", key, i);
        char *v = keyval_take(o, k);

        if (!v) {
            break;
        }
        g_ptr_array_add(items, v);
    }
    if (items->len == 0) {
        return NULL;
    }
    g_ptr_array_add(items, NULL);
    return (GStrv)g_ptr_array_free(g_steal_pointer(&items), false);
}

/* ---- IOThreads held by multi-threaded exports ---------------------------- */

/* Export id -> GStrv of the IOThread ids its work is spread over; each
 * IOThread records the export as a user.  Main loop. */
static GHashTable *export_iothreads;

static char *export_user_name(const char *id)
{
    return g_strdup_printf("block export '%s'", id);
}

void daemon_export_hold_iothreads(const DaemonExportCommon *c)
{
    g_autofree char *user = export_user_name(c->id);
    GStrv ids = g_new0(char *, c->n_iothreads + 1);

    if (!export_iothreads) {
        export_iothreads = g_hash_table_new_full(
            g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_strfreev);
    }
    for (unsigned i = 0; i < c->n_iothreads; i++) {
        ids[i] = g_strdup(iothread_get_id(c->iothreads[i]));
        object_user_add(object_find(ids[i]), user);
    }
    g_hash_table_insert(export_iothreads, g_strdup(c->id), ids);
}

const char *const *daemon_export_iothread_ids(const char *id)
{
    return export_iothreads ? g_hash_table_lookup(export_iothreads, id) : NULL;
}

static void export_iothreads_drop(const char *id)
{
    GStrv ids =
        export_iothreads ? g_hash_table_lookup(export_iothreads, id) : NULL;
    g_autofree char *user = export_user_name(id);

    if (!ids) {
        return;
    }
    for (int i = 0; ids[i]; i++) {
        Object *obj = object_find(ids[i]);

        /* A list may name an IOThread twice: one user record each. */
        if (obj) {
            object_user_remove(obj, user);
        }
    }
    g_hash_table_remove(export_iothreads, id);
}

/*
 * BLOCK_EXPORT_DELETED, as QEMU: the export is gone for good (its last
 * client has closed and its node is free for blockdev-del), which may be
 * well after block-export-del has returned.
 */
void daemon_export_gone(const char *id, void *opaque)
{
    export_iothreads_drop(id);
    monitor_emit_event("BLOCK_EXPORT_DELETED",
                       json_pack("{s:o}", "id", qmp_json_str(id)));
}

bool daemon_export_prepare_node(const DaemonExportCommon *c, Error **errp)
{
    BlockDriverState *bs = bdrv_find_node(c->node_name);
    IOThread *iothread;

    if (!bs) {
        error_setg(errp, "Cannot find node '%s'", c->node_name);
        return false;
    }
    if (!c->iothread_id) {
        return true;
    }
    iothread = iothread_find(c->iothread_id);
    if (!iothread) {
        error_setg(errp, "iothread \"%s\" not found", c->iothread_id);
        return false;
    }
    return daemon_node_set_iothread(bs, iothread, errp);
}

bool daemon_export_add(GHashTable *opts, Error **errp)
{
    g_autoptr(GHashTable) o = daemon_opts_copy(opts);
    g_autofree char *type = keyval_take(o, "type");
    g_autofree char *id = keyval_take(o, "id");
    g_autofree char *node_name = keyval_take(o, "node-name");
    g_autofree char *iothread_id = keyval_take(o, "iothread");
    g_auto(GStrv) iothread_list = take_list(o, "iothread");
    g_autofree IOThread **iothreads = NULL;
    DaemonExportCommon c = {0};
    const ExportType *t = NULL;
    bool writethrough = false;

    if (!type) {
        error_setg(errp, "Parameter 'type' is missing");
        return false;
    }
    for (size_t i = 0; i < N_TYPES; i++) {
        if (!strcmp(type, export_types[i].name)) {
            t = &export_types[i];
        }
    }
    if (!t) {
        error_setg(errp,
                   "Parameter 'type' does not accept value '%s' "
                   "(nbd or vhost-user-blk)",
                   type);
        return false;
    }
    if (!input_check_id("id", id, errp)) {
        return false;
    }
    if (!node_name) {
        error_setg(errp, "Parameter 'node-name' is missing");
        return false;
    }
    if (!daemon_take_bool(o, "writable", &c.writable, errp) ||
        !daemon_take_bool(o, "writethrough", &writethrough, errp) ||
        !daemon_take_bool(o, "fixed-iothread", &c.fixed_iothread, errp)) {
        return false;
    }
    if (writethrough) {
        error_setg(errp, "writethrough=on is not supported");
        return false;
    }
    if (iothread_list && iothread_id) {
        error_setg(errp, "Parameter 'iothread' takes one IOThread or a "
                         "list of them, not both");
        return false;
    }
    if (iothread_list && c.fixed_iothread) {
        error_setg(errp,
                   "Cannot use fixed-iothread for a multi-threaded export");
        return false;
    }
    if (iothread_list) {
        c.n_iothreads = g_strv_length(iothread_list);
        iothreads = g_new(IOThread *, c.n_iothreads);
        for (unsigned i = 0; i < c.n_iothreads; i++) {
            iothreads[i] = iothread_find(iothread_list[i]);
            if (!iothreads[i]) {
                error_setg(errp, "iothread \"%s\" not found", iothread_list[i]);
                return false;
            }
        }
        c.iothreads = iothreads;
    }
    if (type_of_id(id)) {
        error_setg(errp, "Block export id '%s' is already in use", id);
        return false;
    }
    c.id = id;
    c.node_name = node_name;
    c.iothread_id = iothread_id;
    return t->add(o, &c, errp);
}

json_t *qmp_cmd_block_export_add(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"type", QMP_ARG_STR, true},
        {"id", QMP_ARG_STR, true},
        {"node-name", QMP_ARG_STR, true},
        {"writable", QMP_ARG_BOOL, false},
        {"writethrough", QMP_ARG_BOOL, false},
        /* A string, or a list of them (QEMU 10.1's multi-threaded
         * export); an empty list is refused below. */
        {"iothread", QMP_ARG_ANY, false},
        {"fixed-iothread", QMP_ARG_BOOL, false},
        /* nbd */
        {"name", QMP_ARG_STR, false},
        {"description", QMP_ARG_STR, false},
        {"allocation-depth", QMP_ARG_BOOL, false},
        /* vhost-user-blk */
        {"addr", QMP_ARG_OBJECT, false},
        {"logical-block-size", QMP_ARG_INT, false},
        {"num-queues", QMP_ARG_INT, false},
        {NULL},
    };
    g_autoptr(GHashTable) opts = keyval_new();
    json_t *it;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    it = json_object_get(args, "iothread");
    if (it && !json_is_string(it) && !json_is_array(it)) {
        error_setg(errp, "Invalid parameter type for 'iothread', expected: "
                         "string or array of strings");
        return NULL;
    }
    if (it && json_is_array(it) && json_array_size(it) == 0) {
        error_setg(errp, "The set of I/O threads must not be empty");
        return NULL;
    }
    if (!keyval_add_json(opts, args, NULL, errp) ||
        !daemon_export_add(opts, errp)) {
        return NULL;
    }
    return json_object();
}

json_t *qmp_cmd_block_export_del(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {
        {"id", QMP_ARG_STR, true},
        {"mode", QMP_ARG_STR, false},
        {NULL},
    };
    const ExportType *t;
    const char *mode;
    const char *id;
    bool hard;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    id = qmp_arg_str(args, "id", NULL);
    mode = qmp_arg_str(args, "mode", "safe");
    if (!strcmp(mode, "safe")) {
        hard = false;
    } else if (!strcmp(mode, "hard")) {
        hard = true;
    } else {
        error_setg(errp, "Parameter 'mode' does not accept value '%s'", mode);
        return NULL;
    }
    t = type_of_id(id);
    if (!t) {
        error_setg(errp, "Export '%s' is not found", id);
        return NULL;
    }
    if (!t->del(id, hard, errp)) {
        return NULL;
    }
    return json_object();
}

json_t *qmp_cmd_query_block_exports(json_t *args, Error **errp)
{
    static const QmpArg spec[] = {{NULL}};
    json_t *list;

    if (!qmp_args_check(args, spec, errp)) {
        return NULL;
    }
    list = json_array();
    for (size_t i = 0; i < N_TYPES; i++) {
        export_types[i].query(list);
    }
    return list;
}

const char *daemon_export_using_node(const char *node_name)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        const char *id = export_types[i].using_node(node_name);

        if (id) {
            return id;
        }
    }
    return NULL;
}

/* ---- teardown ------------------------------------------------------------ */

static void close_wait_expired(void *opaque)
{
    *(bool *)opaque = true;
}

static unsigned connections_left(void)
{
    unsigned n = 0;

    for (size_t i = 0; i < N_TYPES; i++) {
        n += export_types[i].connections();
    }
    return n;
}

void daemon_exports_cleanup(void)
{
    bool expired = false;
    AioTimer *timer;

    for (size_t i = 0; i < N_TYPES; i++) {
        export_types[i].cleanup();
    }
    /* Connections close in their IOThreads and report to the main loop;
     * the nodes are free once the last one is gone. */
    timer = aio_timer_new(main_loop_get_aio_context(), AIO_CLOCK_REALTIME,
                          AIO_SCALE_NS, close_wait_expired, &expired);
    aio_timer_mod_ns(timer, aio_clock_get_ns(AIO_CLOCK_REALTIME) +
                                EXPORT_CLOSE_WAIT_NS);
    while (connections_left() > 0 && !expired) {
        main_loop_wait(true);
    }
    aio_timer_free(timer);
}
