/*
 * Image locking for the file driver (the locking= option).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "block/file-posix-int.h"

/*
 * QEMU's scheme (file-posix.c there), so that QEMU and dataplaned see each
 * other's use of an image: one byte per permission at 100 + bit ("I use
 * it") and one at 200 + bit ("I do not let others use it"), each held as
 * an open-file-description read lock, which closing the file releases.
 * Permission bits are QEMU's: consistent read, write, write unchanged,
 * resize.  A node that writes holds the bytes for read, write and resize
 * and does not share write or resize; a read-only node holds read and
 * does not share write (force-share=on: shares everything).  Opening then
 * tests, with F_OFD_GETLK, that nobody else holds the bytes that conflict.
 */
enum {
    PERM_CONSISTENT_READ = 0,
    PERM_WRITE = 1,
    PERM_WRITE_UNCHANGED = 2,
    PERM_RESIZE = 3,
    PERM_COUNT = 4,
};
#define LOCK_PERM_BASE 100
#define LOCK_SHARED_BASE 200

static const char *const perm_names[PERM_COUNT] = {"consistent read", "write",
                                                   "write unchanged", "resize"};

static int ofd_lock(int fd, off_t byte, short type, int cmd)
{
    struct flock fl = {
        .l_whence = SEEK_SET, .l_start = byte, .l_len = 1, .l_type = type};

    if (fcntl(fd, cmd, &fl) < 0) {
        return -errno;
    }
    if (cmd == F_OFD_GETLK && fl.l_type != F_UNLCK) {
        return -EAGAIN; /* someone else holds it */
    }
    return 0;
}

int file_lock_image(FileState *s, BlockDriverState *bs, const char *locking,
                    Error **errp)
{
    unsigned perm = 1u << PERM_CONSISTENT_READ;
    unsigned shared =
        (1u << PERM_CONSISTENT_READ) | (1u << PERM_WRITE_UNCHANGED);
    bool auto_mode = !locking || !strcmp(locking, "auto");
    int i, ret;

    if (locking && !strcmp(locking, "off")) {
        return 0;
    }
    if (!bs->read_only) {
        perm |= (1u << PERM_WRITE) | (1u << PERM_RESIZE);
    } else {
        shared |= 1u << PERM_RESIZE;
    }
    if (bs->force_share) {
        shared = (1u << PERM_COUNT) - 1;
    }
    for (i = 0; i < PERM_COUNT; i++) {
        ret = 0;
        if (perm & (1u << i)) {
            ret = ofd_lock(s->fd, LOCK_PERM_BASE + i, F_RDLCK, F_OFD_SETLK);
        }
        if (ret == 0 && !(shared & (1u << i))) {
            ret = ofd_lock(s->fd, LOCK_SHARED_BASE + i, F_RDLCK, F_OFD_SETLK);
        }
        if (ret == -EINVAL && auto_mode) {
            return 0; /* no OFD locks here: locking=auto goes without */
        }
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to lock byte %d of '%s'",
                             LOCK_PERM_BASE + i, s->filename);
            return ret;
        }
    }
    for (i = 0; i < PERM_COUNT; i++) {
        if ((perm & (1u << i)) &&
            ofd_lock(s->fd, LOCK_SHARED_BASE + i, F_WRLCK, F_OFD_GETLK) < 0) {
            error_setg(errp,
                       "Failed to get \"%s\" lock on '%s': is another "
                       "process using the image?",
                       perm_names[i], s->filename);
            return -EAGAIN;
        }
        if (!(shared & (1u << i)) &&
            ofd_lock(s->fd, LOCK_PERM_BASE + i, F_WRLCK, F_OFD_GETLK) < 0) {
            error_setg(errp,
                       "Failed to get shared \"%s\" lock on '%s': is "
                       "another process using the image?",
                       perm_names[i], s->filename);
            return -EAGAIN;
        }
    }
    return 0;
}
