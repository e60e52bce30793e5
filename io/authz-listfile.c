/*
 * The "authz-listfile" object type (QEMU's): the rules of an authz-list
 * document read from a JSON file, re-read when the file is rewritten
 * (refresh=on, the default, with inotify on its directory).
 *
 *   --object authz-listfile,id=auth0,filename=/etc/dataplane/nbd-acl.json
 *
 * A rewrite that does not parse is logged and leaves the object denying
 * every identity until the file is fixed: a broken list never admits more
 * than the one it replaced.  Main loop thread (the file is watched from
 * the main loop's AioContext, and checks happen there).
 */
#include <errno.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "dataplane/main-loop.h"
#include "io/authz-int.h"
#include "io/file-read.h"

struct AuthzListFile {
    char *filename;
    char *base;      /* the name inotify reports, in its directory */
    AuthzList *list; /* NULL after a failed reload: deny everything */
    int ino_fd;      /* -1 without refresh */
};

static AuthzList *load(const char *filename, Error **errp)
{
    g_autofree char *text = NULL;
    size_t len;

    if (!io_read_small_file(filename, "authorization list", AUTHZ_LIST_FILE_MAX,
                            true, &text, &len, errp)) {
        return NULL;
    }
    if (strlen(text) != len) {
        error_setg(errp, "%s: NUL byte in the file", filename);
        return NULL;
    }
    return authz_list_parse(text, filename, errp);
}

static void reload(Authz *a)
{
    AuthzListFile *lf = a->lf;
    Error *err = NULL;

    authz_list_free(lf->list);
    lf->list = load(lf->filename, &err);
    if (!lf->list) {
        error_report("authz-listfile '%s': %s; every identity is denied until "
                     "the file is fixed",
                     a->id, error_get_pretty(err));
        error_free(err);
    }
}

/* inotify: reload when our file was written and closed, or renamed in. */
static void on_event(void *opaque)
{
    Authz *a = opaque;
    AuthzListFile *lf = a->lf;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool ours = false;
    ssize_t n;

    while ((n = read(lf->ino_fd, buf, sizeof(buf))) > 0) {
        const char *p = buf;

        while (p < buf + n) {
            const struct inotify_event *ev = (const struct inotify_event *)p;

            if (ev->len > 0 && !strcmp(ev->name, lf->base)) {
                ours = true;
            }
            p += sizeof(*ev) + ev->len;
        }
    }
    if (ours) {
        reload(a);
    }
}

static void listfile_destroy(void *instance)
{
    Authz *a = instance;
    AuthzListFile *lf = a->lf;

    if (lf->ino_fd >= 0) {
        aio_set_fd_handler(main_loop_get_aio_context(), lf->ino_fd, NULL, NULL,
                           NULL, NULL);
        close(lf->ino_fd);
    }
    authz_list_free(lf->list);
    g_free(lf->filename);
    g_free(lf->base);
    g_free(lf);
    g_free(a->id);
    g_free(a);
}

static void *listfile_create(const char *id, const ObjectProps *props,
                             Error **errp)
{
    const char *filename = object_props_get_str(props, "filename");
    Authz *a = g_new0(Authz, 1);
    AuthzListFile *lf = g_new0(AuthzListFile, 1);
    g_autofree char *dir = NULL;

    a->kind = AUTHZ_LISTFILE;
    a->id = g_strdup(id);
    a->lf = lf;
    lf->ino_fd = -1;
    lf->filename = g_strdup(filename);
    lf->base = g_path_get_basename(filename);
    lf->list = load(filename, errp);
    if (!lf->list) {
        goto fail;
    }
    if (!object_props_get_bool(props, "refresh")) {
        return a;
    }
    dir = g_path_get_dirname(filename);
    lf->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (lf->ino_fd < 0 ||
        inotify_add_watch(lf->ino_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
        error_setg_errno(errp, errno, "Cannot watch '%s' for changes", dir);
        goto fail;
    }
    aio_set_fd_handler(main_loop_get_aio_context(), lf->ino_fd, on_event, NULL,
                       NULL, a);
    return a;

fail:
    listfile_destroy(a);
    return NULL;
}

bool authz_listfile_is_allowed(Authz *a, const char *identity, Error **errp)
{
    size_t rule;

    if (!a->lf->list) {
        error_setg(errp,
                   "'%s' denies every identity: its list '%s' did not "
                   "load",
                   a->id, a->lf->filename);
        return false;
    }
    if (!authz_list_allows(a->lf->list, identity, &rule)) {
        if (rule) {
            error_setg(errp, "Identity '%s' is denied by '%s' (rule %zu)",
                       identity, a->id, rule);
        } else {
            error_setg(errp, "Identity '%s' is denied by '%s' (its policy)",
                       identity, a->id);
        }
        return false;
    }
    return true;
}

static const ObjectPropertyInfo listfile_props[] = {
    {"filename", OBJECT_VALUE_STR,
     "JSON file of rules: {\"policy\": ..., \"rules\": [...]}",
     OBJECT_PROP_REQUIRED},
    {"refresh", OBJECT_VALUE_BOOL, "re-read the file when it is rewritten",
     OBJECT_PROP_CREATE, "on"},
    {NULL},
};

static const ObjectTypeInfo listfile_type = {
    .name = "authz-listfile",
    .description = "Authorization: rules from a JSON file, re-read on change",
    .props = listfile_props,
    .create = listfile_create,
    .destroy = listfile_destroy,
};

void authz_listfile_register(void)
{
    object_type_register(&listfile_type);
}
