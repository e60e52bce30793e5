/*
 * A small vhost-user-blk front-end: the project's own, for tests, stress
 * and benchmarks (a TCG guest measures nothing).  It plays QEMU's part: it
 * owns the "guest" memory (a memfd, shared as one or more regions), lays
 * out split virtqueues in it, negotiates with the backend, and drives
 * virtio-blk requests through the rings, polling the used ring or waiting
 * on the call eventfd.  It can also send anything at all (raw messages,
 * hostile chains) for the robustness tests.
 *
 * Layers, bottom up: raw messages (vu_send/vu_recv_reply); the set-up
 * requests (vu_client_setup does the usual sequence); a queue driver
 * (vu_queue_submit, vu_queue_poll); the request slots of a queue, each with
 * its header, data buffer and status byte in guest memory.
 *
 * Not thread-safe: a client belongs to one thread.  Functions returning
 * int give 0 or -errno (-EPROTO for a reply that makes no sense); they
 * print nothing.
 */
#ifndef DATAPLANE_TESTS_VHOST_USER_CLIENT_H
#define DATAPLANE_TESTS_VHOST_USER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <glib.h>

#include "vhost/protocol.h"
#include "vhost/virtqueue.h"

#define VU_MAX_QUEUES 16
#define VU_MAX_REGIONS 8

/*
 * A cheap timestamp for per-request latencies: the TSC on x86-64 (this
 * project's VMs have a constant, reliable one; clock_gettime through the
 * paravirtual clock costs several times more and showed up as most of a
 * polling client's time), nanoseconds elsewhere.  Convert with a rate
 * measured against CLOCK_MONOTONIC over the run.
 */
static inline uint64_t vu_ticks(void)
{
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#else
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

/* ---- guest memory ------------------------------------------------------- */

typedef struct VuGuestMem {
    int fd;        /* memfd */
    uint8_t *base; /* our mapping of all of it */
    size_t size;
    uint64_t gpa;      /* guest physical address of base */
    size_t brk;        /* bump allocator: next free byte */
    unsigned nregions; /* shared as this many equal regions */
} VuGuestMem;

/* A memfd of size bytes (sealed against shrinking unless unsealed),
 * shared as nregions regions at gpa. */
int vu_mem_init(VuGuestMem *m, size_t size, uint64_t gpa, unsigned nregions,
                bool sealed);
void vu_mem_destroy(VuGuestMem *m);
/* align-aligned bytes of guest memory, zeroed; aborts when full. */
void *vu_mem_alloc(VuGuestMem *m, size_t size, size_t align);
uint64_t vu_mem_gpa(const VuGuestMem *m, const void *p);

/* ---- a queue ------------------------------------------------------------ */

typedef struct VuSlot {
    VirtioBlkOutHdr *hdr; /* in guest memory */
    uint8_t *data;        /* slot_data_size bytes, 4 KiB aligned */
    uint8_t *status;
    VringDesc *indirect; /* 3 + extra entries */
    bool busy;
    uint64_t user;         /* the caller's tag */
    uint64_t submit_ticks; /* vu_ticks() when added */
} VuSlot;

typedef struct VuQueue {
    VuGuestMem *mem;
    unsigned index;
    unsigned num;
    VringDesc *desc;
    uint8_t *avail;
    uint8_t *used;
    int kick_fd;
    int call_fd;
    uint16_t avail_idx; /* ours, published with release */
    uint16_t last_used; /* the next used entry to read */
    uint16_t free_head; /* direct descriptors: free list */
    unsigned nfree;
    uint16_t avail_published; /* the index the backend has seen */
    uint16_t *slot_of_head;   /* head -> slot index */
    uint16_t *ndesc_of_head;  /* head -> direct descriptors it took */
    VuSlot *slots;
    unsigned nslots;
    uint16_t *free_slots; /* stack of idle slots */
    uint16_t *free_pos;   /* slot -> its place in free_slots */
    unsigned nfree_slots;
    size_t slot_data_size;
    bool event_idx;
    bool indirect;
    bool interrupts;  /* ask for call signals, else suppress them */
    uint64_t kicks;   /* eventfd writes we made */
    uint64_t signals; /* call eventfd reads that saw a signal */
} VuQueue;

/* ---- the client --------------------------------------------------------- */

typedef struct VuClientConfig {
    unsigned num_queues;   /* default 1 */
    unsigned queue_size;   /* default 256 */
    unsigned slots;        /* requests in flight per queue at most; default
                              queue_size / 2 with indirect, / 3 without */
    size_t slot_data_size; /* bytes of data per slot; default 64 KiB */
    size_t mem_size;       /* default: what the queues need + 1 MiB */
    unsigned nregions;     /* default 1 */
    bool no_event_idx;     /* do not negotiate EVENT_IDX */
    bool no_indirect;      /* do not use indirect descriptors */
    bool interrupts;       /* wait on call eventfds (else poll) */
    bool inflight;         /* negotiate INFLIGHT_SHMFD, GET then SET it */
    bool add_mem_reg;      /* ADD_MEM_REG instead of SET_MEM_TABLE */
    bool unsealed_memory;  /* leave the memfd without seals */
    bool backend_channel;  /* negotiate BACKEND_REQ, SET_BACKEND_REQ_FD */
} VuClientConfig;

typedef struct VuClient {
    VuClientConfig cfg;
    int sock;
    VuGuestMem mem;
    uint64_t features;          /* offered by the backend */
    uint64_t acked_features;    /* what we set */
    uint64_t protocol_features; /* negotiated */
    uint8_t config[VHOST_USER_MAX_CONFIG_SIZE];
    int backend_sock; /* our end of the backend channel, -1 if none */
    int inflight_fd;
    void *inflight_map;
    size_t inflight_size;
    uint16_t inflight_queue_size;
    VuQueue queues[VU_MAX_QUEUES];
    unsigned nqueues;
} VuClient;

/* Fills in the defaults of cfg and creates the memory and the rings (not
 * connected yet). */
int vu_client_init(VuClient *c, const VuClientConfig *cfg);
/* Closes everything, memory included. */
void vu_client_destroy(VuClient *c);

/* Connects to the socket (retrying for up to timeout_ms while it does not
 * exist or refuses). */
int vu_client_connect(VuClient *c, const char *path, int timeout_ms);
/* Closes the socket only: the memory and the rings stay, as they do for a
 * front-end whose backend went away. */
void vu_client_disconnect(VuClient *c);

/*
 * The usual sequence: GET_FEATURES, GET/SET_PROTOCOL_FEATURES, SET_OWNER,
 * GET_QUEUE_NUM, GET_CONFIG, SET_FEATURES, (GET_)SET_INFLIGHT_FD,
 * SET_MEM_TABLE (or ADD_MEM_REG), and per queue SET_VRING_NUM/BASE/ADDR/
 * KICK/CALL and SET_VRING_ENABLE.  resume: the rings are being taken over
 * after a reconnection: their base is the used index (as QEMU does when
 * the backend vanished), and the inflight area is the one kept from the
 * previous connection (SET_INFLIGHT_FD only).
 */
int vu_client_setup(VuClient *c, bool resume);
/* GET_VRING_BASE on every queue (stops them); *bases gets the answers
 * (may be NULL). */
int vu_client_stop(VuClient *c, uint16_t *bases);

/* SET_MEM_TABLE (or ADD_MEM_REG for each region) again: the backend
 * remaps the memory, as after a memory hot-plug. */
int vu_client_set_mem_table(VuClient *c);
/* ADD_MEM_REG / REM_MEM_REG of region i of the memory (its fd with ADD). */
int vu_client_mem_reg(VuClient *c, uint32_t request, unsigned i);
/* GET_CONFIG again (c->config). */
int vu_client_get_config(VuClient *c);
/* Waits up to timeout_ms for a request on the backend channel; its type
 * goes to *request (payload discarded). */
int vu_client_backend_msg(VuClient *c, int timeout_ms, uint32_t *request);
/* The capacity from the config space, in bytes. */
uint64_t vu_client_capacity(const VuClient *c);

/* ---- raw messages ------------------------------------------------------- */

int vu_send(VuClient *c, uint32_t request, uint32_t flags, const void *payload,
            uint32_t size, const int *fds, unsigned nfds);
/* Reads one reply for request: its payload (up to max bytes) and its size;
 * an fd that came with it goes to *fd (may be NULL: closed). */
int vu_recv_reply(VuClient *c, uint32_t request, void *payload, size_t max,
                  uint32_t *size, int *fd);
/* A request whose reply is a u64. */
int vu_get_u64(VuClient *c, uint32_t request, uint64_t *v);
/* A request with a u64 payload and, with need_reply, its ack (0 or the
 * backend's nonzero failure, as -EIO). */
int vu_set_u64(VuClient *c, uint32_t request, uint64_t v, bool need_reply);
/* Whether the backend closed the connection (reads EOF within
 * timeout_ms). */
bool vu_peer_closed(VuClient *c, int timeout_ms);

/* ---- driving requests --------------------------------------------------- */

/*
 * Puts a request in slot s of queue q: type, sector, and len data bytes
 * (OUT: from the slot's data buffer; IN and GET_ID: into it; DISCARD and
 * WRITE_ZEROES: len bytes of ranges already in the data buffer).  The
 * buffer is split into segs descriptors (1 .. 64).  Not visible to the
 * backend until vu_queue_publish().
 */
void vu_queue_add(VuQueue *q, unsigned s, uint32_t type, uint64_t sector,
                  size_t len, unsigned segs);
/* Publishes what was added; kicks if the backend asked for it. */
void vu_queue_publish(VuQueue *q);
/* A free slot, or -1. */
int vu_queue_free_slot(VuQueue *q);

/* Collects completions: for each, fn(q, slot) is called (the slot's status
 * byte says how it went) and the slot freed afterwards.  Returns how many. */
typedef void VuCompleteFn(VuQueue *q, unsigned slot, uint32_t used_len,
                          void *opaque);
unsigned vu_queue_poll(VuQueue *q, VuCompleteFn *fn, void *opaque);
/* Waits (up to timeout_ms) until something completes: on the call eventfd
 * in interrupt mode, by spinning otherwise.  Returns what vu_queue_poll
 * collected. */
unsigned vu_queue_wait(VuQueue *q, VuCompleteFn *fn, void *opaque,
                       int timeout_ms);
/* Interrupt mode: asks the backend to signal the next completion; returns
 * whether completions are already waiting (then poll instead of sleeping
 * on the call eventfd). */
bool vu_queue_arm_interrupt(VuQueue *q);
/* Asks the backend for a signal on the next completion (true) or not. */
void vu_queue_want_interrupts(VuQueue *q, bool want);
/* The used index the backend published. */
uint16_t vu_queue_used_idx(VuQueue *q);
/* Lays out queue index in c's memory (vu_client_init does it), and frees
 * what that allocated outside the guest memory. */
void vu_queue_init(VuClient *c, VuQueue *q, unsigned index);
void vu_queue_destroy(VuQueue *q);
/* Slots in flight. */
unsigned vu_queue_busy(const VuQueue *q);

/* Synchronous helper: one request on queue 0, waits up to 10 s; returns
 * the status byte, or -1 on timeout.  data: len bytes copied in (OUT) or
 * out (IN) of the slot, may be NULL. */
int vu_client_io(VuClient *c, unsigned queue, uint32_t type, uint64_t sector,
                 void *data, size_t len);

/* A deterministic data pattern for block number blk, generation gen. */
void vu_pattern_fill(uint8_t *buf, size_t len, uint64_t blk, uint32_t gen);
bool vu_pattern_check(const uint8_t *buf, size_t len, uint64_t blk,
                      uint32_t gen);

#endif /* DATAPLANE_TESTS_VHOST_USER_CLIENT_H */
