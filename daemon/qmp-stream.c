/* Splitting a monitor byte stream into JSON messages; see qmp-stream.h. */
#include "qmp-stream.h"

void qmp_stream_init(QmpStream *s, size_t max, QmpStreamFunc *cb, void *opaque)
{
    *s = (QmpStream){
        .buf = g_string_new(NULL),
        .max = max,
        .cb = cb,
        .opaque = opaque,
    };
}

void qmp_stream_destroy(QmpStream *s)
{
    g_string_free(s->buf, TRUE);
    s->buf = NULL;
}

static void stream_push(QmpStream *s, char c)
{
    if (s->overflow) {
        return;
    }
    if (s->buf->len >= s->max) {
        /* Drop what we have: from here on only the nesting is tracked. */
        s->overflow = true;
        g_string_truncate(s->buf, 0);
        return;
    }
    g_string_append_c(s->buf, c);
}

static void stream_emit(QmpStream *s)
{
    bool overflow = s->overflow;

    s->depth = 0;
    s->in_string = false;
    s->escape = false;
    s->in_scalar = false;
    s->overflow = false;
    if (overflow) {
        s->cb(s->opaque, NULL, 0, "JSON message too large");
    } else {
        s->cb(s->opaque, s->buf->str, s->buf->len, NULL);
    }
    g_string_truncate(s->buf, 0);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void qmp_stream_feed(QmpStream *s, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = data[i];

        if (s->in_string) {
            stream_push(s, c);
            if (s->escape) {
                s->escape = false;
            } else if (c == '\\') {
                s->escape = true;
            } else if (c == '"') {
                s->in_string = false;
                if (s->depth == 0) {
                    stream_emit(s);
                }
            }
            continue;
        }

        if (s->depth > 0) {
            stream_push(s, c);
            if (c == '"') {
                s->in_string = true;
            } else if (c == '{' || c == '[') {
                s->depth++;
            } else if (c == '}' || c == ']') {
                if (--s->depth == 0) {
                    stream_emit(s);
                }
            }
            continue;
        }

        /* Top level: between messages, or inside a scalar. */
        if (s->in_scalar && (is_blank(c) || c == '{' || c == '[' || c == '"' ||
                             c == '}' || c == ']')) {
            stream_emit(s);
        }
        if (is_blank(c)) {
            continue;
        }
        if (c == '}' || c == ']') {
            s->cb(s->opaque, NULL, 0, "JSON parse error, unbalanced brackets");
            continue;
        }
        stream_push(s, c);
        if (c == '{' || c == '[') {
            s->depth = 1;
        } else if (c == '"') {
            s->in_string = true;
        } else {
            s->in_scalar = true;
        }
    }
}
