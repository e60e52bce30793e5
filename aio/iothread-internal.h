/*
 * IOThread internals shared with the main loop (stop-the-world).
 */
#ifndef DATAPLANE_IOTHREAD_INTERNAL_H
#define DATAPLANE_IOTHREAD_INTERNAL_H

#include "dataplane/iothread.h"

/*
 * Acquires every IOThread's context in creation order (pause) and releases
 * them in reverse (resume).  Nestable.  Main loop thread only, which is the
 * only thread allowed to hold several contexts.
 */
void iothread_pause_all(void);
void iothread_resume_all(void);

#endif /* DATAPLANE_IOTHREAD_INTERNAL_H */
