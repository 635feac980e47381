/*
 * sim: cairn's deterministic cluster simulator for the Raft core.
 *
 * N nodes (3 to 7, plus spares that may join) each run the production core
 * (src/raft) behind a driver written here, over a simulated clock, network
 * and disk. One 64-bit seed feeds a root PRNG; every component (network,
 * disks, clients, faults, each node's core) draws its own seed from it, so a
 * seed replays a run exactly.
 *
 * Fault model.
 *   Network: per message loss, duplication, delay (reordering follows from
 *     random delays), bit corruption (must be caught by the CRC and
 *     dropped), one-way and asymmetric partitions, full isolation.
 *   Disk: writes (hard state, truncate, append) go to a volatile view and a
 *     queue; an fsync completes after a random latency and makes every
 *     earlier write durable, in order. A crash keeps the durable state plus
 *     a random prefix of the unsynced writes (a torn tail), and loses the
 *     rest. Synced data is never damaged (scenarios that damage it expect
 *     CN_ECORRUPT).
 *   Nodes: crash at any event boundary and restart from their durable state;
 *     membership changes add learners, promote and remove servers.
 *
 * Checked after every step (sim_check_*): at most one leader per term; log
 * matching (an (index, term) pair always names the same entry and previous
 * term); leader completeness (a new leader holds every committed entry);
 * commit safety (a newly committed entry is already out of reach of any
 * candidate lacking it, judged on the voters' durable logs);
 * committed entries never change and never get truncated; every node
 * applies the same command at each index; a write acknowledged to a client
 * keeps its index forever; the client history of writes and ReadIndex reads
 * on a register-per-key model is linearizable; after faults heal a leader is
 * elected and a write commits within a bounded simulated time.
 */
#ifndef CN_SIM_H
#define CN_SIM_H

#include <stdint.h>
#include <stdio.h>

#include "base/base.h"
#include "raft/raft.h"

#define SIM_NODES_MAX 10
#define SIM_KEYS 8

struct sim_bytes {
    uint8_t *p;
    size_t n;
};

/* One disk state: what a node would read back. Entries are stored encoded
 * (raft_entry_encode) and decoded at restart. */
struct sim_log {
    struct raft_hard_state hs;
    struct raft_snapshot_meta meta;
    struct sim_bytes snap;
    struct sim_bytes *ents; /* index meta.index + 1 + i */
    raft_term *terms;       /* term of each entry, for the checker */
    size_t n, cap;
};

enum { SIM_OP_HS = 1, SIM_OP_TRUNC = 2, SIM_OP_APPEND = 3 };

struct sim_disk_op {
    int kind;
    uint64_t seq;
    struct raft_hard_state hs;
    raft_index index;
    struct sim_bytes data;
};

struct sim_disk {
    struct sim_log durable;
    struct sim_log live;
    struct sim_disk_op *ops; /* unsynced writes, oldest first */
    size_t n_ops, cap_ops;
    uint64_t next_seq;
    uint64_t fsync_done_ms; /* fsyncs complete in order */
};

struct sim_sm {
    uint64_t val[SIM_KEYS];    /* op id of the write, 0: initial */
    raft_index vidx[SIM_KEYS]; /* its log index */
    raft_index applied;
};

struct sim_wait {
    uint64_t op;      /* client op */
    raft_index index; /* write: proposal index; read: read index */
    raft_term term;   /* write: proposal term */
    int ready;        /* read: index known */
};

struct sim_node {
    raft_id id;
    int exists; /* has a disk (bootstrap or joined) */
    int alive;
    uint64_t inc; /* incarnation: events of older ones are ignored */
    struct raft *r;
    struct raft_options opt;
    struct sim_disk disk;
    struct sim_sm sm;
    uint64_t tick_at;
    uint8_t role;
    raft_term term;
    raft_index commit;
    struct sim_wait *waits;
    size_t n_waits, cap_waits;
    raft_index last_snap;
};

struct sim_op {
    int write;
    uint32_t key;
    uint64_t id;
    int client;
    uint64_t invoke_ms, done_ms;
    int state;        /* SIM_PENDING ... */
    raft_index idx;   /* write: log index; read: index of observed write */
    int node;         /* where it was proposed / read, -1 none */
    int liveness;     /* the post-heal probe */
    unsigned attempt; /* submissions so far */
};
enum { SIM_PENDING = 0, SIM_OK = 1, SIM_FAIL = 2, SIM_UNKNOWN = 3 };

struct sim_hist {
    uint64_t done_ms;
    raft_index idx;
    raft_index prefix_max;
};

struct sim_reg_slot {
    raft_index index;
    raft_term term;
    uint64_t hash;
    raft_term prev_term;
};

struct sim_ev;

struct sim_params {
    unsigned nodes;      /* initial voters */
    unsigned spares;     /* nodes that may join */
    unsigned loss_pct10; /* per mille */
    unsigned dup_pct10;
    unsigned corrupt_pct10;
    unsigned delay_min_ms, delay_max_ms;
    unsigned fsync_min_ms, fsync_max_ms;
    unsigned crash_weight, partition_weight, transfer_weight, member_weight,
        snapshot_weight, heal_weight, power_weight;
    unsigned flap_pct;     /* chance a new leader crashes within 60 ms */
    unsigned fault_gap_ms; /* mean time between faults */
    unsigned chaos_ms;     /* length of a chaos phase */
    unsigned phases;
    unsigned clients;
    unsigned think_ms;
    unsigned read_pct;
    unsigned snapshot_every; /* applied entries between snapshots */
    unsigned liveness_ms;    /* bound after heal */
    struct raft_options raft;
};

struct sim {
    uint64_t seed;
    struct cn_prng prng; /* root */
    struct cn_prng net_prng, disk_prng, client_prng, fault_prng;
    struct sim_params p;
    uint64_t now_ms;
    uint64_t trace_hash;
    int verbose;
    FILE *trace;          /* scenario output, or NULL */
    int auto_persist;     /* scenario: fsync at once */
    int trace_heartbeats; /* scenario: include heartbeats in the trace */
    int crash_keeps_none; /* scenario: a crash loses every unsynced write */
    int fsync_ms[SIM_NODES_MAX]; /* > 0: fixed fsync latency per node */

    struct sim_node nodes[SIM_NODES_MAX];
    unsigned n_nodes; /* slots in use (initial + spares) */
    int blocked[SIM_NODES_MAX][SIM_NODES_MAX]; /* from, to */

    /* Event queue: binary heap ordered by (time, seq). */
    struct sim_ev *heap;
    size_t n_heap, cap_heap;
    uint64_t ev_seq;

    /* Checker state. */
    raft_id *leader_of; /* by term */
    size_t n_leader_of;
    struct sim_reg_slot *reg; /* (index, term) -> entry */
    size_t reg_cap, reg_n;
    struct {
        raft_term term;
        uint64_t hash;
    } * committed; /* by index */
    size_t n_committed;
    raft_index max_committed;
    struct sim_op *ops;
    size_t n_ops, cap_ops;
    struct sim_hist *hist[SIM_KEYS];
    size_t n_hist[SIM_KEYS], cap_hist[SIM_KEYS];

    /* Client state (random runs). */
    int client_busy[64];

    /* Events of kinds sim.c does not handle go here (faults, clients). */
    void (*hook)(struct sim *s, struct sim_ev *e);
    void (*on_leader)(struct sim *s, unsigned node); /* new leader */
    void *hook_ctx;

    int failed;
    char why[512];

    /* Counters. */
    uint64_t n_steps, n_msgs, n_commits, n_acked_writes, n_reads_ok, n_crashes,
        n_elections, n_snapshots_sent;
    uint64_t liveness_deadline_ms;
    uint64_t liveness_op;
    uint64_t max_liveness_ms;
};

/* sim.c: the cluster, the driver and the checker. */
void sim_init(struct sim *s, uint64_t seed, const struct sim_params *p);
void sim_close(struct sim *s);
void sim_fail(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int sim_node_start(struct sim *s, unsigned i);
void sim_node_crash(struct sim *s, unsigned i);
/* Steps one event into node i and carries out the update. Returns the
 * raft_step code. */
int sim_step(struct sim *s, unsigned i, const struct raft_event *ev,
             struct raft_update *out_copy);
/* Runs the queue until time `until` or it is empty. */
void sim_run_until(struct sim *s, uint64_t until);
void sim_heal(struct sim *s);
int sim_leader(const struct sim *s);
void sim_take_snapshot(struct sim *s, unsigned i);
uint64_t sim_fsync_all(struct sim *s, unsigned i);
void sim_client_submit(struct sim *s, uint64_t op, unsigned node);
int sim_client_now(struct sim *s, uint64_t op, unsigned node,
                   struct raft_update *up);
uint64_t sim_new_op(struct sim *s, int write, uint32_t key, int client);
uint64_t sim_logs_hash(const struct sim *s);
void sim_trace(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sim_describe_msg(const struct raft_msg *m, char *buf, size_t n);

/* Events of the queue. */
enum {
    SIM_EV_DELIVER = 1,
    SIM_EV_TICK = 2,
    SIM_EV_FSYNC = 3,
    SIM_EV_CLIENT = 4, /* an op arrives at a node */
    SIM_EV_FAULT = 5,
    SIM_EV_RESTART = 6,
    SIM_EV_THINK = 7, /* client's next op */
    SIM_EV_HEAL = 8,
    SIM_EV_LIVENESS = 9,
};

struct sim_ev {
    uint64_t time_ms;
    uint64_t seq;
    int kind;
    unsigned node;
    uint64_t inc;
    uint64_t a, b, c; /* kind specific */
    struct sim_bytes msg;
};

void sim_push(struct sim *s, const struct sim_ev *e);

/* sim_run.c: random runs. Returns 0 on success. */
int sim_random_run(uint64_t seed, int verbose, uint64_t *hash_out,
                   double *sim_s_out, uint64_t *commits_out);

/* The fault-free 3-node throughput run behind --bench. */
int sim_bench_run(uint64_t seed, uint64_t *commits_out, double *sim_s_out);

/* scenario.c */
/* Runs one scenario file; 0 if its output matches. Adds the number of
 * checker violations seen to *violations. */
int sim_scenario_file(const char *path, int rewrite, unsigned *violations);

#endif
