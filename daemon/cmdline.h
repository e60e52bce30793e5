/*
 * The dataplaned command line, in qemu-storage-daemon's syntax.
 *
 * Parsing is purely syntactic and creates nothing: every option's argument
 * becomes a keyval table (include/dataplane/keyval.h) here, and
 * dataplaned.c applies them in command-line order afterwards.  So a typo
 * anywhere is reported before a single socket or thread exists.
 *
 * Thread-safety: main thread, before anything else runs.
 */
#ifndef DATAPLANE_DAEMON_CMDLINE_H
#define DATAPLANE_DAEMON_CMDLINE_H

#include <stdbool.h>
#include <glib.h>

#include "dataplane/error.h"

typedef enum DaemonOptionKind {
    DAEMON_OPT_OBJECT,
    DAEMON_OPT_BLOCKDEV,
    DAEMON_OPT_NBD_SERVER,
    DAEMON_OPT_EXPORT,
    DAEMON_OPT_CHARDEV,
    DAEMON_OPT_MONITOR,
} DaemonOptionKind;

typedef struct DaemonOption {
    DaemonOptionKind kind;
    const char *name; /* "--object": for messages */
    char *arg;        /* the argument as given: for messages */
    GHashTable *opts; /* parsed: char * -> char *, dotted keys */
    bool help;        /* --object help / --object <type>,help */
} DaemonOption;

typedef struct DaemonConfig {
    GPtrArray *options; /* DaemonOption *, in command-line order */
    char *pidfile;
    bool daemonize;
    bool help;
    bool version;
    bool defaults; /* no option at all: the default configuration */
} DaemonConfig;

/* The NBD socket and monitor socket of the default configuration. */
#define DAEMON_DEFAULT_NBD_SOCKET "dataplaned.sock"
#define DAEMON_DEFAULT_QMP_SOCKET "dataplaned-qmp.sock"
#define DAEMON_DEFAULT_EXPORT "disk0"
#define DAEMON_DEFAULT_IOTHREAD "iothread0"

/*
 * Parses argv into cfg.  Returns false with a one-line *errp naming the
 * option for anything wrong: an unknown option, a missing argument, a stray
 * argument, or an argument that is not valid KEY=VALUE or JSON.
 */
bool cmdline_parse(int argc, char **argv, DaemonConfig *cfg, Error **errp);
void cmdline_config_free(DaemonConfig *cfg);

/* The --help text. */
void cmdline_print_help(const char *prog);

#endif /* DATAPLANE_DAEMON_CMDLINE_H */
