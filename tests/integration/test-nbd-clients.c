/*
 * The NBD server against libnbd and against a raw-socket client that sends
 * exactly the bytes each case needs: every error case of the spec's server
 * side, pipelining, and 1,000 abrupt disconnects during I/O with the other
 * client's data verified and the server's fds and heap back to baseline.
 *
 * Each group of tests spawns nbd-test-server (NBD_TEST_SERVER) on a unix
 * socket and talks to it.  Blocking sockets with a receive timeout, so a
 * server that fails to answer fails the test instead of hanging it.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <libnbd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nbd/protocol.h"
#include "tests/nbd-raw-client.h"

typedef struct Server {
    GPid pid;
    FILE *out;
    char *dir;
    char *sock;
} Server;

/* A failing test aborts: the server must not outlive it. */
static void die_with_parent(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    /* Per-thread malloc caches count as "in use" in mallinfo2() and would
     * make the heap figure depend on which thread freed what last. */
    setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
}

static Server *server_start(const char *extra_args)
{
    Server *s = g_new0(Server, 1);
    const char *bin = g_getenv("NBD_TEST_SERVER");
    char line[256];
    char *cmd;
    char **argv;
    int out_fd;

    g_assert_nonnull(bin);
    s->dir = g_dir_make_tmp("nbd-clients-XXXXXX", NULL);
    s->sock = g_build_filename(s->dir, "sock", NULL);
    cmd = g_strdup_printf(
        "%s --listen %s --iothread "
        "--blockdev driver=memory,node-name=n0,size=16M "
        "--blockdev driver=memory,node-name=n1,size=1M,read-only=on "
        "--export node=n0,name=disk,writable=on,description=the-disk "
        "--export node=n1,name=ro %s",
        bin, s->sock, extra_args ? extra_args : "");
    g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, NULL));
    g_assert_true(g_spawn_async_with_pipes(
        NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent, NULL,
        &s->pid, NULL, &out_fd, NULL, NULL));
    g_strfreev(argv);
    g_free(cmd);
    s->out = fdopen(out_fd, "r");
    g_assert_nonnull(fgets(line, sizeof(line), s->out));
    g_assert_cmpstr(line, ==, "ready\n");
    return s;
}

static void server_stop(Server *s)
{
    int status;

    kill(s->pid, SIGTERM);
    g_assert_cmpint(waitpid(s->pid, &status, 0), ==, s->pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    g_spawn_close_pid(s->pid);
    fclose(s->out);
    g_remove(s->sock);
    g_rmdir(s->dir);
    g_free(s->sock);
    g_free(s->dir);
    g_free(s);
}

typedef struct Stats {
    int fds;
    unsigned connections;
    size_t heap;
} Stats;

static Stats server_stats(Server *s)
{
    char line[256];
    Stats st;

    kill(s->pid, SIGUSR1);
    g_assert_nonnull(fgets(line, sizeof(line), s->out));
    g_assert_cmpint(sscanf(line, "stats fds %d connections %u heap %zu",
                           &st.fds, &st.connections, &st.heap),
                    ==, 3);
    return st;
}

/* Polls the server's stats until it has `want` connections (bounded). */
static Stats server_wait_connections(Server *s, unsigned want)
{
    Stats st;
    int i;

    for (i = 0; i < 1000; i++) {
        st = server_stats(s);
        if (st.connections == want) {
            return st;
        }
        g_usleep(10 * 1000); /* polling an external process: no event */
    }
    g_error("server kept %u connections, wanted %u", st.connections, want);
}

static int raw_connect(Server *s)
{
    return raw_connect_path(s->sock);
}

/* ---- handshake cases -------------------------------------------------- */

static Server *srv;

static void test_unknown_option_gets_unsup_and_haggling_goes_on(void)
{
    int fd = raw_connect(srv);
    OptReply r;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_opt(fd, 200, "xyz", 3);
    raw_opt_reply(fd, &r);
    g_assert_cmpuint(r.opt, ==, 200);
    g_assert_cmpuint(r.type, ==, NBD_REP_ERR_UNSUP);
    g_assert_cmpuint(raw_go(fd, "disk", true, false) & NBD_FLAG_HAS_FLAGS, !=,
                     0);
    close(fd);
}

static void test_unknown_client_flags_drop_connection(void)
{
    int fd = raw_connect(srv);

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE | (1U << 9));
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
}

static void test_info_then_go_answer_the_same(void)
{
    static const uint16_t infos[] = {NBD_INFO_NAME, NBD_INFO_DESCRIPTION,
                                     NBD_INFO_BLOCK_SIZE};
    int fd = raw_connect(srv);
    GByteArray *b = go_payload("disk", infos, 3);
    GPtrArray *answers[2];
    OptReply r;
    int pass;
    guint i;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    for (pass = 0; pass < 2; pass++) {
        answers[pass] = g_ptr_array_new_with_free_func(g_free);
        raw_opt(fd, pass == 0 ? NBD_OPT_INFO : NBD_OPT_GO, b->data, b->len);
        do {
            raw_opt_reply(fd, &r);
            g_ptr_array_add(answers[pass], g_memdup2(&r.type, 4 + 4 + r.len));
        } while (r.type != NBD_REP_ACK);
    }
    g_assert_cmpuint(answers[0]->len, ==, 5); /* EXPORT, 3 asked, ACK */
    g_assert_cmpuint(answers[0]->len, ==, answers[1]->len);
    for (i = 0; i < answers[0]->len; i++) {
        uint32_t *a = answers[0]->pdata[i], *c = answers[1]->pdata[i];

        g_assert_cmpmem(a, 8 + a[1], c, 8 + c[1]);
    }
    g_ptr_array_unref(answers[0]);
    g_ptr_array_unref(answers[1]);
    g_byte_array_unref(b);
    close(fd);
}

static void test_starttls_without_tls_is_refused_with_error(void)
{
    int fd = raw_connect(srv);
    OptReply r;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_opt(fd, NBD_OPT_STARTTLS, NULL, 0);
    raw_opt_reply(fd, &r);
    g_assert_cmpuint(r.type, ==, NBD_REP_ERR_POLICY);
    raw_go(fd, "disk", false, false);
    close(fd);
}

static void test_name_over_4096_bytes_refused(void)
{
    int fd = raw_connect(srv);
    char *name = g_malloc(NBD_MAX_STRING + 2);
    GByteArray *b;
    OptReply r;

    memset(name, 'n', NBD_MAX_STRING + 1);
    name[NBD_MAX_STRING + 1] = '\0';
    b = go_payload(name, NULL, 0);
    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_opt(fd, NBD_OPT_GO, b->data, b->len);
    raw_opt_reply(fd, &r);
    g_assert_cmpuint(r.type, ==, NBD_REP_ERR_TOO_BIG);
    raw_go(fd, "disk", false, false);
    g_byte_array_unref(b);
    g_free(name);
    close(fd);
}

static void test_oversized_option_skipped_with_error(void)
{
    int fd = raw_connect(srv);
    size_t len = NBD_MAX_OPTION_LEN + 1000;
    uint8_t *junk = g_malloc0(len);
    OptReply r;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_opt(fd, NBD_OPT_INFO, junk, len);
    raw_opt_reply(fd, &r);
    g_assert_cmpuint(r.type, ==, NBD_REP_ERR_TOO_BIG);
    raw_go(fd, "disk", false, false);
    g_free(junk);
    close(fd);
}

static void test_meta_context_needs_structured_replies(void)
{
    int fd = raw_connect(srv);
    uint8_t m[8] = {0};
    OptReply r;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_opt(fd, NBD_OPT_LIST_META_CONTEXT, m, sizeof(m));
    raw_opt_reply(fd, &r);
    g_assert_cmpuint(r.type, ==, NBD_REP_ERR_INVALID);
    close(fd);
}

static void test_abort_is_acked_then_closed(void)
{
    int fd = raw_connect(srv);
    OptReply r;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_opt(fd, NBD_OPT_ABORT, NULL, 0);
    raw_opt_reply(fd, &r);
    g_assert_cmpuint(r.type, ==, NBD_REP_ACK);
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
}

static void test_export_name_honours_no_zeroes(void)
{
    int pass;

    for (pass = 0; pass < 2; pass++) {
        int fd = raw_connect(srv);
        uint8_t reply[NBD_EXPORT_NAME_REPLY_LEN];
        uint64_t cookie;

        raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE |
                          (pass ? NBD_FLAG_C_NO_ZEROES : 0));
        raw_opt(fd, NBD_OPT_EXPORT_NAME, "disk", 4);
        g_assert_true(raw_recv(fd, reply, pass ? 10 : 134));
        g_assert_cmpuint(nbd_get_be64(reply), ==, 16 << 20);
        /* The next bytes are the reply to a request, not more zeroes. */
        raw_request(fd, 0, NBD_CMD_FLUSH, 99, 0, 0);
        g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
        g_assert_cmpuint(cookie, ==, 99);
        close(fd);
    }
}

static void test_export_name_of_unknown_export_closes(void)
{
    int fd = raw_connect(srv);

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_opt(fd, NBD_OPT_EXPORT_NAME, "nosuch", 6);
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
}

/* ---- transmission cases ----------------------------------------------- */

static void test_bad_request_magic_closes_only_that_connection(void)
{
    int bad = raw_connect(srv), good = raw_connect(srv);
    uint8_t junk[NBD_REQUEST_LEN] = {0xde, 0xad};
    uint64_t cookie;

    raw_greet(bad, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_greet(good, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(bad, "disk", false, false);
    raw_go(good, "disk", false, false);
    raw_send(bad, junk, sizeof(junk));
    g_assert_true(raw_closed_by_server(bad));
    raw_request(good, 0, NBD_CMD_FLUSH, 5, 0, 0);
    g_assert_cmpuint(raw_simple_reply(good, &cookie), ==, 0);
    close(bad);
    close(good);
}

static void test_unknown_command_einval(void)
{
    int fd = raw_connect(srv);
    uint64_t cookie;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", false, false);
    raw_request(fd, 0, 77, 1, 0, 0);
    g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, NBD_EINVAL);
    g_assert_cmpuint(cookie, ==, 1);
    close(fd);
}

static void test_write_payload_over_32m_refused_and_skipped(void)
{
    int fd = raw_connect(srv);
    size_t len = NBD_MAX_PAYLOAD + 4096;
    uint8_t *payload = g_malloc0(len);
    uint64_t cookie;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", false, false);
    raw_request(fd, 0, NBD_CMD_WRITE, 1, 0, len);
    g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, NBD_EINVAL);
    raw_send(fd, payload, len);
    /* The stream is still in sync after the skipped payload. */
    raw_request(fd, 0, NBD_CMD_FLUSH, 2, 0, 0);
    g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
    g_assert_cmpuint(cookie, ==, 2);
    g_free(payload);
    close(fd);
}

static void test_write_to_read_only_export_eperm(void)
{
    int fd = raw_connect(srv);
    uint8_t data[512] = {1};
    uint64_t cookie;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    g_assert_cmpuint(raw_go(fd, "ro", false, false) & NBD_FLAG_READ_ONLY, !=,
                     0);
    raw_request(fd, 0, NBD_CMD_WRITE, 3, 0, sizeof(data));
    raw_send(fd, data, sizeof(data));
    g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, NBD_EPERM);
    close(fd);
}

static void test_structured_read_out_of_range_gets_error_chunk(void)
{
    int fd = raw_connect(srv);
    Chunk c;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", true, false);
    raw_request(fd, 0, NBD_CMD_READ, 4, (16 << 20) - 512, 1024);
    raw_chunk(fd, &c);
    g_assert_cmpuint(c.type, ==, NBD_REPLY_TYPE_ERROR);
    g_assert_cmpuint(c.flags, ==, NBD_REPLY_FLAG_DONE);
    g_assert_cmpuint(nbd_get_be32(c.payload), ==, NBD_EINVAL);
    g_assert_cmpuint(nbd_get_be16(c.payload + 4) + 6, ==, c.len);
    g_free(c.payload);
    close(fd);
}

static void test_block_status_reports_holes_and_data(void)
{
    int fd = raw_connect(srv);
    uint8_t data[65536];
    uint64_t cookie;
    Chunk c;

    memset(data, 0x5a, sizeof(data));
    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", true, true);
    raw_request(fd, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_WRITE_ZEROES, 1, 0, 2 << 20);
    g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
    raw_request(fd, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 2, 0, sizeof(data));
    raw_send(fd, data, sizeof(data));
    g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
    raw_request(fd, 0, NBD_CMD_TRIM, 3, 1 << 20, 1 << 20);
    g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
    raw_request(fd, 0, NBD_CMD_BLOCK_STATUS, 4, 0, 2 << 20);
    raw_chunk(fd, &c);
    g_assert_cmpuint(c.type, ==, NBD_REPLY_TYPE_BLOCK_STATUS);
    g_assert_cmpuint(c.cookie, ==, 4);
    g_assert_cmpuint(nbd_get_be32(c.payload), ==, NBD_META_ID_BASE_ALLOCATION);
    g_assert_cmpuint((c.len - 4) % 8, ==, 0);
    /* Starts with data (the write), reports zero for the trimmed MiB. */
    g_assert_cmpuint(nbd_get_be32(c.payload + 8) & NBD_STATE_ZERO, ==, 0);
    g_assert_cmpuint(nbd_get_be32(c.payload + c.len - 4) & NBD_STATE_ZERO, !=,
                     0);
    g_free(c.payload);
    /* REQ_ONE: a single descriptor. */
    raw_request(fd, NBD_CMD_FLAG_REQ_ONE, NBD_CMD_BLOCK_STATUS, 5, 0, 2 << 20);
    raw_chunk(fd, &c);
    g_assert_cmpuint(c.len, ==, 12);
    g_free(c.payload);
    close(fd);
}

typedef struct SendJob {
    int fd;
    GByteArray *b;
} SendJob;

static gpointer send_job(gpointer opaque)
{
    SendJob *job = opaque;

    raw_send(job->fd, job->b->data, job->b->len);
    return NULL;
}

/* Many requests sent before any reply is read: every one is answered. */
static void test_pipelined_requests_all_answered(void)
{
    enum { N = 5000 };
    int fd = raw_connect(srv);
    GByteArray *out = g_byte_array_new();
    uint8_t seen[N] = {0};
    int i;

    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", true, false);
    for (i = 0; i < N; i++) {
        uint8_t h[NBD_REQUEST_LEN];

        nbd_put_be32(h, NBD_REQUEST_MAGIC);
        nbd_put_be16(h + 4, 0);
        nbd_put_be16(h + 6, i % 3 ? NBD_CMD_READ : NBD_CMD_FLUSH);
        nbd_put_be64(h + 8, i);
        nbd_put_be64(h + 16, (uint64_t)(i % 2048) * 4096);
        nbd_put_be32(h + 24, i % 3 ? 4096 : 0);
        g_byte_array_append(out, h, sizeof(h));
    }
    /* Sent from a thread while this one reads: the server must not wait
     * for us to read before it takes more (and vice versa). */
    {
        SendJob job = {fd, out};
        GThread *t = g_thread_new("send", send_job, &job);

        for (i = 0; i < N; i++) {
            uint8_t h[NBD_STRUCTURED_REPLY_LEN];
            uint64_t cookie;

            g_assert_true(raw_recv(fd, h, 4));
            if (nbd_get_be32(h) == NBD_SIMPLE_REPLY_MAGIC) {
                g_assert_true(raw_recv(fd, h + 4, 12));
                g_assert_cmpuint(nbd_get_be32(h + 4), ==, 0);
                cookie = nbd_get_be64(h + 8);
            } else {
                uint8_t data[4096 + 8];
                uint32_t len;

                g_assert_true(raw_recv(fd, h + 4, 16));
                g_assert_cmpuint(nbd_get_be16(h + 6), ==,
                                 NBD_REPLY_TYPE_OFFSET_DATA);
                cookie = nbd_get_be64(h + 8);
                len = nbd_get_be32(h + 16);
                g_assert_cmpuint(len, ==, sizeof(data));
                g_assert_true(raw_recv(fd, data, len));
                g_assert_cmpuint(nbd_get_be64(data), ==,
                                 (cookie % 2048) * 4096);
            }
            g_assert_cmpuint(cookie, <, N);
            g_assert_cmpuint(seen[cookie], ==, 0);
            seen[cookie] = 1;
        }
        g_thread_join(t);
    }
    g_byte_array_unref(out);
    close(fd);
}

static void test_disc_finishes_in_flight_requests_then_closes(void)
{
    int fd = raw_connect(srv);
    GByteArray *out = g_byte_array_new();
    uint8_t data[4096];
    uint64_t cookie;
    int i;

    memset(data, 0x42, sizeof(data));
    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    raw_go(fd, "disk", false, false);
    /* Eight writes and DISC in one send: all eight are answered first. */
    for (i = 0; i < 8; i++) {
        uint8_t h[NBD_REQUEST_LEN];

        nbd_put_be32(h, NBD_REQUEST_MAGIC);
        nbd_put_be16(h + 4, 0);
        nbd_put_be16(h + 6, NBD_CMD_WRITE);
        nbd_put_be64(h + 8, 100 + i);
        nbd_put_be64(h + 16, (uint64_t)(8 + i) * 4096);
        nbd_put_be32(h + 24, sizeof(data));
        g_byte_array_append(out, h, sizeof(h));
        g_byte_array_append(out, data, sizeof(data));
    }
    raw_send(fd, out->data, out->len);
    raw_request(fd, 0, NBD_CMD_DISC, 0, 0, 0);
    for (i = 0; i < 8; i++) {
        g_assert_cmpuint(raw_simple_reply(fd, &cookie), ==, 0);
    }
    g_assert_true(raw_closed_by_server(fd));
    g_byte_array_unref(out);
    close(fd);
}

/* ---- libnbd ----------------------------------------------------------- */

static struct nbd_handle *lib_connect(const char *name)
{
    struct nbd_handle *h = nbd_create();

    g_assert_nonnull(h);
    g_assert_cmpint(nbd_set_export_name(h, name), ==, 0);
    g_assert_cmpint(nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION), ==,
                    0);
    if (nbd_connect_unix(h, srv->sock) == -1) {
        g_error("libnbd: %s", nbd_get_error());
    }
    return h;
}

static void test_libnbd_error_cases(void)
{
    struct nbd_handle *h = lib_connect("disk");
    struct nbd_handle *ro = lib_connect("ro");
    struct nbd_handle *none = nbd_create();
    char buf[4096];

    g_assert_cmpint(nbd_get_size(h), ==, 16 << 20);
    g_assert_cmpint(nbd_can_multi_conn(h), ==, 1);
    g_assert_cmpint(nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION), ==,
                    1);
    /* Past the end: EINVAL from the server (libnbd's own range check is
     * turned off so the request reaches it). */
    nbd_set_strict_mode(h, 0);
    g_assert_cmpint(nbd_pread(h, buf, sizeof(buf), 16 << 20, 0), ==, -1);
    g_assert_cmpint(nbd_get_errno(), ==, EINVAL);
    g_assert_cmpint(nbd_pread(h, buf, sizeof(buf), 0, 0), ==, 0);
    /* Read-only export. */
    nbd_set_strict_mode(ro, 0);
    g_assert_cmpint(nbd_is_read_only(ro), ==, 1);
    g_assert_cmpint(nbd_pwrite(ro, buf, sizeof(buf), 0, 0), ==, -1);
    g_assert_cmpint(nbd_get_errno(), ==, EPERM);
    g_assert_cmpint(nbd_trim(ro, sizeof(buf), 0, 0), ==, -1);
    g_assert_cmpint(nbd_get_errno(), ==, EPERM);
    g_assert_cmpint(nbd_zero(ro, sizeof(buf), 0, 0), ==, -1);
    g_assert_cmpint(nbd_get_errno(), ==, EPERM);
    g_assert_cmpint(nbd_pread(ro, buf, sizeof(buf), 0, 0), ==, 0);
    /* Unknown export. */
    nbd_set_export_name(none, "nosuch");
    g_assert_cmpint(nbd_connect_unix(none, srv->sock), ==, -1);
    /* Fast zero on a memory node: supported or ENOTSUP, never wrong. */
    if (nbd_zero(h, 65536, 0, LIBNBD_CMD_FLAG_FAST_ZERO) == -1) {
        g_assert_cmpint(nbd_get_errno(), ==, ENOTSUP);
    }
    g_assert_cmpint(nbd_flush(h, 0), ==, 0);
    g_assert_cmpint(nbd_cache(h, 1 << 20, 0, 0), ==, 0);
    g_assert_cmpint(nbd_shutdown(h, 0), ==, 0);
    nbd_close(h);
    nbd_close(ro);
    nbd_close(none);
}

/* ---- limits ----------------------------------------------------------- */

static void test_connection_limit_closes_extra_connections(void)
{
    Server *s = server_start("--max-connections 2");
    int a = raw_connect(s), b = raw_connect(s), c;
    uint8_t g[NBD_SERVER_GREETING_LEN];

    g_assert_true(raw_recv(a, g, sizeof(g)));
    g_assert_true(raw_recv(b, g, sizeof(g)));
    c = raw_connect(s);
    g_assert_true(raw_closed_by_server(c));
    close(c);
    close(a);
    /* A slot frees up once the server has released a. */
    server_wait_connections(s, 1);
    c = raw_connect(s);
    g_assert_true(raw_recv(c, g, sizeof(g)));
    close(c);
    close(b);
    server_stop(s);
}

static void test_idle_handshake_times_out(void)
{
    Server *s = server_start("--handshake-max-seconds 1");
    int fd = raw_connect(s);
    uint8_t g[NBD_SERVER_GREETING_LEN];

    g_assert_true(raw_recv(fd, g, sizeof(g)));
    /* Say nothing: the server hangs up (the 10 s receive timeout would
     * fail the test first if it never did). */
    g_assert_true(raw_closed_by_server(fd));
    close(fd);
    server_stop(s);
}

/* ---- vanishing clients ------------------------------------------------ */

/* One abrupt client: stops at a stage picked by i, with requests in
 * flight in the later stages. */
static void abrupt_client(Server *s, int i)
{
    int fd = raw_connect(s);
    uint8_t junk[8192];
    int stage = i % 6, k;

    memset(junk, i, sizeof(junk));
    if (stage == 0) {
        close(fd); /* before even reading the greeting */
        return;
    }
    raw_greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
    if (stage == 1) {
        raw_opt(fd, NBD_OPT_GO, junk, 7); /* half an option */
        close(fd);
        return;
    }
    raw_go(fd, "disk", stage % 2, stage == 5);
    for (k = 0; k < 16; k++) {
        raw_request(fd, 0, NBD_CMD_READ, k, (uint64_t)(k + 64) * 65536, 65536);
    }
    if (stage == 2) {
        close(fd); /* sixteen reads in flight */
        return;
    }
    raw_request(fd, 0, NBD_CMD_WRITE, 99, 8 << 20, 65536);
    raw_send(fd, junk, stage == 3 ? 100 : sizeof(junk)); /* half a write */
    if (stage == 5) {
        raw_request(fd, 0, NBD_CMD_FLUSH, 100, 0, 0);
        send(fd, junk, 11, MSG_NOSIGNAL); /* half a header */
    }
    close(fd);
}

static void test_1000_abrupt_disconnects_leak_nothing(void)
{
    Server *s = server_start(g_getenv("NBD_ABRUPT_SERVER_ARGS")
                                 ? g_getenv("NBD_ABRUPT_SERVER_ARGS")
                                 : "--move-every-ms 20");
    struct nbd_handle *h;
    Stats base, after;
    char *pattern = g_malloc(65536), *back = g_malloc(65536);
    /* NBD_ABRUPT_N: more rounds for a soak run. */
    int n = g_getenv("NBD_ABRUPT_N") ? atoi(g_getenv("NBD_ABRUPT_N")) : 1000;
    int i;

    /* Warm up: one full cycle so that lazily created things exist. */
    for (i = 0; i < 6; i++) {
        abrupt_client(s, i);
    }
    h = nbd_create();
    nbd_set_export_name(h, "disk");
    g_assert_cmpint(nbd_connect_unix(h, s->sock), ==, 0);
    /* The memory node allocates on first write: touch the region (and the
     * abrupt writers' one) before the baseline. */
    memset(pattern, 0xee, 65536);
    for (i = 0; i < 32; i++) {
        g_assert_cmpint(nbd_pwrite(h, pattern, 65536, (uint64_t)i * 65536, 0),
                        ==, 0);
    }
    g_assert_cmpint(nbd_pwrite(h, pattern, 65536, 8 << 20, 0), ==, 0);
    base = server_wait_connections(s, 1);

    for (i = 0; i < n; i++) {
        uint64_t off = (uint64_t)(i % 32) * 65536;

        memset(pattern, i & 0xff, 65536);
        g_assert_cmpint(nbd_pwrite(h, pattern, 65536, off, 0), ==, 0);
        abrupt_client(s, i);
        if (i % 10 == 9) {
            g_assert_cmpint(nbd_pread(h, back, 65536, off, 0), ==, 0);
            g_assert_cmpmem(back, 65536, pattern, 65536);
        }
    }
    /* The good client's data is all there. */
    for (i = n - 32; i < n; i++) {
        memset(pattern, i & 0xff, 65536);
        g_assert_cmpint(
            nbd_pread(h, back, 65536, (uint64_t)(i % 32) * 65536, 0), ==, 0);
        g_assert_cmpmem(back, 65536, pattern, 65536);
    }
    after = server_wait_connections(s, 1);
    g_assert_cmpint(after.fds, ==, base.fds);
    /* Heap: a reply buffer may be freed just after the client saw the
     * reply, so poll (bounded) until the figure settles back.  The slack
     * is for allocator bookkeeping, far below one leaked connection per
     * hundred (a connection holds a 64 KiB read buffer). */
    for (i = 0; i < 500 && after.heap > base.heap + 16 * 1024; i++) {
        g_usleep(10 * 1000);
        after = server_stats(s);
    }
    g_test_message("heap before %zu after %zu", base.heap, after.heap);
    g_assert_cmpuint(after.heap, <=, base.heap + 16 * 1024);
    nbd_shutdown(h, 0);
    nbd_close(h);
    server_wait_connections(s, 0);
    g_free(pattern);
    g_free(back);
    server_stop(s);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);
#define T(name) g_test_add_func("/nbd/clients/" #name, test_##name)
    T(unknown_option_gets_unsup_and_haggling_goes_on);
    T(unknown_client_flags_drop_connection);
    T(info_then_go_answer_the_same);
    T(starttls_without_tls_is_refused_with_error);
    T(name_over_4096_bytes_refused);
    T(oversized_option_skipped_with_error);
    T(meta_context_needs_structured_replies);
    T(abort_is_acked_then_closed);
    T(export_name_honours_no_zeroes);
    T(export_name_of_unknown_export_closes);
    T(bad_request_magic_closes_only_that_connection);
    T(unknown_command_einval);
    T(write_payload_over_32m_refused_and_skipped);
    T(write_to_read_only_export_eperm);
    T(structured_read_out_of_range_gets_error_chunk);
    T(block_status_reports_holes_and_data);
    T(pipelined_requests_all_answered);
    T(disc_finishes_in_flight_requests_then_closes);
    T(libnbd_error_cases);
    T(connection_limit_closes_extra_connections);
    T(idle_handshake_times_out);
    T(1000_abrupt_disconnects_leak_nothing);
#undef T
    srv = server_start(NULL);
    ret = g_test_run();
    server_stop(srv);
    return ret;
}
