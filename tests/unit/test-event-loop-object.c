/*
 * Event loops in the object registry: IOThreads through object_add and
 * object_del, their properties, and the "main-loop" object.
 */
#include <glib.h>
#include <sched.h>
#include <string.h>

#include "dataplane/iothread.h"
#include "dataplane/main-loop.h"
#include "dataplane/object.h"
#include "dataplane/threadlet.h"
#include "tests/unit/test-util.h"
#include "util/thread.h"

static GHashTable *props_new(const char *first_key, ...)
{
    GHashTable *h =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    const char *key = first_key;
    va_list ap;

    va_start(ap, first_key);
    while (key) {
        g_hash_table_insert(h, g_strdup(key), g_strdup(va_arg(ap, char *)));
        key = va_arg(ap, const char *);
    }
    va_end(ap);
    return h;
}

/* Whether the thread tid of this process still exists. */
static bool task_exists(pid_t tid)
{
    g_autofree char *path = g_strdup_printf("/proc/self/task/%d", (int)tid);

    return g_file_test(path, G_FILE_TEST_EXISTS);
}

/*
 * Whether a joined thread is still listed: the kernel drops it from
 * /proc/self/task a little after pthread_join() returns, with nothing to
 * wait on, so look again a bounded number of times.
 */
static bool task_lingers(pid_t tid)
{
    int i;

    for (i = 0; i < 100000 && task_exists(tid); i++) {
        sched_yield();
    }
    return task_exists(tid);
}

static void expect_add_fails(GHashTable *props, const char *message)
{
    Error *err = NULL;

    g_assert_null(object_add("iothread", "bad", props, &err));
    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==, message);
    error_free(err);
    g_assert_null(iothread_find("bad"));
    g_assert_null(object_find("bad"));
    g_hash_table_unref(props);
}

static void test_object_add_iothread_creates_and_del_destroys(void)
{
    GHashTable *props = props_new("poll-max-ns", "1000", "thread-pool-max", "8",
                                  "aio-max-batch", "16", NULL);
    IOThreadProps p;
    IOThread *it;
    Object *obj;
    pid_t tid;

    obj = object_add("iothread", "io0", props, &error_abort);
    g_hash_table_unref(props);
    it = iothread_find("io0");
    g_assert_nonnull(it);
    g_assert_true(object_get_instance(obj) == it);
    tid = iothread_get_thread_id(it);
    g_assert_true(task_exists(tid));
    iothread_get_props(it, &p);
    g_assert_cmpint(p.poll_max_ns, ==, 1000);
    g_assert_cmpint(p.thread_pool_max, ==, 8);
    g_assert_cmpint(p.aio_max_batch, ==, 16);
    g_assert_cmpint(prop_get_int(obj, "thread-id"), ==,
                    iothread_get_thread_id(it));
    g_assert_cmpint(prop_get_int(obj, "poll-max-ns"), ==, 1000);
    g_assert_cmpint(prop_get_int(obj, "poll-grow"), ==, 0);
    g_assert_cmpint(prop_get_int(obj, "thread-pool-min"), ==, 0);

    g_assert_true(object_del("io0", &error_abort));
    g_assert_null(iothread_find("io0"));
    g_assert_null(object_find("io0"));
    g_assert_false(task_lingers(tid));
}

static void test_object_iothread_has_its_own_threadlet_queue(void)
{
    GHashTable *props =
        props_new("thread-pool-min", "1", "thread-pool-max", "3", NULL);
    Object *obj = object_add("iothread", "io9", props, &error_abort);
    IOThread *it = object_get_instance(obj);
    ThreadletQueue *q = iothread_get_threadlet_queue(it);
    Object *pool;

    g_hash_table_unref(props);
    /* Bound to the IOThread's context: submit_aio there uses it. */
    g_assert_true(threadlet_context_get_queue(iothread_get_aio_context(it)) ==
                  q);
    g_assert_true(q != threadlet_global_queue());
    pool = object_find("io9-pool");
    g_assert_nonnull(pool);
    g_assert_cmpstr(object_get_type(pool), ==, "threadlet-queue");
    g_assert_cmpint(prop_get_int(pool, "max-threads"), ==, 3);
    g_assert_cmpint(prop_get_int(pool, "min-threads"), ==, 1);

    /* qom-set of the IOThread's limits resizes its queue, as in QEMU. */
    g_assert_true(
        object_property_set_int(obj, "thread-pool-max", 5, &error_abort));
    g_assert_cmpint(prop_get_int(pool, "max-threads"), ==, 5);
    g_assert_cmpint(prop_get_int(obj, "thread-pool-max"), ==, 5);
    {
        Error *err = NULL;

        g_assert_false(
            object_property_set_int(obj, "thread-pool-min", 9, &err));
        g_assert_nonnull(err);
        error_free(err);
        g_assert_cmpint(prop_get_int(pool, "min-threads"), ==, 1);
    }

    g_assert_true(object_del("io9", &error_abort));
    g_assert_null(object_find("io9-pool"));
}

static void test_object_global_threadlet_queue_is_registered(void)
{
    Object *obj = object_find(THREADLET_GLOBAL_QUEUE_NAME);

    g_assert_nonnull(obj);
    g_assert_cmpstr(object_get_type(obj), ==, "threadlet-queue");
}

static void test_object_iothread_poll_settable_at_runtime(void)
{
    Object *obj = object_add("iothread", "io1", NULL, &error_abort);
    IOThread *it = object_get_instance(obj);
    int64_t max_ns, grow, shrink;
    Error *err = NULL;

    g_assert_true(
        object_property_set_int(obj, "poll-max-ns", 50000, &error_abort));
    g_assert_true(object_property_parse(obj, "poll-grow", "4", &error_abort));
    g_assert_true(object_property_set_int(obj, "poll-shrink", 3, &error_abort));
    aio_context_get_poll_params(iothread_get_aio_context(it), &max_ns, &grow,
                                &shrink);
    g_assert_cmpint(max_ns, ==, 50000);
    g_assert_cmpint(grow, ==, 4);
    g_assert_cmpint(shrink, ==, 3);
    g_assert_cmpint(prop_get_int(obj, "poll-grow"), ==, 4);

    /* The IOThread's own check: a factor of 1 would never grow. */
    g_assert_false(object_property_set_int(obj, "poll-grow", 1, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "poll-grow must be 0 (default) or >= 2");
    g_clear_pointer(&err, error_free);
    g_assert_cmpint(prop_get_int(obj, "poll-grow"), ==, 4);

    g_assert_false(object_property_set_int(obj, "thread-id", 1, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Property 'iothread.thread-id' is not writable");
    g_clear_pointer(&err, error_free);
    /* aio-max-batch is settable at runtime too, as in QEMU, and reaches
     * the IOThread's context (the io_uring engine reads it there). */
    g_assert_true(object_property_set_int(obj, "aio-max-batch", 9, &err));
    g_assert_cmpint(prop_get_int(obj, "aio-max-batch"), ==, 9);
    g_assert_cmpint(aio_context_get_max_batch(
                        iothread_get_aio_context(object_get_instance(obj))),
                    ==, 9);
    g_assert_true(object_del("io1", &error_abort));
}

static void test_object_iothread_lists_qemu_property_names(void)
{
    static const char *const expected[] = {
        "type",          "poll-max-ns",     "poll-grow",       "poll-shrink",
        "aio-max-batch", "thread-pool-min", "thread-pool-max", "backend",
        "thread-id",
    };
    Object *obj = object_add("iothread", "io2", NULL, &error_abort);
    GPtrArray *list = object_property_list(obj);
    size_t i;

    g_assert_cmpuint(list->len, ==, G_N_ELEMENTS(expected));
    for (i = 0; i < G_N_ELEMENTS(expected); i++) {
        ObjectPropertyDesc *d = g_ptr_array_index(list, i);

        g_assert_cmpstr(d->name, ==, expected[i]);
    }
    g_ptr_array_unref(list);
    g_assert_true(object_del("io2", &error_abort));
}

static void test_object_iothread_io_uring_backend(void)
{
    GHashTable *props = props_new("backend", "io_uring", NULL);
    Object *obj = object_add("iothread", "io3", props, &error_abort);
    g_autofree char *backend = NULL;

    g_hash_table_unref(props);
    g_assert_cmpint(aio_context_get_backend(
                        iothread_get_aio_context(object_get_instance(obj))),
                    ==, AIO_BACKEND_IO_URING);
    backend = object_property_get_str(obj, "backend", &error_abort);
    g_assert_cmpstr(backend, ==, "io_uring");
    g_assert_true(object_del("io3", &error_abort));
}

static void test_object_add_iothread_rejects_bad_values(void)
{
    expect_add_fails(props_new("poll-max-ns", "lots", NULL),
                     "Parameter 'poll-max-ns' expects integer");
    expect_add_fails(props_new("poll-max-ns", "-1", NULL),
                     "poll-max-ns value must be in range "
                     "[0, 9223372036854775807]");
    expect_add_fails(props_new("poll-grow", "1", NULL),
                     "poll-grow must be 0 (default) or >= 2");
    expect_add_fails(
        props_new("thread-pool-min", "9", "thread-pool-max", "8", NULL),
        "thread-pool-min (9) must not exceed thread-pool-max (8)");
    expect_add_fails(props_new("backend", "select", NULL),
                     "unknown event loop backend 'select' (epoll or io_uring)");
    expect_add_fails(props_new("thread-id", "5", NULL),
                     "Parameter 'thread-id' is unexpected");
}

static void test_object_add_iothread_duplicate_id(void)
{
    Error *err = NULL;

    g_assert_nonnull(object_add("iothread", "dup0", NULL, &error_abort));
    g_assert_null(object_add("iothread", "dup0", NULL, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Duplicate ID 'dup0' for object");
    error_free(err);
    g_assert_true(object_del("dup0", &error_abort));
}

static void test_object_main_loop_is_registered(void)
{
    Object *obj = object_find("main-loop");
    g_autofree char *type = NULL;
    Error *err = NULL;
    int64_t max_ns, grow, shrink;

    g_assert_nonnull(obj);
    type = object_property_get_str(obj, "type", &error_abort);
    g_assert_cmpstr(type, ==, "main-loop");
    g_assert_true(object_get_instance(obj) == main_loop_get_aio_context());
    g_assert_cmpint(prop_get_int(obj, "thread-id"), ==, dp_thread_get_tid());

    g_assert_true(
        object_property_set_int(obj, "poll-max-ns", 2000, &error_abort));
    aio_context_get_poll_params(main_loop_get_aio_context(), &max_ns, &grow,
                                &shrink);
    g_assert_cmpint(max_ns, ==, 2000);
    g_assert_cmpint(prop_get_int(obj, "poll-max-ns"), ==, 2000);

    g_assert_false(object_del("main-loop", &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "main-loop is not a user-creatable object");
    g_clear_pointer(&err, error_free);
    g_assert_null(object_add("main-loop", "another", NULL, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "object type 'main-loop' isn't supported by object-add");
    error_free(err);
}

static void test_object_registry_cleanup_destroys_iothreads(void)
{
    Object *a = object_add("iothread", "gone0", NULL, &error_abort);
    Object *b = object_add("iothread", "gone1", NULL, &error_abort);
    pid_t tid_a = iothread_get_thread_id(object_get_instance(a));
    pid_t tid_b = iothread_get_thread_id(object_get_instance(b));

    g_assert_true(task_exists(tid_a) && task_exists(tid_b));
    object_registry_cleanup();
    g_assert_false(task_lingers(tid_a) || task_lingers(tid_b));
    g_assert_null(iothread_find("gone0"));
    /* Back to the state main_loop_init() left. */
    iothread_register_type();
    main_loop_register_object();
    g_assert_nonnull(object_find("main-loop"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    main_loop_init(&error_abort);
    g_test_add_func("/event-loop-object/add-iothread-creates-and-del-destroys",
                    test_object_add_iothread_creates_and_del_destroys);
    g_test_add_func("/event-loop-object/iothread-has-its-own-threadlet-queue",
                    test_object_iothread_has_its_own_threadlet_queue);
    g_test_add_func("/event-loop-object/global-threadlet-queue-is-registered",
                    test_object_global_threadlet_queue_is_registered);
    g_test_add_func("/event-loop-object/iothread-poll-settable-at-runtime",
                    test_object_iothread_poll_settable_at_runtime);
    g_test_add_func("/event-loop-object/iothread-lists-qemu-property-names",
                    test_object_iothread_lists_qemu_property_names);
    g_test_add_func("/event-loop-object/iothread-io-uring-backend",
                    test_object_iothread_io_uring_backend);
    g_test_add_func("/event-loop-object/add-iothread-rejects-bad-values",
                    test_object_add_iothread_rejects_bad_values);
    g_test_add_func("/event-loop-object/add-iothread-duplicate-id",
                    test_object_add_iothread_duplicate_id);
    g_test_add_func("/event-loop-object/main-loop-is-registered",
                    test_object_main_loop_is_registered);
    g_test_add_func("/event-loop-object/registry-cleanup-destroys-iothreads",
                    test_object_registry_cleanup_destroys_iothreads);
    return g_test_run();
}
