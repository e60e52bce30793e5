/*
 * The "secret" object type: a value held for whoever names its id.  See
 * include/dataplane/secret.h.
 */
#include <string.h>

#include "dataplane/object.h"
#include "dataplane/secret.h"

/* A secret file larger than this is a mistake, not a key. */
#define SECRET_FILE_MAX (64 * 1024)

typedef struct Secret {
    char *data; /* NUL-terminated beyond len */
    size_t len;
} Secret;

static const char *const format_choices[] = {"raw", "base64"};

void secret_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        g_free(s);
    }
}

/* Secrets are write-only: every read shows "". */
static void secret_get_hidden(void *instance, ObjectValue *out)
{
    out->s = g_strdup("");
}

static const ObjectPropertyInfo secret_props[] = {
    {"data", OBJECT_VALUE_STR, "the secret (write-only)",
     OBJECT_PROP_CREATE | OBJECT_PROP_READONLY, NULL, 0, 0, secret_get_hidden,
     NULL},
    {"file", OBJECT_VALUE_STR, "a file whose content is the secret",
     OBJECT_PROP_CREATE | OBJECT_PROP_READONLY, NULL, 0, 0, NULL, NULL},
    {"format", OBJECT_VALUE_STR, "encoding of data or file: raw or base64",
     OBJECT_PROP_CREATE | OBJECT_PROP_READONLY, "raw", 0, 0, NULL, NULL},
    {NULL},
};

/* Strict base64 (RFC 4648, padded): g_base64_decode() accepts junk. */
static bool base64_valid(const char *s, size_t len)
{
    size_t i;
    size_t pad = 0;

    if (len % 4) {
        return false;
    }
    for (i = 0; i < len; i++) {
        char c = s[i];

        if (c == '=') {
            pad++;
            continue;
        }
        if (pad || !(g_ascii_isalnum(c) || c == '+' || c == '/')) {
            return false;
        }
    }
    return pad <= 2;
}

static void *secret_create(const char *id, const ObjectProps *props,
                           Error **errp)
{
    const char *data = object_props_get_str(props, "data");
    const char *file = object_props_get_str(props, "file");
    const char *format = object_props_get_str(props, "format");
    g_autoptr(GError) gerr = NULL;
    Secret *s;
    char *raw;
    gsize len;

    if (strcmp(format, format_choices[0]) &&
        strcmp(format, format_choices[1])) {
        error_setg(errp,
                   "Parameter 'format' does not accept value '%s' "
                   "(raw or base64)",
                   format);
        return NULL;
    }
    if (!data == !file) {
        error_setg(errp,
                   data ? "Secret '%s': 'data' and 'file' are mutually "
                          "exclusive"
                        : "Secret '%s': 'data' or 'file' is required",
                   id);
        return NULL;
    }
    if (data) {
        raw = g_strdup(data);
        len = strlen(data);
    } else {
        if (!g_file_get_contents(file, &raw, &len, &gerr)) {
            error_setg(errp, "Secret '%s': cannot read file: %s", id,
                       gerr->message);
            return NULL;
        }
        if (len > SECRET_FILE_MAX) {
            error_setg(errp, "Secret '%s': file '%s' is larger than %d bytes",
                       id, file, SECRET_FILE_MAX);
            secret_free(raw);
            return NULL;
        }
    }
    s = g_new0(Secret, 1);
    if (!strcmp(format, "base64")) {
        guchar *bytes;

        if (!base64_valid(raw, len)) {
            error_setg(errp, "Secret '%s': the %s is not valid base64", id,
                       data ? "data" : "file's content");
            secret_free(raw);
            g_free(s);
            return NULL;
        }
        bytes = g_base64_decode(raw, &s->len);
        secret_free(raw);
        /* One more byte, so that the value is also a C string. */
        s->data = g_malloc(s->len + 1);
        memcpy(s->data, bytes, s->len);
        s->data[s->len] = 0;
        explicit_bzero(bytes, s->len);
        g_free(bytes);
    } else {
        s->data = raw;
        s->len = len;
    }
    return s;
}

static void secret_destroy(void *instance)
{
    Secret *s = instance;

    explicit_bzero(s->data, s->len);
    g_free(s->data);
    g_free(s);
}

static const ObjectTypeInfo secret_type = {
    .name = "secret",
    .description = "a password or key, for key-secret= and the like",
    .props = secret_props,
    .create = secret_create,
    .destroy = secret_destroy,
};

void secret_register_type(void)
{
    object_type_register(&secret_type);
}

char *secret_lookup(const char *id, size_t *len, Error **errp)
{
    Object *obj = object_find(id);
    Secret *s;
    char *copy;

    if (!obj) {
        error_setg(errp, "No secret with id '%s'", id);
        return NULL;
    }
    if (strcmp(object_get_type(obj), "secret") != 0) {
        error_setg(errp, "Object '%s' is not a secret", id);
        return NULL;
    }
    s = object_get_instance(obj);
    copy = g_malloc(s->len + 1);
    memcpy(copy, s->data, s->len + 1);
    *len = s->len;
    return copy;
}

char *secret_lookup_as_utf8(const char *id, Error **errp)
{
    size_t len;
    char *s = secret_lookup(id, &len, errp);

    if (s && (strlen(s) != len || !g_utf8_validate(s, len, NULL))) {
        error_setg(errp, "Secret '%s' is not valid text", id);
        explicit_bzero(s, len);
        g_free(s);
        return NULL;
    }
    return s;
}

char *secret_lookup_as_base64(const char *id, Error **errp)
{
    size_t len;
    char *s = secret_lookup(id, &len, errp);
    char *b64;

    if (!s) {
        return NULL;
    }
    b64 = g_base64_encode((const guchar *)s, len);
    explicit_bzero(s, len);
    g_free(s);
    return b64;
}
