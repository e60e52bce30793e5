/*
 * libFuzzer target over the QMP monitor: each input is the byte stream one
 * client sends (after the greeting), followed by end-of-file.  The
 * monitor runs on the main loop in this thread with the daemon's real
 * command table, so framing, JSON parsing, dispatch, argument checking and
 * the command handlers (objects, nodes, the NBD server, exports) all run.
 * Every reply must be one line of valid JSON (so valid UTF-8); after each
 * input the daemon's state is torn down as at shutdown, so that anything
 * an input leaves behind shows up as a leak.
 *
 * The harness keeps the fuzzer inside a scratch directory (its working
 * directory): arguments with absolute paths, "..", or an fd address are
 * refused before they reach a command, and TCP addresses are rewritten to
 * 127.0.0.1 port 0.  The corpus starts with qmp_capabilities so that
 * mutations reach the commands.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dataplane/block.h"
#include "dataplane/main-loop.h"
#include "dataplane/nbd.h"
#include "daemon.h"
#include "monitor.h"
#include "qmp-commands.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char sock_path[108];
static QmpCommand *table;

/* dataplaned.c's, which this target does not link: a quit is noted. */
static const char *shutdown_asked;

void daemon_request_shutdown(const char *reason)
{
    shutdown_asked = reason;
}

/* Refuses arguments that would leave the scratch directory; makes TCP
 * addresses local and ephemeral.  Walks the (copied) arguments. */
static bool confine(json_t *v, Error **errp)
{
    const char *key;
    json_t *member;
    size_t i;

    if (json_is_string(v)) {
        const char *s = json_string_value(v);

        if (s[0] == '/' || strstr(s, "..") || !strcmp(s, "fd")) {
            error_setg(errp, "fuzz harness: '%s' refused", s);
            return false;
        }
        return true;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, member)
        {
            if (!confine(member, errp)) {
                return false;
            }
        }
        return true;
    }
    if (!json_is_object(v)) {
        return true;
    }
    json_object_foreach(v, key, member)
    {
        if (!strcmp(key, "port")) {
            json_object_set_new(v, key, json_string("0"));
        } else if (!strcmp(key, "host")) {
            json_object_set_new(v, key, json_string("127.0.0.1"));
        } else if (!confine(member, errp)) {
            return false;
        }
    }
    return true;
}

/* Every command goes through here: confine, then the real handler (found
 * by name, as the table is a copy with this function in every entry). */
static json_t *confined(const char *name, json_t *args, Error **errp)
{
    json_t *copy = json_deep_copy(args);
    json_t *ret = NULL;

    if (confine(copy, errp)) {
        const QmpCommand *c = qmp_commands;

        while (strcmp(c->name, name) != 0) {
            c++;
        }
        ret = c->fn(copy, errp);
    }
    json_decref(copy);
    return ret;
}

/* One trampoline per command: QmpHandler carries no name. */
#define TRAMPOLINE(n)                                                          \
    static json_t *tramp_##n(json_t *args, Error **errp)                       \
    {                                                                          \
        return confined(qmp_commands[n].name, args, errp);                     \
    }

TRAMPOLINE(0)
TRAMPOLINE(1)
TRAMPOLINE(2)
TRAMPOLINE(3)
TRAMPOLINE(4)
TRAMPOLINE(5)
TRAMPOLINE(6)
TRAMPOLINE(7)
TRAMPOLINE(8)
TRAMPOLINE(9)
TRAMPOLINE(10)
TRAMPOLINE(11)
TRAMPOLINE(12)
TRAMPOLINE(13)
TRAMPOLINE(14)
TRAMPOLINE(15)
TRAMPOLINE(16)
TRAMPOLINE(17)
TRAMPOLINE(18)
TRAMPOLINE(19)
TRAMPOLINE(20)
TRAMPOLINE(21)
TRAMPOLINE(22)
TRAMPOLINE(23)
TRAMPOLINE(24)
TRAMPOLINE(25)
TRAMPOLINE(26)
TRAMPOLINE(27)
TRAMPOLINE(28)
TRAMPOLINE(29)
TRAMPOLINE(30)
TRAMPOLINE(31)

static QmpHandler *const tramps[] = {
    tramp_0,  tramp_1,  tramp_2,  tramp_3,  tramp_4,  tramp_5,  tramp_6,
    tramp_7,  tramp_8,  tramp_9,  tramp_10, tramp_11, tramp_12, tramp_13,
    tramp_14, tramp_15, tramp_16, tramp_17, tramp_18, tramp_19, tramp_20,
    tramp_21, tramp_22, tramp_23, tramp_24, tramp_25, tramp_26, tramp_27,
    tramp_28, tramp_29, tramp_30, tramp_31};

static void make_table(void)
{
    size_t n = 0;

    while (qmp_commands[n].name) {
        n++;
    }
    g_assert(n <= G_N_ELEMENTS(tramps));
    table = g_new0(QmpCommand, n + 1);
    for (size_t i = 0; i < n; i++) {
        table[i] = qmp_commands[i];
        table[i].fn = tramps[i];
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *dir = g_dir_make_tmp("qmp-fuzz-XXXXXX", NULL);

    g_assert_nonnull(dir);
    g_assert(chdir(dir) == 0);
    g_snprintf(sock_path, sizeof(sock_path), "%s/qmp.sock", dir);
    g_free(dir);
    main_loop_init(&error_abort);
    daemon_objects_init();
    make_table();
    g_assert_nonnull(monitor_new(main_loop_get_aio_context(), sock_path, table,
                                 &error_abort));
    return 0;
}

/* A small image for the file driver, fresh for every input. */
static void reset_image(void)
{
    int fd = open("img", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    g_assert(fd >= 0 && ftruncate(fd, 65536) == 0);
    close(fd);
}

/* Checks each complete line in out (and removes it): valid JSON. */
static void check_lines(GString *out)
{
    char *nl;

    while ((nl = strstr(out->str, "\r\n"))) {
        json_error_t jerr;
        json_t *msg = json_loadb(out->str, nl - out->str, 0, &jerr);

        if (!msg) {
            g_error("reply is not JSON (%s): %.*s", jerr.text,
                    (int)(nl - out->str), out->str);
        }
        g_assert(json_is_object(msg));
        json_decref(msg);
        g_string_erase(out, 0, nl - out->str + 2);
    }
}

/* Tears down what the input made, in the daemon's shutdown order. */
static void reset_daemon(void)
{
    daemon_resume();
    daemon_exports_cleanup();
    daemon_blockdevs_cleanup();
    daemon_objects_cleanup();
    while (main_loop_wait(false)) {
    }
    shutdown_asked = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    g_autoptr(GString) out = g_string_new(NULL);
    char buf[65536];
    size_t sent = 0;
    bool shut = false;
    bool eof = false;
    int fd;

    reset_image();
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert(fd >= 0);
    strcpy(sun.sun_path, sock_path);
    g_assert(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 100000 && !eof; i++) {
        ssize_t n;

        if (sent < size) {
            n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += n;
            } else if (n < 0 && errno != EAGAIN) {
                sent = size; /* the monitor has hung up */
            }
        }
        if (sent == size && !shut) {
            shutdown(fd, SHUT_WR);
            shut = true;
        }
        while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
            g_string_append_len(out, buf, n);
        }
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            eof = true;
        }
        check_lines(out);
        main_loop_wait(false);
    }
    g_assert(eof);
    close(fd);
    reset_daemon();
    return 0;
}
