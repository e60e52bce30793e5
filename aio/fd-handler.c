/*
 * fd handlers: registration, the handler list and dispatch.
 *
 * The list is a singly linked list that writers (under list_lock) only ever
 * prepend to, or unlink from while nobody walks it.  aio_poll() announces a
 * walk by incrementing ctx->walking under list_lock, then reads the list
 * without the lock.  A change of handlers publishes a new node and marks the
 * old one deleted; deleted nodes are swept when the last walk ends.
 */
#include <stdlib.h>
#include <sys/epoll.h>

#include "aio/aio-internal.h"
#include "util/atomic.h"

static AioHandler *find_live_handler(AioContext *ctx, int fd)
{
    AioHandler *node;

    for (node = dp_atomic_load_acquire(&ctx->handlers); node;
         node = dp_atomic_load_acquire(&node->next)) {
        if (node->fd == fd && !aio_handler_is_deleted(node)) {
            return node;
        }
    }
    return NULL;
}

/* Unlinks and frees deleted nodes.  Called with list_lock held, walking==0. */
static void sweep_deleted_locked(AioContext *ctx)
{
    AioHandler **link = &ctx->handlers;
    AioHandler *node;

    ctx->sweep_needed = false;
    while ((node = *link) != NULL) {
        if (aio_handler_is_deleted(node) && !node->fdmon_busy) {
            dp_atomic_store_release(link, node->next);
            g_free(node);
        } else {
            if (aio_handler_is_deleted(node)) {
                ctx->sweep_needed = true; /* retry once the backend lets go */
            }
            link = &node->next;
        }
    }
}

typedef struct PollHooks {
    EventNotifierHandler *begin;
    EventNotifierHandler *end;
} PollHooks;

static void set_handler_internal(AioContext *ctx, int fd, IOHandler *io_read,
                                 IOHandler *io_write, AioPollFn *io_poll,
                                 EventNotifierHandler *en_read,
                                 EventNotifierPollFn *en_poll, void *opaque,
                                 bool is_ctx_notifier, const PollHooks *hooks)
{
    bool removing = !io_read && !io_write && !io_poll && !en_read && !en_poll;
    AioHandler *old_node;
    AioHandler *new_node = NULL;

    dp_mutex_lock(&ctx->list_lock);
    old_node = find_live_handler(ctx, fd);
    if (!old_node && removing) {
        dp_mutex_unlock(&ctx->list_lock);
        return;
    }
    if (!removing) {
        new_node = g_new0(AioHandler, 1);
        new_node->fd = fd;
        new_node->io_read = io_read;
        new_node->io_write = io_write;
        new_node->io_poll = io_poll;
        new_node->en_read = en_read;
        new_node->en_poll = en_poll;
        if (hooks && en_poll) {
            new_node->en_poll_begin = hooks->begin;
            new_node->en_poll_end = hooks->end;
        }
        new_node->opaque = opaque;
        new_node->is_ctx_notifier = is_ctx_notifier;
        new_node->events =
            ((io_read || en_read) ? EPOLLIN : 0) | (io_write ? EPOLLOUT : 0);
        new_node->next = ctx->handlers;
        /* Publish the fully built node; pairs with the acquire loads of
         * readers walking the list. */
        dp_atomic_store_release(&ctx->handlers, new_node);
    }
    if (old_node) {
        dp_atomic_store_release(&old_node->deleted, true);
    }
    ctx->fdmon->update(ctx, old_node, new_node);
    if (old_node) {
        if (ctx->walking == 0) {
            sweep_deleted_locked(ctx);
        } else {
            ctx->sweep_needed = true;
        }
    }
    dp_mutex_unlock(&ctx->list_lock);

    /* A change made from another thread must reach a sleeping loop. */
    aio_notify(ctx);
}

void aio_set_fd_handler(AioContext *ctx, int fd, IOHandler *io_read,
                        IOHandler *io_write, AioPollFn *io_poll, void *opaque)
{
    set_handler_internal(ctx, fd, io_read, io_write, io_poll, NULL, NULL,
                         opaque, false, NULL);
}

void aio_set_event_notifier(AioContext *ctx, EventNotifier *e,
                            EventNotifierHandler *cb,
                            EventNotifierPollFn *poll_cb)
{
    if (!cb) {
        poll_cb = NULL;
    }
    set_handler_internal(ctx, event_notifier_get_fd(e), NULL, NULL, NULL, cb,
                         poll_cb, e, e == &ctx->notifier, NULL);
}

void aio_set_event_notifier_poll(AioContext *ctx, EventNotifier *e,
                                 EventNotifierHandler *cb,
                                 EventNotifierPollFn *poll_cb,
                                 EventNotifierHandler *poll_begin,
                                 EventNotifierHandler *poll_end)
{
    PollHooks hooks = {poll_begin, poll_end};

    if (!cb) {
        poll_cb = NULL;
    }
    set_handler_internal(ctx, event_notifier_get_fd(e), NULL, NULL, NULL, cb,
                         poll_cb, e, e == &ctx->notifier, &hooks);
}

void aio_poll_mode_begin(AioContext *ctx)
{
    AioHandler *node;

    for (node = dp_atomic_load_acquire(&ctx->handlers); node;
         node = dp_atomic_load_acquire(&node->next)) {
        if (node->en_poll_begin && !node->poll_started &&
            !aio_handler_is_deleted(node)) {
            node->poll_started = true;
            node->en_poll_begin(node->opaque);
        }
    }
}

bool aio_poll_mode_end(AioContext *ctx)
{
    AioHandler *node;
    bool ended = false;

    for (node = dp_atomic_load_acquire(&ctx->handlers); node;
         node = dp_atomic_load_acquire(&node->next)) {
        if (node->poll_started) {
            node->poll_started = false;
            if (!aio_handler_is_deleted(node) && node->en_poll_end) {
                node->en_poll_end(node->opaque);
                ended = true;
            }
        }
    }
    return ended;
}

void aio_handlers_walk_begin(AioContext *ctx)
{
    dp_mutex_lock(&ctx->list_lock);
    ctx->walking++;
    dp_mutex_unlock(&ctx->list_lock);
}

void aio_handlers_walk_end(AioContext *ctx)
{
    dp_mutex_lock(&ctx->list_lock);
    if (--ctx->walking == 0 && ctx->sweep_needed) {
        sweep_deleted_locked(ctx);
    }
    dp_mutex_unlock(&ctx->list_lock);
}

/* Runs the handlers of one ready node.  Returns whether it made progress. */
static bool dispatch_one(AioHandler *node, int revents)
{
    bool progress = false;

    if (aio_handler_is_deleted(node)) {
        return false;
    }
    /* Errors and hang-ups go to the read handler, as read() will tell. */
    if (revents & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
        if (node->en_read) {
            node->en_read(node->opaque);
            progress = true;
        } else if (node->io_read) {
            node->io_read(node->opaque);
            progress = true;
        }
    }
    /* The read handler may have removed or replaced this node. */
    if ((revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && node->io_write &&
        !aio_handler_is_deleted(node)) {
        node->io_write(node->opaque);
        progress = true;
    }
    return progress && !node->is_ctx_notifier;
}

bool aio_dispatch_ready(AioContext *ctx, AioReadyEvent *events, int n)
{
    bool progress = false;
    int i;

    (void)ctx;
    for (i = 0; i < n; i++) {
        progress |= dispatch_one(events[i].node, events[i].revents);
    }
    return progress;
}

/*
 * Calls every io_poll function once.  *found is set when a poll function
 * reported work (the context's own notifier included); the return value says
 * whether a user handler made progress.  Caller is walking the list.
 */
bool aio_run_poll_handlers_once(AioContext *ctx, bool *found)
{
    bool progress = false;
    AioHandler *node;

    for (node = dp_atomic_load_acquire(&ctx->handlers); node;
         node = dp_atomic_load_acquire(&node->next)) {
        bool hit = false;

        if (aio_handler_is_deleted(node)) {
            continue;
        }
        if (node->en_poll) {
            hit = node->en_poll(node->opaque);
        } else if (node->io_poll) {
            hit = node->io_poll(node->opaque);
        }
        if (hit) {
            *found = true;
            if (!node->is_ctx_notifier) {
                progress = true;
            }
        }
    }
    return progress;
}

void aio_handlers_free_all(AioContext *ctx)
{
    AioHandler *node = ctx->handlers;

    while (node) {
        AioHandler *next = node->next;

        g_free(node);
        node = next;
    }
    ctx->handlers = NULL;
}
