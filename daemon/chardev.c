/*
 * --chardev and --monitor: the daemon's monitor endpoints.
 *
 * Only what a storage daemon's management needs: listening unix sockets
 * (backend socket, server=on, wait=off) carrying a QMP monitor.  A chardev
 * is a name for a path until a --monitor uses it; the socket is created
 * then, so a chardev nobody uses leaves nothing on disk.
 */
#include <string.h>

#include "dataplane/input.h"
#include "dataplane/keyval.h"
#include "dataplane/main-loop.h"
#include "daemon.h"
#include "monitor.h"

typedef struct Chardev {
    char *id;
    char *path;
    bool in_use; /* a monitor runs on it */
} Chardev;

static GPtrArray *chardevs; /* Chardev * */
static GPtrArray *monitors; /* Monitor * */

static void chardev_free(gpointer p)
{
    Chardev *c = p;

    g_free(c->id);
    g_free(c->path);
    g_free(c);
}

static Chardev *chardev_find(const char *id)
{
    for (guint i = 0; chardevs && i < chardevs->len; i++) {
        Chardev *c = g_ptr_array_index(chardevs, i);

        if (!strcmp(c->id, id)) {
            return c;
        }
    }
    return NULL;
}

/* Takes a boolean key out of opts; absent keys leave *out alone. */
static bool take_bool(GHashTable *opts, const char *key, bool *out,
                      Error **errp)
{
    g_autofree char *v = keyval_take(opts, key);

    return !v || input_parse_bool(key, v, out, errp);
}

bool daemon_chardev_add(GHashTable *opts, Error **errp)
{
    g_autoptr(GHashTable) o = keyval_new();
    g_autofree char *backend = NULL;
    g_autofree char *id = NULL;
    g_autofree char *path = NULL;
    bool server = false;
    bool wait = true;
    Chardev *c;
    GHashTableIter it;
    gpointer k, v;

    /* Work on a copy: the caller's table stays intact for messages. */
    g_hash_table_iter_init(&it, opts);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_hash_table_insert(o, g_strdup(k), g_strdup(v));
    }
    backend = keyval_take(o, "backend");
    id = keyval_take(o, "id");
    path = keyval_take(o, "path");
    if (!backend) {
        error_setg(errp, "Parameter 'backend' is missing");
        return false;
    }
    if (strcmp(backend, "socket") != 0) {
        error_setg(errp,
                   "chardev backend '%s' is not supported "
                   "(only 'socket')",
                   backend);
        return false;
    }
    if (!input_check_id("id", id, errp)) {
        return false;
    }
    if (!path) {
        error_setg(errp, "Parameter 'path' is missing "
                         "(only unix sockets are supported)");
        return false;
    }
    if (!take_bool(o, "server", &server, errp) ||
        !take_bool(o, "wait", &wait, errp)) {
        return false;
    }
    if (!server) {
        error_setg(errp, "chardev '%s': only server=on is supported", id);
        return false;
    }
    if (wait) {
        error_setg(errp, "chardev '%s': wait=off is required", id);
        return false;
    }
    if (!keyval_check_empty(o, "--chardev", errp)) {
        return false;
    }
    if (chardev_find(id)) {
        error_setg(errp, "Duplicate ID '%s' for chardev", id);
        return false;
    }
    if (!chardevs) {
        chardevs = g_ptr_array_new_with_free_func(chardev_free);
    }
    c = g_new0(Chardev, 1);
    c->id = g_steal_pointer(&id);
    c->path = g_steal_pointer(&path);
    g_ptr_array_add(chardevs, c);
    return true;
}

bool daemon_monitor_add(GHashTable *opts, Error **errp)
{
    const char *id = g_hash_table_lookup(opts, "chardev");
    const char *mode = g_hash_table_lookup(opts, "mode");
    const char *pretty = g_hash_table_lookup(opts, "pretty");
    GHashTableIter it;
    gpointer k;
    Chardev *c;
    Monitor *mon;

    g_hash_table_iter_init(&it, opts);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        if (strcmp(k, "chardev") && strcmp(k, "mode") && strcmp(k, "pretty")) {
            error_setg(errp, "Invalid parameter '%s'", (char *)k);
            return false;
        }
    }
    if (!id) {
        error_setg(errp, "Parameter 'chardev' is missing");
        return false;
    }
    if (mode && strcmp(mode, "control") != 0) {
        error_setg(errp, "monitor mode '%s' is not supported (only 'control')",
                   mode);
        return false;
    }
    if (pretty) {
        bool b;

        if (!input_parse_bool("pretty", pretty, &b, errp)) {
            return false;
        }
        if (b) {
            error_setg(errp, "pretty=on is not supported");
            return false;
        }
    }
    c = chardev_find(id);
    if (!c) {
        error_setg(errp, "chardev '%s' not found", id);
        return false;
    }
    if (c->in_use) {
        error_setg(errp, "chardev '%s' is already in use by a monitor", id);
        return false;
    }
    mon = monitor_new(main_loop_get_aio_context(), c->path, qmp_commands, errp);
    if (!mon) {
        return false;
    }
    c->in_use = true;
    if (!monitors) {
        monitors = g_ptr_array_new();
    }
    g_ptr_array_add(monitors, mon);
    return true;
}

void daemon_monitors_stop_listening(void)
{
    for (guint i = 0; monitors && i < monitors->len; i++) {
        monitor_stop_listening(g_ptr_array_index(monitors, i));
    }
}

void daemon_monitors_free(void)
{
    for (guint i = 0; monitors && i < monitors->len; i++) {
        monitor_free(g_ptr_array_index(monitors, i));
    }
    g_clear_pointer(&monitors, g_ptr_array_unref);
    g_clear_pointer(&chardevs, g_ptr_array_unref);
}
