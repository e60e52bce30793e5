/*
 * EventNotifier: a counter-style wake-up over one eventfd.
 *
 * event_notifier_set() makes the fd readable; event_notifier_test_and_clear()
 * makes it unreadable again and says whether it was set.  Register one with
 * an AioContext through aio_set_event_notifier() (include/dataplane/aio.h).
 *
 * Thread-safety: event_notifier_set() and event_notifier_test_and_clear()
 * are safe from any thread at any time; init and cleanup are not, the
 * caller owns the object.
 */
#ifndef DATAPLANE_EVENT_NOTIFIER_H
#define DATAPLANE_EVENT_NOTIFIER_H

#include <stdbool.h>
#include "dataplane/visibility.h"

DP_API_BEGIN

typedef struct EventNotifier {
    int fd;
} EventNotifier;

/* Returns 0 or -errno.  active=true starts the notifier in the set state. */
int event_notifier_init(EventNotifier *e, bool active);
/* Closes the fd; safe on a notifier whose init failed or that was cleaned. */
void event_notifier_cleanup(EventNotifier *e);
/* Returns 0 or -errno. */
int event_notifier_set(EventNotifier *e);
/* Returns whether the notifier was set, and clears it. */
bool event_notifier_test_and_clear(EventNotifier *e);
int event_notifier_get_fd(const EventNotifier *e);

DP_API_END

#endif /* DATAPLANE_EVENT_NOTIFIER_H */
