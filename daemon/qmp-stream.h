/*
 * QmpStream: cuts a byte stream from a monitor client into JSON messages.
 *
 * QMP has no framing of its own: a message ends where its top-level JSON
 * value ends.  The splitter tracks nesting of {} and [] outside strings,
 * so it never parses; jansson parses each complete message.  A top-level
 * scalar (42, "x", true) ends at the next blank or bracket.
 *
 * A message longer than the limit is not kept: the splitter keeps tracking
 * its nesting without storing it and reports one error when it ends, so the
 * client's next message is read normally.  A stray '}' or ']' outside any
 * value is reported at once.
 *
 * Thread-safety: a stream belongs to one thread (the monitor's).
 */
#ifndef DATAPLANE_DAEMON_QMP_STREAM_H
#define DATAPLANE_DAEMON_QMP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

/*
 * Called for each message: text/len is the message (not NUL-terminated at
 * len, but text[len] is readable) when it is complete and within the limit;
 * text is NULL and why says what is wrong otherwise.
 */
typedef void QmpStreamFunc(void *opaque, const char *text, size_t len,
                           const char *why);

typedef struct QmpStream {
    GString *buf;
    size_t max;
    int depth; /* open {/[ outside strings */
    bool in_string;
    bool escape;    /* the previous byte in a string was a backslash */
    bool in_scalar; /* a top-level scalar token is being read */
    bool overflow;  /* the message passed max: tracking, not storing */
    QmpStreamFunc *cb;
    void *opaque;
} QmpStream;

void qmp_stream_init(QmpStream *s, size_t max, QmpStreamFunc *cb, void *opaque);
/* Feeds bytes; calls cb for every message that completes inside them. */
void qmp_stream_feed(QmpStream *s, const char *data, size_t len);
void qmp_stream_destroy(QmpStream *s);

#endif /* DATAPLANE_DAEMON_QMP_STREAM_H */
