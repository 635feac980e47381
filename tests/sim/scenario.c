/*
 * scenario: scripted cluster tests with the expected trace underneath, in
 * the style of etcd-io/raft's testdata files. A file is a list of blocks
 * separated by blank lines:
 *
 *   # comments
 *   command args
 *   ----
 *   expected output lines
 *
 * Running a file executes every command on one simulated cluster (zero
 * network delay and fsync latency unless set, so `stabilize` delivers
 * everything at the current instant) and compares the output. --rewrite
 * writes the actual output back; review the diff. The safety checker of
 * sim.c runs throughout and prints "VIOLATION: ..." lines.
 *
 * Commands:
 *   nodes N [prevote=0|1] [checkquorum=0|1] [batch=N] [inflight=N]
 *         [chunk=N] [trailing=N] [spares=N] [seed=N]   create the cluster
 *   campaign X          node X starts an election now
 *   stabilize           run everything due at the current instant
 *   advance MS          let MS of simulated time pass (ticks included)
 *   propose X KEY       a client write at X
 *   read X KEY          a client ReadIndex read at X
 *   transfer X Y        X hands leadership to Y
 *   conf X OP Y         OP: add-learner | promote | remove (Y started first
 *                       when added)
 *   snapshot X          X snapshots its applied state
 *   partition A.. | B.. | ...   only nodes of the same group talk
 *   isolate X   block X Y (one way)   heal
 *   crash X     restart X   (a crash loses every unsynced write)
 *   fsync X MS          X's fsyncs take MS (0 default)
 *   trace heartbeats=on|off
 *   status              one line per node
 *   log X               X's log as index@term:type
 */
#include "sim.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SC_ARGS_MAX 32

struct sc {
    struct sim s;
    int have_cluster;
    int heartbeats;
    char *out; /* output of the current command */
    size_t out_len;
    FILE *f;
    unsigned violations; /* checker reports in this file */
};

static void sc_line(struct sc *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sc_line(struct sc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->f, fmt, ap);
    va_end(ap);
    fputc('\n', c->f);
}

static int node_arg(struct sc *c, const char *a, unsigned *out)
{
    long v = strtol(a, NULL, 10);
    if (v < 1 || (unsigned long)v > c->s.n_nodes) {
        sc_line(c, "error: no node %s", a);
        return -1;
    }
    *out = (unsigned)(v - 1);
    return 0;
}

static const char *opt_val(int argc, char **argv, const char *key)
{
    size_t n = strlen(key);
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], key, n) && argv[i][n] == '=')
            return argv[i] + n + 1;
    return NULL;
}

static unsigned opt_u(int argc, char **argv, const char *key, unsigned def)
{
    const char *v = opt_val(argc, argv, key);
    return v ? (unsigned)strtoul(v, NULL, 10) : def;
}

static void cmd_nodes(struct sc *c, int argc, char **argv)
{
    if (c->have_cluster)
        sim_close(&c->s);
    struct sim_params p;
    memset(&p, 0, sizeof(p));
    p.nodes = argc > 1 ? (unsigned)atoi(argv[1]) : 3;
    p.spares = opt_u(argc, argv, "spares", 0);
    if (p.nodes < 1 || p.nodes + p.spares > SIM_NODES_MAX) {
        sc_line(c, "error: bad node count");
        return;
    }
    raft_options_default(&p.raft);
    p.raft.election_timeout_ms = 200;
    p.raft.heartbeat_ms = 20;
    p.raft.pre_vote = (int)opt_u(argc, argv, "prevote", 1);
    p.raft.check_quorum = (int)opt_u(argc, argv, "checkquorum", 1);
    p.raft.max_entries_per_msg = opt_u(argc, argv, "batch", 64);
    p.raft.max_inflight = opt_u(argc, argv, "inflight", 64);
    p.raft.snapshot_chunk_bytes = opt_u(argc, argv, "chunk", 4096);
    p.raft.snapshot_trailing = opt_u(argc, argv, "trailing", 128);
    p.liveness_ms = 10000;
    sim_init(&c->s, opt_u(argc, argv, "seed", 1), &p);
    c->s.trace = c->f;
    c->s.auto_persist = 1;
    c->s.crash_keeps_none = 1;
    c->s.trace_heartbeats = c->heartbeats;
    c->have_cluster = 1;
    for (unsigned i = 0; i < p.nodes; i++)
        sim_node_start(&c->s, i);
}

static void cmd_partition(struct sc *c, int argc, char **argv)
{
    int group[SIM_NODES_MAX];
    for (unsigned i = 0; i < SIM_NODES_MAX; i++)
        group[i] = -1;
    int g = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "|")) {
            g++;
            continue;
        }
        unsigned x;
        if (node_arg(c, argv[i], &x) != 0)
            return;
        group[x] = g;
    }
    for (unsigned a = 0; a < c->s.n_nodes; a++)
        for (unsigned b = 0; b < c->s.n_nodes; b++)
            c->s.blocked[a][b] = group[a] != group[b];
}

static void cmd_status(struct sc *c)
{
    for (unsigned i = 0; i < c->s.n_nodes; i++) {
        struct sim_node *n = &c->s.nodes[i];
        if (!n->alive) {
            sc_line(c, "%u: %s", i + 1, n->exists ? "down" : "absent");
            continue;
        }
        struct raft_status st;
        raft_status(n->r, &st);
        char conf[128];
        size_t o = 0;
        conf[0] = 0;
        for (unsigned k = 0; k < st.conf.n && o < sizeof(conf) - 24; k++)
            o += (size_t)snprintf(
                conf + o, sizeof(conf) - o, "%s%llu%s", k ? " " : "",
                (unsigned long long)st.conf.servers[k].id,
                st.conf.servers[k].role == RAFT_LEARNER ? "L" : "");
        sc_line(c,
                "%u: %s term=%llu leader=%llu commit=%llu applied=%llu "
                "last=%llu snap=%llu conf=[%s]",
                i + 1, raft_role_name(st.role), (unsigned long long)st.term,
                (unsigned long long)st.leader, (unsigned long long)st.commit,
                (unsigned long long)n->sm.applied,
                (unsigned long long)st.last_index,
                (unsigned long long)st.snapshot_index, conf);
    }
}

static void cmd_log(struct sc *c, unsigned x)
{
    struct sim_node *n = &c->s.nodes[x];
    if (!n->alive) {
        sc_line(c, "%u: down", x + 1);
        return;
    }
    struct raft_status st;
    raft_status(n->r, &st);
    char buf[1024];
    size_t o = 0;
    buf[0] = 0;
    for (raft_index i = st.first_index; i <= st.last_index; i++) {
        const struct raft_entry *e = raft_entry_at(n->r, i);
        const char *t = e->type == RAFT_ENTRY_NOOP     ? "noop"
                        : e->type == RAFT_ENTRY_CONFIG ? "conf"
                                                       : "cmd";
        int k =
            snprintf(buf + o, sizeof(buf) - o, "%s%llu@%llu:%s", o ? " " : "",
                     (unsigned long long)i, (unsigned long long)e->term, t);
        if (k < 0 || (size_t)k >= sizeof(buf) - o)
            break;
        o += (size_t)k;
    }
    sc_line(c, "%u: snap=%llu [%s]", x + 1,
            (unsigned long long)st.snapshot_index, buf);
}

static void client(struct sc *c, int write, unsigned x, const char *key)
{
    uint32_t k = (uint32_t)strtoul(key, NULL, 10) % SIM_KEYS;
    uint64_t id = sim_new_op(&c->s, write, k, -1);
    struct raft_update up;
    int rc = sim_client_now(&c->s, id, x, &up);
    if (rc == 0 && write)
        sc_line(c, "op %llu: proposed at %u index=%llu term=%llu",
                (unsigned long long)id, x + 1,
                (unsigned long long)up.proposed_index,
                (unsigned long long)up.proposed_term);
    else if (rc == 0)
        sc_line(c, "op %llu: read queued at %u", (unsigned long long)id, x + 1);
    else
        sc_line(c, "op %llu: refused by %u: %s leader=%llu",
                (unsigned long long)id, x + 1,
                rc == 1 ? "down" : cn_errname(rc),
                (unsigned long long)up.leader);
}

static void step_simple(struct sc *c, unsigned x, struct raft_event *ev,
                        const char *what)
{
    if (!c->s.nodes[x].alive) {
        sc_line(c, "%s: node %u down", what, x + 1);
        return;
    }
    struct raft_update up;
    int rc = sim_step(&c->s, x, ev, &up);
    if (rc != 0)
        sc_line(c, "%s: %s", what, cn_errname(rc));
}

static int conf_op(const char *s)
{
    if (!strcmp(s, "add-learner"))
        return RAFT_CONF_ADD_LEARNER;
    if (!strcmp(s, "promote"))
        return RAFT_CONF_PROMOTE;
    if (!strcmp(s, "remove"))
        return RAFT_CONF_REMOVE;
    return 0;
}

static void cmd_conf(struct sc *c, int argc, char **argv)
{
    unsigned x, y;
    int op = argc > 3 ? conf_op(argv[2]) : 0;
    if (op == 0 || node_arg(c, argv[1], &x) || node_arg(c, argv[3], &y)) {
        sc_line(c, "usage: conf X add-learner|promote|remove Y");
        return;
    }
    if (op == RAFT_CONF_ADD_LEARNER && !c->s.nodes[y].exists) {
        c->s.nodes[y].exists = 1;
        sim_node_start(&c->s, y);
    }
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_CONF_CHANGE;
    ev.conf_change.op = (uint8_t)op;
    ev.conf_change.id = y + 1;
    step_simple(c, x, &ev, "conf");
}

/* Runs one command line; output goes to c->f. */
static void run_cmd(struct sc *c, char *line)
{
    char *argv[SC_ARGS_MAX];
    int argc = 0;
    for (char *t = strtok(line, " \t"); t && argc < SC_ARGS_MAX;
         t = strtok(NULL, " \t"))
        argv[argc++] = t;
    if (argc == 0)
        return;
    const char *cmd = argv[0];
    if (!strcmp(cmd, "nodes")) {
        cmd_nodes(c, argc, argv);
        return;
    }
    if (!strcmp(cmd, "trace")) {
        const char *v = opt_val(argc, argv, "heartbeats");
        c->heartbeats = v && !strcmp(v, "on");
        c->s.trace_heartbeats = c->heartbeats;
        return;
    }
    if (!c->have_cluster) {
        sc_line(c, "error: no cluster (use nodes N)");
        return;
    }
    struct sim *s = &c->s;
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    unsigned x = 0, y = 0;
    static const char *with_node[] = {
        "campaign", "propose", "read",    "transfer", "snapshot", "isolate",
        "block",    "crash",   "restart", "fsync",    "log"};
    int one = 0;
    for (size_t k = 0; k < sizeof(with_node) / sizeof(with_node[0]); k++)
        if (!strcmp(cmd, with_node[k]))
            one = argc > 1 && node_arg(c, argv[1], &x) == 0;
    if (!strcmp(cmd, "stabilize")) {
        sim_run_until(s, s->now_ms);
    } else if (!strcmp(cmd, "advance") && argc > 1) {
        sim_run_until(s, s->now_ms + strtoull(argv[1], NULL, 10));
    } else if (!strcmp(cmd, "campaign") && one) {
        ev.type = RAFT_EVENT_CAMPAIGN;
        step_simple(c, x, &ev, "campaign");
    } else if (!strcmp(cmd, "propose") && one && argc > 2) {
        client(c, 1, x, argv[2]);
    } else if (!strcmp(cmd, "read") && one && argc > 2) {
        client(c, 0, x, argv[2]);
    } else if (!strcmp(cmd, "transfer") && one && argc > 2 &&
               node_arg(c, argv[2], &y) == 0) {
        ev.type = RAFT_EVENT_TRANSFER;
        ev.transfer.to = y + 1;
        step_simple(c, x, &ev, "transfer");
    } else if (!strcmp(cmd, "conf")) {
        cmd_conf(c, argc, argv);
    } else if (!strcmp(cmd, "snapshot") && one) {
        sim_take_snapshot(s, x);
    } else if (!strcmp(cmd, "partition")) {
        cmd_partition(c, argc, argv);
    } else if (!strcmp(cmd, "isolate") && one) {
        for (unsigned k = 0; k < s->n_nodes; k++)
            s->blocked[x][k] = s->blocked[k][x] = k != x;
    } else if (!strcmp(cmd, "block") && one && argc > 2 &&
               node_arg(c, argv[2], &y) == 0) {
        s->blocked[x][y] = 1;
    } else if (!strcmp(cmd, "heal")) {
        sim_heal(s);
    } else if (!strcmp(cmd, "crash") && one) {
        sim_node_crash(s, x);
    } else if (!strcmp(cmd, "restart") && one) {
        if (!s->nodes[x].alive && s->nodes[x].exists)
            sim_node_start(s, x);
    } else if (!strcmp(cmd, "fsync") && one && argc > 2) {
        s->fsync_ms[x] = (int)strtol(argv[2], NULL, 10);
    } else if (!strcmp(cmd, "status")) {
        cmd_status(c);
    } else if (!strcmp(cmd, "log") && one) {
        cmd_log(c, x);
    } else {
        sc_line(c, "error: unknown or malformed command");
    }
    if (s->failed) {
        c->violations++;
        sc_line(c, "VIOLATION: %s", s->why);
        s->failed = 0; /* report each once, keep going */
    }
}

/* --- file handling ------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct cn_buf b;
    cn_buf_init(&b);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        CN_ASSERT(cn_buf_append(&b, tmp, n) == 0);
    fclose(f);
    *len = b.len;
    if (b.data == NULL)
        CN_ASSERT(cn_buf_append(&b, "", 0) == 0);
    return b.data;
}

int sim_scenario_file(const char *path, int rewrite, unsigned *violations)
{
    size_t len = 0;
    char *text = slurp(path, &len);
    if (text == NULL) {
        perror(path);
        return 1;
    }
    struct sc c;
    memset(&c, 0, sizeof(c));
    struct cn_buf out;
    cn_buf_init(&out);
    int mismatch = 0;
    char *p = text;
    while (*p) {
        /* Copy blank lines and comments through. */
        char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll == 0 || p[0] == '#') {
            CN_ASSERT(cn_buf_append(&out, p, ll) == 0);
            CN_ASSERT(cn_buf_append_char(&out, '\n') == 0);
            p += ll + (eol ? 1 : 0);
            continue;
        }
        /* A command, then optionally ---- and expected lines up to a blank
         * line. */
        char cmdline[512];
        snprintf(cmdline, sizeof(cmdline), "%.*s", (int)ll, p);
        CN_ASSERT(cn_buf_append(&out, p, ll) == 0);
        CN_ASSERT(cn_buf_append_cstr(&out, "\n----\n") == 0);
        p += ll + (eol ? 1 : 0);
        const char *exp = "";
        size_t exp_len = 0;
        if (!strncmp(p, "----\n", 5)) {
            p += 5;
            exp = p;
            while (*p && *p != '\n') {
                char *e2 = strchr(p, '\n');
                p = e2 ? e2 + 1 : p + strlen(p);
            }
            exp_len = (size_t)(p - exp);
        }
        char *got = NULL;
        size_t got_len = 0;
        c.f = open_memstream(&got, &got_len);
        c.s.trace = c.have_cluster ? c.f : NULL;
        run_cmd(&c, cmdline);
        fclose(c.f);
        if (c.have_cluster)
            c.s.trace = NULL;
        if (got_len != exp_len || memcmp(got, exp, got_len) != 0) {
            if (!mismatch && !rewrite)
                fprintf(stderr,
                        "%s: output of '%s' differs\n--- expected\n%.*s"
                        "--- got\n%s",
                        path, cmdline, (int)exp_len, exp, got);
            mismatch = 1;
        }
        CN_ASSERT(cn_buf_append(&out, got, got_len) == 0);
        free(got);
    }
    if (c.have_cluster)
        sim_close(&c.s);
    if (violations)
        *violations += c.violations;
    int rc = 0;
    if (rewrite && mismatch) {
        FILE *f = fopen(path, "wb");
        if (f == NULL || fwrite(out.data, 1, out.len, f) != out.len) {
            perror(path);
            rc = 1;
        }
        if (f)
            fclose(f);
        printf("rewrote %s\n", path);
    } else if (mismatch) {
        printf("FAIL %s (rerun with --rewrite and review the diff)\n", path);
        rc = 1;
    } else {
        printf("ok %s\n", path);
    }
    cn_buf_close(&out);
    cn_free(text);
    return rc;
}
