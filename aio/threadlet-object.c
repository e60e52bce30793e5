/*
 * Threadlet queues in the object registry: /objects/<queue name>, type
 * "threadlet-queue".  The properties read the queue's live counters; the
 * two limits can be changed at run time.  Queues are registered by their
 * owner (object_register_instance), never created by object-add: a queue
 * belongs to whoever uses it (an IOThread, the process for the global one).
 *
 * Threading: main loop thread only, as every registry call.  The getters
 * take the queue's lock through threadlet_queue_get_stats().
 */
#include <limits.h>

#include "aio/threadlet-internal.h"
#include "dataplane/object.h"

#define THREADLET_QUEUE_TYPE "threadlet-queue"

static ThreadletQueueStats queue_stats(void *instance)
{
    ThreadletQueueStats stats;

    threadlet_queue_get_stats(instance, &stats);
    return stats;
}

static void get_max_threads(void *instance, ObjectValue *out)
{
    out->i = queue_stats(instance).max_threads;
}

static void get_min_threads(void *instance, ObjectValue *out)
{
    out->i = queue_stats(instance).min_threads;
}

static void get_threads(void *instance, ObjectValue *out)
{
    out->i = queue_stats(instance).threads;
}

static void get_idle_threads(void *instance, ObjectValue *out)
{
    out->i = queue_stats(instance).idle_threads;
}

static void get_queued(void *instance, ObjectValue *out)
{
    out->i = queue_stats(instance).queued;
}

static void get_completed(void *instance, ObjectValue *out)
{
    /* int64 in the registry; 2^63 completions is not a practical worry. */
    out->i = (int64_t)queue_stats(instance).completed;
}

static bool set_max_threads(void *instance, const ObjectValue *value,
                            Error **errp)
{
    int min = queue_stats(instance).min_threads;

    return threadlet_queue_set_limits(instance, min, (int)value->i, errp);
}

static bool set_min_threads(void *instance, const ObjectValue *value,
                            Error **errp)
{
    int max = queue_stats(instance).max_threads;

    return threadlet_queue_set_limits(instance, (int)value->i, max, errp);
}

static const ObjectPropertyInfo threadlet_queue_props[] = {
    {.name = "max-threads",
     .type = OBJECT_VALUE_INT,
     .description = "most threads the queue runs at once",
     .flags = OBJECT_PROP_RANGE,
     .min = 1,
     .max = INT_MAX,
     .get = get_max_threads,
     .set = set_max_threads},
    {.name = "min-threads",
     .type = OBJECT_VALUE_INT,
     .description = "idle threads kept alive past the idle timeout",
     .flags = OBJECT_PROP_RANGE,
     .min = 0,
     .max = INT_MAX,
     .get = get_min_threads,
     .set = set_min_threads},
    {.name = "threads",
     .type = OBJECT_VALUE_INT,
     .description = "threads alive now",
     .get = get_threads},
    {.name = "idle-threads",
     .type = OBJECT_VALUE_INT,
     .description = "threads waiting for work now",
     .get = get_idle_threads},
    {.name = "queued",
     .type = OBJECT_VALUE_INT,
     .description = "work items waiting for a thread now",
     .get = get_queued},
    {.name = "completed",
     .type = OBJECT_VALUE_INT,
     .description = "work items run to completion since creation",
     .get = get_completed},
    {.name = NULL},
};

static const ObjectTypeInfo threadlet_queue_type = {
    .name = THREADLET_QUEUE_TYPE,
    .description = "a pool of threads for blocking work (not user-creatable)",
    .props = threadlet_queue_props,
};

bool threadlet_queue_register_object(ThreadletQueue *q, Error **errp)
{
    const char *name = threadlet_queue_get_name(q);
    Object *obj;

    if (!name) {
        error_setg(errp, "an anonymous threadlet queue can't be an object");
        return false;
    }
    obj = object_find(name);
    if (obj && object_get_instance(obj) == q) {
        error_setg(errp, "threadlet queue '%s' is registered already", name);
        return false;
    }
    object_type_register(&threadlet_queue_type); /* idempotent */
    if (!object_register_instance(THREADLET_QUEUE_TYPE, name, q, errp)) {
        return false;
    }
    threadlet_queue_set_registered(q, true);
    return true;
}

void threadlet_queue_unregister_object(ThreadletQueue *q)
{
    Object *obj = object_find(threadlet_queue_get_name(q));

    /* object_registry_cleanup() may have dropped it already. */
    if (obj && object_get_instance(obj) == q) {
        object_unregister(obj);
    }
    threadlet_queue_set_registered(q, false);
}
