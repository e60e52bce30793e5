/*
 * The daemon's QMP command handlers, one file per area (qmp-misc.c,
 * qmp-objects.c, qmp-block.c, qmp-export.c, qmp-nbd.c,
 * qmp-vhost-user-blk.c), gathered in the table of qmp-commands.c.  Each has the
 * QmpHandler signature (qmp-dispatch.h) and runs in the main loop thread.
 */
#ifndef DATAPLANE_DAEMON_QMP_COMMANDS_H
#define DATAPLANE_DAEMON_QMP_COMMANDS_H

#include "qmp-dispatch.h"

/* qmp-misc.c */
QmpHandler qmp_cmd_qmp_capabilities;
QmpHandler qmp_cmd_query_version;
QmpHandler qmp_cmd_query_commands;
QmpHandler qmp_cmd_quit;

/* qmp-objects.c */
QmpHandler qmp_cmd_object_add;
QmpHandler qmp_cmd_object_del;
QmpHandler qmp_cmd_qom_list;
QmpHandler qmp_cmd_qom_get;
QmpHandler qmp_cmd_qom_set;
QmpHandler qmp_cmd_query_iothreads;
QmpHandler qmp_cmd_stop;
QmpHandler qmp_cmd_cont;

/* qmp-block.c */
QmpAsyncHandler qmp_cmd_blockdev_add;
QmpHandler qmp_cmd_blockdev_del;
QmpHandler qmp_cmd_query_named_block_nodes;
QmpHandler qmp_cmd_x_blockdev_set_iothread;
QmpAsyncHandler qmp_cmd_block_resize;

/* qmp-export.c */
QmpHandler qmp_cmd_block_export_add;
QmpHandler qmp_cmd_block_export_del;
QmpHandler qmp_cmd_query_block_exports;

/* qmp-nbd.c */
QmpHandler qmp_cmd_nbd_server_start;
QmpHandler qmp_cmd_nbd_server_stop;
QmpHandler qmp_cmd_nbd_server_add;
QmpHandler qmp_cmd_nbd_server_remove;

#endif /* DATAPLANE_DAEMON_QMP_COMMANDS_H */
