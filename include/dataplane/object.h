/*
 * The object registry: named objects at /objects/<id> with typed properties
 * (the seeds' QContext idea: every event loop is a named, introspectable
 * object).
 *
 * The model
 * ---------
 * An object type (ObjectTypeInfo, usually a static const) has a name, a
 * table of properties and hooks.  An object is an instance of a type with an
 * id; the registry keeps the id, the type and an opaque instance pointer that
 * the type's hooks own (an IOThread *, say).  Objects come from two places:
 *  - object_add(): a user creates one (--object, QMP object-add).  The
 *    registry parses and validates the creation properties against the
 *    type's table, then calls the type's create hook; object_del() calls its
 *    can_delete and destroy hooks.
 *  - object_register_instance(): code registers an object it made itself and
 *    keeps owning (the main loop's "main-loop" object, a threadlet queue).
 *    Such objects have the same property interface but object_del() refuses
 *    them; their owner calls object_unregister().
 *
 * Properties are str, int (int64_t) or bool.  Each may be settable at
 * creation (OBJECT_PROP_CREATE), required at creation (OBJECT_PROP_REQUIRED),
 * read-only after creation (OBJECT_PROP_READONLY, or simply no set hook) and,
 * for ints, limited to [min, max] (OBJECT_PROP_RANGE).  Every object also has
 * the read-only str property "type", as in QEMU.
 *
 * Values as strings (keyval / command line / QMP stringified) parse with
 * dataplane/input.h, QEMU's keyval rules: int as strtoll() with base 0
 * ("010" is 8, "0x10" is 16; junk and overflow are rejected), bool
 * on/off, yes/no, true/false or y/n.  str is taken as is.  Object ids
 * follow input_id_wellformed().
 *
 * Error sentences (each names the thing; QEMU's wording where it has one):
 *   Invalid object type 'foo'
 *   object type 'main-loop' isn't supported by object-add
 *   Parameter 'id' expects an identifier (...)
 *   Duplicate ID 'io0' for object
 *   Parameter 'poll-max-ns' expects integer
 *   Parameter 'threaded' expects 'on' or 'off'
 *   poll-max-ns value must be in range [0, 9223372036854775807]
 *   Parameter 'size' is missing
 *   Parameter 'bar' is unexpected                       (object_add)
 *   Property 'iothread.bar' not found                  (get/set)
 *   Property 'iothread.thread-id' is not writable
 *   Invalid parameter type for 'poll-max-ns', expected: integer  (typed set)
 *   Property 'widget.label' is not set       (get of an optional property
 *                                             never given, without get hook)
 *   object 'io0' not found                              (object_del)
 *   main-loop is not a user-creatable object            (object_del)
 *   iothread 'io0' is in use by export 'exp0'          (object_del, users)
 *   object 'io0' is in use, can not be deleted          (can_delete, no text)
 *   Device 'io9' not found                              (object_resolve,
 *                                                        class DeviceNotFound)
 *
 * Threading: every function here runs in the main loop thread only, except
 * those marked "Any thread" (the value helpers); the
 * registry is owned by the main loop and has no lock.  The first call
 * records the calling thread as the owner (or object_registry_set_owner_
 * thread() does) and later calls from another thread abort, in every build.
 * Hooks run in that thread too.  Objects hand work to other threads themselves
 * (an IOThread's set hook schedules a BH in its context, or acquires it).
 *
 * Lifetimes: an Object * is valid until object_del(), object_unregister() or
 * object_registry_cleanup() removes it.  ObjectTypeInfo and its property
 * table are not copied: they must outlive their registration (static const).
 */
#ifndef DATAPLANE_OBJECT_H
#define DATAPLANE_OBJECT_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "dataplane/error.h"
#include "dataplane/visibility.h"

DP_API_BEGIN

typedef struct Object Object;

/* ---- values ----------------------------------------------------------- */

typedef enum ObjectValueType {
    OBJECT_VALUE_STR,
    OBJECT_VALUE_INT,
    OBJECT_VALUE_BOOL,
} ObjectValueType;

/* A property value.  s is g_malloc'd and owned by whoever holds the value. */
typedef struct ObjectValue {
    ObjectValueType type;
    union {
        char *s;
        int64_t i;
        bool b;
    };
} ObjectValue;

/* Frees v->s of a str value; leaves v a valid empty str/int/bool.  Any
 * thread. */
void object_value_clear(ObjectValue *v);
/* "str" / "int" / "bool" (the names docs/objects.md uses).  Any thread. */
const char *object_value_type_name(ObjectValueType type);
/* "string" / "int" / "bool" (the names QEMU's qom-list shows).  Any thread. */
const char *object_value_type_qom_name(ObjectValueType type);
/* The value as text: str as is, int in decimal, bool as "true"/"false".
 * g_free() the result.  Any thread. */
char *object_value_to_string(const ObjectValue *v);
/*
 * Parses str as a value of the given type (the rules above) into *out; for
 * OBJECT_VALUE_STR out->s is a copy.  name is the parameter named in the
 * error ("Parameter '<name>' expects integer").  Ranges are not checked here.
 * Any thread.
 */
bool object_value_parse(ObjectValueType type, const char *name, const char *str,
                        ObjectValue *out, Error **errp);

/* ---- types ------------------------------------------------------------ */

enum {
    OBJECT_PROP_CREATE = 1 << 0,   /* accepted by object_add() */
    OBJECT_PROP_REQUIRED = 1 << 1, /* must be given to object_add(); implies
                                      OBJECT_PROP_CREATE */
    OBJECT_PROP_READONLY = 1 << 2, /* never set after creation (also the case
                                      when the property has no set hook) */
    OBJECT_PROP_RANGE = 1 << 3,    /* int only: value in [min, max] */
};

/* Values handed to a type's create hook: every creation property, parsed and
 * range-checked.  Valid only during the create call. */
typedef struct ObjectProps ObjectProps;

typedef struct ObjectPropertyInfo {
    const char *name; /* NULL ends a property table */
    ObjectValueType type;
    const char *description; /* one line, for help and qom-list */
    unsigned flags;          /* OBJECT_PROP_* */
    /* Creation properties: the value used when object_add() is not given
     * one, as a string in the syntax above ("32768", "on").  NULL: none. */
    const char *default_value;
    int64_t min, max; /* with OBJECT_PROP_RANGE */
    /*
     * Reads the current value into *out (out->type is preset; a str value
     * must be g_malloc'd).  NULL: the registry returns the value the object
     * was created with (or its default), updated by successful sets.
     * Required for properties without OBJECT_PROP_CREATE.
     */
    void (*get)(void *instance, ObjectValue *out);
    /*
     * Applies a runtime change.  The registry has already checked the type,
     * the range and read-only-ness.  Returns false and sets *errp to refuse.
     * NULL: the property is read-only after creation.
     */
    bool (*set)(void *instance, const ObjectValue *value, Error **errp);
} ObjectPropertyInfo;

typedef struct ObjectTypeInfo {
    const char *name;        /* "iothread"; unique */
    const char *description; /* one line, for --object help */
    /* Terminated by an entry with name == NULL.  May be NULL (no props).
     * "type" is reserved. */
    const ObjectPropertyInfo *props;
    /*
     * Builds the instance from the validated creation properties; id is the
     * new object's id.  Returns NULL and sets *errp on failure.  NULL hook:
     * the type is not user-creatable (object_add() refuses it; its objects
     * come from object_register_instance()).
     */
    void *(*create)(const char *id, const ObjectProps *props, Error **errp);
    /*
     * Optional.  Returns false to refuse object_del(), with an Error saying
     * what uses the object ("iothread 'io0' is in use by export 'exp0'");
     * without one the registry says "object 'io0' is in use, can not be
     * deleted".
     */
    bool (*can_delete)(void *instance, Error **errp);
    /* Frees the instance (object_del(), object_registry_cleanup()).  Optional
     * only for types that are never user-creatable. */
    void (*destroy)(void *instance);
} ObjectTypeInfo;

/*
 * Registers a type.  Types are declarations: they stay registered for the
 * life of the process (object_registry_cleanup() keeps them).  Registering
 * the same info pointer again is a no-op, so a module may register its type
 * from an idempotent init function called before its first object_add().
 * A different info with a name that is taken, a malformed table (bad flags, min
 * > max, unparsable default, a property named "type", a non-creation property
 * without get hook) or a user-creatable type without destroy hook abort: they
 * are programming errors.
 */
void object_type_register(const ObjectTypeInfo *info);
/* The registered type called name, or NULL. */
const ObjectTypeInfo *object_type_find(const char *name);
/*
 * Every registered type (user-creatable ones only if creatable_only), as
 * const ObjectTypeInfo *, sorted by name.  The array does not own its
 * elements: g_ptr_array_unref() it.  For query-object-types and
 * --object help; each type's creation properties are its props entries with
 * OBJECT_PROP_CREATE.
 */
GPtrArray *object_type_list(bool creatable_only);
/* The named property of a type, or NULL. */
const ObjectPropertyInfo *object_type_find_property(const ObjectTypeInfo *type,
                                                    const char *name);
/* True when the property can't be set after creation. */
bool object_property_info_is_read_only(const ObjectPropertyInfo *prop);

/*
 * Help text in QEMU's shape, for "--object help" and "--object <type>,help".
 * object_type_help_list(): "List of user creatable objects:\n" and one
 * "  <name>\n" line per user-creatable type, sorted.
 * object_type_help(): "<type> options:\n" and one line per creation
 * property, sorted by name: "  <name>=<str|int|bool>", then " - <description>"
 * and " (default: <value>)" when there are; NULL and "Invalid object type
 * '<type>'" for an unknown type.  g_free() the results.
 */
char *object_type_help_list(void);
char *object_type_help(const char *type, Error **errp);

/* Accessors for a create hook.  name must be a creation property of the
 * type, of the accessor's type (asserted). */
/* True if object_add() was given the property (not merely defaulted). */
bool object_props_has(const ObjectProps *props, const char *name);
/* The given value, else the default, else 0 / false / NULL. */
int64_t object_props_get_int(const ObjectProps *props, const char *name);
bool object_props_get_bool(const ObjectProps *props, const char *name);
const char *object_props_get_str(const ObjectProps *props, const char *name);

/* ---- objects ---------------------------------------------------------- */

/*
 * Creates /objects/<id> of the given type.  props maps property names to
 * string values (char * -> char *, dotted keys as keyval and QMP give them;
 * NULL means none); it is only read.  It must not contain "qom-type" or
 * "id" (object_add_opts() takes those from the table).  Checks, in order:
 * type known, type user-creatable, id valid, id free, then each property of
 * the table in table order (value parses, in range; required ones present),
 * then keys that are no creation property.  Returns the new object, or NULL
 * and one sentence in *errp (the list above).
 */
Object *object_add(const char *type, const char *id, GHashTable *props,
                   Error **errp);
/*
 * As object_add(), with the type in "qom-type" and the id in "id" of opts
 * (the --object / object-add shape); the other keys are the properties.
 * "Parameter 'qom-type' is missing" / "Parameter 'id' is missing".
 */
Object *object_add_opts(GHashTable *opts, Error **errp);
/*
 * Deletes an object made by object_add(): refuses if it has users
 * (object_user_add) or its type's can_delete hook refuses, else removes it
 * and calls the destroy hook.  id may also be a path (object_resolve()).
 */
bool object_del(const char *id, Error **errp);

/*
 * Registers an object that code created and keeps owning (not user-
 * creatable, not deletable by object_del()).  type must be registered; its
 * create hook is not called and may be NULL.  Properties without get hook
 * read as their default.  Returns NULL and an Error for an invalid or
 * duplicate id or an unknown type.
 */
Object *object_register_instance(const char *type, const char *id,
                                 void *instance, Error **errp);
/* Removes an object registered with object_register_instance() without
 * calling any hook; the instance stays its owner's. */
void object_unregister(Object *obj);

/* The object with this id, or NULL.  Takes an id only. */
Object *object_find(const char *id);
/*
 * The object a qom-* path names: "/objects/<id>", "objects/<id>" (a partial
 * path, as QEMU accepts) or "<id>".  NULL and "Device '<path>' not found"
 * (class DeviceNotFound) otherwise.
 */
Object *object_resolve(const char *path, Error **errp);
/* The instance of object id if it exists and has the given type, else NULL
 * (iothread_find() in one line). */
void *object_find_instance(const char *id, const char *type);

void *object_get_instance(Object *obj);
const char *object_get_id(Object *obj);
const char *object_get_type(Object *obj); /* the type's name */
const ObjectTypeInfo *object_get_type_info(Object *obj);
/* "/objects/<id>"; g_free() it. */
char *object_get_path(Object *obj);
/* True for objects made by object_add() (deletable by object_del()). */
bool object_is_user_created(Object *obj);

typedef struct ObjectInfo {
    char *id;
    char *type;
} ObjectInfo;
/*
 * The objects under /objects, as ObjectInfo * (owned by the array), sorted by
 * id.  g_ptr_array_unref() frees it all.
 */
GPtrArray *object_list(void);

/* One line of qom-list: a child or a property and its QOM type name. */
typedef struct ObjectQomEntry {
    char *name;
    char *type; /* "child<iothread>", "child<container>", "string", "int",
                   "bool" */
} ObjectQomEntry;
/*
 * What QEMU's qom-list shows for path, as ObjectQomEntry * (owned by the
 * array): for "/" its "type" and the "objects" container; for "/objects"
 * ("/objects/", "objects") its "type" and one child<type> per object, sorted
 * by id; for an object (any form object_resolve() takes) its properties in
 * object_property_list() order.  NULL and "Device '<path>' not found" (class
 * DeviceNotFound) for anything else.
 */
GPtrArray *object_qom_list(const char *path, Error **errp);

/* ---- users ------------------------------------------------------------- */

/*
 * Records that something uses obj (user is a short noun phrase such as
 * "export 'exp0'"); object_del() refuses while any user remains, with
 * "<type> '<id>' is in use by <first user>".  A user may be added more
 * than once; each add needs one remove.  Removing a user that is not there
 * aborts.
 */
void object_user_add(Object *obj, const char *user);
void object_user_remove(Object *obj, const char *user);

/* ---- properties -------------------------------------------------------- */

typedef struct ObjectPropertyDesc {
    const char *name; /* borrowed from the type; valid while the
                         object exists */
    ObjectValueType type;
    const char *type_name; /* "str" / "int" / "bool" */
    bool read_only;
    const char *description; /* may be NULL */
} ObjectPropertyDesc;
/*
 * The object's properties, as ObjectPropertyDesc * (the array frees the
 * structs, not the strings): "type" first, then the type's table in order.
 */
GPtrArray *object_property_list(Object *obj);

/*
 * Reads a property into *out (object_value_clear() it after).  "Property
 * '<type>.<name>' not found" for an unknown name.
 */
bool object_property_get(Object *obj, const char *name, ObjectValue *out,
                         Error **errp);
/*
 * Sets a property at runtime: refuses unknown names, read-only properties,
 * a value of another type ("Invalid parameter type for '<name>', expected:
 * integer") and values out of range, then calls the set hook.
 */
bool object_property_set(Object *obj, const char *name,
                         const ObjectValue *value, Error **errp);
/* As object_property_set(), with the value in string form (parsed by the
 * property's type, as object_add() does). */
bool object_property_parse(Object *obj, const char *name, const char *str,
                           Error **errp);

/* Typed shortcuts; a property of another type is an error. */
bool object_property_get_int(Object *obj, const char *name, int64_t *out,
                             Error **errp);
bool object_property_get_bool(Object *obj, const char *name, bool *out,
                              Error **errp);
/* NULL on error; g_free() the result. */
char *object_property_get_str(Object *obj, const char *name, Error **errp);
bool object_property_set_int(Object *obj, const char *name, int64_t v,
                             Error **errp);
bool object_property_set_bool(Object *obj, const char *name, bool v,
                              Error **errp);
bool object_property_set_str(Object *obj, const char *name, const char *v,
                             Error **errp);

/* ---- the registry ------------------------------------------------------ */

/* Makes the calling thread the registry's owner (main_loop_init() calls
 * it).  Without it, the first registry call's thread is the owner. */
void object_registry_set_owner_thread(void);
/*
 * Destroys every object (user-created ones in reverse creation order, with
 * their destroy hooks and without asking can_delete; registered instances
 * are dropped), frees their memory and forgets the owner thread (the next
 * registry call's thread owns it).  Registered types stay.  For exit and
 * between tests.  Owner thread.
 */
void object_registry_cleanup(void);

DP_API_END

#endif /* DATAPLANE_OBJECT_H */
