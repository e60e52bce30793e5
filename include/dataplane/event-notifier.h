/*
 * EventNotifier: a counter-style wake-up over one eventfd.
 *
 * event_notifier_set() makes the fd readable; event_notifier_test_and_clear()
 * makes it unreadable again and says whether it was set.  Register one with
 * an AioContext through aio_set_event_notifier() (include/dataplane/aio.h).
 *
 * Thread-safety (a notifier belongs to no AioContext, so each function says
 * where it may run): event_notifier_set(), event_notifier_test_and_clear()
 * and event_notifier_get_fd() are safe from any thread at any time;
 * init and cleanup from the thread that owns the object, while no other
 * thread uses it (and, once registered with aio_set_event_notifier(),
 * cleanup only after it has been unregistered).
 */
#ifndef DATAPLANE_EVENT_NOTIFIER_H
#define DATAPLANE_EVENT_NOTIFIER_H

#include <stdbool.h>
#include "dataplane/visibility.h"

DP_API_BEGIN

typedef struct EventNotifier {
    int fd;
} EventNotifier;

/* Returns 0 or -errno.  active=true starts the notifier in the set state.
 * The owner's thread. */
int event_notifier_init(EventNotifier *e, bool active);
/* Closes the fd; safe on a notifier whose init failed or that was cleaned.
 * The owner's thread, once no other thread uses the notifier. */
void event_notifier_cleanup(EventNotifier *e);
/* Returns 0 or -errno.  Any thread; async-signal-safe (one write()). */
int event_notifier_set(EventNotifier *e);
/* Returns whether the notifier was set, and clears it.  Any thread. */
bool event_notifier_test_and_clear(EventNotifier *e);
/* The eventfd, for poll()/epoll of one's own.  Any thread (it never
 * changes between init and cleanup). */
int event_notifier_get_fd(const EventNotifier *e);

DP_API_END

#endif /* DATAPLANE_EVENT_NOTIFIER_H */
