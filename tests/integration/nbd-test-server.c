/*
 * A small NBD server for the integration tests (until dataplaned exists):
 * opens block nodes, optionally moves them into an IOThread, exports them
 * and serves until SIGTERM/SIGINT.
 *
 *   nbd-test-server --listen /tmp/sock \
 *       --blockdev driver=memory,node-name=n0,size=64M \
 *       --export node=n0,name=disk,writable=on,description=text \
 *       [--iothread] [--move-every-ms N] [--max-connections N]
 *       [--handshake-max-seconds N]
 *
 * Prints "ready" on stdout once it listens (and "port N" first for TCP);
 * on SIGUSR1 prints "stats fds F connections C heap H" (open fds, NBD
 * connections, malloc'd bytes in use).
 * --move-every-ms moves every node between the IOThread and the main loop
 * that often, while clients do I/O.
 */
#include <dirent.h>
#include <getopt.h>
#include <glib-unix.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/block.h"
#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "dataplane/nbd.h"

static GPtrArray *nodes;
static IOThread *iothread;
static bool in_iothread;

/* "k=v,k=v" into a table (no escaping: the tests need none). */
static GHashTable *parse_kv(const char *s)
{
    GHashTable *t =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    char **parts = g_strsplit(s, ",", -1);
    char **p;

    for (p = parts; *p; p++) {
        char *eq = strchr(*p, '=');

        if (!eq) {
            fprintf(stderr, "nbd-test-server: '%s': expected key=value\n", *p);
            exit(2);
        }
        g_hash_table_insert(t, g_strndup(*p, eq - *p), g_strdup(eq + 1));
    }
    g_strfreev(parts);
    return t;
}

static gboolean on_signal(gpointer data)
{
    main_loop_quit();
    return G_SOURCE_CONTINUE;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    while ((e = readdir(d))) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* SIGUSR1: one line of counters on stdout, for the leak tests. */
static gboolean on_stats(gpointer data)
{
    struct mallinfo2 mi = mallinfo2();

    printf("stats fds %d connections %u heap %zu\n", count_fds(),
           nbd_server_get_connection_count(), mi.uordblks);
    fflush(stdout);
    return G_SOURCE_CONTINUE;
}

static gboolean move_nodes(gpointer data)
{
    AioContext *to = in_iothread ? main_loop_get_aio_context()
                                 : iothread_get_aio_context(iothread);
    guint i;

    for (i = 0; i < nodes->len; i++) {
        bdrv_set_aio_context(g_ptr_array_index(nodes, i), to, &error_abort);
    }
    in_iothread = !in_iothread;
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"blockdev", required_argument, NULL, 'b'},
        {"export", required_argument, NULL, 'e'},
        {"iothread", no_argument, NULL, 'i'},
        {"move-every-ms", required_argument, NULL, 'm'},
        {"max-connections", required_argument, NULL, 'c'},
        {"handshake-max-seconds", required_argument, NULL, 't'},
        {NULL},
    };
    const char *listen_addr = NULL;
    GPtrArray *exports = g_ptr_array_new();
    int max_conn = NBD_DEFAULT_MAX_CONNECTIONS;
    int hs_secs = NBD_DEFAULT_HANDSHAKE_MAX_SECONDS;
    int move_ms = 0;
    int c, n = 0;
    guint i;

    nodes = g_ptr_array_new();
    main_loop_init(&error_abort);
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            listen_addr = optarg;
            break;
        case 'b': {
            GHashTable *opts = parse_kv(optarg);
            Error *err = NULL;
            BlockDriverState *bs = bdrv_open(opts, &err);

            g_hash_table_unref(opts);
            if (!bs) {
                error_report_err(err);
                return 1;
            }
            g_ptr_array_add(nodes, bs);
            break;
        }
        case 'e':
            g_ptr_array_add(exports, optarg);
            break;
        case 'i':
            iothread = iothread_new("io0", NULL, &error_abort);
            break;
        case 'm':
            move_ms = atoi(optarg);
            break;
        case 'c':
            max_conn = atoi(optarg);
            break;
        case 't':
            hs_secs = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    if (!listen_addr) {
        fprintf(stderr, "nbd-test-server: --listen is required\n");
        return 2;
    }
    if (iothread) {
        for (i = 0; i < nodes->len; i++) {
            bdrv_set_aio_context(g_ptr_array_index(nodes, i),
                                 iothread_get_aio_context(iothread),
                                 &error_abort);
        }
        in_iothread = true;
    }
    {
        NbdServerOptions so = {.max_connections = max_conn,
                               .handshake_max_seconds = hs_secs};
        g_autoptr(SocketAddress) addr =
            socket_address_parse(listen_addr, &error_abort);

        if (!nbd_server_start(addr, &so, &error_abort)) {
            return 1;
        }
    }
    for (i = 0; i < exports->len; i++) {
        GHashTable *o = parse_kv(g_ptr_array_index(exports, i));
        const char *w = g_hash_table_lookup(o, "writable");
        char *id = g_strdup_printf("export%d", n++);

        nbd_export_add(id, g_hash_table_lookup(o, "node"),
                       g_hash_table_lookup(o, "name"),
                       g_hash_table_lookup(o, "description"),
                       w && strcmp(w, "on") == 0, &error_abort);
        g_free(id);
        g_hash_table_unref(o);
    }
    if (move_ms > 0 && iothread) {
        g_timeout_add(move_ms, move_nodes, NULL);
    }
    g_unix_signal_add(SIGTERM, on_signal, NULL);
    g_unix_signal_add(SIGINT, on_signal, NULL);
    g_unix_signal_add(SIGUSR1, on_stats, NULL);
    if (nbd_server_get_port() >= 0) {
        printf("port %d\n", nbd_server_get_port());
    }
    printf("ready\n");
    fflush(stdout);

    main_loop_run();

    nbd_server_stop(&error_abort);
    /* Closing connections finish through main-loop BHs. */
    for (i = 0; i < 100000 && nbd_server_get_connection_count() > 0; i++) {
        main_loop_wait(true);
    }
    for (i = 0; i < nodes->len; i++) {
        bdrv_unref(g_ptr_array_index(nodes, i));
    }
    if (iothread) {
        iothread_destroy(iothread);
    }
    g_ptr_array_free(nodes, TRUE);
    g_ptr_array_free(exports, TRUE);
    return 0;
}
