/*
 * Event loops in the object registry (the seeds' QContext): the "iothread"
 * type, created and deleted with object_add/object_del, and the main loop,
 * registered as the object "main-loop" of type "main-loop".
 *
 * Property names are QEMU's (poll-max-ns, poll-grow, poll-shrink,
 * aio-max-batch, thread-pool-min, thread-pool-max, thread-id), plus
 * "backend" (epoll or io_uring) for the IOThread's fd-monitoring backend.
 * poll-* can be changed at runtime; the others are fixed at creation.
 *
 * Threading: the registry's hooks run in the main loop thread.
 */
#include <limits.h>

#include "aio/aio-internal.h"
#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "dataplane/object.h"
#include "dataplane/threadlet.h"

/* ---- the "iothread" type ---------------------------------------------- */

static void iothread_get_thread_id_prop(void *instance, ObjectValue *out)
{
    out->i = iothread_get_thread_id(instance);
}

#define IOTHREAD_PROP_GETTER(field)                                            \
    static void iothread_get_##field(void *instance, ObjectValue *out)         \
    {                                                                          \
        IOThreadProps p;                                                       \
        iothread_get_props(instance, &p);                                      \
        out->i = p.field;                                                      \
    }
IOTHREAD_PROP_GETTER(poll_max_ns)
IOTHREAD_PROP_GETTER(poll_grow)
IOTHREAD_PROP_GETTER(poll_shrink)
IOTHREAD_PROP_GETTER(aio_max_batch)
IOTHREAD_PROP_GETTER(thread_pool_min)
IOTHREAD_PROP_GETTER(thread_pool_max)

static void iothread_get_backend(void *instance, ObjectValue *out)
{
    IOThreadProps p;

    iothread_get_props(instance, &p);
    out->s = g_strdup(aio_backend_name(p.backend));
}

/* Changes one of the three poll parameters, keeping the other two. */
static bool iothread_set_poll(void *instance, int which, int64_t v,
                              Error **errp)
{
    IOThreadProps p;

    iothread_get_props(instance, &p);
    return iothread_set_poll_params(instance, which == 0 ? v : p.poll_max_ns,
                                    which == 1 ? v : p.poll_grow,
                                    which == 2 ? v : p.poll_shrink, errp);
}

static bool iothread_set_poll_max_ns(void *instance, const ObjectValue *v,
                                     Error **errp)
{
    return iothread_set_poll(instance, 0, v->i, errp);
}

static bool iothread_set_poll_grow(void *instance, const ObjectValue *v,
                                   Error **errp)
{
    return iothread_set_poll(instance, 1, v->i, errp);
}

static bool iothread_set_poll_shrink(void *instance, const ObjectValue *v,
                                     Error **errp)
{
    return iothread_set_poll(instance, 2, v->i, errp);
}

static bool iothread_set_aio_max_batch_prop(void *instance,
                                            const ObjectValue *v, Error **errp)
{
    return iothread_set_aio_max_batch(instance, v->i, errp);
}

static bool iothread_set_thread_pool_min(void *instance, const ObjectValue *v,
                                         Error **errp)
{
    IOThreadProps p;

    iothread_get_props(instance, &p);
    /* v->i is within [0, INT_MAX]: the property's range. */
    return iothread_set_thread_pool_limits(instance, (int)v->i,
                                           p.thread_pool_max, errp);
}

static bool iothread_set_thread_pool_max(void *instance, const ObjectValue *v,
                                         Error **errp)
{
    IOThreadProps p;

    iothread_get_props(instance, &p);
    return iothread_set_thread_pool_limits(instance, p.thread_pool_min,
                                           (int)v->i, errp);
}

#define CREATE_RANGE (OBJECT_PROP_CREATE | OBJECT_PROP_RANGE)

static const ObjectPropertyInfo iothread_props[] = {
    {"poll-max-ns", OBJECT_VALUE_INT,
     "longest busy-polling window before sleeping, in ns (0: no polling)",
     CREATE_RANGE, "32768", 0, INT64_MAX, iothread_get_poll_max_ns,
     iothread_set_poll_max_ns},
    {"poll-grow", OBJECT_VALUE_INT,
     "factor by which the polling window grows (0: default)", CREATE_RANGE, "0",
     0, INT64_MAX, iothread_get_poll_grow, iothread_set_poll_grow},
    {"poll-shrink", OBJECT_VALUE_INT,
     "divisor by which the polling window shrinks (0: to zero at once)",
     CREATE_RANGE, "0", 0, INT64_MAX, iothread_get_poll_shrink,
     iothread_set_poll_shrink},
    {"aio-max-batch", OBJECT_VALUE_INT,
     "most requests batched in one submission (0: backend default)",
     CREATE_RANGE, "0", 0, INT_MAX, iothread_get_aio_max_batch,
     iothread_set_aio_max_batch_prop},
    {"thread-pool-min", OBJECT_VALUE_INT,
     "threads the IOThread's thread pool keeps when idle", CREATE_RANGE, "0", 0,
     INT_MAX, iothread_get_thread_pool_min, iothread_set_thread_pool_min},
    {"thread-pool-max", OBJECT_VALUE_INT,
     "most threads in the IOThread's thread pool", CREATE_RANGE, "64", 1,
     INT_MAX, iothread_get_thread_pool_max, iothread_set_thread_pool_max},
    {"backend", OBJECT_VALUE_STR, "fd monitoring backend: epoll or io_uring",
     OBJECT_PROP_CREATE | OBJECT_PROP_READONLY, "epoll", 0, 0,
     iothread_get_backend, NULL},
    {"thread-id", OBJECT_VALUE_INT, "the thread's kernel id",
     OBJECT_PROP_READONLY, NULL, 0, 0, iothread_get_thread_id_prop, NULL},
    {NULL},
};

static void *iothread_object_create(const char *id, const ObjectProps *props,
                                    Error **errp)
{
    IOThreadProps p;
    IOThread *it;

    iothread_props_init(&p);
    p.poll_max_ns = object_props_get_int(props, "poll-max-ns");
    p.poll_grow = object_props_get_int(props, "poll-grow");
    p.poll_shrink = object_props_get_int(props, "poll-shrink");
    p.aio_max_batch = object_props_get_int(props, "aio-max-batch");
    /* Within [0, INT_MAX]: the properties' range. */
    p.thread_pool_min = (int)object_props_get_int(props, "thread-pool-min");
    p.thread_pool_max = (int)object_props_get_int(props, "thread-pool-max");
    if (!aio_backend_parse(object_props_get_str(props, "backend"), &p.backend,
                           errp)) {
        return NULL;
    }
    it = iothread_new(id, &p, errp);
    if (!it) {
        return NULL;
    }
    /* Its pool shows as /objects/<id>-pool (type threadlet-queue). */
    if (!threadlet_queue_register_object(iothread_get_threadlet_queue(it),
                                         errp)) {
        iothread_destroy(it);
        return NULL;
    }
    return it;
}

static void iothread_object_destroy(void *instance)
{
    iothread_destroy(instance);
}

static const ObjectTypeInfo iothread_type = {
    .name = "iothread",
    .description = "a named event-loop thread",
    .props = iothread_props,
    .create = iothread_object_create,
    .destroy = iothread_object_destroy,
};

void iothread_register_type(void)
{
    object_type_register(&iothread_type);
}

/* ---- the "main-loop" object ------------------------------------------- */

static void main_loop_get_thread_id_prop(void *instance, ObjectValue *out)
{
    out->i = main_loop_get_thread_id();
}

#define MAIN_LOOP_POLL_GETTER(name, index)                                     \
    static void main_loop_get_##name(void *instance, ObjectValue *out)         \
    {                                                                          \
        int64_t v[3];                                                          \
        aio_context_get_poll_params(instance, &v[0], &v[1], &v[2]);            \
        out->i = v[index];                                                     \
    }
MAIN_LOOP_POLL_GETTER(poll_max_ns, 0)
MAIN_LOOP_POLL_GETTER(poll_grow, 1)
MAIN_LOOP_POLL_GETTER(poll_shrink, 2)

static bool main_loop_set_poll(AioContext *ctx, int which, int64_t value,
                               Error **errp)
{
    int64_t v[3];

    aio_context_get_poll_params(ctx, &v[0], &v[1], &v[2]);
    v[which] = value;
    return aio_context_set_poll_params(ctx, v[0], v[1], v[2], errp);
}

static bool main_loop_set_poll_max_ns(void *instance, const ObjectValue *v,
                                      Error **errp)
{
    return main_loop_set_poll(instance, 0, v->i, errp);
}

static bool main_loop_set_poll_grow(void *instance, const ObjectValue *v,
                                    Error **errp)
{
    return main_loop_set_poll(instance, 1, v->i, errp);
}

static bool main_loop_set_poll_shrink(void *instance, const ObjectValue *v,
                                      Error **errp)
{
    return main_loop_set_poll(instance, 2, v->i, errp);
}

static const ObjectPropertyInfo main_loop_props[] = {
    {"poll-max-ns", OBJECT_VALUE_INT,
     "longest busy-polling window of aio_poll() in the main loop, in ns",
     OBJECT_PROP_RANGE, NULL, 0, INT64_MAX, main_loop_get_poll_max_ns,
     main_loop_set_poll_max_ns},
    {"poll-grow", OBJECT_VALUE_INT,
     "factor by which the polling window grows (0: default)", OBJECT_PROP_RANGE,
     NULL, 0, INT64_MAX, main_loop_get_poll_grow, main_loop_set_poll_grow},
    {"poll-shrink", OBJECT_VALUE_INT,
     "divisor by which the polling window shrinks (0: to zero at once)",
     OBJECT_PROP_RANGE, NULL, 0, INT64_MAX, main_loop_get_poll_shrink,
     main_loop_set_poll_shrink},
    {"thread-id", OBJECT_VALUE_INT, "the main loop thread's kernel id",
     OBJECT_PROP_READONLY, NULL, 0, 0, main_loop_get_thread_id_prop, NULL},
    {NULL},
};

static const ObjectTypeInfo main_loop_type = {
    .name = "main-loop",
    .description = "the main event loop (GLib, with the main AioContext)",
    .props = main_loop_props,
};

void main_loop_register_object(void)
{
    object_registry_set_owner_thread();
    object_type_register(&main_loop_type);
    if (!object_find("main-loop")) {
        object_register_instance("main-loop", "main-loop",
                                 main_loop_get_aio_context(), &error_abort);
    }
}
