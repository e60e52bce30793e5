/*
 * Shared cluster connections; see rbd-conn.h.
 *
 * The table maps a connection's identity (its parameters, the key as a
 * hash) to the connection.  An entry is in the table while it is being
 * made or is usable; a failed attempt leaves the table at once (so the
 * next open tries again) and is freed by the last of its waiters.
 */
#include <errno.h>
#include <string.h>

#include "block/rbd-conn.h"

enum {
    CONN_CONNECTING,
    CONN_READY,
    CONN_FAILED,
};

struct RbdConn {
    char *id;
    char *describe;
    rados_t cluster;
    /* Under conn_lock. */
    int refcnt;
    int state;
    Error *err; /* CONN_FAILED: why (each waiter gets a copy) */
};

static GMutex conn_lock;
static GCond conn_cond;   /* state changes */
static GHashTable *conns; /* id -> RbdConn, under conn_lock */
static unsigned live;     /* rados handles created and not shut down */

void rbd_conn_params_clear(RbdConnParams *p)
{
    g_free(p->conf);
    g_free(p->user);
    if (p->key) {
        explicit_bzero(p->key, strlen(p->key));
        g_free(p->key);
    }
    g_free(p->mon_host);
    g_free(p->auth);
    g_free(p->mount_timeout);
    g_free(p->osd_op_timeout);
    g_free(p->mon_op_timeout);
    memset(p, 0, sizeof(*p));
}

static char *params_id(const RbdConnParams *p)
{
    g_autofree char *key_hash =
        p->key ? g_compute_checksum_for_string(G_CHECKSUM_SHA256, p->key, -1)
               : NULL;

    /* Each field is tagged and NUL-free, so distinct parameters never
     * produce the same id. */
    return g_strdup_printf(
        "conf=%s\x1fuser=%s\x1fkey=%s\x1fmon=%s\x1f"
        "auth=%s\x1fmount=%s\x1fosd=%s\x1fmonop=%s\x1f"
        "cache=%d",
        p->conf ? p->conf : "-", p->user ? p->user : "-",
        key_hash ? key_hash : "-", p->mon_host ? p->mon_host : "-",
        p->auth ? p->auth : "-", p->mount_timeout ? p->mount_timeout : "-",
        p->osd_op_timeout ? p->osd_op_timeout : "-",
        p->mon_op_timeout ? p->mon_op_timeout : "-", p->rbd_cache);
}

static bool conf_set(rados_t cluster, const char *opt, const char *value,
                     Error **errp)
{
    int ret;

    if (!value) {
        return true;
    }
    ret = rados_conf_set(cluster, opt, value);
    if (ret < 0) {
        error_setg(errp, "Ceph option %s='%s' is not valid: %s", opt,
                   strcmp(opt, "key") ? value : "<secret>", g_strerror(-ret));
        return false;
    }
    return true;
}

/* Creates and connects c->cluster (blocking); false and *errp. */
static bool conn_connect(RbdConn *c, const RbdConnParams *p, Error **errp)
{
    int ret = rados_create(&c->cluster, p->user);

    if (ret < 0) {
        error_setg(errp, "Cannot create a Ceph client for user '%s': %s",
                   p->user ? p->user : "admin", g_strerror(-ret));
        c->cluster = NULL;
        return false;
    }
    g_atomic_int_inc(&live);
    /* librados writes its own errors to stderr; ours name what failed,
     * on one line.  (A configuration file may turn them on again.) */
    if (!conf_set(c->cluster, "log_to_stderr", "false", errp) ||
        !conf_set(c->cluster, "err_to_stderr", "false", errp)) {
        return false;
    }
    ret = rados_conf_read_file(c->cluster, p->conf);
    if (ret < 0 && (p->conf || ret != -ENOENT)) {
        error_setg(errp, "Cannot read the Ceph configuration file '%s': %s",
                   p->conf ? p->conf : "(default)", g_strerror(-ret));
        return false;
    }
    if (!conf_set(c->cluster, "mon_host", p->mon_host, errp) ||
        !conf_set(c->cluster, "key", p->key, errp) ||
        !conf_set(c->cluster, "auth_client_required", p->auth, errp) ||
        !conf_set(c->cluster, "client_mount_timeout", p->mount_timeout, errp) ||
        !conf_set(c->cluster, "rados_osd_op_timeout", p->osd_op_timeout,
                  errp) ||
        !conf_set(c->cluster, "rados_mon_op_timeout", p->mon_op_timeout,
                  errp) ||
        !conf_set(c->cluster, "rbd_cache", p->rbd_cache ? "true" : "false",
                  errp)) {
        return false;
    }
    ret = rados_connect(c->cluster);
    if (ret == -ETIMEDOUT) {
        char timeout[32] = "?";

        rados_conf_get(c->cluster, "client_mount_timeout", timeout,
                       sizeof(timeout));
        error_setg(errp,
                   "Cannot connect to the Ceph cluster: no answer from %s "
                   "within %s s (client_mount_timeout)",
                   c->describe, timeout);
        return false;
    }
    if (ret < 0) {
        error_setg(errp, "Cannot connect to the Ceph cluster at %s as '%s': %s",
                   c->describe, p->user ? p->user : "admin",
                   ret == -EACCES || ret == -EPERM || ret == -ENOTSUP
                       ? "authentication failed (user, key-secret or "
                         "auth-client-required?)"
                       : g_strerror(-ret));
        return false;
    }
    return true;
}

/* Shuts c's handle down and frees c; blocking.  No lock held. */
static void conn_free(RbdConn *c)
{
    if (c->cluster) {
        rados_shutdown(c->cluster);
        g_atomic_int_dec_and_test(&live);
    }
    if (c->err) {
        error_free(c->err);
    }
    g_free(c->describe);
    g_free(c->id);
    g_free(c);
}

RbdConn *rbd_conn_get(const RbdConnParams *p, Error **errp)
{
    char *id = params_id(p);
    Error *local_err = NULL;
    RbdConn *c;

    g_mutex_lock(&conn_lock);
    if (!conns) {
        conns = g_hash_table_new(g_str_hash, g_str_equal);
    }
    c = g_hash_table_lookup(conns, id);
    if (c) {
        g_free(id);
        c->refcnt++;
        while (c->state == CONN_CONNECTING) {
            g_cond_wait(&conn_cond, &conn_lock);
        }
        if (c->state == CONN_FAILED) {
            error_propagate(errp, error_copy(c->err));
            g_mutex_unlock(&conn_lock);
            rbd_conn_put(c);
            return NULL;
        }
        g_mutex_unlock(&conn_lock);
        return c;
    }
    c = g_new0(RbdConn, 1);
    c->id = id;
    c->refcnt = 1;
    c->state = CONN_CONNECTING;
    c->describe = p->mon_host ? g_strdup_printf("monitors %s", p->mon_host)
                  : p->conf   ? g_strdup_printf("the monitors of '%s'", p->conf)
                              : g_strdup("the default monitors");
    g_hash_table_insert(conns, c->id, c);
    g_mutex_unlock(&conn_lock);

    /* The wait, outside the lock: others may look up other ids. */
    conn_connect(c, p, &local_err);

    g_mutex_lock(&conn_lock);
    if (local_err) {
        c->state = CONN_FAILED;
        c->err = error_copy(local_err);
        g_hash_table_remove(conns, c->id);
    } else {
        c->state = CONN_READY;
    }
    g_cond_broadcast(&conn_cond);
    g_mutex_unlock(&conn_lock);
    if (local_err) {
        error_propagate(errp, local_err);
        rbd_conn_put(c);
        return NULL;
    }
    return c;
}

void rbd_conn_put(RbdConn *c)
{
    bool last;

    g_mutex_lock(&conn_lock);
    last = --c->refcnt == 0;
    if (last && c->state == CONN_READY) {
        g_hash_table_remove(conns, c->id);
    }
    g_mutex_unlock(&conn_lock);
    if (last) {
        conn_free(c);
    }
}

rados_t rbd_conn_get_cluster(RbdConn *c)
{
    return c->cluster;
}

const char *rbd_conn_describe(RbdConn *c)
{
    return c->describe;
}

unsigned rbd_conn_count(void)
{
    return g_atomic_int_get(&live);
}
