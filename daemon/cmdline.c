/* The dataplaned command line; see cmdline.h. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/keyval.h"
#include "cmdline.h"

enum {
    OPT_OBJECT = 256,
    OPT_BLOCKDEV,
    OPT_NBD_SERVER,
    OPT_EXPORT,
    OPT_CHARDEV,
    OPT_MONITOR,
    OPT_PIDFILE,
    OPT_DAEMONIZE,
};

static const struct option long_options[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"object", required_argument, NULL, OPT_OBJECT},
    {"blockdev", required_argument, NULL, OPT_BLOCKDEV},
    {"nbd-server", required_argument, NULL, OPT_NBD_SERVER},
    {"export", required_argument, NULL, OPT_EXPORT},
    {"chardev", required_argument, NULL, OPT_CHARDEV},
    {"monitor", required_argument, NULL, OPT_MONITOR},
    {"pidfile", required_argument, NULL, OPT_PIDFILE},
    {"daemonize", no_argument, NULL, OPT_DAEMONIZE},
    {NULL, 0, NULL, 0},
};

/* Per kind: its spelling and the key a bare first value stands for. */
static const struct {
    const char *name;
    const char *implied_key;
} kinds[] = {
    [DAEMON_OPT_OBJECT] = {"--object", "qom-type"},
    [DAEMON_OPT_BLOCKDEV] = {"--blockdev", "driver"},
    [DAEMON_OPT_NBD_SERVER] = {"--nbd-server", NULL},
    [DAEMON_OPT_EXPORT] = {"--export", "type"},
    [DAEMON_OPT_CHARDEV] = {"--chardev", "backend"},
    [DAEMON_OPT_MONITOR] = {"--monitor", "chardev"},
};

static void option_free(gpointer p)
{
    DaemonOption *o = p;

    g_free(o->arg);
    if (o->opts) {
        g_hash_table_destroy(o->opts);
    }
    g_free(o);
}

/*
 * QEMU parses --chardev with its older option parser, where a bare `server`
 * means server=on and `nowait` means wait=off (deprecated there, with a
 * warning, but in every older script and tutorial).  Rewrites those two
 * keys into KEY=VALUE form so the keyval parser takes them; anything else
 * is left for it to judge.  Returns a new string.
 */
static char *chardev_expand_short_bools(const char *arg)
{
    static const char *const keys[] = {"server", "wait"};
    GString *out = g_string_new(NULL);
    const char *p = arg;
    bool first = true;

    while (*p) {
        /* One element: up to a ',' that is not part of ",,". */
        const char *e = p;

        while (*e && !(*e == ',' && e[1] != ',')) {
            e += (*e == ',') ? 2 : 1;
        }
        g_autofree char *elem = g_strndup(p, e - p);
        const char *rewritten = NULL;

        for (size_t i = 0; !first && i < G_N_ELEMENTS(keys); i++) {
            bool no = g_str_has_prefix(elem, "no");

            if (!strcmp(elem + (no ? 2 : 0), keys[i])) {
                fprintf(stderr,
                        "dataplaned: --chardev %s: warning: short-form "
                        "boolean option '%s' deprecated\n"
                        "Please use %s=%s instead\n",
                        arg, elem, keys[i], no ? "off" : "on");
                rewritten = no ? "off" : "on";
                g_string_append_printf(out, "%s%s=%s", first ? "" : ",",
                                       keys[i], rewritten);
                break;
            }
        }
        if (!rewritten) {
            g_string_append_printf(out, "%s%s", first ? "" : ",", elem);
        }
        first = false;
        p = *e ? e + 1 : e;
    }
    return g_string_free(out, FALSE);
}

static bool add_option(DaemonConfig *cfg, DaemonOptionKind kind,
                       const char *arg, Error **errp)
{
    g_autofree char *expanded = NULL;
    Error *err = NULL;
    bool help = false;
    GHashTable *opts;
    DaemonOption *o;

    /* "--object help" and "--object <type>,help" ask for the list of
     * types or a type's properties, as in QEMU. */
    if (kind == DAEMON_OPT_OBJECT && arg[strspn(arg, " \t")] != '{') {
        opts = keyval_parse(arg, kinds[kind].implied_key, &help, &err);
    } else if (kind == DAEMON_OPT_CHARDEV) {
        expanded = chardev_expand_short_bools(arg);
        opts = keyval_parse_option(expanded, kinds[kind].implied_key, &err);
    } else {
        opts = keyval_parse_option(arg, kinds[kind].implied_key, &err);
    }

    if (!opts) {
        error_setg(errp, "%s %s: %s", kinds[kind].name, arg,
                   error_get_pretty(err));
        error_free(err);
        return false;
    }
    o = g_new0(DaemonOption, 1);
    o->kind = kind;
    o->name = kinds[kind].name;
    o->arg = g_strdup(arg);
    o->opts = opts;
    o->help = help;
    g_ptr_array_add(cfg->options, o);
    return true;
}

/* The configuration of a bare `dataplaned`, written as options so that it
 * goes through exactly the code a user's options go through. */
static void add_defaults(DaemonConfig *cfg)
{
    static const struct {
        DaemonOptionKind kind;
        const char *arg;
    } defaults[] = {
        {DAEMON_OPT_OBJECT, "iothread,id=" DAEMON_DEFAULT_IOTHREAD},
        {DAEMON_OPT_BLOCKDEV,
         "driver=memory,node-name=" DAEMON_DEFAULT_EXPORT ",size=1073741824"},
        {DAEMON_OPT_NBD_SERVER,
         "addr.type=unix,addr.path=" DAEMON_DEFAULT_NBD_SOCKET},
        {DAEMON_OPT_EXPORT,
         "type=nbd,id=export0,node-name=" DAEMON_DEFAULT_EXPORT
         ",name=" DAEMON_DEFAULT_EXPORT
         ",writable=on,iothread=" DAEMON_DEFAULT_IOTHREAD},
        {DAEMON_OPT_CHARDEV, "socket,id=qmp0,path=" DAEMON_DEFAULT_QMP_SOCKET
                             ",server=on,wait=off"},
        {DAEMON_OPT_MONITOR, "chardev=qmp0"},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(defaults); i++) {
        add_option(cfg, defaults[i].kind, defaults[i].arg, &error_abort);
    }
}

bool cmdline_parse(int argc, char **argv, DaemonConfig *cfg, Error **errp)
{
    int c;

    memset(cfg, 0, sizeof(*cfg));
    cfg->options = g_ptr_array_new_with_free_func(option_free);
    if (argc <= 1) {
        cfg->defaults = true;
        add_defaults(cfg);
        return true;
    }

    opterr = 0; /* our own one-line messages */
    optind = 0; /* glibc: 0 also resets its scan state (a second argv) */
    while ((c = getopt_long(argc, argv, "+:hV", long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
            cfg->help = true;
            break;
        case 'V':
            cfg->version = true;
            break;
        case OPT_OBJECT:
        case OPT_BLOCKDEV:
        case OPT_NBD_SERVER:
        case OPT_EXPORT:
        case OPT_CHARDEV:
        case OPT_MONITOR:
            if (!add_option(cfg, DAEMON_OPT_OBJECT + (c - OPT_OBJECT), optarg,
                            errp)) {
                return false;
            }
            break;
        case OPT_PIDFILE:
            if (!*optarg) {
                error_setg(errp, "--pidfile: the path must not be empty");
                return false;
            }
            g_free(cfg->pidfile);
            cfg->pidfile = g_strdup(optarg);
            break;
        case OPT_DAEMONIZE:
            cfg->daemonize = true;
            break;
        case ':':
            error_setg(errp, "%s: option requires an argument",
                       argv[optind - 1]);
            return false;
        case '?':
        default:
            if (optopt && optopt < 256) {
                error_setg(errp, "-%c: unrecognized option", optopt);
            } else {
                error_setg(errp, "%s: unrecognized option", argv[optind - 1]);
            }
            return false;
        }
    }
    if (optind < argc) {
        error_setg(errp, "%s: unexpected argument", argv[optind]);
        return false;
    }
    return true;
}

void cmdline_config_free(DaemonConfig *cfg)
{
    if (cfg->options) {
        g_ptr_array_free(cfg->options, TRUE);
    }
    g_free(cfg->pidfile);
    memset(cfg, 0, sizeof(*cfg));
}

/* The text's layout is the output's: clang-format keeps out. */
// clang-format off
void cmdline_print_help(const char *prog)
{
    printf(
"Usage: %s [options]\n"
"A storage daemon: exports block nodes over NBD and to virtual machines over\n"
"vhost-user-blk from IOThreads, managed over a QMP monitor.  Options follow\n"
"qemu-storage-daemon's syntax.\n"
"\n"
"  -h, --help             print this help and exit\n"
"  -V, --version          print the version and exit\n"
"  --object iothread,id=<id>[,poll-max-ns=<ns>][,poll-grow=<n>]\n"
"           [,poll-shrink=<n>][,aio-max-batch=<n>][,thread-pool-min=<n>]\n"
"           [,thread-pool-max=<n>]\n"
"                         an IOThread (an event-loop thread)\n"
"  --object throttle-group,id=<id>[,x-bps-total=<n>,x-iops-total=<n>,...]\n"
"                         a group of throttle limits for throttle nodes\n"
"  --object tls-creds-x509,id=<id>,dir=<dir>,endpoint=server\n"
"           [,verify-peer=on|off][,sanity-check=on|off][,priority=<str>]\n"
"                         X.509 TLS credentials (ca-cert.pem, server-cert.pem,\n"
"                         server-key.pem in <dir>)\n"
"  --object tls-creds-psk,id=<id>,dir=<dir>,endpoint=server[,priority=<str>]\n"
"                         TLS pre-shared keys (<dir>/keys.psk, from psktool)\n"
"  --object authz-simple,id=<id>,identity=<DN or PSK username>\n"
"                         the one TLS client identity tls-authz allows\n"
"  --object authz-listfile,id=<id>,filename=<JSON file>[,refresh=on|off]\n"
"                         TLS client identities allowed by a rule list\n"
"  --object help, --object <type>,help\n"
"                         list the object types, or a type's properties\n"
"  --blockdev [driver=]<driver>,node-name=<name>[,<option>=<value>...]\n"
"  --blockdev '<JSON object>'\n"
"                         a block node: file, raw, qcow2, memory, null-co,\n"
"                         throttle\n"
"  --nbd-server addr.type=unix,addr.path=<path>[,addr.mode=<0600>]\n"
"               [,max-connections=<n>][,handshake-max-seconds=<s>]\n"
"               [,tls-creds=<id>[,tls-authz=<id>]]\n"
"  --nbd-server addr.type=inet,addr.host=<host>,addr.port=<port>[,...]\n"
"  --nbd-server addr.type=fd,addr.str=<listening fd>[,...]\n"
"                         the NBD server (one per daemon)\n"
"  --export [type=]nbd,id=<id>,node-name=<node>[,name=<export name>]\n"
"           [,writable=on|off][,iothread=<id>|,iothread.0=<id>,iothread.1=...]\n"
"           [,description=<text>]\n"
"                         an NBD export of a node\n"
"  --export [type=]vhost-user-blk,id=<id>,node-name=<node>,addr.type=unix,\n"
"           addr.path=<path>[,writable=on|off][,num-queues=<n>]\n"
"           [,logical-block-size=<n>][,iothread=<id>]\n"
"                         a virtio-blk disk for a VM (QEMU vhost-user-blk-pci)\n"
"  --chardev socket,id=<id>,path=<path>,server=on,wait=off\n"
"                         a listening unix socket for a monitor\n"
"  --monitor [chardev=]<id>\n"
"                         a QMP monitor on that socket\n"
"  --pidfile <path>       write the process id there (removed at exit)\n"
"  --daemonize            detach once everything is set up\n"
"\n"
"Without any option: a 1 GiB memory disk '%s' served from IOThread '%s'\n"
"over NBD on ./%s, with a monitor on ./%s.\n"
"\n"
"SIGTERM, SIGINT or SIGHUP: stop accepting, drain, flush, close, remove the\n"
"sockets the daemon created, exit 0.  The QMP commands, signals and exit\n"
"status: man dataplaned (docs/dataplaned.md).\n",
        prog, DAEMON_DEFAULT_EXPORT, DAEMON_DEFAULT_IOTHREAD,
        DAEMON_DEFAULT_NBD_SOCKET, DAEMON_DEFAULT_QMP_SOCKET);
}
// clang-format on
