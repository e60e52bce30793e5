/*
 * dataplaned: the storage daemon's main program.
 *
 * Order of life: parse the whole command line (nothing created yet), fork
 * if --daemonize, start the main loop, apply the options in command-line
 * order, write the pid file, run until quit or SIGTERM/SIGINT/SIGHUP, then tear
 * down in reverse: stop accepting, drop exports, drain and flush and close
 * the nodes, stop the IOThreads, close the monitors, remove the pid file.
 * A failure while applying the options runs the same teardown, so an
 * invalid command line leaves no socket, pid file or thread behind.
 *
 * Everything below runs in the main thread, which is the main loop thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>

#include "dataplane/main-loop.h"
#include "dataplane/object.h"
#include "cmdline.h"
#include "daemon-version.h"
#include "daemon.h"
#include "monitor.h"
#include "qmp-commands.h"

static const char *shutdown_reason;

void daemon_request_shutdown(const char *reason)
{
    if (!shutdown_reason) {
        shutdown_reason = reason;
        main_loop_quit();
    }
}

static gboolean on_signal(gpointer data)
{
    daemon_request_shutdown("host-signal");
    return G_SOURCE_CONTINUE;
}

/* ---- pid file ----------------------------------------------------------- */

static char *pidfile_path;
static int pidfile_fd = -1;

/* Writes our pid to path, holding a write lock on it for our lifetime so
 * that a second daemon with the same pid file fails instead of clobbering
 * it. */
static bool pidfile_write(const char *path, Error **errp)
{
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char buf[32];
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    int len;

    if (fd < 0) {
        error_setg_errno(errp, errno, "--pidfile: cannot open '%s'", path);
        return false;
    }
    if (fcntl(fd, F_SETLK, &lock) < 0) {
        error_setg(errp,
                   "--pidfile: '%s' is locked: another instance is "
                   "running",
                   path);
        close(fd); /* not ours: leave it */
        return false;
    }
    len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, buf, len) != len) {
        error_setg_errno(errp, errno, "--pidfile: cannot write '%s'", path);
        unlink(path);
        close(fd);
        return false;
    }
    pidfile_fd = fd;
    pidfile_path = g_strdup(path);
    return true;
}

static void pidfile_remove(void)
{
    if (pidfile_path) {
        unlink(pidfile_path);
        close(pidfile_fd);
        g_clear_pointer(&pidfile_path, g_free);
        pidfile_fd = -1;
    }
}

/* ---- daemonizing -------------------------------------------------------- */

/*
 * Forks.  The parent waits until the child reports that setup succeeded (a
 * zero byte on the pipe) and exits 0, or exits 1 if the pipe closes without
 * it (the child printed its error to our common stderr and exited).  The
 * child returns the pipe's write end.  Before any thread exists, since
 * fork() keeps only the calling thread.
 */
static int daemonize_start(void)
{
    int fds[2];
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0) {
        error_report("--daemonize: pipe: %s", g_strerror(errno));
        exit(1);
    }
    pid = fork();
    if (pid < 0) {
        error_report("--daemonize: fork: %s", g_strerror(errno));
        exit(1);
    }
    if (pid > 0) {
        char status = 1;

        close(fds[1]);
        while (read(fds[0], &status, 1) < 0 && errno == EINTR) {
        }
        _exit(status == 0 ? 0 : 1);
    }
    close(fds[0]);
    setsid();
    return fds[1];
}

static void daemonize_finish(int fd)
{
    char ok = 0;
    int null = open("/dev/null", O_RDWR);

    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO) {
            close(null);
        }
    }
    if (write(fd, &ok, 1) != 1) {
        /* The parent is gone: nobody to tell. */
    }
    close(fd);
}

/* ---- options ------------------------------------------------------------ */

static bool apply_option(DaemonOption *o, Error **errp)
{
    bool ok;

    switch (o->kind) {
    case DAEMON_OPT_OBJECT:
        ok = daemon_object_add(o->opts, errp);
        break;
    case DAEMON_OPT_BLOCKDEV:
        ok = daemon_blockdev_add(o->opts, errp);
        break;
    case DAEMON_OPT_NBD_SERVER:
        ok = daemon_nbd_server_start(o->opts, errp);
        break;
    case DAEMON_OPT_EXPORT:
        ok = daemon_export_add(o->opts, errp);
        break;
    case DAEMON_OPT_CHARDEV:
        ok = daemon_chardev_add(o->opts, errp);
        break;
    case DAEMON_OPT_MONITOR:
        ok = daemon_monitor_add(o->opts, errp);
        break;
    default:
        g_assert_not_reached();
    }
    if (!ok) {
        error_prepend(errp, "%s %s: ", o->name, o->arg);
    }
    return ok;
}

/*
 * Prints the help an --object help asked for (the types are registered by
 * now) and sets the exit status; false if no option asked for help.
 */
static bool print_object_help(DaemonConfig *cfg, int *status)
{
    for (guint i = 0; i < cfg->options->len; i++) {
        DaemonOption *o = g_ptr_array_index(cfg->options, i);
        const char *type;
        g_autofree char *text = NULL;
        g_autoptr(Error) err = NULL;

        if (!o->help) {
            continue;
        }
        type = g_hash_table_lookup(o->opts, "qom-type");
        text = type ? object_type_help(type, &err) : object_type_help_list();
        if (!text) {
            error_report("%s %s: %s", o->name, o->arg, error_get_pretty(err));
            *status = 1;
        } else {
            fputs(text, stdout);
            *status = 0;
        }
        return true;
    }
    return false;
}

static void print_connect_hint(void)
{
    g_autofree char *cwd = g_get_current_dir();
    g_autofree char *sock =
        g_build_filename(cwd, DAEMON_DEFAULT_NBD_SOCKET, NULL);

    printf("dataplaned: serving a 1 GiB memory disk '%s' from IOThread '%s'\n"
           "  NBD:     ./%s (export '%s')\n"
           "  monitor: ./%s (QMP)\n"
           "Connect with (nbdinfo is in Debian's libnbd-bin, qemu-io in "
           "qemu-utils;\n`make run` installs both when run as root):\n"
           "  nbdinfo 'nbd+unix:///%s?socket=%s'\n"
           "  qemu-io -f raw -c 'write -P 0x5a 0 1M' -c 'read -P 0x5a 0 1M' "
           "'nbd+unix:///%s?socket=%s'\n",
           DAEMON_DEFAULT_EXPORT, DAEMON_DEFAULT_IOTHREAD,
           DAEMON_DEFAULT_NBD_SOCKET, DAEMON_DEFAULT_EXPORT,
           DAEMON_DEFAULT_QMP_SOCKET, DAEMON_DEFAULT_EXPORT, sock,
           DAEMON_DEFAULT_EXPORT, sock);
    fflush(stdout);
}

/* ---- teardown ----------------------------------------------------------- */

static void daemon_teardown(void)
{
    /* Paused IOThreads could not finish their requests. */
    daemon_resume();
    daemon_monitors_stop_listening();
    if (shutdown_reason) {
        monitor_emit_event("SHUTDOWN", json_pack("{s:b,s:s}", "guest", 0,
                                                 "reason", shutdown_reason));
    }
    daemon_exports_cleanup();
    daemon_blockdevs_cleanup();
    daemon_objects_cleanup();
    daemon_monitors_free();
    pidfile_remove();
}

int main(int argc, char **argv)
{
    g_autoptr(Error) err = NULL;
    DaemonConfig cfg;
    int ready_fd = -1;
    int status = 0;

    g_set_prgname("dataplaned");
    if (!cmdline_parse(argc, argv, &cfg, &err)) {
        error_report_err(g_steal_pointer(&err));
        cmdline_config_free(&cfg);
        return 1;
    }
    if (cfg.help) {
        cmdline_print_help(argv[0]);
        cmdline_config_free(&cfg);
        return 0;
    }
    if (cfg.version) {
        printf("dataplaned %s\n", DATAPLANE_VERSION_STRING);
        cmdline_config_free(&cfg);
        return 0;
    }

    /* A vanished NBD or monitor client must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    if (cfg.daemonize) {
        ready_fd = daemonize_start();
    }
    if (!main_loop_init(&err)) {
        error_report_err(g_steal_pointer(&err));
        return 1;
    }
    g_unix_signal_add(SIGTERM, on_signal, NULL);
    g_unix_signal_add(SIGINT, on_signal, NULL);
    /* As qemu-storage-daemon: a closed terminal is a request to stop, not
     * a death that leaves the sockets behind. */
    g_unix_signal_add(SIGHUP, on_signal, NULL);
    daemon_objects_init();

    if (print_object_help(&cfg, &status)) {
        daemon_teardown();
        cmdline_config_free(&cfg);
        return status;
    }
    for (guint i = 0; i < cfg.options->len; i++) {
        if (!apply_option(g_ptr_array_index(cfg.options, i), &err)) {
            goto fail;
        }
    }
    if (cfg.pidfile && !pidfile_write(cfg.pidfile, &err)) {
        goto fail;
    }
    if (cfg.defaults) {
        print_connect_hint();
    }
    if (ready_fd >= 0) {
        daemonize_finish(ready_fd);
    }

    main_loop_run();
    daemon_teardown();
    cmdline_config_free(&cfg);
    return status;

fail:
    error_report_err(g_steal_pointer(&err));
    daemon_teardown();
    cmdline_config_free(&cfg);
    return 1;
}
