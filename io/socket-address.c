/* Typed socket addresses: building, parsing, printing; see
 * include/dataplane/socket.h. */
#include <limits.h>
#include <string.h>

#include "dataplane/input.h"
#include "dataplane/keyval.h"
#include "dataplane/socket.h"

SocketAddress *socket_address_new_unix(const char *path)
{
    SocketAddress *addr = g_new0(SocketAddress, 1);

    addr->type = SOCKET_ADDRESS_UNIX;
    addr->path = g_strdup(path);
    addr->mode = -1;
    addr->fd = -1;
    return addr;
}

SocketAddress *socket_address_new_inet(const char *host, const char *port)
{
    SocketAddress *addr = g_new0(SocketAddress, 1);

    addr->type = SOCKET_ADDRESS_INET;
    addr->host = g_strdup(host ? host : "");
    addr->port = g_strdup(port);
    addr->mode = -1;
    addr->fd = -1;
    return addr;
}

static SocketAddress *socket_address_new_fd(int fd)
{
    SocketAddress *addr = g_new0(SocketAddress, 1);

    addr->type = SOCKET_ADDRESS_FD;
    addr->mode = -1;
    addr->fd = fd;
    return addr;
}

SocketAddress *socket_address_copy(const SocketAddress *addr)
{
    SocketAddress *copy = g_new0(SocketAddress, 1);

    *copy = *addr;
    copy->path = g_strdup(addr->path);
    copy->host = g_strdup(addr->host);
    copy->port = g_strdup(addr->port);
    return copy;
}

void socket_address_free(SocketAddress *addr)
{
    if (addr) {
        g_free(addr->path);
        g_free(addr->host);
        g_free(addr->port);
        g_free(addr);
    }
}

char *socket_address_to_string(const SocketAddress *addr)
{
    switch (addr->type) {
    case SOCKET_ADDRESS_UNIX:
        return g_strdup_printf("unix:%s", addr->path);
    case SOCKET_ADDRESS_INET:
        if (strchr(addr->host, ':')) {
            return g_strdup_printf("[%s]:%s", addr->host, addr->port);
        }
        return g_strdup_printf("%s:%s", addr->host, addr->port);
    case SOCKET_ADDRESS_FD:
        return g_strdup_printf("fd:%d", addr->fd);
    }
    g_assert_not_reached();
}

static bool parse_fd(const char *name, const char *text, int *fd, Error **errp)
{
    int64_t v;

    if (!input_parse_int(name, text, 0, INT_MAX, &v, errp)) {
        return false;
    }
    *fd = (int)v;
    return true;
}

SocketAddress *socket_address_parse(const char *str, Error **errp)
{
    const char *colon;
    g_autofree char *host = NULL;
    const char *port;
    int fd;

    if (g_str_has_prefix(str, "unix:")) {
        return socket_address_new_unix(str + 5);
    }
    if (str[0] == '/') {
        return socket_address_new_unix(str);
    }
    if (g_str_has_prefix(str, "fd:")) {
        if (!parse_fd("fd", str + 3, &fd, errp)) {
            return NULL;
        }
        return socket_address_new_fd(fd);
    }
    if (str[0] == '[') {
        const char *end = strchr(str, ']');

        if (!end || end[1] != ':') {
            error_setg(errp, "bad address '%s': expected [host]:port", str);
            return NULL;
        }
        host = g_strndup(str + 1, end - str - 1);
        port = end + 2;
    } else {
        colon = strrchr(str, ':');
        if (!colon) {
            error_setg(errp, "bad address '%s': expected host:port", str);
            return NULL;
        }
        host = g_strndup(str, colon - str);
        port = colon + 1;
    }
    if (!*port) {
        error_setg(errp, "bad address '%s': missing port", str);
        return NULL;
    }
    return socket_address_new_inet(host, port);
}

/* ---- keyval ------------------------------------------------------------ */

/* The legacy shape {"type": .., "data": {..}}: data's members, one up. */
static void lift_legacy_data(GHashTable *addr)
{
    g_autoptr(GHashTable) data = keyval_take_prefix(addr, "data");
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, data);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_hash_table_insert(addr, g_strdup(k), g_strdup(v));
    }
}

static char *required(GHashTable *addr, const char *what, const char *key,
                      Error **errp)
{
    char *v = keyval_take(addr, key);

    if (!v) {
        error_setg(errp, "Parameter '%s.%s' is missing", what, key);
    }
    return v;
}

static SocketAddress *unix_from_keyval(GHashTable *addr, const char *what,
                                       Error **errp)
{
    g_autofree char *path = required(addr, what, "path", errp);
    g_autofree char *abstract = keyval_take(addr, "abstract");
    g_autofree char *tight = keyval_take(addr, "tight");
    g_autofree char *mode = keyval_take(addr, "mode");
    g_autofree char *name = g_strdup_printf("%s.mode", what);
    SocketAddress *sa;
    bool b = false;
    int64_t m = -1;

    if (!path) {
        return NULL;
    }
    if (abstract) {
        if (!input_parse_bool("abstract", abstract, &b, errp)) {
            return NULL;
        }
        if (b) {
            error_setg(errp, "Abstract unix sockets are not supported");
            return NULL;
        }
    }
    /* tight only matters for abstract sockets; QEMU takes it anyway. */
    if (tight && !input_parse_bool("tight", tight, &b, errp)) {
        return NULL;
    }
    if (mode && !input_parse_int(name, mode, 0, 0777, &m, errp)) {
        return NULL;
    }
    sa = socket_address_new_unix(path);
    sa->mode = (int)m;
    return sa;
}

static SocketAddress *inet_from_keyval(GHashTable *addr, const char *what,
                                       Error **errp)
{
    g_autofree char *host = required(addr, what, "host", errp);
    g_autofree char *port = host ? required(addr, what, "port", errp) : NULL;

    if (!host || !port) {
        return NULL;
    }
    return socket_address_new_inet(host, port);
}

static SocketAddress *fd_from_keyval(GHashTable *addr, const char *what,
                                     Error **errp)
{
    g_autofree char *str = required(addr, what, "str", errp);
    g_autofree char *name = g_strdup_printf("%s.str", what);
    int fd;

    if (!str || !parse_fd(name, str, &fd, errp)) {
        return NULL;
    }
    return socket_address_new_fd(fd);
}

SocketAddress *socket_address_from_keyval(GHashTable *addr, const char *what,
                                          Error **errp)
{
    g_autofree char *type = NULL;
    SocketAddress *sa;

    lift_legacy_data(addr);
    type = keyval_take(addr, "type");
    if (!type) {
        error_setg(errp, "Parameter '%s.type' is missing", what);
        return NULL;
    }
    if (!strcmp(type, "unix")) {
        sa = unix_from_keyval(addr, what, errp);
    } else if (!strcmp(type, "inet")) {
        sa = inet_from_keyval(addr, what, errp);
    } else if (!strcmp(type, "fd")) {
        sa = fd_from_keyval(addr, what, errp);
    } else {
        error_setg(errp,
                   "Parameter '%s.type' does not accept value '%s' "
                   "(unix, inet or fd)",
                   what, type);
        return NULL;
    }
    if (sa && !keyval_check_empty(addr, what, errp)) {
        socket_address_free(sa);
        return NULL;
    }
    return sa;
}
