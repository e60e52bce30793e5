/*
 * guest-tool: what the TCG guest of the vhost-user-blk tests runs on its
 * virtio disks (built static: the guest has only busybox), and what the
 * host runs on the images afterwards to compare.
 *
 *   guest-tool write DEV OFF LEN SEED THREADS   patterns, O_DIRECT, from
 *                                               THREADS threads each pinned
 *                                               to its own CPU (so that
 *                                               blk-mq uses several queues)
 *   guest-tool check DEV OFF LEN SEED           reads back and compares
 *   guest-tool zero DEV OFF LEN                 the range reads as zeroes
 *   guest-tool discard DEV OFF LEN              BLKDISCARD
 *   guest-tool zeroout DEV OFF LEN              BLKZEROOUT (write-zeroes)
 *   guest-tool punch DEV OFF LEN                fallocate PUNCH_HOLE
 *                                               (write-zeroes with unmap)
 *   guest-tool readonly DEV                     a write must fail
 *   guest-tool forever DEV OFF LEN              writes until killed,
 *                                               printing "writing" first
 *
 * OFF and LEN are bytes (k/M suffixes), multiples of 4 KiB.  The pattern of
 * each 4 KiB block depends on its offset and SEED only, so the host checks
 * an image with the same command (the host variant reads without
 * O_DIRECT: the image may live on tmpfs).  Exit status 0 or 1 with a line
 * on stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdbool.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define BLK 4096

static const char *dev;
static int direct = O_DIRECT;

static void die(const char *what)
{
    fprintf(stderr, "guest-tool: %s %s: %s\n", what, dev, strerror(errno));
    exit(1);
}

static uint64_t parse_size(const char *s)
{
    char *end;
    uint64_t v = strtoull(s, &end, 0);

    if (*end == 'k' || *end == 'K') {
        v <<= 10;
    } else if (*end == 'M' || *end == 'm') {
        v <<= 20;
    }
    return v;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static void fill(uint8_t *buf, uint64_t off, uint64_t seed)
{
    for (size_t i = 0; i < BLK; i += 8) {
        uint64_t v = mix((off + i) * 0x9e3779b97f4a7c15ULL + seed);

        memcpy(buf + i, &v, 8);
    }
}

static int open_dev(int flags)
{
    int fd = open(dev, flags | direct);

    if (fd < 0 && direct && errno == EINVAL) {
        /* tmpfs on the host has no O_DIRECT. */
        direct = 0;
        fd = open(dev, flags);
    }
    if (fd < 0) {
        die("open");
    }
    return fd;
}

static void *aligned(size_t len)
{
    void *p;

    if (posix_memalign(&p, BLK, len)) {
        die("memory");
    }
    return p;
}

typedef struct Job {
    uint64_t off, len, seed;
    int cpu;
    int failed;
} Job;

static void *write_job(void *opaque)
{
    Job *j = opaque;
    uint8_t *buf = aligned(BLK);
    int fd = open_dev(O_WRONLY);
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(j->cpu, &set);
    sched_setaffinity(0, sizeof(set), &set);
    for (uint64_t o = j->off; o < j->off + j->len; o += BLK) {
        fill(buf, o, j->seed);
        if (pwrite(fd, buf, BLK, (off_t)o) != BLK) {
            fprintf(stderr, "guest-tool: write %s at %llu: %s\n", dev,
                    (unsigned long long)o, strerror(errno));
            j->failed = 1;
            break;
        }
    }
    if (fsync(fd) < 0) {
        j->failed = 1;
    }
    close(fd);
    free(buf);
    return NULL;
}

static int cmd_write(uint64_t off, uint64_t len, uint64_t seed, int threads)
{
    pthread_t t[16];
    Job jobs[16];
    uint64_t per;
    int failed = 0;

    if (threads < 1 || threads > 16) {
        threads = 1;
    }
    per = len / threads / BLK * BLK;
    for (int i = 0; i < threads; i++) {
        jobs[i] = (Job){off + i * per, i == threads - 1 ? len - i * per : per,
                        seed, i % (int)sysconf(_SC_NPROCESSORS_ONLN), 0};
        pthread_create(&t[i], NULL, write_job, &jobs[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        failed |= jobs[i].failed;
    }
    return failed;
}

static int cmd_check(uint64_t off, uint64_t len, uint64_t seed, bool zero)
{
    uint8_t *buf = aligned(BLK), want[BLK];
    int fd = open_dev(O_RDONLY);

    memset(want, 0, sizeof(want));
    for (uint64_t o = off; o < off + len; o += BLK) {
        if (pread(fd, buf, BLK, (off_t)o) != BLK) {
            die("read");
        }
        if (!zero) {
            fill(want, o, seed);
        }
        if (memcmp(buf, want, BLK)) {
            fprintf(stderr, "guest-tool: %s: block at %llu is not %s\n", dev,
                    (unsigned long long)o, zero ? "zero" : "the pattern");
            return 1;
        }
    }
    close(fd);
    free(buf);
    return 0;
}

static int cmd_range(const char *what, uint64_t off, uint64_t len)
{
    uint64_t r[2] = {off, len};
    int fd = open_dev(O_WRONLY);
    int ret;

    if (!strcmp(what, "discard")) {
        ret = ioctl(fd, BLKDISCARD, r);
    } else if (!strcmp(what, "zeroout")) {
        ret = ioctl(fd, BLKZEROOUT, r);
    } else {
        ret = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        (off_t)off, (off_t)len);
    }
    if (ret < 0) {
        die(what);
    }
    close(fd);
    return 0;
}

static int cmd_readonly(void)
{
    uint8_t *buf = aligned(BLK);
    int fd = open(dev, O_WRONLY | O_DIRECT);

    memset(buf, 0x5a, BLK);
    if (fd >= 0 && pwrite(fd, buf, BLK, 0) == BLK && fsync(fd) == 0) {
        fprintf(stderr, "guest-tool: %s: a write succeeded\n", dev);
        return 1;
    }
    printf("write refused: %s\n", strerror(errno));
    return 0;
}

static __attribute__((noreturn)) void cmd_forever(uint64_t off, uint64_t len)
{
    uint8_t *buf = aligned(BLK);
    int fd = open_dev(O_WRONLY);

    printf("writing\n");
    fflush(stdout);
    for (uint64_t seed = 100;; seed++) {
        for (uint64_t o = off; o < off + len; o += BLK) {
            fill(buf, o, seed);
            if (pwrite(fd, buf, BLK, (off_t)o) != BLK) {
                die("write");
            }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: guest-tool CMD DEV ...\n");
        return 2;
    }
    dev = argv[2];
    if (!strcmp(argv[1], "write") && argc == 7) {
        return cmd_write(parse_size(argv[3]), parse_size(argv[4]),
                         parse_size(argv[5]), atoi(argv[6]));
    }
    if (!strcmp(argv[1], "check") && argc == 6) {
        return cmd_check(parse_size(argv[3]), parse_size(argv[4]),
                         parse_size(argv[5]), false);
    }
    if (!strcmp(argv[1], "zero") && argc == 5) {
        return cmd_check(parse_size(argv[3]), parse_size(argv[4]), 0, true);
    }
    if ((!strcmp(argv[1], "discard") || !strcmp(argv[1], "zeroout") ||
         !strcmp(argv[1], "punch")) &&
        argc == 5) {
        return cmd_range(argv[1], parse_size(argv[3]), parse_size(argv[4]));
    }
    if (!strcmp(argv[1], "readonly")) {
        return cmd_readonly();
    }
    if (!strcmp(argv[1], "forever") && argc == 5) {
        cmd_forever(parse_size(argv[3]), parse_size(argv[4]));
    }
    fprintf(stderr, "guest-tool: bad command\n");
    return 2;
}
