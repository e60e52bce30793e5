/*
 * vhost-user-load: drives a vhost-user-blk backend with the project's own
 * front-end (tests/vhost-user-client.c) from one thread, for benchmarks and
 * stress tests.
 *
 *   vhost-user-load --socket PATH [--queues N] [--qd N] [--bs BYTES]
 *                   [--rw randread|randwrite|read|write|verify]
 *                   [--time SECONDS] [--interrupts] [--segs N]
 *                   [--queue-size N] [--no-event-idx] [--no-indirect]
 *                   [--inflight] [--size-limit BYTES] [--announce]
 *
 * --qd is per queue.  The thread polls every queue's used ring (or, with
 * --interrupts, waits on the call eventfds) and refills each queue as its
 * requests complete; it publishes once per queue per round, so a round's
 * new requests cost at most one kick.
 * --rw verify writes patterns to random blocks and reads blocks back,
 * checking every block whose content it knows; no two requests on one
 * block are in flight at once.  Any failed request or mismatch makes the
 * exit status 1.
 *
 * --announce prints "connected" on a line of its own once the rings are
 * set up (for scripts that must know the backend has a front-end).
 * Prints one line: ops=N iops=X lat_mean_us=Y lat_p99_us=Z errors=E
 * verify_fail=F kicks=K
 */
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/vhost-user-client.h"

/* Latency histogram: 64 powers of two, 16 linear steps each. */
#define HIST_SUB 16

typedef struct Load {
    VuClient c;
    unsigned qd;
    size_t bs;
    unsigned segs;
    const char *rw;
    bool random;
    bool writes;
    bool verify;
    uint64_t nblocks;
    uint64_t next_seq;
    uint64_t rng;
    uint32_t *gen;      /* verify: generation of each block (0: unknown) */
    uint8_t *busy;      /* verify: block has a request in flight */
    uint64_t *slot_blk; /* per queue * slots: the block of a slot */
    uint64_t ops, errors, verify_fail;
    uint64_t lat_sum; /* in vu_ticks() units, like the histogram */
    uint64_t hist[64 * HIST_SUB];
    bool stopping;
} Load;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(Load *l)
{
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    return l->rng;
}

static void hist_add(Load *l, uint64_t t)
{
    int b = 63 - __builtin_clzll(t | 1);
    unsigned sub = b >= 4 ? (unsigned)((t >> (b - 4)) & (HIST_SUB - 1)) : 0;

    l->hist[b * HIST_SUB + sub]++;
}

static double hist_pct(const Load *l, double pct)
{
    uint64_t want = (uint64_t)(l->ops * pct);
    uint64_t seen = 0;

    for (int i = 0; i < 64 * HIST_SUB; i++) {
        seen += l->hist[i];
        if (seen > want) {
            int b = i / HIST_SUB;
            unsigned sub = i % HIST_SUB;
            double lo =
                b >= 4 ? (double)(1ULL << b) * (1.0 + (double)sub / HIST_SUB)
                       : (double)(1ULL << b);

            return lo;
        }
    }
    return 0;
}

static uint64_t pick_block(Load *l)
{
    uint64_t b;

    if (!l->random) {
        b = l->next_seq++ % l->nblocks;
        return b;
    }
    b = rnd(l) % l->nblocks;
    if (l->verify) {
        for (uint64_t i = 0; i < l->nblocks && l->busy[b]; i++) {
            b = (b + 1) % l->nblocks;
        }
    }
    return b;
}

static void submit(Load *l, VuQueue *q, unsigned s)
{
    uint64_t blk = pick_block(l);
    uint32_t type = VIRTIO_BLK_T_IN;

    if (l->verify) {
        l->busy[blk] = 1;
        if (rnd(l) & 1) {
            type = VIRTIO_BLK_T_OUT;
            vu_pattern_fill(q->slots[s].data, l->bs, blk, l->gen[blk] + 1);
        }
    } else if (l->writes) {
        type = VIRTIO_BLK_T_OUT;
    }
    l->slot_blk[q->index * q->nslots + s] = blk;
    vu_queue_add(q, s, type, blk * (l->bs >> VIRTIO_BLK_SECTOR_BITS), l->bs,
                 l->segs);
}

static void complete(VuQueue *q, unsigned s, uint32_t len, void *opaque)
{
    Load *l = opaque;
    VuSlot *slot = &q->slots[s];
    uint64_t blk = l->slot_blk[q->index * q->nslots + s];
    uint64_t lat = vu_ticks() - slot->submit_ticks;

    l->ops++;
    l->lat_sum += lat;
    hist_add(l, lat);
    if (*slot->status != VIRTIO_BLK_S_OK) {
        l->errors++;
    }
    if (l->verify) {
        if (slot->hdr->type == VIRTIO_BLK_T_OUT) {
            if (*slot->status == VIRTIO_BLK_S_OK) {
                l->gen[blk]++;
            } else {
                l->gen[blk] = 0; /* unknown now */
            }
        } else if (l->gen[blk] &&
                   !vu_pattern_check(slot->data, l->bs, blk, l->gen[blk])) {
            l->verify_fail++;
            if (l->verify_fail <= 3) {
                fprintf(stderr,
                        "vhost-user-load: block %llu does not read back "
                        "generation %u\n",
                        (unsigned long long)blk, l->gen[blk]);
            }
        }
        l->busy[blk] = 0;
    }
}

/* Fills the queue's free slots up to qd and publishes them. */
static void refill(Load *l, VuQueue *q)
{
    unsigned busy = vu_queue_busy(q);

    while (!l->stopping && busy < l->qd) {
        int s = vu_queue_free_slot(q);

        if (s < 0) {
            break;
        }
        submit(l, q, (unsigned)s);
        busy++;
    }
    vu_queue_publish(q);
}

static void usage(void)
{
    fprintf(stderr, "usage: vhost-user-load --socket PATH [--queues N] "
                    "[--qd N] [--bs BYTES] [--rw MODE] [--time S] "
                    "[--interrupts] [--segs N] [--queue-size N] "
                    "[--no-event-idx] [--no-indirect] [--inflight] "
                    "[--size-limit BYTES] [--announce]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},
        {"queues", required_argument, NULL, 'q'},
        {"qd", required_argument, NULL, 'd'},
        {"bs", required_argument, NULL, 'b'},
        {"rw", required_argument, NULL, 'r'},
        {"time", required_argument, NULL, 't'},
        {"interrupts", no_argument, NULL, 'i'},
        {"segs", required_argument, NULL, 'g'},
        {"queue-size", required_argument, NULL, 'z'},
        {"no-event-idx", no_argument, NULL, 'E'},
        {"no-indirect", no_argument, NULL, 'I'},
        {"inflight", no_argument, NULL, 'F'},
        {"size-limit", required_argument, NULL, 'L'},
        {"announce", no_argument, NULL, 'A'},
        {NULL},
    };
    static Load l;
    VuClientConfig cfg = {0};
    const char *sock = NULL;
    double secs = 5;
    uint64_t limit = 0;
    bool announce = false;
    uint64_t start, end, deadline;
    uint64_t start_ticks, end_ticks;
    double ns_per_tick;
    unsigned round = 0;
    int opt, ret;

    l.qd = 1;
    l.bs = 4096;
    l.segs = 1;
    l.rw = "randread";
    l.rng = 0x2545f4914f6cdd1dULL;
    cfg.num_queues = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            sock = optarg;
            break;
        case 'q':
            cfg.num_queues = (unsigned)atoi(optarg);
            break;
        case 'd':
            l.qd = (unsigned)atoi(optarg);
            break;
        case 'b':
            l.bs = (size_t)strtoull(optarg, NULL, 0);
            break;
        case 'r':
            l.rw = optarg;
            break;
        case 't':
            secs = atof(optarg);
            break;
        case 'i':
            cfg.interrupts = true;
            break;
        case 'g':
            l.segs = (unsigned)atoi(optarg);
            break;
        case 'z':
            cfg.queue_size = (unsigned)atoi(optarg);
            break;
        case 'E':
            cfg.no_event_idx = true;
            break;
        case 'I':
            cfg.no_indirect = true;
            break;
        case 'F':
            cfg.inflight = true;
            break;
        case 'L':
            limit = strtoull(optarg, NULL, 0);
            break;
        case 'A':
            announce = true;
            break;
        default:
            usage();
        }
    }
    if (!sock || l.qd < 1 || l.bs < 512 || l.bs % 512) {
        usage();
    }
    l.random = !strncmp(l.rw, "rand", 4) || !strcmp(l.rw, "verify");
    l.writes = strstr(l.rw, "write") != NULL;
    l.verify = !strcmp(l.rw, "verify");
    if (!cfg.queue_size) {
        /* Room for every slot's chain: one descriptor each with indirect
         * tables, header + segments + status without. */
        unsigned per = cfg.no_indirect ? l.segs + 2 : 1;

        cfg.queue_size = 256;
        while (cfg.queue_size < per * l.qd && cfg.queue_size < 32768) {
            cfg.queue_size *= 2;
        }
    }
    if ((cfg.no_indirect ? l.segs + 2 : 1) * l.qd > cfg.queue_size) {
        fprintf(stderr,
                "vhost-user-load: --qd %u does not fit a queue of "
                "%u\n",
                l.qd, cfg.queue_size);
        return 2;
    }
    cfg.slots = l.qd;
    cfg.slot_data_size = (l.bs + 4095) & ~(size_t)4095;
    ret = vu_client_init(&l.c, &cfg);
    if (ret < 0) {
        fprintf(stderr, "vhost-user-load: init: %s\n", strerror(-ret));
        return 1;
    }
    ret = vu_client_connect(&l.c, sock, 5000);
    if (ret == 0) {
        ret = vu_client_setup(&l.c, false);
    }
    if (ret < 0) {
        fprintf(stderr, "vhost-user-load: %s: %s\n", sock, strerror(-ret));
        return 1;
    }
    if (announce) {
        printf("connected\n");
        fflush(stdout);
    }
    l.nblocks = vu_client_capacity(&l.c) / l.bs;
    if (limit && limit / l.bs < l.nblocks) {
        l.nblocks = limit / l.bs;
    }
    if (l.nblocks == 0) {
        fprintf(stderr, "vhost-user-load: the disk is smaller than a block\n");
        return 1;
    }
    l.slot_blk = g_new0(uint64_t, (size_t)cfg.num_queues * l.qd);
    if (l.verify) {
        l.gen = g_new0(uint32_t, l.nblocks);
        l.busy = g_malloc0(l.nblocks);
    }
    start = now_ns();
    start_ticks = vu_ticks();
    deadline = start + (uint64_t)(secs * 1e9);
    for (unsigned i = 0; i < l.c.nqueues; i++) {
        refill(&l, &l.c.queues[i]);
    }
    for (;;) {
        bool any_busy = false;
        unsigned got = 0;

        /* The clock only now and then: it is not free on a VM. */
        if (!l.stopping && (++round & 63) == 0 && now_ns() >= deadline) {
            l.stopping = true;
        }
        for (unsigned i = 0; i < l.c.nqueues; i++) {
            VuQueue *q = &l.c.queues[i];

            got += vu_queue_poll(q, complete, &l);
            refill(&l, q);
            any_busy |= vu_queue_busy(q) > 0;
        }
        if (l.stopping && !any_busy) {
            break;
        }
        if (!got && cfg.interrupts) {
            struct pollfd pfd[VU_MAX_QUEUES];

            /* Ask for a signal, look once more, then sleep. */
            for (unsigned i = 0; i < l.c.nqueues; i++) {
                if (vu_queue_arm_interrupt(&l.c.queues[i])) {
                    got++;
                }
                pfd[i] = (struct pollfd){.fd = l.c.queues[i].call_fd,
                                         .events = POLLIN};
            }
            if (!got && poll(pfd, l.c.nqueues, 1000) > 0) {
                for (unsigned i = 0; i < l.c.nqueues; i++) {
                    uint64_t v;

                    if ((pfd[i].revents & POLLIN) &&
                        read(pfd[i].fd, &v, sizeof(v)) == sizeof(v)) {
                        l.c.queues[i].signals++;
                    }
                }
            }
        }
        if ((round & 63) == 0 &&
            now_ns() > deadline + 30 * (uint64_t)1000000000) {
            fprintf(stderr, "vhost-user-load: requests did not complete "
                            "within 30 s of the end\n");
            return 1;
        }
    }
    end = now_ns();
    end_ticks = vu_ticks();
    ns_per_tick =
        end_ticks > start_ticks
            ? (double)(end - start) / (double)(end_ticks - start_ticks)
            : 1.0;
    {
        uint64_t kicks = 0;

        for (unsigned i = 0; i < l.c.nqueues; i++) {
            kicks += l.c.queues[i].kicks;
        }
        printf("ops=%llu iops=%.0f lat_mean_us=%.2f lat_p99_us=%.2f "
               "errors=%llu verify_fail=%llu kicks=%llu\n",
               (unsigned long long)l.ops, l.ops / ((end - start) / 1e9),
               l.ops ? l.lat_sum * ns_per_tick / 1e3 / l.ops : 0,
               hist_pct(&l, 0.99) * ns_per_tick / 1e3,
               (unsigned long long)l.errors, (unsigned long long)l.verify_fail,
               (unsigned long long)kicks);
    }
    vu_client_destroy(&l.c);
    return l.errors || l.verify_fail ? 1 : 0;
}
