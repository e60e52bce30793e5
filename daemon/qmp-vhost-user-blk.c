/*
 * The vhost-user-blk type of block-export-add / --export, with
 * qemu-storage-daemon's option names:
 *
 *   type=vhost-user-blk,id=<id>,node-name=<node>,addr.type=unix,
 *   addr.path=<path>[,writable=on|off][,num-queues=<n>]
 *   [,logical-block-size=<size>][,iothread=<id>]
 *   [,iothread.0=<id>,iothread.1=<id>...]
 *
 * iothread given as a list (QEMU 10.1's multi-threaded export): the node
 * stays where it is and virtqueue i is served in IOThread list[i % n].
 *
 * qmp-export.c has taken the common keys; the address and the two numbers
 * are this file's.  The address is io/'s SocketAddress (unix, with
 * addr.mode; or fd, a listening unix socket); inet is refused, since a
 * vhost-user front-end passes file descriptors.
 */
#include <string.h>

#include "dataplane/input.h"
#include "dataplane/iothread.h"
#include "dataplane/keyval.h"
#include "dataplane/socket.h"
#include "dataplane/vhost-user-blk.h"
#include "daemon.h"
#include "qmp-json.h"

bool daemon_vhost_user_blk_export_add(GHashTable *o,
                                      const DaemonExportCommon *c, Error **errp)
{
    g_autoptr(GHashTable) addr_opts = keyval_take_prefix(o, "addr");
    g_autofree char *lbs_text = keyval_take(o, "logical-block-size");
    g_autoptr(SocketAddress) addr = NULL;
    int64_t num_queues = 1;
    uint64_t lbs = 512;
    g_autofree AioContext **ctxs = NULL;
    VhostUserBlkExportOptions opts;

    if (g_hash_table_size(addr_opts) == 0) {
        error_setg(errp, "Parameter 'addr' is missing");
        return false;
    }
    addr = socket_address_from_keyval(addr_opts, "addr", errp);
    if (!addr ||
        !daemon_take_int(o, "num-queues", 1, VHOST_USER_BLK_MAX_QUEUES,
                         &num_queues, errp) ||
        (lbs_text && !input_parse_size("logical-block-size", lbs_text, 65536,
                                       &lbs, errp)) ||
        !keyval_check_empty(o, "export", errp)) {
        return false;
    }
    if (addr->type == SOCKET_ADDRESS_INET) {
        error_setg(errp, "Parameter 'addr.type' does not accept value 'inet' "
                         "(vhost-user-blk exports listen on unix sockets: "
                         "unix or fd)");
        return false;
    }
    if (!daemon_export_prepare_node(c, errp)) {
        return false;
    }
    opts = (VhostUserBlkExportOptions){
        .id = c->id,
        .node_name = c->node_name,
        .addr = addr,
        .writable = c->writable,
        .num_queues = (unsigned)num_queues,
        .logical_block_size = (unsigned)lbs,
    };
    if (c->n_iothreads > 0) {
        /* Multi-threaded: the virtqueues are spread over the IOThreads. */
        ctxs = g_new(AioContext *, c->n_iothreads);
        for (unsigned i = 0; i < c->n_iothreads; i++) {
            ctxs[i] = iothread_get_aio_context(c->iothreads[i]);
        }
        opts.ctxs = ctxs;
        opts.n_ctxs = c->n_iothreads;
    }
    vhost_user_blk_set_export_gone_handler(daemon_export_gone, NULL);
    if (!vhost_user_blk_export_add(&opts, errp)) {
        return false;
    }
    if (c->n_iothreads > 0) {
        daemon_export_hold_iothreads(c);
    }
    return true;
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
    json_t *e = json_pack("{s:s,s:o,s:o,s:b}", "type", "vhost-user-blk", "id",
                          qmp_json_str(info->id), "node-name",
                          qmp_json_str(info->node_name), "shutting-down", 0);
    const char *const *ids = daemon_export_iothread_ids(info->id);

    if (ids) {
        /* A multi-threaded export: the IOThreads, as block-export-add
         * took them (QEMU's query does not show them). */
        json_t *list = json_array();

        for (int i = 0; ids[i]; i++) {
            json_array_append_new(list, qmp_json_str(ids[i]));
        }
        json_object_set_new(e, "iothread", list);
        /* And how many requests the connected front-end's queues took in
         * each, counted in that IOThread (ours only). */
        list = json_array();
        for (unsigned i = 0; i < info->n_contexts; i++) {
            json_array_append_new(list,
                                  json_integer(info->context_requests[i]));
        }
        json_object_set_new(e, "x-iothread-requests", list);
    }
    json_array_append_new(opaque, e);
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
