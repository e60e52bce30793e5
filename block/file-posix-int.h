/*
 * The file driver's internals shared by file-posix.c (requests, options)
 * and file-io-uring.c (the io_uring engine).  Not installed.
 */
#ifndef DATAPLANE_FILE_POSIX_INT_H
#define DATAPLANE_FILE_POSIX_INT_H

#include <liburing.h>

#include "block/block-int.h"

/* One system-level operation, as both engines run it. */
typedef enum FileOpType {
    FILE_OP_READ,      /* preadv of iov at offset */
    FILE_OP_WRITE,     /* pwritev2 of iov at offset, rw_flags */
    FILE_OP_FSYNC,     /* fdatasync */
    FILE_OP_FALLOCATE, /* fallocate(mode, offset, len) */
} FileOpType;

typedef struct FileState FileState;
typedef struct FileReq FileReq;

/*
 * The driver's state of one block request.  It issues one FileOp at a
 * time (an O_DIRECT read-modify-write issues two in turn; a short read
 * issues the rest) and lives until the request completes.
 */
struct FileReq {
    FileState *s;
    BdrvRequest *req;

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
    bool tracked;          /* on s->tracked */
    int64_t zero_pos;      /* write-zeroes fallback: next byte to write */
    bool defer_completion; /* finish through the completion BH */

    STAILQ_ENTRY(FileReq) wait_next; /* s->waiting / s->uring_overflow */
    TAILQ_ENTRY(FileReq) tracked_next;
    int ret; /* threads engine, tmpfs inline copies: the result to report */
};

struct FileState {
    int fd;
    char *filename;
    bool use_io_uring;
    bool direct;
    size_t align; /* O_DIRECT offset/length/address alignment, else 1 */
    bool discard_ignore;
    bool has_zero_range; /* cleared when the fs says EOPNOTSUPP */
    bool has_punch_hole;
    AioContext *ctx;

    /* O_DIRECT write ordering: writes, discards and zeroings in flight,
     * and requests that overlap a read-modify-write and must wait. */
    TAILQ_HEAD(, FileReq) tracked;
    STAILQ_HEAD(, FileReq) waiting;

    /* io_uring engine (file-io-uring.c); node's context only. */
    struct io_uring ring;
    bool ring_ready;
    EventNotifier ring_notifier;
    AioBH *submit_bh;
    unsigned ring_queued;    /* SQEs prepared since the last submit */
    uint64_t ring_submits;   /* io_uring_submit() calls (tests count them) */
    unsigned ring_in_flight; /* SQEs prepared and not yet reaped */
    STAILQ_HEAD(, FileReq) uring_overflow; /* waiting for ring space */
    /* A memory file system (tmpfs, ramfs): small transfers are copied in
     * the node's thread and completed from submit_bh (file-io-uring.c). */
    bool uring_copy_inline;
    STAILQ_HEAD(, FileReq) inline_done; /* copied, result in fr->ret */
};

/* Called by an engine, in the node's context, when fr's FileOp is done:
 * ret is the syscall's result (bytes transferred, 0, or -errno). */
void file_op_complete(FileReq *fr, int ret);

/* file-io-uring.c */
int file_uring_init(FileState *s, Error **errp);
void file_uring_cleanup(FileState *s);
void file_uring_attach(FileState *s, AioContext *ctx);
void file_uring_detach(FileState *s);
void file_uring_submit(FileState *s, FileReq *fr);

#endif /* DATAPLANE_FILE_POSIX_INT_H */
