/*
 * Between aio/threadlet.c (the pool), aio/threadlet-object.c (its face in
 * the object registry) and aio/threadlet-context.c (queues bound to
 * contexts).  Not installed.
 */
#ifndef DATAPLANE_THREADLET_INTERNAL_H
#define DATAPLANE_THREADLET_INTERNAL_H

#include "dataplane/threadlet.h"

/* Whether q is in the object registry.  Any thread. */
bool threadlet_queue_is_registered(ThreadletQueue *q);
void threadlet_queue_set_registered(ThreadletQueue *q, bool registered);

/* Removes q's object from the registry.  Main loop thread. */
void threadlet_queue_unregister_object(ThreadletQueue *q);

/* Removes every context binding to q (threadlet_queue_destroy).  Any
 * thread. */
void threadlet_context_unbind_queue(ThreadletQueue *q);

#endif /* DATAPLANE_THREADLET_INTERNAL_H */
