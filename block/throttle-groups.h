/*
 * Throttle groups: shared I/O limits, one set of leaky buckets per group,
 * used by every throttle node that names the group.  Not installed; the
 * user-facing side is the "throttle-group" object type.
 *
 * A group is created and destroyed in the main loop (object-add/-del);
 * its members may run in different AioContexts, so the buckets and the
 * member list are under the group's mutex.
 */
#ifndef DATAPLANE_THROTTLE_GROUPS_H
#define DATAPLANE_THROTTLE_GROUPS_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/aio.h"
#include "dataplane/error.h"
#include "dataplane/object.h"

typedef enum ThrottleBucketType {
    THROTTLE_BPS_TOTAL,
    THROTTLE_BPS_READ,
    THROTTLE_BPS_WRITE,
    THROTTLE_IOPS_TOTAL,
    THROTTLE_IOPS_READ,
    THROTTLE_IOPS_WRITE,
    THROTTLE_BUCKETS,
} ThrottleBucketType;

typedef struct ThrottleLimit {
    int64_t avg;        /* units per second; 0: unlimited */
    int64_t max;        /* burst rate, units per second; 0: none */
    int64_t max_length; /* seconds the burst may last (>= 1) */
} ThrottleLimit;

typedef struct ThrottleGroup ThrottleGroup;

/* A member's wake-up: its timer, which it re-arms itself in its own
 * context.  The group calls kick (any thread) when limits change. */
typedef struct ThrottleMember {
    void (*kick)(void *opaque);
    void *opaque;
} ThrottleMember;

/* Registers the "throttle-group" object type.  Idempotent.  Main loop. */
void throttle_groups_init(void);

/* The group with this id (an object of type throttle-group), or NULL.
 * Main loop. */
ThrottleGroup *throttle_group_find(const char *id, Object **obj);

/* Members.  Main loop (graph changes), with the member quiescent. */
void throttle_group_add_member(ThrottleGroup *tg, ThrottleMember *m);
void throttle_group_remove_member(ThrottleGroup *tg, ThrottleMember *m);

/*
 * Asks for room for one request of `bytes` bytes (is_write selects the
 * read or write buckets, besides the total ones).  If there is room, the
 * request is accounted and 0 returned; else nothing is accounted and the
 * return value is the ns to wait before asking again.  Any thread.
 */
int64_t throttle_group_admit(ThrottleGroup *tg, bool is_write, int64_t bytes);

/* Checks and applies limits (all six at once); members are kicked so that
 * waiting requests are re-evaluated.  Main loop thread (the object
 * registry's), which is also the only thread that moves members between
 * contexts, so a kick never meets a timer being replaced. */
bool throttle_group_set_limits(ThrottleGroup *tg,
                               const ThrottleLimit limits[THROTTLE_BUCKETS],
                               Error **errp);
void throttle_group_get_limits(ThrottleGroup *tg,
                               ThrottleLimit limits[THROTTLE_BUCKETS]);

#endif /* DATAPLANE_THROTTLE_GROUPS_H */
