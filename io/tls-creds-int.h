/*
 * TLS credentials internals shared by io/tls-creds*.c and io/tls-session.c.
 * Not installed.
 *
 * A TlsCreds is built whole by a create hook (main loop) and never changes
 * afterwards, so sessions in any thread read it without a lock; GnuTLS
 * allows one credentials structure to serve many sessions at once.
 */
#ifndef DATAPLANE_IO_TLS_CREDS_INT_H
#define DATAPLANE_IO_TLS_CREDS_INT_H

#include <gnutls/gnutls.h>

#include "dataplane/tls-creds.h"

typedef enum TlsCredsKind {
    TLS_CREDS_X509,
    TLS_CREDS_PSK,
} TlsCredsKind;

/* Files are read whole, and none of these is larger. */
#define TLS_CREDS_FILE_MAX (1024 * 1024)
/* PSK usernames, as GnuTLS bounds them. */
#define TLS_PSK_USERNAME_MAX 128

struct TlsCreds {
    int refcnt; /* atomic */
    TlsCredsKind kind;
    TlsEndpoint endpoint;
    char *id;
    bool verify_peer; /* x509 */
    gnutls_priority_t priority;
    gnutls_dh_params_t dh; /* NULL: GnuTLS's known parameters */
    gnutls_certificate_credentials_t x509;
    gnutls_psk_server_credentials_t psk_server;
    gnutls_psk_client_credentials_t psk_client;
    /* PSK server: username -> GBytes key, read by the credentials
     * callback during handshakes. */
    GHashTable *psk_keys;
};

/* ---- tls-creds.c: what both kinds share --------------------------------- */

/* A TlsCreds with refcnt 1 and the common properties (endpoint, priority)
 * read from props; NULL and an Error for a bad endpoint or priority. */
TlsCreds *tls_creds_new(TlsCredsKind kind, const char *id,
                        const ObjectProps *props, Error **errp);
/* The object types' destroy hook. */
void tls_creds_destroy(void *instance);

/*
 * Reads dir/name whole into *out (g_free out->data).  A missing file
 * is an error if required, else true with out->data NULL.  Opens without
 * blocking (a FIFO cannot hang the main loop) and refuses anything but a
 * regular file of at most TLS_CREDS_FILE_MAX bytes.
 */
bool tls_creds_read_file(const char *dir, const char *name, bool required,
                         gnutls_datum_t *out, Error **errp);
/* Checks that dir is a directory: "TLS credentials directory '...': ...". */
bool tls_creds_check_dir(const char *dir, Error **errp);
/* Loads dir/dh-params.pem into creds->dh if it exists. */
bool tls_creds_load_dh(TlsCreds *creds, const char *dir, Error **errp);

/* The shared property table entries. */
#define TLS_CREDS_COMMON_PROPS                                                 \
    {"endpoint", OBJECT_VALUE_STR, "client or server", OBJECT_PROP_CREATE,     \
     "client"},                                                                \
        {"dir", OBJECT_VALUE_STR, "directory holding the credentials files",   \
         OBJECT_PROP_REQUIRED},                                                \
    {                                                                          \
        "priority", OBJECT_VALUE_STR,                                          \
            "GnuTLS priority string (default NORMAL)", OBJECT_PROP_CREATE      \
    }

/* ---- tls-creds-x509.c, tls-creds-psk.c ---------------------------------- */

void tls_creds_x509_register(void);
void tls_creds_psk_register(void);

/* The PSK server's key lookup (gnutls_psk_server_credentials_function). */
int tls_creds_psk_server_lookup(gnutls_session_t session, const char *username,
                                gnutls_datum_t *key);

#endif /* DATAPLANE_IO_TLS_CREDS_INT_H */
