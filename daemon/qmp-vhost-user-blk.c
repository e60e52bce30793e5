/*
 * The vhost-user-blk type of block-export-add / --export, with
 * qemu-storage-daemon's option names:
 *
 *   type=vhost-user-blk,id=<id>,node-name=<node>,addr.type=unix,
 *   addr.path=<path>[,writable=on|off][,num-queues=<n>]
 *   [,logical-block-size=<bytes>][,iothread=<id>]
 *
 * qmp-export.c has taken the common keys; the address and the two numbers
 * are this file's.  Only unix socket addresses are served (a vhost-user
 * front-end shares memory, so it is on the same host anyway).
 */
#include <string.h>

#include "dataplane/keyval.h"
#include "dataplane/vhost-user-blk.h"
#include "daemon.h"

/* The addr.* keys: a unix socket path (flat or the legacy data.* shape). */
static char *socket_path_from_opts(GHashTable *o, Error **errp)
{
    g_autoptr(GHashTable) addr = keyval_take_prefix(o, "addr");
    g_autoptr(GHashTable) data = keyval_take_prefix(addr, "data");
    g_autofree char *type = keyval_take(addr, "type");
    g_autofree char *path = NULL;
    g_autofree char *abstract = NULL;
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, data);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_hash_table_insert(addr, g_strdup(k), g_strdup(v));
    }
    if (!type) {
        error_setg(errp, "Parameter 'addr.type' is missing");
        return NULL;
    }
    if (strcmp(type, "unix") != 0) {
        error_setg(errp,
                   "Parameter 'addr.type' does not accept value '%s' "
                   "(vhost-user-blk exports listen on unix sockets)",
                   type);
        return NULL;
    }
    path = keyval_take(addr, "path");
    abstract = keyval_take(addr, "abstract");
    if (!path) {
        error_setg(errp, "Parameter 'addr.path' is missing");
        return NULL;
    }
    if (abstract) {
        error_setg(errp, "Abstract unix sockets are not supported");
        return NULL;
    }
    if (!keyval_check_empty(addr, "addr", errp)) {
        return NULL;
    }
    return g_steal_pointer(&path);
}

bool daemon_vhost_user_blk_export_add(GHashTable *o,
                                      const DaemonExportCommon *c, Error **errp)
{
    g_autofree char *path = socket_path_from_opts(o, errp);
    int64_t num_queues = 1;
    int64_t lbs = 512;
    VhostUserBlkExportOptions opts;

    if (!path ||
        !daemon_take_int(o, "num-queues", 1, VHOST_USER_BLK_MAX_QUEUES,
                         &num_queues, errp) ||
        !daemon_take_int(o, "logical-block-size", 512, 65536, &lbs, errp) ||
        !keyval_check_empty(o, "export", errp)) {
        return false;
    }
    if (!daemon_export_prepare_node(c, errp)) {
        return false;
    }
    opts = (VhostUserBlkExportOptions){
        .id = c->id,
        .node_name = c->node_name,
        .socket_path = path,
        .writable = c->writable,
        .num_queues = (unsigned)num_queues,
        .logical_block_size = (unsigned)lbs,
    };
    vhost_user_blk_set_export_gone_handler(daemon_export_gone, NULL);
    return vhost_user_blk_export_add(&opts, errp);
}

bool daemon_vhost_user_blk_export_exists(const char *id)
{
    return vhost_user_blk_export_exists(id);
}

bool daemon_vhost_user_blk_export_del(const char *id, bool hard, Error **errp)
{
    return vhost_user_blk_export_del(id, hard, errp);
}

static void info_append(const VhostUserBlkExportInfo *info, void *opaque)
{
    json_array_append_new(opaque, json_pack("{s:s,s:s,s:s,s:b}", "type",
                                            "vhost-user-blk", "id", info->id,
                                            "node-name", info->node_name,
                                            "shutting-down", 0));
}

void daemon_vhost_user_blk_export_query(json_t *list)
{
    vhost_user_blk_export_foreach(info_append, list);
}

typedef struct FindByNode {
    const char *node_name;
    const char *found;
} FindByNode;

static void find_by_node(const VhostUserBlkExportInfo *info, void *opaque)
{
    FindByNode *f = opaque;

    if (!f->found && !strcmp(info->node_name, f->node_name)) {
        f->found = info->id;
    }
}

const char *daemon_vhost_user_blk_export_using_node(const char *node_name)
{
    FindByNode f = {.node_name = node_name};

    vhost_user_blk_export_foreach(find_by_node, &f);
    return f.found;
}

static void collect_id(const VhostUserBlkExportInfo *info, void *opaque)
{
    g_ptr_array_add(opaque, g_strdup(info->id));
}

void daemon_vhost_user_blk_exports_cleanup(void)
{
    g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);

    vhost_user_blk_export_foreach(collect_id, ids);
    for (guint i = 0; i < ids->len; i++) {
        vhost_user_blk_export_del(g_ptr_array_index(ids, i), true, NULL);
    }
}

unsigned daemon_vhost_user_blk_connections(void)
{
    return vhost_user_blk_get_connection_count();
}
