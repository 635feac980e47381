/*
 * sim_run: one randomised simulation per seed (the VOPR loop).
 *
 * The seed picks the cluster (3 to 7 voters, sometimes 2 spares that join
 * through membership changes), the core's options (pre-vote, check-quorum,
 * window and batch sizes, snapshot chunking) and a fault mix. The run has
 * several phases; each is a chaos period (crashes, partitions, loss,
 * duplication, corruption, leadership transfers, membership changes,
 * snapshots) followed by a heal: links restored, crashed nodes restarted,
 * and a probe write that must commit within liveness_ms. Clients issue
 * writes and ReadIndex reads on SIM_KEYS registers all along.
 */
#include "sim.h"

#include <string.h>

enum {
    EV_TIMEOUT = 20, /* a client op gives up */
    EV_CHAOS = 21,   /* start a chaos phase */
    EV_FLAP = 22,    /* crash a fresh leader */
};

struct run {
    unsigned phase;
    int chaos; /* in a chaos phase */
    uint64_t chaos_end_ms;
    uint64_t heal_ms;
    int retired[SIM_NODES_MAX]; /* removed: never re-added */
    int done;                   /* all phases finished */
    uint64_t probe_ok_ms;
};

struct ctx {
    struct run run;
    struct sim_params orig;
};

static unsigned pick(struct cn_prng *p, const unsigned *v, unsigned n)
{
    return v[cn_prng_below(p, n)];
}

static void make_params(struct cn_prng *p, struct sim_params *sp)
{
    static const unsigned sizes[] = {3, 3, 3, 4, 5, 5, 5, 6, 7};
    static const unsigned loss[] = {0, 0, 5, 20, 100, 250};
    static const unsigned dup[] = {0, 10, 50};
    static const unsigned dmin[] = {1, 1, 5, 1};
    static const unsigned dmax[] = {5, 20, 60, 150};
    static const unsigned fmax[] = {1, 10, 40, 100};
    static const unsigned infl[] = {1, 4, 64};
    static const unsigned batch[] = {1, 1, 3, 64};
    static const unsigned chunk[] = {16, 64, 4096};
    static const unsigned trailing[] = {0, 5, 128};
    static const unsigned snap_every[] = {0, 20, 100, 500};
    memset(sp, 0, sizeof(*sp));
    sp->nodes = sizes[cn_prng_below(p, 9)];
    sp->spares = cn_prng_chance(p, 1, 3) ? 2 : 0;
    if (sp->nodes + sp->spares > SIM_NODES_MAX)
        sp->spares = SIM_NODES_MAX - sp->nodes;
    sp->loss_pct10 = pick(p, loss, 6);
    sp->dup_pct10 = pick(p, dup, 3);
    sp->corrupt_pct10 = cn_prng_chance(p, 1, 4) ? 5 : 0;
    unsigned d = (unsigned)cn_prng_below(p, 4);
    sp->delay_min_ms = dmin[d];
    sp->delay_max_ms = dmax[d];
    sp->fsync_min_ms = 0;
    sp->fsync_max_ms = pick(p, fmax, 4);
    sp->crash_weight = (unsigned)cn_prng_range(p, 0, 6);
    sp->partition_weight = (unsigned)cn_prng_range(p, 0, 4);
    sp->transfer_weight = (unsigned)cn_prng_range(p, 0, 2);
    sp->member_weight = sp->spares ? (unsigned)cn_prng_range(p, 1, 3) : 0;
    sp->snapshot_weight = (unsigned)cn_prng_range(p, 0, 2);
    sp->heal_weight = (unsigned)cn_prng_range(p, 1, 3);
    /* Correlated crashes (power loss) and leaders that die right after
     * their election are what expose durability and commit-rule bugs. */
    sp->power_weight = cn_prng_chance(p, 1, 3) ? 1 : 0;
    sp->flap_pct =
        cn_prng_chance(p, 1, 4) ? (unsigned)cn_prng_range(p, 20, 60) : 0;
    sp->fault_gap_ms = (unsigned)cn_prng_range(p, 50, 1500);
    sp->chaos_ms = (unsigned)cn_prng_range(p, 2000, 8000);
    sp->phases = (unsigned)cn_prng_range(p, 2, 4);
    sp->clients = (unsigned)cn_prng_range(p, 2, 8);
    sp->think_ms = (unsigned)cn_prng_range(p, 1, 40);
    sp->read_pct = (unsigned)cn_prng_range(p, 10, 60);
    sp->snapshot_every = pick(p, snap_every, 4);
    sp->liveness_ms = 10000;
    struct raft_options *o = &sp->raft;
    raft_options_default(o);
    o->election_timeout_ms = 200;
    o->heartbeat_ms = cn_prng_chance(p, 1, 2) ? 20 : 50;
    o->pre_vote = (int)cn_prng_below(p, 2);
    o->check_quorum = (int)cn_prng_below(p, 2);
    if (sp->spares && !o->pre_vote && !o->check_quorum)
        o->pre_vote = 1; /* removed servers would disrupt forever */
    o->max_inflight = pick(p, infl, 3);
    o->max_entries_per_msg = pick(p, batch, 4);
    o->max_bytes_per_msg = cn_prng_chance(p, 1, 3) ? 40 : 1024 * 1024;
    o->snapshot_chunk_bytes = pick(p, chunk, 3);
    o->snapshot_trailing = pick(p, trailing, 3);
}

/* --- clients ---------------------------------------------------------------
 */

static unsigned any_node(struct sim *s)
{
    return (unsigned)cn_prng_below(&s->client_prng, s->n_nodes);
}

static void submit(struct sim *s, uint64_t id)
{
    int l = sim_leader(s);
    unsigned to = l >= 0 && cn_prng_chance(&s->client_prng, 3, 4) ? (unsigned)l
                                                                  : any_node(s);
    sim_client_submit(s, id, to);
    struct sim_ev e = {
        .time_ms = s->now_ms + 3000, .kind = EV_TIMEOUT, .a = id};
    sim_push(s, &e);
}

static void client_next(struct sim *s, int client)
{
    int write = !cn_prng_chance(&s->client_prng, s->p.read_pct, 100);
    uint32_t key = (uint32_t)cn_prng_below(&s->client_prng, SIM_KEYS);
    submit(s, sim_new_op(s, write, key, client));
}

static void probe_start(struct sim *s)
{
    uint64_t id = sim_new_op(s, 1, 0, -1);
    s->ops[id - 1].liveness = 1;
    s->liveness_op = id;
    submit(s, id);
}

static void on_op_done(struct sim *s, struct run *run, uint64_t id)
{
    struct sim_op *op = &s->ops[id - 1];
    if (op->liveness) {
        if (id != s->liveness_op)
            return;
        if (op->state == SIM_OK) {
            uint64_t took = s->now_ms - run->heal_ms;
            if (took > s->max_liveness_ms)
                s->max_liveness_ms = took;
            run->probe_ok_ms = s->now_ms;
            struct sim_ev e = {.time_ms = s->now_ms + 500, .kind = EV_CHAOS};
            sim_push(s, &e);
        } else {
            probe_start(s);
        }
        return;
    }
    if (run->done)
        return;
    struct sim_ev e = {
        .time_ms = s->now_ms + cn_prng_range(&s->client_prng, 0, s->p.think_ms),
        .kind = SIM_EV_THINK,
        .a = 0,
        .b = (uint64_t)op->client + 1};
    sim_push(s, &e);
}

static void on_timeout(struct sim *s, uint64_t id)
{
    struct sim_op *op = &s->ops[id - 1];
    if (op->state != SIM_PENDING)
        return;
    /* Give up: a write that reached a leader may still commit. */
    op->state = op->write && op->node >= 0 ? SIM_UNKNOWN : SIM_FAIL;
    op->done_ms = s->now_ms;
    struct sim_ev e = {.time_ms = s->now_ms + 1, .kind = SIM_EV_THINK, .a = id};
    sim_push(s, &e);
}

/* --- faults ----------------------------------------------------------------
 */

static void partition(struct sim *s)
{
    struct cn_prng *p = &s->fault_prng;
    unsigned n = s->n_nodes;
    unsigned x = (unsigned)cn_prng_below(p, n);
    unsigned y = (unsigned)cn_prng_below(p, n);
    int l = sim_leader(s);
    if (l >= 0 && cn_prng_chance(p, 1, 2))
        x = (unsigned)l;
    switch (cn_prng_below(p, 4)) {
    case 0: /* isolate x */
        for (unsigned k = 0; k < n; k++)
            s->blocked[x][k] = s->blocked[k][x] = 1;
        sim_trace(s, "fault: isolate %u", x + 1);
        break;
    case 1: /* split in two */
        for (unsigned a = 0; a < n; a++)
            for (unsigned b = 0; b < n; b++)
                s->blocked[a][b] = 0;
        {
            uint64_t side = cn_prng_next(p);
            for (unsigned a = 0; a < n; a++)
                for (unsigned b = 0; b < n; b++)
                    if (((side >> a) & 1) != ((side >> b) & 1))
                        s->blocked[a][b] = 1;
        }
        sim_trace(s, "fault: split");
        break;
    case 2: /* one way */
        if (x != y)
            s->blocked[x][y] = 1;
        sim_trace(s, "fault: block %u->%u", x + 1, y + 1);
        break;
    default: /* x hears nobody but can send */
        for (unsigned k = 0; k < n; k++)
            s->blocked[k][x] = 1;
        sim_trace(s, "fault: %u deaf", x + 1);
        break;
    }
}

static void crash(struct sim *s)
{
    unsigned x = (unsigned)cn_prng_below(&s->fault_prng, s->n_nodes);
    int l = sim_leader(s);
    /* Leaders are the interesting victims (Raft paper, Figure 8). */
    if (l >= 0 && cn_prng_chance(&s->fault_prng, 1, 2))
        x = (unsigned)l;
    struct sim_node *n = &s->nodes[x];
    if (!n->alive)
        return;
    sim_node_crash(s, x);
    struct sim_ev e = {.time_ms =
                           s->now_ms + cn_prng_range(&s->fault_prng, 50, 3000),
                       .kind = SIM_EV_RESTART,
                       .node = x,
                       .inc = n->inc};
    sim_push(s, &e);
}

/* Every node loses power at once: only synced writes survive anywhere. */
static void power_loss(struct sim *s)
{
    sim_trace(s, "fault: power loss");
    for (unsigned x = 0; x < s->n_nodes; x++) {
        struct sim_node *n = &s->nodes[x];
        if (!n->alive)
            continue;
        sim_node_crash(s, x);
        struct sim_ev e = {.time_ms = s->now_ms +
                                      cn_prng_range(&s->fault_prng, 50, 1000),
                           .kind = SIM_EV_RESTART,
                           .node = x,
                           .inc = n->inc};
        sim_push(s, &e);
    }
}

static void on_leader(struct sim *s, unsigned i)
{
    struct ctx *c = s->hook_ctx;
    if (!c->run.chaos || s->p.flap_pct == 0 ||
        !cn_prng_chance(&s->fault_prng, s->p.flap_pct, 100))
        return;
    struct sim_ev e = {.time_ms =
                           s->now_ms + cn_prng_range(&s->fault_prng, 1, 60),
                       .kind = EV_FLAP,
                       .node = i,
                       .inc = s->nodes[i].inc,
                       /* half the time everyone loses power, taking the
                        * followers' unsynced entries of the new term too
                        * (the Raft paper's Figure 8 needs both) */
                       .a = cn_prng_below(&s->fault_prng, 2)};
    sim_push(s, &e);
}

static void transfer(struct sim *s)
{
    int l = sim_leader(s);
    if (l < 0)
        return;
    unsigned to = (unsigned)cn_prng_below(&s->fault_prng, s->n_nodes);
    struct raft_event ev;
    struct raft_update up;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_TRANSFER;
    ev.transfer.to = to + 1;
    sim_trace(s, "admin: transfer %d -> %u", l + 1, to + 1);
    sim_step(s, (unsigned)l, &ev, &up);
}

static void member(struct sim *s, struct run *run)
{
    int l = sim_leader(s);
    if (l < 0)
        return;
    struct raft_status st;
    raft_status(s->nodes[l].r, &st);
    struct raft_event ev;
    struct raft_update up;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_CONF_CHANGE;
    for (unsigned k = 0; k < st.conf.n; k++)
        if (st.conf.servers[k].role == RAFT_LEARNER) {
            ev.conf_change.op = RAFT_CONF_PROMOTE;
            ev.conf_change.id = st.conf.servers[k].id;
        }
    struct cn_prng *p = &s->fault_prng;
    if (ev.conf_change.op == 0 && cn_prng_chance(p, 1, 2)) {
        for (unsigned k = 0; k < s->n_nodes; k++)
            if (!s->nodes[k].exists && !run->retired[k]) {
                s->nodes[k].exists = 1;
                sim_node_start(s, k);
                ev.conf_change.op = RAFT_CONF_ADD_LEARNER;
                ev.conf_change.id = k + 1;
                break;
            }
    }
    if (ev.conf_change.op == 0 && raft_conf_voters(&st.conf) > 2) {
        unsigned k = (unsigned)cn_prng_below(p, st.conf.n);
        ev.conf_change.op = RAFT_CONF_REMOVE;
        ev.conf_change.id = st.conf.servers[k].id;
    }
    if (ev.conf_change.op == 0)
        return;
    int rc = sim_step(s, (unsigned)l, &ev, &up);
    sim_trace(s, "admin: conf op=%d id=%llu at %d: %s", ev.conf_change.op,
              (unsigned long long)ev.conf_change.id, l + 1, cn_errname(rc));
    if (rc == 0 && ev.conf_change.op == RAFT_CONF_REMOVE)
        run->retired[ev.conf_change.id - 1] = 1;
}

static void fault(struct sim *s, struct run *run)
{
    const struct sim_params *p = &s->p;
    unsigned w[7] = {p->crash_weight,  p->partition_weight, p->transfer_weight,
                     p->member_weight, p->snapshot_weight,  p->heal_weight,
                     p->power_weight};
    unsigned total = 0;
    for (int k = 0; k < 7; k++)
        total += w[k];
    if (total == 0)
        return;
    unsigned r = (unsigned)cn_prng_below(&s->fault_prng, total);
    int which = 0;
    while (r >= w[which]) {
        r -= w[which];
        which++;
    }
    switch (which) {
    case 0:
        crash(s);
        break;
    case 1:
        partition(s);
        break;
    case 2:
        transfer(s);
        break;
    case 3:
        member(s, run);
        break;
    case 4:
        sim_take_snapshot(s,
                          (unsigned)cn_prng_below(&s->fault_prng, s->n_nodes));
        break;
    case 5:
        memset(s->blocked, 0, sizeof(s->blocked));
        sim_trace(s, "fault: links healed");
        break;
    default:
        power_loss(s);
        break;
    }
}

/* --- phases
 * ------------------------------------------------------------------- */

static void heal(struct sim *s, struct run *run)
{
    run->chaos = 0;
    run->heal_ms = s->now_ms;
    sim_heal(s);
    sim_trace(s, "heal: phase %u", run->phase);
    for (unsigned k = 0; k < s->n_nodes; k++)
        if (s->nodes[k].exists && !s->nodes[k].alive)
            sim_node_start(s, k);
    probe_start(s);
    struct sim_ev e = {.time_ms = s->now_ms + s->p.liveness_ms,
                       .kind = SIM_EV_LIVENESS,
                       .a = s->liveness_op};
    sim_push(s, &e);
}

static void chaos_start(struct sim *s, struct run *run,
                        const struct sim_params *orig)
{
    if (run->phase >= s->p.phases) {
        run->done = 1;
        return;
    }
    run->phase++;
    run->chaos = 1;
    run->chaos_end_ms = s->now_ms + s->p.chaos_ms;
    s->p.loss_pct10 = orig->loss_pct10;
    s->p.dup_pct10 = orig->dup_pct10;
    s->p.corrupt_pct10 = orig->corrupt_pct10;
    struct sim_ev f = {.time_ms = s->now_ms + 1, .kind = SIM_EV_FAULT};
    sim_push(s, &f);
    struct sim_ev h = {.time_ms = run->chaos_end_ms, .kind = SIM_EV_HEAL};
    sim_push(s, &h);
}

static void hook(struct sim *s, struct sim_ev *e)
{
    struct ctx *c = s->hook_ctx;
    struct run *run = &c->run;
    switch (e->kind) {
    case SIM_EV_FAULT:
        if (!run->chaos || s->now_ms >= run->chaos_end_ms)
            break;
        fault(s, run);
        {
            struct sim_ev f = {.time_ms = s->now_ms +
                                          cn_prng_range(&s->fault_prng, 1,
                                                        2 * s->p.fault_gap_ms),
                               .kind = SIM_EV_FAULT};
            sim_push(s, &f);
        }
        break;
    case SIM_EV_RESTART:
        if (!s->nodes[e->node].alive && s->nodes[e->node].inc == e->inc &&
            run->chaos)
            sim_node_start(s, e->node);
        break;
    case SIM_EV_THINK:
        if (e->a != 0)
            on_op_done(s, run, e->a);
        else if (!run->done)
            client_next(s, (int)e->b - 1);
        break;
    case EV_TIMEOUT:
        on_timeout(s, e->a);
        break;
    case EV_FLAP:
        if (run->chaos && s->nodes[e->node].alive &&
            s->nodes[e->node].inc == e->inc) {
            if (e->a) {
                power_loss(s);
                break;
            }
            sim_trace(s, "fault: crash fresh leader %u", e->node + 1);
            sim_node_crash(s, e->node);
            struct sim_ev r = {
                .time_ms = s->now_ms + cn_prng_range(&s->fault_prng, 50, 1500),
                .kind = SIM_EV_RESTART,
                .node = e->node,
                .inc = s->nodes[e->node].inc};
            sim_push(s, &r);
        }
        break;
    case SIM_EV_HEAL:
        heal(s, run);
        break;
    case EV_CHAOS:
        chaos_start(s, run, &c->orig);
        break;
    case SIM_EV_LIVENESS:
        if (e->a == s->liveness_op && s->ops[e->a - 1].state != SIM_OK)
            sim_fail(s,
                     "liveness: no write committed within %u ms of "
                     "healing (phase %u)",
                     s->p.liveness_ms, run->phase);
        break;
    }
}

/* After the last phase every live member catches up with the probe write:
 * each must keep applying (no stall longer than liveness_ms) until it has
 * it, however slow the configured pipeline makes the catch-up. */
static void final_check(struct sim *s)
{
    raft_index want = s->ops[s->liveness_op - 1].idx;
    raft_index seen[SIM_NODES_MAX];
    uint64_t moved[SIM_NODES_MAX];
    uint64_t led_ms = s->now_ms; /* last time a leader existed */
    for (unsigned i = 0; i < s->n_nodes; i++) {
        seen[i] = s->nodes[i].sm.applied;
        moved[i] = s->now_ms;
    }
    for (;;) {
        sim_run_until(s, s->now_ms + 500);
        if (s->failed)
            return;
        int l = sim_leader(s);
        if (l < 0) {
            if (s->now_ms - led_ms > s->p.liveness_ms)
                sim_fail(s,
                         "liveness: no leader for %u ms after the final "
                         "heal",
                         s->p.liveness_ms);
            continue;
        }
        led_ms = s->now_ms;
        struct raft_status st;
        raft_status(s->nodes[l].r, &st);
        int behind = 0;
        for (unsigned k = 0; k < st.conf.n; k++) {
            unsigned i = (unsigned)(st.conf.servers[k].id - 1);
            struct sim_node *n = &s->nodes[i];
            if (!n->alive || n->sm.applied >= want)
                continue;
            behind = 1;
            if (n->sm.applied > seen[i]) {
                seen[i] = n->sm.applied;
                moved[i] = s->now_ms;
            } else if (s->now_ms - moved[i] > s->p.liveness_ms) {
                sim_fail(s,
                         "liveness: node %u stuck at applied %llu < %llu "
                         "after the final heal",
                         i + 1, (unsigned long long)n->sm.applied,
                         (unsigned long long)want);
                return;
            }
        }
        if (!behind)
            return;
    }
}

static int sim_run_params(uint64_t seed, int bench, int verbose,
                          uint64_t *hash_out, double *sim_s_out,
                          uint64_t *commits_out);

/* Throughput: 3 voters, no faults, 1-2 ms links, 1 ms fsyncs, 64 clients
 * writing back to back. */
static void bench_params(struct sim_params *sp)
{
    memset(sp, 0, sizeof(*sp));
    sp->nodes = 3;
    sp->delay_min_ms = 1;
    sp->delay_max_ms = 2;
    sp->fsync_max_ms = 1;
    sp->heal_weight = 1; /* the only "fault": links healed */
    sp->fault_gap_ms = 1000;
    sp->chaos_ms = 60000;
    sp->phases = 1;
    sp->clients = 64;
    sp->think_ms = 0;
    sp->read_pct = 0;
    sp->snapshot_every = 1000;
    sp->liveness_ms = 10000;
    raft_options_default(&sp->raft);
    sp->raft.election_timeout_ms = 200;
    sp->raft.heartbeat_ms = 20;
}

int sim_bench_run(uint64_t seed, uint64_t *commits_out, double *sim_s_out)
{
    return sim_run_params(seed, 1, 0, NULL, sim_s_out, commits_out);
}

int sim_random_run(uint64_t seed, int verbose, uint64_t *hash_out,
                   double *sim_s_out, uint64_t *commits_out)
{
    return sim_run_params(seed, 0, verbose, hash_out, sim_s_out, commits_out);
}

static int sim_run_params(uint64_t seed, int bench, int verbose,
                          uint64_t *hash_out, double *sim_s_out,
                          uint64_t *commits_out)
{
    struct cn_prng p;
    cn_prng_seed(&p, seed ^ 0x5eed5eed5eed5eedull);
    struct sim_params sp;
    if (bench)
        bench_params(&sp);
    else
        make_params(&p, &sp);
    struct sim s;
    sim_init(&s, seed, &sp);
    s.verbose = verbose;
    struct ctx c;
    memset(&c, 0, sizeof(c));
    c.orig = sp;
    s.hook = hook;
    s.on_leader = on_leader;
    s.hook_ctx = &c;
    if (verbose)
        fprintf(stderr,
                "params: nodes=%u spares=%u loss=%u dup=%u corrupt=%u "
                "delay=%u-%u fsync<=%u pre_vote=%d check_quorum=%d "
                "inflight=%u batch=%u chunk=%zu snap_every=%u\n",
                sp.nodes, sp.spares, sp.loss_pct10, sp.dup_pct10,
                sp.corrupt_pct10, sp.delay_min_ms, sp.delay_max_ms,
                sp.fsync_max_ms, sp.raft.pre_vote, sp.raft.check_quorum,
                sp.raft.max_inflight, sp.raft.max_entries_per_msg,
                sp.raft.snapshot_chunk_bytes, sp.snapshot_every);
    for (unsigned i = 0; i < sp.nodes; i++)
        sim_node_start(&s, i);
    for (unsigned k = 0; k < sp.clients && k < 64; k++)
        client_next(&s, (int)k);
    chaos_start(&s, &c.run, &c.orig);
    uint64_t limit =
        (uint64_t)sp.phases * (sp.chaos_ms + sp.liveness_ms + 1000) + 1000;
    while (!s.failed && !c.run.done && s.n_heap > 0 && s.now_ms < limit)
        sim_run_until(&s, s.now_ms + 1000);
    if (!s.failed && !c.run.done)
        sim_fail(&s, "run did not finish its phases by %llu ms",
                 (unsigned long long)limit);
    if (!s.failed)
        final_check(&s);
    int rc = s.failed;
    if (rc)
        fprintf(stderr, "FAIL seed=%llu: %s\n", (unsigned long long)seed,
                s.why);
    if (verbose || rc)
        fprintf(stderr,
                "seed=%llu nodes=%u sim=%.1fs steps=%llu msgs=%llu "
                "commits=%llu writes=%llu reads=%llu elections=%llu "
                "crashes=%llu snapshots_sent=%llu max_heal_ms=%llu\n",
                (unsigned long long)seed, sp.nodes, s.now_ms / 1000.0,
                (unsigned long long)s.n_steps, (unsigned long long)s.n_msgs,
                (unsigned long long)s.n_commits,
                (unsigned long long)s.n_acked_writes,
                (unsigned long long)s.n_reads_ok,
                (unsigned long long)s.n_elections,
                (unsigned long long)s.n_crashes,
                (unsigned long long)s.n_snapshots_sent,
                (unsigned long long)s.max_liveness_ms);
    if (hash_out)
        *hash_out = s.trace_hash ^ sim_logs_hash(&s);
    if (sim_s_out)
        *sim_s_out = s.now_ms / 1000.0;
    if (commits_out)
        *commits_out = s.n_commits;
    sim_close(&s);
    return rc;
}
