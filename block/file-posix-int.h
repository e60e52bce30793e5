/*
 * The file driver's internals shared by file-posix.c (requests, options)
 * and file-io-uring.c (the io_uring engine).  Not installed.
 */
#ifndef DATAPLANE_FILE_POSIX_INT_H
#define DATAPLANE_FILE_POSIX_INT_H

#include <liburing.h>

#include "block/block-int.h"
#include "util/thread.h"

/* One system-level operation, as both engines run it. */
typedef enum FileOpType {
    FILE_OP_READ,      /* preadv of iov at offset */
    FILE_OP_WRITE,     /* pwritev2 of iov at offset, rw_flags */
    FILE_OP_FSYNC,     /* fdatasync */
    FILE_OP_FALLOCATE, /* fallocate(mode, offset, len) */
} FileOpType;

typedef struct FileState FileState;
typedef struct FileReq FileReq;
typedef struct FileRing FileRing; /* file-io-uring.c: one per context */

/*
 * The driver's state of one block request.  It issues one FileOp at a
 * time (an O_DIRECT read-modify-write issues two in turn; a short read
 * issues the rest) and lives until the request completes.
 */
struct FileReq {
    FileState *s;
    BdrvRequest *req;
    AioContext *ctx;   /* where it runs: bdrv_request_run_ctx(req) */
    FileRing *ring;    /* ctx's ring (io_uring engine) */
    AioDeferred defer; /* a waiter started from another context */

    /* The current FileOp. */
    FileOpType op;
    struct iovec *iov; /* our own copy: a short transfer advances it */
    int niov;
    int64_t offset;
    int64_t len;  /* bytes left for READ/WRITE, range for FALLOCATE */
    int mode;     /* fallocate mode */
    int rw_flags; /* RWF_DSYNC for FUA writes */

    /* Request-level state. */
    int stage;       /* what the next FileOp completion means */
    char *bounce;    /* O_DIRECT bounce buffer, align-sized multiple */
    int64_t aoffset; /* the aligned range the bounce covers */
    int64_t alen;
    bool serialising;      /* an O_DIRECT read-modify-write */
    bool tracked;          /* on s->tracked (under s->track_lock) */
    int64_t zero_pos;      /* write-zeroes fallback: next byte to write */
    bool defer_completion; /* finish through the completion BH */

    STAILQ_ENTRY(FileReq) wait_next; /* s->waiting / s->uring_overflow */
    TAILQ_ENTRY(FileReq) tracked_next;
    int ret; /* inline copies: the result to report */
};

struct FileState {
    int fd;
    char *filename;
    bool use_io_uring;
    bool direct;
    size_t align; /* O_DIRECT offset/length/address alignment, else 1 */
    bool discard_ignore;
    /* Cleared (relaxed atomics) when the fs says EOPNOTSUPP. */
    bool has_zero_range;
    bool has_punch_hole;
    bool nowait_read;  /* preadv2(RWF_NOWAIT) first (file-io-uring.c) */
    bool nowait_write; /* pwritev2(RWF_NOWAIT) first */
    /* No NOWAIT writes: inline writes resume at this time (ns, relaxed
     * atomic; file-io-uring.c). */
    int64_t inline_write_backoff_until;
    /* A memory file system (tmpfs, ramfs): small transfers are copied in
     * the submitting thread (file-io-uring.c). */
    bool uring_copy_inline;

    /* O_DIRECT write ordering, across every context: writes, discards and
     * zeroings in flight, and requests that overlap a read-modify-write
     * and must wait.  Under track_lock. */
    DpMutex track_lock;
    TAILQ_HEAD(, FileReq) tracked;
    STAILQ_HEAD(, FileReq) waiting;
};

/* Called by an engine, in fr->ctx, when fr's FileOp is done: ret is the
 * syscall's result (bytes transferred, 0, or -errno). */
void file_op_complete(FileReq *fr, int ret);
/* Runs fr's FileOp with a blocking system call (threadlets); the result as
 * for file_op_complete.  Any thread; touches only fr's operation. */
int file_op_run_sync(FileReq *fr);
/* Advances fr's FileOp past n transferred bytes. */
void file_op_advance(FileReq *fr, size_t n);

/* file-lock.c */
/* Takes the image's locks for bs's permissions (locking: "auto", "on",
 * "off" or NULL for auto; auto goes without where OFD locks are not
 * supported).  0, or -errno and *errp naming the conflict.  Open time,
 * main loop. */
int file_lock_image(FileState *s, BlockDriverState *bs, const char *locking,
                    Error **errp);

/* file-io-uring.c */
/* ctx's ring, created on first use.  ctx's thread or acquired. */
FileRing *file_ring_get(AioContext *ctx);
/* Open time: checks that ctx can have a ring and probes what the file
 * system supports (inline copies, RWF_NOWAIT).  0 or -errno and *errp. */
int file_uring_init(FileState *s, AioContext *ctx, Error **errp);
/* io_uring_submit() calls of ctx's ring so far (tests count them). */
uint64_t file_ring_submits(AioContext *ctx);
/* Starts fr's FileOp on fr->ring, in fr->ctx. */
void file_uring_submit(FileReq *fr);

#endif /* DATAPLANE_FILE_POSIX_INT_H */
