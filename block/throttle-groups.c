/*
 * Throttle groups: leaky buckets shared by the throttle nodes of a group,
 * and the "throttle-group" object type that users create them with
 * (--object throttle-group,id=tg0,limits.iops-total=1000, QMP object-add,
 * qom-set at runtime).
 *
 * Each of the six limits is a leaky bucket: a request adds its cost (1 for
 * iops, its bytes for bps) to the bucket's level, which drains at `avg`
 * units per second.  A request is let through while the level is at most
 * the bucket's size: avg/10 (a tenth of a second's worth) without a burst,
 * max * max-length with one.  With a burst, a second bucket of size max/10
 * draining at `max` caps the rate during the burst.  A request that finds
 * a bucket over its size waits (level - size) / avg, the time the excess
 * takes to drain.
 */
#include <string.h>

#include "block/throttle-groups.h"
#include "util/clock.h"
#include "util/thread.h"

#define THROTTLE_VALUE_MAX INT64_C(1000000000000000) /* as QEMU: 1e15 */

typedef struct ThrottleBucket {
    double level;
    double burst_level;
} ThrottleBucket;

struct ThrottleGroup {
    DpMutex lock; /* protects everything below */
    ThrottleLimit limits[THROTTLE_BUCKETS];
    ThrottleBucket buckets[THROTTLE_BUCKETS];
    int64_t last_leak_ns;
    GPtrArray *members; /* ThrottleMember * */
};

static const char *const bucket_names[THROTTLE_BUCKETS] = {
    "bps-total",  "bps-read",  "bps-write",
    "iops-total", "iops-read", "iops-write",
};

static void throttle_leak_locked(ThrottleGroup *tg, int64_t now)
{
    double dt = (now - tg->last_leak_ns) / 1e9;
    int i;

    if (dt <= 0) {
        return;
    }
    for (i = 0; i < THROTTLE_BUCKETS; i++) {
        ThrottleLimit *l = &tg->limits[i];
        ThrottleBucket *b = &tg->buckets[i];

        b->level = MAX(0.0, b->level - l->avg * dt);
        b->burst_level = MAX(0.0, b->burst_level - l->max * dt);
    }
    tg->last_leak_ns = now;
}

/* Seconds to wait before bucket i has room, 0 if it has room now. */
static double throttle_wait_locked(ThrottleGroup *tg, int i)
{
    ThrottleLimit *l = &tg->limits[i];
    ThrottleBucket *b = &tg->buckets[i];
    double size, extra, wait = 0;

    if (l->avg == 0) {
        return 0;
    }
    size = l->max ? (double)l->max * l->max_length : l->avg / 10.0;
    extra = b->level - size;
    if (extra > 0) {
        wait = extra / l->avg;
    }
    if (l->max) {
        extra = b->burst_level - l->max / 10.0;
        if (extra > 0) {
            wait = MAX(wait, extra / l->max);
        }
    }
    return wait;
}

int64_t throttle_group_admit(ThrottleGroup *tg, bool is_write, int64_t bytes)
{
    const int relevant[4] = {
        THROTTLE_BPS_TOTAL,
        is_write ? THROTTLE_BPS_WRITE : THROTTLE_BPS_READ,
        THROTTLE_IOPS_TOTAL,
        is_write ? THROTTLE_IOPS_WRITE : THROTTLE_IOPS_READ,
    };
    double wait = 0;
    int i;

    dp_mutex_lock(&tg->lock);
    throttle_leak_locked(tg, clock_monotonic_ns());
    for (i = 0; i < 4; i++) {
        wait = MAX(wait, throttle_wait_locked(tg, relevant[i]));
    }
    if (wait > 0) {
        dp_mutex_unlock(&tg->lock);
        return (int64_t)(wait * 1e9) + 1; /* rounded up */
    }
    for (i = 0; i < 4; i++) {
        double cost = relevant[i] < THROTTLE_IOPS_TOTAL ? (double)bytes : 1.0;

        tg->buckets[relevant[i]].level += cost;
        tg->buckets[relevant[i]].burst_level += cost;
    }
    dp_mutex_unlock(&tg->lock);
    return 0;
}

static bool throttle_limits_check(const ThrottleLimit *limits, Error **errp)
{
    int i;

    for (i = 0; i < THROTTLE_BUCKETS; i += 3) {
        if (limits[i].avg && (limits[i + 1].avg || limits[i + 2].avg)) {
            error_setg(errp, "%s and %s/%s cannot be used at the same time",
                       bucket_names[i], bucket_names[i + 1],
                       bucket_names[i + 2]);
            return false;
        }
    }
    for (i = 0; i < THROTTLE_BUCKETS; i++) {
        const ThrottleLimit *l = &limits[i];

        if (l->avg < 0 || l->max < 0 || l->avg > THROTTLE_VALUE_MAX ||
            l->max > THROTTLE_VALUE_MAX) {
            error_setg(errp,
                       "%s limits must be in range [0, %" G_GINT64_FORMAT "]",
                       bucket_names[i], THROTTLE_VALUE_MAX);
            return false;
        }
        if (l->max && !l->avg) {
            error_setg(errp, "%s-max requires %s to be set", bucket_names[i],
                       bucket_names[i]);
            return false;
        }
        if (l->max && l->max < l->avg) {
            error_setg(errp, "%s-max must be at least %s", bucket_names[i],
                       bucket_names[i]);
            return false;
        }
        if (l->max_length < 1) {
            error_setg(errp, "%s-max-length must be at least 1",
                       bucket_names[i]);
            return false;
        }
        if (l->max_length > 1 && !l->max) {
            error_setg(errp, "%s-max-length requires %s-max to be set",
                       bucket_names[i], bucket_names[i]);
            return false;
        }
    }
    return true;
}

bool throttle_group_set_limits(ThrottleGroup *tg,
                               const ThrottleLimit limits[THROTTLE_BUCKETS],
                               Error **errp)
{
    guint i;

    if (!throttle_limits_check(limits, errp)) {
        return false;
    }
    dp_mutex_lock(&tg->lock);
    memcpy(tg->limits, limits, sizeof(tg->limits));
    /* New limits start from empty buckets, as in QEMU. */
    memset(tg->buckets, 0, sizeof(tg->buckets));
    tg->last_leak_ns = clock_monotonic_ns();
    for (i = 0; i < tg->members->len; i++) {
        ThrottleMember *m = g_ptr_array_index(tg->members, i);

        m->kick(m->opaque);
    }
    dp_mutex_unlock(&tg->lock);
    return true;
}

void throttle_group_get_limits(ThrottleGroup *tg,
                               ThrottleLimit limits[THROTTLE_BUCKETS])
{
    dp_mutex_lock(&tg->lock);
    memcpy(limits, tg->limits, sizeof(tg->limits));
    dp_mutex_unlock(&tg->lock);
}

void throttle_group_add_member(ThrottleGroup *tg, ThrottleMember *m)
{
    dp_mutex_lock(&tg->lock);
    g_ptr_array_add(tg->members, m);
    dp_mutex_unlock(&tg->lock);
}

void throttle_group_remove_member(ThrottleGroup *tg, ThrottleMember *m)
{
    dp_mutex_lock(&tg->lock);
    g_ptr_array_remove(tg->members, m);
    dp_mutex_unlock(&tg->lock);
}

/* ---- the object type ---------------------------------------------------- */

/* One getter and setter per (bucket, field): the registry's hooks do not
 * say which property they serve. */
#define LIMIT_HOOKS(fname, idx, field)                                         \
    static void get_##fname(void *inst, ObjectValue *out)                      \
    {                                                                          \
        ThrottleLimit l[THROTTLE_BUCKETS];                                     \
        throttle_group_get_limits(inst, l);                                    \
        out->i = l[idx].field;                                                 \
    }                                                                          \
    static bool set_##fname(void *inst, const ObjectValue *v, Error **errp)    \
    {                                                                          \
        ThrottleLimit l[THROTTLE_BUCKETS];                                     \
        throttle_group_get_limits(inst, l);                                    \
        l[idx].field = v->i;                                                   \
        return throttle_group_set_limits(inst, l, errp);                       \
    }

#define BUCKET_HOOKS(name, idx)                                                \
    LIMIT_HOOKS(name, idx, avg)                                                \
    LIMIT_HOOKS(name##_max, idx, max)                                          \
    LIMIT_HOOKS(name##_max_length, idx, max_length)

BUCKET_HOOKS(bps_total, THROTTLE_BPS_TOTAL)
BUCKET_HOOKS(bps_read, THROTTLE_BPS_READ)
BUCKET_HOOKS(bps_write, THROTTLE_BPS_WRITE)
BUCKET_HOOKS(iops_total, THROTTLE_IOPS_TOTAL)
BUCKET_HOOKS(iops_read, THROTTLE_IOPS_READ)
BUCKET_HOOKS(iops_write, THROTTLE_IOPS_WRITE)

#define PROP(pname, desc, fname, def, lo)                                      \
    {                                                                          \
        pname, OBJECT_VALUE_INT, desc, OBJECT_PROP_CREATE | OBJECT_PROP_RANGE, \
            def, lo, THROTTLE_VALUE_MAX, get_##fname, set_##fname              \
    }

/* QEMU's names: limits.<limit> (current) and x-<limit> (legacy qom-set). */
#define BUCKET_PROPS(prefix, str, fname, unit)                                 \
    PROP(prefix str, "limit in " unit " per second (0: none)", fname, "0", 0), \
        PROP(prefix str "-max", "burst in " unit " per second (0: none)",      \
             fname##_max, "0", 0),                                             \
        PROP(prefix str "-max-length", "seconds a burst may last",             \
             fname##_max_length, "1", 1)

#define ALL_PROPS(prefix)                                                      \
    BUCKET_PROPS(prefix, "bps-total", bps_total, "bytes"),                     \
        BUCKET_PROPS(prefix, "bps-read", bps_read, "bytes"),                   \
        BUCKET_PROPS(prefix, "bps-write", bps_write, "bytes"),                 \
        BUCKET_PROPS(prefix, "iops-total", iops_total, "requests"),            \
        BUCKET_PROPS(prefix, "iops-read", iops_read, "requests"),              \
        BUCKET_PROPS(prefix, "iops-write", iops_write, "requests")

static const ObjectPropertyInfo throttle_group_props[] = {
    ALL_PROPS("limits."),
    ALL_PROPS("x-"),
    {NULL},
};

/* The value of limit `name` given at creation, in either spelling. */
static int64_t create_value(const ObjectProps *props, const char *name)
{
    g_autofree char *cur = g_strconcat("limits.", name, NULL);
    g_autofree char *legacy = g_strconcat("x-", name, NULL);

    if (!object_props_has(props, cur) && object_props_has(props, legacy)) {
        return object_props_get_int(props, legacy);
    }
    return object_props_get_int(props, cur);
}

static void *throttle_group_create(const char *id, const ObjectProps *props,
                                   Error **errp)
{
    ThrottleLimit limits[THROTTLE_BUCKETS];
    ThrottleGroup *tg;
    int i;

    for (i = 0; i < THROTTLE_BUCKETS; i++) {
        g_autofree char *max = g_strconcat(bucket_names[i], "-max", NULL);
        g_autofree char *len =
            g_strconcat(bucket_names[i], "-max-length", NULL);

        limits[i].avg = create_value(props, bucket_names[i]);
        limits[i].max = create_value(props, max);
        limits[i].max_length = create_value(props, len);
    }
    if (!throttle_limits_check(limits, errp)) {
        return NULL;
    }
    tg = g_new0(ThrottleGroup, 1);
    dp_mutex_init(&tg->lock);
    tg->members = g_ptr_array_new();
    memcpy(tg->limits, limits, sizeof(limits));
    tg->last_leak_ns = clock_monotonic_ns();
    return tg;
}

static void throttle_group_destroy(void *instance)
{
    ThrottleGroup *tg = instance;

    /* Nodes register as the object's users, so none is left here. */
    g_assert(tg->members->len == 0);
    g_ptr_array_free(tg->members, true);
    dp_mutex_destroy(&tg->lock);
    g_free(tg);
}

static const ObjectTypeInfo throttle_group_type = {
    .name = "throttle-group",
    .description = "I/O limits shared by the throttle nodes that name it",
    .props = throttle_group_props,
    .create = throttle_group_create,
    .destroy = throttle_group_destroy,
};

void throttle_groups_init(void)
{
    object_type_register(&throttle_group_type);
}

ThrottleGroup *throttle_group_find(const char *id, Object **obj)
{
    Object *o = object_find(id);

    if (!o || strcmp(object_get_type(o), "throttle-group") != 0) {
        return NULL;
    }
    if (obj) {
        *obj = o;
    }
    return object_get_instance(o);
}
