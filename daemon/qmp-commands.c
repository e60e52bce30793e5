/* The dispatch table: every QMP command dataplaned implements. */
#include "qmp-commands.h"

const QmpCommand qmp_commands[] = {
    {"qmp_capabilities", qmp_cmd_qmp_capabilities, QMP_CMD_NEGOTIATION},
    {"query-version", qmp_cmd_query_version, 0},
    {"query-commands", qmp_cmd_query_commands, 0},
    {"quit", qmp_cmd_quit, 0},

    {"object-add", qmp_cmd_object_add, 0},
    {"object-del", qmp_cmd_object_del, 0},
    {"qom-list", qmp_cmd_qom_list, 0},
    {"qom-get", qmp_cmd_qom_get, 0},
    {"qom-set", qmp_cmd_qom_set, 0},
    {"query-iothreads", qmp_cmd_query_iothreads, 0},
    {"stop", qmp_cmd_stop, 0},
    {"cont", qmp_cmd_cont, 0},

    {"blockdev-add", qmp_cmd_blockdev_add, 0},
    {"blockdev-del", qmp_cmd_blockdev_del, 0},
    {"query-named-block-nodes", qmp_cmd_query_named_block_nodes, 0},
    {"x-blockdev-set-iothread", qmp_cmd_x_blockdev_set_iothread, 0},
    {"block_resize", qmp_cmd_block_resize, 0},

    {"nbd-server-start", qmp_cmd_nbd_server_start, 0},
    {"nbd-server-stop", qmp_cmd_nbd_server_stop, 0},
    {"block-export-add", qmp_cmd_block_export_add, 0},
    {"block-export-del", qmp_cmd_block_export_del, 0},
    {"query-block-exports", qmp_cmd_query_block_exports, 0},
    {"nbd-server-add", qmp_cmd_nbd_server_add, 0},
    {"nbd-server-remove", qmp_cmd_nbd_server_remove, 0},
    {NULL},
};
