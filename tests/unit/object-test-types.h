/*
 * The object types and fixture shared by the registry's unit tests
 * (test-object.c, test-object-property.c).
 *
 * "test-widget" is user-creatable and has every kind of property: size (int,
 * required, [1, 1000], settable), name (str, default "anon", read-only),
 * verbose (bool, default off, settable), poll-max-ns (int, [0, INT64_MAX],
 * default 32768, get and set hooks), counter (int, runtime-only, read-only),
 * label (str, optional, no default, settable).  Its create hook fails for
 * name=fail and re-enters object_add for name=steal-id; its set hook for
 * size refuses 13.  "test-loop" is for registered instances only, like the
 * main loop object.
 *
 * Each test starts with no objects and both types registered, and ends with
 * object_registry_cleanup(); the fixture then checks that every widget made
 * was destroyed exactly once.
 */
#ifndef DATAPLANE_TESTS_OBJECT_TEST_TYPES_H
#define DATAPLANE_TESTS_OBJECT_TEST_TYPES_H

#include <glib.h>
#include <stdint.h>

#include "dataplane/object.h"
#include "tests/unit/test-util.h" /* prop_get_int() */

typedef struct Widget {
    char *id;
    int64_t size;
    char *name;
    bool verbose;
    int64_t poll_max_ns;
    int64_t counter;
    char *busy_with;  /* can_delete refuses with this user, if set */
    bool busy_silent; /* can_delete refuses without an Error */
    int set_calls;
} Widget;

typedef struct Loop {
    int64_t thread_id;
} Loop;

/* Values the last widget create hook saw. */
typedef struct WidgetSeen {
    int64_t size, poll_max_ns;
    bool verbose, has_name, has_poll, has_label;
    char *name, *label;
} WidgetSeen;

extern const ObjectTypeInfo widget_type;
extern const ObjectTypeInfo loop_type;
extern int widgets_live;
extern int widgets_created;
extern GPtrArray *destroy_order; /* ids in destroy order, when not NULL */
extern WidgetSeen seen;

typedef struct Fixture {
    int unused;
} Fixture;

void fixture_setup(Fixture *f, gconstpointer data);
void fixture_teardown(Fixture *f, gconstpointer data);

#define TEST(path, fn)                                                         \
    g_test_add("/object" path, Fixture, NULL, fixture_setup, fn,               \
               fixture_teardown)

/* A props table from "k1", "v1", "k2", "v2", ..., NULL (strings borrowed). */
GHashTable *props_new(const char *first, ...) G_GNUC_NULL_TERMINATED;
/* object_add of a test-widget with the given props; aborts on error. */
Object *add_widget(const char *id, const char *first,
                   ...) G_GNUC_NULL_TERMINATED;
/* Asserts that object_add fails with exactly the sentence want. */
void assert_add_fails(const char *type, const char *id, GHashTable *h,
                      const char *want);
/* Asserts err is the sentence want, and frees it. */
void assert_error(Error *err, const char *want);

#endif /* DATAPLANE_TESTS_OBJECT_TEST_TYPES_H */
