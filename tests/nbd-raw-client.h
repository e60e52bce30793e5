/*
 * A raw NBD client for tests: blocking socket calls with a receive timeout
 * (10 s), sending exactly the bytes a case needs and checking each reply
 * with g_assert.  Built on the codec in nbd/protocol.h.
 */
#ifndef DATAPLANE_TESTS_NBD_RAW_CLIENT_H
#define DATAPLANE_TESTS_NBD_RAW_CLIENT_H

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "nbd/protocol.h"

static G_GNUC_UNUSED int raw_connect_path(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = 10};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpuint(strlen(path), <, sizeof(sun.sun_path));
    strcpy(sun.sun_path, path);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static G_GNUC_UNUSED void raw_send(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        g_assert_cmpint(n, >, 0);
        p += n;
        len -= n;
    }
}

/* Reads exactly len bytes; false on EOF (or a reset) before that. */
static G_GNUC_UNUSED bool raw_recv(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        g_assert_false(n < 0 && errno == EAGAIN); /* the 10 s timeout */
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}

/* True if the server closes the connection (reads EOF). */
static G_GNUC_UNUSED bool raw_closed_by_server(int fd)
{
    uint8_t b[4096];

    for (;;) {
        ssize_t n = recv(fd, b, sizeof(b), 0);

        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            return true;
        }
        if (n < 0) {
            return false; /* timeout */
        }
    }
}

/* Greeting in, client flags out. */
static G_GNUC_UNUSED void raw_greet(int fd, uint32_t client_flags)
{
    uint8_t g[NBD_SERVER_GREETING_LEN];
    uint8_t f[4];

    g_assert_true(raw_recv(fd, g, sizeof(g)));
    g_assert_cmpuint(nbd_get_be64(g), ==, NBD_INIT_MAGIC);
    g_assert_cmpuint(nbd_get_be64(g + 8), ==, NBD_OPTS_MAGIC);
    g_assert_cmpuint(nbd_get_be16(g + 16), ==,
                     NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    nbd_put_be32(f, client_flags);
    raw_send(fd, f, 4);
}

static G_GNUC_UNUSED void raw_opt(int fd, uint32_t opt, const void *data,
                                  uint32_t len)
{
    uint8_t h[NBD_OPTION_HEADER_LEN];

    nbd_put_be64(h, NBD_OPTS_MAGIC);
    nbd_put_be32(h + 8, opt);
    nbd_put_be32(h + 12, len);
    raw_send(fd, h, sizeof(h));
    if (len) {
        raw_send(fd, data, len);
    }
}

typedef struct OptReply {
    uint32_t opt, type, len;
    uint8_t data[8192];
} OptReply;

static G_GNUC_UNUSED void raw_opt_reply(int fd, OptReply *r)
{
    uint8_t h[NBD_OPT_REPLY_HEADER_LEN];

    g_assert_true(raw_recv(fd, h, sizeof(h)));
    g_assert_cmpuint(nbd_get_be64(h), ==, NBD_OPT_REPLY_MAGIC);
    r->opt = nbd_get_be32(h + 8);
    r->type = nbd_get_be32(h + 12);
    r->len = nbd_get_be32(h + 16);
    g_assert_cmpuint(r->len, <=, sizeof(r->data));
    g_assert_true(raw_recv(fd, r->data, r->len));
}

/* Payload of INFO/GO: name, then the info requests. */
static G_GNUC_UNUSED GByteArray *go_payload(const char *name,
                                            const uint16_t *infos, uint16_t n)
{
    GByteArray *b = g_byte_array_new();
    uint8_t tmp[4];
    uint16_t i;

    nbd_put_be32(tmp, strlen(name));
    g_byte_array_append(b, tmp, 4);
    g_byte_array_append(b, (const uint8_t *)name, strlen(name));
    nbd_put_be16(tmp, n);
    g_byte_array_append(b, tmp, 2);
    for (i = 0; i < n; i++) {
        nbd_put_be16(tmp, infos[i]);
        g_byte_array_append(b, tmp, 2);
    }
    return b;
}

/* Negotiates structured replies (optionally base:allocation) and GOes
 * into export name.  Returns the transmission flags. */
static G_GNUC_UNUSED uint16_t raw_go(int fd, const char *name, bool structured,
                                     bool meta)
{
    OptReply r;
    GByteArray *b;
    uint16_t eflags = 0;

    if (structured) {
        raw_opt(fd, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
        raw_opt_reply(fd, &r);
        g_assert_cmpuint(r.type, ==, NBD_REP_ACK);
    }
    if (meta) {
        GByteArray *m = g_byte_array_new();
        uint8_t tmp[4];
        const char *q = NBD_META_BASE_ALLOCATION;

        nbd_put_be32(tmp, strlen(name));
        g_byte_array_append(m, tmp, 4);
        g_byte_array_append(m, (const uint8_t *)name, strlen(name));
        nbd_put_be32(tmp, 1);
        g_byte_array_append(m, tmp, 4);
        nbd_put_be32(tmp, strlen(q));
        g_byte_array_append(m, tmp, 4);
        g_byte_array_append(m, (const uint8_t *)q, strlen(q));
        raw_opt(fd, NBD_OPT_SET_META_CONTEXT, m->data, m->len);
        g_byte_array_unref(m);
        raw_opt_reply(fd, &r);
        g_assert_cmpuint(r.type, ==, NBD_REP_META_CONTEXT);
        g_assert_cmpuint(nbd_get_be32(r.data), ==, NBD_META_ID_BASE_ALLOCATION);
        raw_opt_reply(fd, &r);
        g_assert_cmpuint(r.type, ==, NBD_REP_ACK);
    }
    b = go_payload(name, NULL, 0);
    raw_opt(fd, NBD_OPT_GO, b->data, b->len);
    g_byte_array_unref(b);
    for (;;) {
        raw_opt_reply(fd, &r);
        g_assert_cmpuint(r.opt, ==, NBD_OPT_GO);
        if (r.type == NBD_REP_ACK) {
            break;
        }
        g_assert_cmpuint(r.type, ==, NBD_REP_INFO);
        if (nbd_get_be16(r.data) == NBD_INFO_EXPORT) {
            eflags = nbd_get_be16(r.data + 10);
        }
    }
    return eflags;
}

static G_GNUC_UNUSED void raw_request(int fd, uint16_t flags, uint16_t type,
                                      uint64_t cookie, uint64_t offset,
                                      uint32_t len)
{
    uint8_t h[NBD_REQUEST_LEN];

    nbd_put_be32(h, NBD_REQUEST_MAGIC);
    nbd_put_be16(h + 4, flags);
    nbd_put_be16(h + 6, type);
    nbd_put_be64(h + 8, cookie);
    nbd_put_be64(h + 16, offset);
    nbd_put_be32(h + 24, len);
    raw_send(fd, h, sizeof(h));
}

/* A simple reply: returns the error, checks the cookie. */
static G_GNUC_UNUSED uint32_t raw_simple_reply(int fd, uint64_t *cookie)
{
    uint8_t h[NBD_SIMPLE_REPLY_LEN];

    g_assert_true(raw_recv(fd, h, sizeof(h)));
    g_assert_cmpuint(nbd_get_be32(h), ==, NBD_SIMPLE_REPLY_MAGIC);
    *cookie = nbd_get_be64(h + 8);
    return nbd_get_be32(h + 4);
}

typedef struct Chunk {
    uint16_t flags, type;
    uint64_t cookie;
    uint32_t len;
    uint8_t *payload; /* g_free */
} Chunk;

static G_GNUC_UNUSED void raw_chunk(int fd, Chunk *c)
{
    uint8_t h[NBD_STRUCTURED_REPLY_LEN];

    g_assert_true(raw_recv(fd, h, sizeof(h)));
    g_assert_cmpuint(nbd_get_be32(h), ==, NBD_STRUCTURED_REPLY_MAGIC);
    c->flags = nbd_get_be16(h + 4);
    c->type = nbd_get_be16(h + 6);
    c->cookie = nbd_get_be64(h + 8);
    c->len = nbd_get_be32(h + 16);
    c->payload = g_malloc(c->len + 1);
    g_assert_true(raw_recv(fd, c->payload, c->len));
}

#endif /* DATAPLANE_TESTS_NBD_RAW_CLIENT_H */
