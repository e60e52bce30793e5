/* Valid JSON text for the monitor from any bytes; see qmp-json.h. */
#include <string.h>
#include <glib.h>

#include "qmp-json.h"
#include "util/utf8.h"

json_t *qmp_json_str(const char *s)
{
    char *valid;
    json_t *str;

    if (!s) {
        s = "";
    }
    str = json_string(s);
    if (str) {
        return str;
    }
    valid = utf8_make_valid(s, strlen(s));
    str = json_string(valid);
    g_free(valid);
    g_assert(str); /* valid UTF-8 without NULs: jansson takes it */
    return str;
}

static char *dumps(json_t *msg)
{
    return json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

/* The stand-in for a reply that cannot be encoded. */
static char *encode_error_reply(json_t *id)
{
    json_t *resp = json_pack("{s:{s:s,s:s}}", "error", "class", "GenericError",
                             "desc", "The reply could not be encoded as JSON");
    char *text;

    if (id) {
        json_object_set(resp, "id", id);
    }
    text = dumps(resp);
    if (!text && id) {
        /* The id itself is at fault (it came from a parsed request, so it
         * cannot be; but the stand-in must not fail). */
        json_object_del(resp, "id");
        text = dumps(resp);
    }
    json_decref(resp);
    g_assert(text);
    return text;
}

/* The stand-in for an event that cannot be encoded: the same without data. */
static char *encode_event_without_data(json_t *msg)
{
    json_t *ev = json_object();
    const char *key;
    json_t *value;
    char *text;

    json_object_foreach(msg, key, value)
    {
        if (strcmp(key, "data") != 0) {
            json_object_set(ev, key, value);
        }
    }
    text = dumps(ev);
    json_decref(ev);
    return text;
}

char *qmp_json_encode(json_t *msg)
{
    char *text = msg ? dumps(msg) : NULL;

    if (text) {
        return text;
    }
    if (json_is_object(msg) && json_object_get(msg, "event")) {
        text = encode_event_without_data(msg);
        if (text) {
            return text;
        }
    }
    return encode_error_reply(json_is_object(msg) ? json_object_get(msg, "id")
                                                  : NULL);
}
