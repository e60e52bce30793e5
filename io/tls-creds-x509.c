/*
 * The "tls-creds-x509" object type: a CA, and this endpoint's certificate
 * and key, read from the PEM files of a directory (QEMU's file names; see
 * include/dataplane/tls-creds.h).
 *
 * Creation runs in the main loop (object-add): the files are read without
 * blocking on anything but a regular file's own read, parsed, and (with
 * sanity-check=on) checked for the mistakes that would otherwise surface as
 * a handshake failure on the first client: a certificate outside its
 * validity period, a CA that is not a CA, a certificate the CA did not
 * issue, a key purpose that forbids the role.
 */
#include <string.h>
#include <time.h>

#include <gnutls/x509.h>

#include "io/tls-creds-int.h"

/* A parsed PEM bundle. */
typedef struct CertList {
    gnutls_x509_crt_t *certs;
    unsigned n;
} CertList;

static void cert_list_clear(CertList *l)
{
    unsigned i;

    for (i = 0; i < l->n; i++) {
        gnutls_x509_crt_deinit(l->certs[i]);
    }
    gnutls_free(l->certs);
    l->certs = NULL;
    l->n = 0;
}

static bool cert_list_parse(const char *path, const gnutls_datum_t *data,
                            CertList *out, Error **errp)
{
    int ret = gnutls_x509_crt_list_import2(&out->certs, &out->n, data,
                                           GNUTLS_X509_FMT_PEM, 0);

    if (ret < 0) {
        out->certs = NULL;
        out->n = 0;
        error_setg(errp, "Cannot load certificates from '%s': %s", path,
                   gnutls_strerror(ret));
        return false;
    }
    if (out->n == 0) {
        error_setg(errp, "'%s' holds no certificate", path);
        return false;
    }
    return true;
}

/* Activation and expiry of every certificate of l. */
static bool check_times(const char *path, const CertList *l, Error **errp)
{
    time_t now = time(NULL);
    unsigned i;

    for (i = 0; i < l->n; i++) {
        time_t start = gnutls_x509_crt_get_activation_time(l->certs[i]);
        time_t end = gnutls_x509_crt_get_expiration_time(l->certs[i]);

        if (start == (time_t)-1 || end == (time_t)-1) {
            error_setg(errp, "Certificate %u of '%s' has no validity period",
                       i + 1, path);
            return false;
        }
        if (now < start) {
            error_setg(errp, "Certificate %u of '%s' is not valid yet", i + 1,
                       path);
            return false;
        }
        if (now > end) {
            error_setg(errp, "Certificate %u of '%s' has expired", i + 1, path);
            return false;
        }
    }
    return true;
}

static bool check_ca(const char *path, const CertList *ca, Error **errp)
{
    unsigned i;

    for (i = 0; i < ca->n; i++) {
        unsigned critical = 0, is_ca = 0;
        int pathlen = 0;
        int ret = gnutls_x509_crt_get_basic_constraints(ca->certs[i], &critical,
                                                        &is_ca, &pathlen);

        /* A version 1 certificate has no extensions and may be a CA. */
        if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE &&
            gnutls_x509_crt_get_version(ca->certs[i]) < 3) {
            continue;
        }
        if (ret < 0 || !is_ca) {
            error_setg(errp,
                       "Certificate %u of '%s' is not a CA certificate "
                       "(basic constraints)",
                       i + 1, path);
            return false;
        }
    }
    return check_times(path, ca, errp);
}

/* The endpoint's own certificate: times, purpose, issued by the CA. */
static bool check_own_cert(const char *path, const CertList *cert,
                           const CertList *ca, TlsEndpoint endpoint,
                           Error **errp)
{
    const char *purpose = endpoint == TLS_ENDPOINT_SERVER
                              ? GNUTLS_KP_TLS_WWW_SERVER
                              : GNUTLS_KP_TLS_WWW_CLIENT;
    unsigned status = 0;
    int ret;

    if (!check_times(path, cert, errp)) {
        return false;
    }
    /* True also when the certificate states no purpose at all. */
    if (!gnutls_x509_crt_check_key_purpose(cert->certs[0], purpose, 0)) {
        error_setg(errp, "The certificate in '%s' may not be used by a TLS %s",
                   path, endpoint == TLS_ENDPOINT_SERVER ? "server" : "client");
        return false;
    }
    ret = gnutls_x509_crt_list_verify(cert->certs, cert->n, ca->certs, ca->n,
                                      NULL, 0, 0, &status);
    if (ret < 0 || status != 0) {
        gnutls_datum_t why = {NULL, 0};

        if (ret >= 0) {
            gnutls_certificate_verification_status_print(
                status, GNUTLS_CRT_X509, &why, 0);
        }
        error_setg(errp,
                   "The certificate in '%s' does not verify against the "
                   "CA certificates: %s",
                   path,
                   ret < 0 ? gnutls_strerror(ret)
                           : (why.data ? (char *)why.data : "unknown reason"));
        gnutls_free(why.data);
        return false;
    }
    return true;
}

/* Loads ca-cert.pem (and ca-crl.pem) as the trust list. */
static bool load_ca(TlsCreds *creds, const char *dir, bool sanity, CertList *ca,
                    Error **errp)
{
    g_autofree char *path = g_build_filename(dir, "ca-cert.pem", NULL);
    gnutls_datum_t data, crl;
    int ret;

    if (!tls_creds_read_file(dir, "ca-cert.pem", true, &data, errp)) {
        return false;
    }
    if (!cert_list_parse(path, &data, ca, errp) ||
        (sanity && !check_ca(path, ca, errp))) {
        g_free(data.data);
        return false;
    }
    ret = gnutls_certificate_set_x509_trust_mem(creds->x509, &data,
                                                GNUTLS_X509_FMT_PEM);
    g_free(data.data);
    if (ret < 0) {
        error_setg(errp, "Cannot load CA certificates '%s': %s", path,
                   gnutls_strerror(ret));
        return false;
    }
    if (!tls_creds_read_file(dir, "ca-crl.pem", false, &crl, errp)) {
        return false;
    }
    if (crl.data) {
        ret = gnutls_certificate_set_x509_crl_mem(creds->x509, &crl,
                                                  GNUTLS_X509_FMT_PEM);
        g_free(crl.data);
        if (ret < 0) {
            error_setg(errp, "Cannot load the CRL '%s/ca-crl.pem': %s", dir,
                       gnutls_strerror(ret));
            return false;
        }
    }
    return true;
}

/* Loads <role>-cert.pem and <role>-key.pem; both optional for a client. */
static bool load_own(TlsCreds *creds, const char *dir, bool sanity,
                     const CertList *ca, Error **errp)
{
    bool server = creds->endpoint == TLS_ENDPOINT_SERVER;
    const char *cert_name = server ? "server-cert.pem" : "client-cert.pem";
    const char *key_name = server ? "server-key.pem" : "client-key.pem";
    g_autofree char *cert_path = g_build_filename(dir, cert_name, NULL);
    gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
    CertList own = {NULL, 0};
    bool ok = false;
    int ret;

    if (!tls_creds_read_file(dir, cert_name, server, &cert, errp) ||
        !tls_creds_read_file(dir, key_name, server, &key, errp)) {
        goto out;
    }
    if (!cert.data && !key.data) {
        ok = true; /* a client without a certificate of its own */
        goto out;
    }
    if (!cert.data || !key.data) {
        error_setg(errp, "'%s/%s' needs '%s' beside it", dir,
                   cert.data ? cert_name : key_name,
                   cert.data ? key_name : cert_name);
        goto out;
    }
    if (!cert_list_parse(cert_path, &cert, &own, errp) ||
        (sanity &&
         !check_own_cert(cert_path, &own, ca, creds->endpoint, errp))) {
        goto out;
    }
    ret = gnutls_certificate_set_x509_key_mem2(creds->x509, &cert, &key,
                                               GNUTLS_X509_FMT_PEM, NULL, 0);
    if (ret < 0) {
        error_setg(errp, "Cannot use '%s' with '%s/%s': %s", cert_path, dir,
                   key_name,
                   ret == GNUTLS_E_DECRYPTION_FAILED
                       ? "the key is encrypted (not supported)"
                       : gnutls_strerror(ret));
        goto out;
    }
    ok = true;
out:
    cert_list_clear(&own);
    g_free(cert.data);
    if (key.data) {
        /* A private key: leave no copy in freed memory. */
        memset(key.data, 0, key.size);
        g_free(key.data);
    }
    return ok;
}

static void *x509_create(const char *id, const ObjectProps *props, Error **errp)
{
    const char *dir = object_props_get_str(props, "dir");
    bool sanity = object_props_get_bool(props, "sanity-check");
    CertList ca = {NULL, 0};
    TlsCreds *creds;
    int ret;

    creds = tls_creds_new(TLS_CREDS_X509, id, props, errp);
    if (!creds) {
        return NULL;
    }
    creds->verify_peer = object_props_get_bool(props, "verify-peer");
    if (!tls_creds_check_dir(dir, errp)) {
        goto fail;
    }
    ret = gnutls_certificate_allocate_credentials(&creds->x509);
    if (ret < 0) {
        creds->x509 = NULL;
        error_setg(errp, "Cannot allocate TLS credentials: %s",
                   gnutls_strerror(ret));
        goto fail;
    }
    if (!load_ca(creds, dir, sanity, &ca, errp) ||
        !load_own(creds, dir, sanity, &ca, errp)) {
        goto fail;
    }
    if (creds->endpoint == TLS_ENDPOINT_SERVER) {
        if (!tls_creds_load_dh(creds, dir, errp)) {
            goto fail;
        }
        if (creds->dh) {
            gnutls_certificate_set_dh_params(creds->x509, creds->dh);
        } else {
            gnutls_certificate_set_known_dh_params(creds->x509,
                                                   GNUTLS_SEC_PARAM_MEDIUM);
        }
    }
    cert_list_clear(&ca);
    return creds;

fail:
    cert_list_clear(&ca);
    tls_creds_unref(creds);
    return NULL;
}

static const ObjectPropertyInfo x509_props[] = {
    TLS_CREDS_COMMON_PROPS,
    {"verify-peer", OBJECT_VALUE_BOOL,
     "require (server) or check (client) the peer's certificate",
     OBJECT_PROP_CREATE, "on"},
    {"sanity-check", OBJECT_VALUE_BOOL,
     "check the certificates when they are loaded", OBJECT_PROP_CREATE, "on"},
    {NULL},
};

static const ObjectTypeInfo x509_type = {
    .name = "tls-creds-x509",
    .description = "TLS credentials: X.509 certificates from a directory",
    .props = x509_props,
    .create = x509_create,
    .destroy = tls_creds_destroy,
};

void tls_creds_x509_register(void)
{
    object_type_register(&x509_type);
}
