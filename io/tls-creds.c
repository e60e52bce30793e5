/*
 * What the TLS credentials types share: the reference count, the lookup by
 * object id, the endpoint and priority properties, and reading the files
 * of the credentials directory.  The types themselves are in
 * tls-creds-x509.c and tls-creds-psk.c.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "dataplane/authz.h"
#include "io/file-read.h"
#include "io/tls-creds-int.h"
#include "util/atomic.h"

/* GnuTLS's own default; a priority= property replaces it. */
#define TLS_DEFAULT_PRIORITY "NORMAL"
/* PSK key exchanges are not in NORMAL: a PSK object adds them. */
#define TLS_PSK_PRIORITY_SUFFIX ":+ECDHE-PSK:+DHE-PSK:+PSK"

void tls_creds_init(void)
{
    tls_creds_x509_register();
    tls_creds_psk_register();
    authz_init();
}

TlsCreds *tls_creds_find(const char *id, Object **obj, Error **errp)
{
    Object *o = object_find(id);
    const char *type;

    if (!o) {
        error_setg(errp, "No TLS credentials with id '%s'", id);
        return NULL;
    }
    type = object_get_type(o);
    if (strcmp(type, "tls-creds-x509") != 0 &&
        strcmp(type, "tls-creds-psk") != 0) {
        error_setg(errp, "Object '%s' is not TLS credentials (it is a %s)", id,
                   type);
        return NULL;
    }
    if (obj) {
        *obj = o;
    }
    return object_get_instance(o);
}

void tls_creds_ref(TlsCreds *creds)
{
    dp_atomic_inc_relaxed(&creds->refcnt);
}

void tls_creds_unref(TlsCreds *creds)
{
    /* acq_rel: every session's use of creds happens before the free. */
    if (dp_atomic_fetch_sub_acq_rel(&creds->refcnt, 1) != 1) {
        return;
    }
    if (creds->x509) {
        gnutls_certificate_free_credentials(creds->x509);
    }
    if (creds->psk_server) {
        gnutls_psk_free_server_credentials(creds->psk_server);
    }
    if (creds->psk_client) {
        gnutls_psk_free_client_credentials(creds->psk_client);
    }
    if (creds->dh) {
        gnutls_dh_params_deinit(creds->dh);
    }
    if (creds->priority) {
        gnutls_priority_deinit(creds->priority);
    }
    if (creds->psk_keys) {
        g_hash_table_unref(creds->psk_keys);
    }
    g_free(creds->id);
    g_free(creds);
}

TlsEndpoint tls_creds_get_endpoint(const TlsCreds *creds)
{
    return creds->endpoint;
}

const char *tls_creds_get_id(const TlsCreds *creds)
{
    return creds->id;
}

const char *tls_creds_get_kind_name(const TlsCreds *creds)
{
    return creds->kind == TLS_CREDS_X509 ? "x509" : "psk";
}

TlsCreds *tls_creds_new(TlsCredsKind kind, const char *id,
                        const ObjectProps *props, Error **errp)
{
    const char *endpoint = object_props_get_str(props, "endpoint");
    const char *prio = object_props_get_str(props, "priority");
    g_autofree char *full = NULL;
    const char *err_pos = NULL;
    TlsCreds *creds;
    int ret;

    creds = g_new0(TlsCreds, 1);
    creds->refcnt = 1;
    creds->kind = kind;
    creds->id = g_strdup(id);
    if (!strcmp(endpoint, "server")) {
        creds->endpoint = TLS_ENDPOINT_SERVER;
    } else if (!strcmp(endpoint, "client")) {
        creds->endpoint = TLS_ENDPOINT_CLIENT;
    } else {
        error_setg(errp,
                   "Parameter 'endpoint' does not accept value '%s' "
                   "(client or server)",
                   endpoint);
        goto fail;
    }
    full =
        g_strconcat(prio ? prio : TLS_DEFAULT_PRIORITY,
                    kind == TLS_CREDS_PSK ? TLS_PSK_PRIORITY_SUFFIX : "", NULL);
    ret = gnutls_priority_init(&creds->priority, full, &err_pos);
    if (ret < 0) {
        creds->priority = NULL;
        error_setg(errp, "TLS priority string '%s' is not valid: %s (at '%s')",
                   full, gnutls_strerror(ret), err_pos ? err_pos : "");
        goto fail;
    }
    return creds;

fail:
    tls_creds_unref(creds);
    return NULL;
}

void tls_creds_destroy(void *instance)
{
    /* Sessions still closing keep their own references. */
    tls_creds_unref(instance);
}

/* ---- files ----------------------------------------------------------------
 */

bool tls_creds_check_dir(const char *dir, Error **errp)
{
    struct stat st;

    if (stat(dir, &st) < 0) {
        error_setg_errno(errp, errno, "TLS credentials directory '%s'", dir);
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        error_setg(errp, "TLS credentials directory '%s' is not a directory",
                   dir);
        return false;
    }
    return true;
}

bool tls_creds_read_file(const char *dir, const char *name, bool required,
                         gnutls_datum_t *out, Error **errp)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    char *data;
    size_t len;

    if (!io_read_small_file(path, "TLS credentials file", TLS_CREDS_FILE_MAX,
                            required, &data, &len, errp)) {
        return false;
    }
    out->data = (unsigned char *)data;
    out->size = len;
    return true;
}

bool tls_creds_load_dh(TlsCreds *creds, const char *dir, Error **errp)
{
    gnutls_datum_t data;
    int ret;

    if (!tls_creds_read_file(dir, "dh-params.pem", false, &data, errp)) {
        return false;
    }
    if (!data.data) {
        return true; /* GnuTLS's known parameters, set by the caller */
    }
    gnutls_dh_params_init(&creds->dh);
    ret = gnutls_dh_params_import_pkcs3(creds->dh, &data, GNUTLS_X509_FMT_PEM);
    g_free(data.data);
    if (ret < 0) {
        error_setg(errp, "Cannot load DH parameters '%s/dh-params.pem': %s",
                   dir, gnutls_strerror(ret));
        gnutls_dh_params_deinit(creds->dh);
        creds->dh = NULL;
        return false;
    }
    return true;
}
