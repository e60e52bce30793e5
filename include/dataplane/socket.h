/*
 * Sockets: typed socket addresses and listeners with the rules every
 * listener of the project shares (the NBD server, the QMP monitor, the
 * vhost-user export).  The io/ layer: used by nbd/, vhost/ and daemon/,
 * never the other way.
 *
 * Addresses
 * ---------
 * A SocketAddress is one of QEMU's SocketAddress kinds:
 *   unix   a path (abstract sockets are not supported)
 *   inet   host and port: TCP on every address the host resolves to
 *          (IPv4 and IPv6); host "" means every local address; port a
 *          number or a service name, 0 for one the kernel picks
 *   fd     a socket this process already holds open and listening (a
 *          number; systemd-style socket activation, a parent's socket)
 *
 * The rules of a listener
 * -----------------------
 *  - unix: a live socket at the path (something accepts connections on
 *    it) is refused: "'<path>' is in use by another process"; a stale one
 *    (nothing listens) is replaced; any other kind of file is refused.
 *  - unix: the socket file is created with an explicit mode, 0600 unless
 *    the address says otherwise (SocketAddress.mode), whatever the umask.
 *  - unix: socket_listener_free() removes the path only if it is still
 *    the socket this listener created (same device and inode), so a
 *    listener never deletes a file that another process put there since.
 *  - accept() at the file-descriptor limit (EMFILE, ENFILE, also ENOBUFS,
 *    ENOMEM) stops watching the socket and retries after
 *    SOCKET_ACCEPT_RETRY_MS instead of spinning on a socket that stays
 *    readable; pending connections wait in the kernel's backlog meanwhile.
 *    Errors are logged rate-limited (util/ratelimit.h).
 *  - accepted sockets are non-blocking and close-on-exec; at most
 *    SOCKET_ACCEPT_BURST are taken per wake-up, so a flood of connections
 *    cannot starve the rest of the loop.
 *
 * Thread-safety: the address functions are safe from any thread (an
 * address belongs to one thread at a time).  A listener belongs to the
 * AioContext it was created in: create, use and free it in that context's
 * thread (or holding the context); its accept callback runs there.
 */
#ifndef DATAPLANE_SOCKET_H
#define DATAPLANE_SOCKET_H

#include <stdbool.h>
#include <glib.h>

#include "dataplane/aio.h"
#include "dataplane/error.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

typedef enum SocketAddressType {
    SOCKET_ADDRESS_UNIX,
    SOCKET_ADDRESS_INET,
    SOCKET_ADDRESS_FD,
} SocketAddressType;

/* The mode of a unix socket file when the address does not give one. */
#define SOCKET_DEFAULT_MODE 0600

typedef struct SocketAddress {
    SocketAddressType type;
    char *path; /* unix */
    int mode;   /* unix, when listening: permission bits; -1: the default */
    char *host; /* inet: a name or a numeric address; "": every address */
    char *port; /* inet: a number or a service name */
    int fd;     /* fd */
} SocketAddress;

/* A unix address for path with the default mode.  g_free-able parts. */
SocketAddress *socket_address_new_unix(const char *path);
/* An inet address; host NULL or "" means every local address. */
SocketAddress *socket_address_new_inet(const char *host, const char *port);
SocketAddress *socket_address_copy(const SocketAddress *addr);
void socket_address_free(SocketAddress *addr);

/*
 * Parses the short text form that test programs and examples take:
 * "unix:<path>" or a path starting with '/', "fd:<n>", "<host>:<port>",
 * "[<ipv6>]:<port>" or ":<port>" (every address).
 */
SocketAddress *socket_address_parse(const char *str, Error **errp);

/*
 * Takes an address out of a keyval table in QEMU's SocketAddress shape,
 * flat ("type", "path" / "host", "port" / "str") or the legacy one of
 * nbd-server-start ("type" plus the members under "data"), as the keys
 * under "addr." arrive once keyval_take_prefix(opts, "addr") has removed
 * them.  "mode" (unix) is this project's extension (QEMU has no such key;
 * an integer in the input.h syntax, "0660", within 0 and 0777).  Every key
 * is consumed; an unknown one is an error that names it, with what
 * ("addr") in front.
 */
SocketAddress *socket_address_from_keyval(GHashTable *addr, const char *what,
                                          Error **errp);

/* "unix:/path", "host:port", "[v6]:port", "fd:3", for messages.  g_free. */
char *socket_address_to_string(const SocketAddress *addr);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(SocketAddress, socket_address_free)

/* ---- listeners --------------------------------------------------------- */

#define SOCKET_ACCEPT_RETRY_MS 100
#define SOCKET_ACCEPT_BURST 16

typedef struct SocketListener SocketListener;

/*
 * Called in the listener's context with a new connection: fd is the
 * caller's to keep or close.  The callback may free the listener.
 */
typedef void SocketAcceptFunc(SocketListener *l, int fd, void *opaque);

/*
 * Listens on addr (copied; for inet, on every address the host resolves to,
 * all on the same port) and calls cb for each connection, in ctx.  Fails,
 * with one sentence, if the address cannot be listened on (the rules
 * above).  For an fd address the listener takes the fd over (it closes it
 * when freed); if this fails, the fd is left as it was.
 */
SocketListener *socket_listener_new(AioContext *ctx, const SocketAddress *addr,
                                    SocketAcceptFunc *cb, void *opaque,
                                    Error **errp);

/*
 * Stops accepting, closes the listening sockets and removes the unix
 * socket file if it is still the one this listener created.  NULL is a
 * no-op.
 */
void socket_listener_free(SocketListener *l);

/*
 * Stops (false) or resumes (true) accepting: meanwhile connections wait in
 * the kernel's backlog, as with a server that serves one client at a time
 * (a vhost-user-blk export).  Stopping from inside the accept callback
 * takes effect at once: no further connection of that wake-up is
 * accepted.  Listener's context.
 */
void socket_listener_set_accepting(SocketListener *l, bool on);

/* The address as given. */
const SocketAddress *socket_listener_get_address(SocketListener *l);
/* inet: the port listened on (the kernel's pick for port 0); else -1. */
int socket_listener_get_port(SocketListener *l);
/* How many times accept() ran out of file descriptors and the listener
 * backed off (for tests and introspection). */
unsigned socket_listener_get_backoff_count(SocketListener *l);

DP_API_END

#endif /* DATAPLANE_SOCKET_H */
