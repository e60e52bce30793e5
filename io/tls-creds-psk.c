/*
 * The "tls-creds-psk" object type: pre-shared keys from <dir>/keys.psk,
 * one "<username>:<hex key>" line per user, as psktool writes them.
 *
 * The file is read and parsed once, at creation: a server looks keys up in
 * memory during handshakes (GnuTLS's own file callback would re-read the
 * file on every handshake, a blocking read in the main loop), and a bad
 * line is reported with its number before any client comes.  A client
 * endpoint uses the key of its username (QEMU's default: "qemu").
 */
#include <string.h>

#include "io/tls-creds-int.h"

#define PSK_KEY_MAX 512 /* bytes; psktool's limit */
#define PSK_DEFAULT_USERNAME "qemu"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = g_ascii_tolower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Parses one line (without its newline) into *user and *key. */
static bool parse_line(const char *path, unsigned lineno, const char *line,
                       size_t len, char **user, GBytes **key, Error **errp)
{
    const char *colon = memchr(line, ':', len);
    const char *hex;
    size_t user_len, hex_len, i;
    uint8_t *bytes;

    if (!colon) {
        error_setg(errp, "'%s' line %u: expected <username>:<hex key>", path,
                   lineno);
        return false;
    }
    user_len = colon - line;
    hex = colon + 1;
    hex_len = len - user_len - 1;
    if (user_len == 0 || user_len > TLS_PSK_USERNAME_MAX) {
        error_setg(errp, "'%s' line %u: the username must have 1 to %d bytes",
                   path, lineno, TLS_PSK_USERNAME_MAX);
        return false;
    }
    if (memchr(line, '\0', user_len)) {
        error_setg(errp, "'%s' line %u: NUL byte in the username", path,
                   lineno);
        return false;
    }
    if (hex_len == 0 || hex_len % 2 != 0 || hex_len / 2 > PSK_KEY_MAX) {
        error_setg(errp,
                   "'%s' line %u: the key must be an even number of hex "
                   "digits, 2 to %d",
                   path, lineno, 2 * PSK_KEY_MAX);
        return false;
    }
    bytes = g_malloc(hex_len / 2);
    for (i = 0; i < hex_len; i += 2) {
        int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);

        if (hi < 0 || lo < 0) {
            error_setg(errp, "'%s' line %u: the key is not hexadecimal", path,
                       lineno);
            g_free(bytes);
            return false;
        }
        bytes[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *user = g_strndup(line, user_len);
    *key = g_bytes_new_take(bytes, hex_len / 2);
    return true;
}

/* keys.psk into a table username -> GBytes key. */
static GHashTable *load_keys(const char *dir, Error **errp)
{
    g_autofree char *path = g_build_filename(dir, "keys.psk", NULL);
    GHashTable *keys;
    gnutls_datum_t data;
    const char *p, *end;
    unsigned lineno = 0;

    if (!tls_creds_read_file(dir, "keys.psk", true, &data, errp)) {
        return NULL;
    }
    keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                 (GDestroyNotify)g_bytes_unref);
    p = (const char *)data.data;
    end = p + data.size;
    while (p < end) {
        const char *nl = memchr(p, '\n', end - p);
        size_t len = (nl ? nl : end) - p;
        char *user;
        GBytes *key;

        lineno++;
        if (len > 0 && p[len - 1] == '\r') {
            len--;
        }
        if (len > 0) {
            if (!parse_line(path, lineno, p, len, &user, &key, errp)) {
                goto fail;
            }
            if (g_hash_table_contains(keys, user)) {
                error_setg(errp, "'%s' line %u: user '%s' listed twice", path,
                           lineno, user);
                g_free(user);
                g_bytes_unref(key);
                goto fail;
            }
            g_hash_table_insert(keys, user, key);
        }
        p = nl ? nl + 1 : end;
    }
    if (g_hash_table_size(keys) == 0) {
        error_setg(errp, "'%s' lists no key", path);
        goto fail;
    }
    memset(data.data, 0, data.size);
    g_free(data.data);
    return keys;

fail:
    memset(data.data, 0, data.size);
    g_free(data.data);
    g_hash_table_unref(keys);
    return NULL;
}

int tls_creds_psk_server_lookup(gnutls_session_t session, const char *username,
                                gnutls_datum_t *key)
{
    TlsCreds *creds = gnutls_session_get_ptr(session);
    GBytes *k = g_hash_table_lookup(creds->psk_keys, username);
    gsize len;
    const void *bytes;

    if (!k) {
        return -1; /* unknown user: the handshake fails */
    }
    bytes = g_bytes_get_data(k, &len);
    key->data = gnutls_malloc(len);
    if (!key->data) {
        return -1;
    }
    memcpy(key->data, bytes, len);
    key->size = len;
    return 0;
}

static bool setup_server(TlsCreds *creds, const char *dir, Error **errp)
{
    int ret = gnutls_psk_allocate_server_credentials(&creds->psk_server);

    if (ret < 0) {
        creds->psk_server = NULL;
        error_setg(errp, "Cannot allocate TLS credentials: %s",
                   gnutls_strerror(ret));
        return false;
    }
    gnutls_psk_set_server_credentials_function(creds->psk_server,
                                               tls_creds_psk_server_lookup);
    if (!tls_creds_load_dh(creds, dir, errp)) {
        return false;
    }
    if (creds->dh) {
        gnutls_psk_set_server_dh_params(creds->psk_server, creds->dh);
    } else {
        gnutls_psk_set_server_known_dh_params(creds->psk_server,
                                              GNUTLS_SEC_PARAM_MEDIUM);
    }
    return true;
}

static bool setup_client(TlsCreds *creds, const char *dir, const char *username,
                         Error **errp)
{
    GBytes *k = g_hash_table_lookup(creds->psk_keys, username);
    gnutls_datum_t key;
    gsize len;
    int ret;

    if (!k) {
        error_setg(errp, "'%s/keys.psk' has no key for user '%s'", dir,
                   username);
        return false;
    }
    ret = gnutls_psk_allocate_client_credentials(&creds->psk_client);
    if (ret < 0) {
        creds->psk_client = NULL;
        error_setg(errp, "Cannot allocate TLS credentials: %s",
                   gnutls_strerror(ret));
        return false;
    }
    key.data = (unsigned char *)g_bytes_get_data(k, &len);
    key.size = len;
    ret = gnutls_psk_set_client_credentials(creds->psk_client, username, &key,
                                            GNUTLS_PSK_KEY_RAW);
    if (ret < 0) {
        error_setg(errp, "Cannot use the key of user '%s': %s", username,
                   gnutls_strerror(ret));
        return false;
    }
    return true;
}

static void *psk_create(const char *id, const ObjectProps *props, Error **errp)
{
    const char *dir = object_props_get_str(props, "dir");
    const char *username = object_props_get_str(props, "username");
    TlsCreds *creds;

    creds = tls_creds_new(TLS_CREDS_PSK, id, props, errp);
    if (!creds) {
        return NULL;
    }
    if (creds->endpoint == TLS_ENDPOINT_SERVER && username) {
        error_setg(errp, "Parameter 'username' is for endpoint=client: a "
                         "server takes every user of keys.psk");
        goto fail;
    }
    if (!tls_creds_check_dir(dir, errp)) {
        goto fail;
    }
    creds->psk_keys = load_keys(dir, errp);
    if (!creds->psk_keys) {
        goto fail;
    }
    if (creds->endpoint == TLS_ENDPOINT_SERVER
            ? !setup_server(creds, dir, errp)
            : !setup_client(creds, dir,
                            username ? username : PSK_DEFAULT_USERNAME, errp)) {
        goto fail;
    }
    return creds;

fail:
    tls_creds_unref(creds);
    return NULL;
}

static const ObjectPropertyInfo psk_props[] = {
    TLS_CREDS_COMMON_PROPS,
    {"username", OBJECT_VALUE_STR,
     "client: the user whose key to use (default qemu)", OBJECT_PROP_CREATE},
    {NULL},
};

static const ObjectTypeInfo psk_type = {
    .name = "tls-creds-psk",
    .description = "TLS credentials: pre-shared keys from <dir>/keys.psk",
    .props = psk_props,
    .create = psk_create,
    .destroy = tls_creds_destroy,
};

void tls_creds_psk_register(void)
{
    object_type_register(&psk_type);
}
