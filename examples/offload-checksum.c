/*
 * offload-checksum: hashes files on a thread pool while the event loop stays
 * free, and prints each result from the loop thread as it comes back.
 *
 *   offload-checksum [--threads N] FILE...
 *
 * Shows threadlets in use: a private queue bound to the loop's AioContext,
 * threadlet_submit_aio() for blocking reads, done callbacks in the loop
 * thread (no locking around the counters they update), and destroy.
 * Results come in completion order.  The hash is 64-bit FNV-1a, which needs
 * no library.  Exits 1 if any file could not be read.
 */
/* pipe2, accept4: built outside the project too (tests/install). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dataplane/aio.h>
#include <dataplane/threadlet.h>

typedef struct FileJob {
    const char *path;
    uint64_t hash; /* written by the pool thread, read in done */
    int64_t bytes;
    int *remaining; /* loop thread only */
    int *failed;    /* loop thread only */
} FileJob;

/* Runs on a pool thread: may block as long as it likes. */
static int hash_file(void *arg)
{
    FileJob *job = arg;
    uint64_t h = 14695981039346656037ULL;
    char buf[65536];
    ssize_t n;
    int fd = open(job->path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return -errno;
    }
    job->bytes = 0;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL;
        }
        job->bytes += n;
    }
    if (n < 0) {
        int err = -errno;

        close(fd);
        return err;
    }
    close(fd);
    job->hash = h;
    return 0;
}

/* Runs in the loop thread, after hash_file returned. */
static void hash_done(void *opaque, int ret)
{
    FileJob *job = opaque;

    if (ret < 0) {
        fprintf(stderr, "%s: %s\n", job->path, strerror(-ret));
        (*job->failed)++;
    } else {
        printf("%016" PRIx64 "  %10" PRId64 "  %s\n", job->hash, job->bytes,
               job->path);
    }
    (*job->remaining)--;
}

int main(int argc, char **argv)
{
    int threads = 4;
    int first = 1;
    int remaining;
    int failed = 0;
    AioContext *ctx;
    ThreadletQueue *q;
    FileJob *jobs;
    int i;

    if (argc > 2 && !strcmp(argv[1], "--threads")) {
        threads = atoi(argv[2]);
        first = 3;
    }
    if (first >= argc || threads < 1) {
        fprintf(stderr, "usage: %s [--threads N] FILE...\n", argv[0]);
        return 2;
    }

    ctx = aio_context_new(&error_abort);
    q = threadlet_queue_new("checksum", 0, threads);
    /* Every threadlet_submit_aio(ctx, ...) now goes to our queue. */
    threadlet_context_set_queue(ctx, q);

    remaining = argc - first;
    jobs = g_new0(FileJob, remaining);
    for (i = first; i < argc; i++) {
        FileJob *job = &jobs[i - first];

        job->path = argv[i];
        job->remaining = &remaining;
        job->failed = &failed;
        threadlet_submit_aio(ctx, hash_file, job, hash_done, job);
    }
    /* The loop is free for other work meanwhile; here it only waits. */
    while (remaining > 0) {
        aio_poll(ctx, true);
    }

    threadlet_queue_destroy(q); /* unbinds it from ctx too */
    aio_context_unref(ctx);
    g_free(jobs);
    return failed ? 1 : 0;
}
