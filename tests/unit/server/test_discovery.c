/*
 * Unit tests for the discovery client. The protocol tests run against a
 * real etcd 3.4 (/usr/bin/etcd --enable-v2, started here on free loopback
 * ports in a temp dir and stopped by pid): a discovery service is just a
 * v2 key space. Members that must wait for each other run in forked
 * children. Includes discovery.c to test its HTTP and JSON helpers too.
 */
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "server/discovery.c"
#include "tap.h"

#define ETCD_BIN "/usr/bin/etcd"

struct etcd {
    pid_t pid;
    char dir[64];
    unsigned client_port;
    char url[64]; /* http://127.0.0.1:port */
};

static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        close(fd);
        return 0;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

/* A raw request through the module's own client (no retries). */
static int raw(const char *base, const char *method, const char *target,
               const char *form, struct resp *r)
{
    struct disc d;
    memset(&d, 0, sizeof(d));
    d.cfg.timeout_ms = 3000;
    char path[16];
    if (split_url(base, &d.server, path, sizeof(path)) != CN_OK)
        return CN_EINVAL;
    const char *why;
    return http_do(&d, method, target, form, 3000, r, &why);
}

static void etcd_stop(struct etcd *e)
{
    if (e->pid > 0) {
        kill(e->pid, SIGTERM);
        waitpid(e->pid, NULL, 0);
        e->pid = 0;
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
    CHECK_EQ(system(cmd), 0);
}

/* The last lines of a log, as diagnostics (the file goes with its test). */
static void print_tail(const char *path)
{
    char buf[2048];
    size_t n = 0;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fseek(f, -(long)(sizeof(buf) - 1), SEEK_END) != 0)
            rewind(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        tap_diag("%s", line);
}

static void etcd_start(struct etcd *e)
{
    tap_tmpdir(e->dir, sizeof(e->dir), "cairn-disc");
    e->client_port = free_port();
    unsigned peer_port = free_port();
    REQUIRE(e->client_port != 0 && peer_port != 0);
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%u", e->client_port);
    char data[128], curl[64], purl[64], ic[96], log[128];
    snprintf(data, sizeof(data), "%s/data", e->dir);
    snprintf(curl, sizeof(curl), "http://127.0.0.1:%u", e->client_port);
    snprintf(purl, sizeof(purl), "http://127.0.0.1:%u", peer_port);
    snprintf(ic, sizeof(ic), "disc=%s", purl);
    snprintf(log, sizeof(log), "%s/etcd.log", e->dir);
    e->pid = fork();
    REQUIRE(e->pid >= 0);
    if (e->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(ETCD_BIN, ETCD_BIN, "--enable-v2", "--name", "disc", "--data-dir",
              data, "--listen-client-urls", curl, "--advertise-client-urls",
              curl, "--listen-peer-urls", purl, "--initial-advertise-peer-urls",
              purl, "--initial-cluster", ic, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        struct resp r;
        if (raw(e->url, "GET", "/version", NULL, &r) == CN_OK) {
            int ok = r.status == 200;
            resp_close(&r);
            if (ok)
                return;
        }
        usleep(50000);
    }
    tap_fail(__FILE__, __LINE__, "etcd did not start; the end of %s:", log);
    print_tail(log);
    etcd_stop(e);
    tap_abort_test();
}

/* Creates a token with size (size < 0: no size key). Returns the
 * discovery URL in out. */
static void new_token(struct etcd *e, const char *token, int size, char *out,
                      size_t n)
{
    snprintf(out, n, "%s/v2/keys/_etcd/registry/%s", e->url, token);
    char target[256], form[32];
    struct resp r;
    if (size >= 0) {
        snprintf(target, sizeof(target),
                 "/v2/keys/_etcd/registry/%s/_config/size", token);
        snprintf(form, sizeof(form), "value=%d", size);
    } else {
        snprintf(target, sizeof(target), "/v2/keys/_etcd/registry/%s/x", token);
        snprintf(form, sizeof(form), "value=1");
    }
    REQUIRE_EQ(raw(e->url, "PUT", target, form, &r), CN_OK);
    CHECK_EQ(r.status, 201);
    resp_close(&r);
}

struct member {
    char name[32];
    struct cn_url_list peers;
    uint64_t id;
};

static void member_init(struct member *m, const char *name, unsigned port)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    char u[64], e[CN_ERRMSG_SIZE];
    snprintf(u, sizeof(u), "http://127.0.0.1:%u", port);
    REQUIRE_EQ(config_url_parse(u, &m->peers.urls[0], e), CN_OK);
    m->peers.count = 1;
    REQUIRE_EQ(server_member_id_of_urls(&m->peers, "tok", &m->id), CN_OK);
}

static struct server_discovery_config dcfg(const char *url,
                                           const struct member *m)
{
    struct server_discovery_config c;
    memset(&c, 0, sizeof(c));
    c.url = url;
    c.name = m->name;
    c.peer_urls = &m->peers;
    c.member_id = m->id;
    c.backoff_ms = 20;
    c.backoff_max_ms = 100;
    c.retries_max = 3;
    c.timeout_ms = 2000;
    c.wait_timeout_ms = 15000;
    return c;
}

struct child {
    pid_t pid;
    int fd; /* read end: "rc|initial-cluster" */
};

static struct child join_in_child(const char *url, const struct member *m)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    struct child c = {fork(), p[0]};
    REQUIRE(c.pid >= 0);
    if (c.pid == 0) {
        close(p[0]);
        struct server_discovery_config cfg = dcfg(url, m);
        static struct server_discovery_result res;
        char err[CN_ERRMSG_SIZE] = "";
        int rc = server_discovery_join(&cfg, &res, err);
        char out[sizeof(res.initial_cluster) + 300];
        int n = snprintf(out, sizeof(out), "%d|%s", rc,
                         rc == CN_OK ? res.initial_cluster : err);
        if (write(p[1], out, (size_t)n) != n)
            _exit(2);
        _exit(0);
    }
    close(p[1]);
    return c;
}

static void child_result(struct child *c, char *out, size_t n)
{
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(c->fd, out + got, n - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(c->fd);
    int st;
    waitpid(c->pid, &st, 0);
}

TEST(discovery_three_members_agree_fourth_is_full)
{
    struct etcd e = {0};
    etcd_start(&e);
    char url[256];
    new_token(&e, "t3", 3, url, sizeof(url));
    struct member m[4];
    member_init(&m[0], "m0", 40001);
    member_init(&m[1], "m1", 40002);
    member_init(&m[2], "m2", 40003);
    member_init(&m[3], "m3", 40004);
    struct child c0 = join_in_child(url, &m[0]);
    struct child c1 = join_in_child(url, &m[1]);
    usleep(200000); /* m0, m1 wait for the third */
    struct server_discovery_config cfg = dcfg(url, &m[2]);
    static struct server_discovery_result res;
    char err[CN_ERRMSG_SIZE] = "";
    int rc = server_discovery_join(&cfg, &res, err);
    if (rc != CN_OK)
        tap_diag("join: %s", err);
    REQUIRE_EQ(rc, CN_OK);
    static char r0[sizeof(res.initial_cluster) + 8], r1[sizeof(r0)],
        mine[sizeof(r0)];
    child_result(&c0, r0, sizeof(r0));
    child_result(&c1, r1, sizeof(r1));
    snprintf(mine, sizeof(mine), "0|%s", res.initial_cluster);
    CHECK_STR(r0, mine);
    CHECK_STR(r1, mine);
    CHECK_EQ(res.count, 3);
    CHECK_EQ(res.size, 3);
    /* every member appears once with its URL */
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof(want), "m%d=http://127.0.0.1:4000%d", i, i + 1);
        CHECK(strstr(res.initial_cluster, want) != NULL);
    }
    /* the last to come registered last */
    CHECK_STR(res.members[2].name, "m2");
    /* a fourth member finds the cluster full, without registering */
    cfg = dcfg(url, &m[3]);
    rc = server_discovery_join(&cfg, &res, err);
    CHECK_EQ(rc, CN_EBUSY);
    CHECK_STR(err, "discovery: cluster is full");
    char target[256];
    char hex[SERVER_ID_HEX_SIZE];
    snprintf(target, sizeof(target), "/v2/keys/_etcd/registry/t3/%s",
             server_id_format(m[3].id, hex));
    struct resp r;
    REQUIRE_EQ(raw(e.url, "GET", target, NULL, &r), CN_OK);
    CHECK_EQ(r.status, 404);
    resp_close(&r);
    /* a member of the three restarting before bootstrap: 412, goes on */
    cfg = dcfg(url, &m[1]);
    rc = server_discovery_join(&cfg, &res, err);
    CHECK_EQ(rc, CN_OK);
    snprintf(mine, sizeof(mine), "0|%s", res.initial_cluster);
    CHECK_STR(r0, mine);
    etcd_stop(&e);
}

TEST(discovery_missing_size_key_and_bad_size)
{
    struct etcd e = {0};
    etcd_start(&e);
    struct member m;
    member_init(&m, "solo", 40010);
    char url[256], err[CN_ERRMSG_SIZE];
    static struct server_discovery_result res;
    snprintf(url, sizeof(url), "%s/v2/keys/_etcd/registry/nothing", e.url);
    struct server_discovery_config cfg = dcfg(url, &m);
    CHECK_EQ(server_discovery_join(&cfg, &res, err), CN_ENOTFOUND);
    CHECK_STR(err, "discovery: size key not found");
    /* token dir without a size */
    new_token(&e, "nosize", -1, url, sizeof(url));
    cfg = dcfg(url, &m);
    CHECK_EQ(server_discovery_join(&cfg, &res, err), CN_ENOTFOUND);
    CHECK_STR(err, "discovery: size key not found");
    /* size that is not a number */
    struct resp r;
    REQUIRE_EQ(raw(e.url, "PUT", "/v2/keys/_etcd/registry/bad/_config/size",
                   "value=three", &r),
               CN_OK);
    resp_close(&r);
    snprintf(url, sizeof(url), "%s/v2/keys/_etcd/registry/bad", e.url);
    cfg = dcfg(url, &m);
    CHECK_EQ(server_discovery_join(&cfg, &res, err), CN_ECORRUPT);
    CHECK_STR(err, "discovery: size key is bad");
    /* a size-1 cluster forms at once */
    new_token(&e, "one", 1, url, sizeof(url));
    cfg = dcfg(url, &m);
    REQUIRE_EQ(server_discovery_join(&cfg, &res, err), CN_OK);
    CHECK_STR(res.initial_cluster, "solo=http://127.0.0.1:40010");
    CHECK_EQ(res.count, 1);
    CHECK_EQ(res.members[0].url.port, 40010);
    etcd_stop(&e);
}

TEST(discovery_server_down_bounded_retries)
{
    unsigned port = free_port();
    char url[128], err[CN_ERRMSG_SIZE];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/v2/keys/_etcd/registry/x",
             port);
    struct member m;
    member_init(&m, "solo", 40020);
    struct server_discovery_config cfg = dcfg(url, &m);
    static struct server_discovery_result res;
    int64_t t0 = now_ms();
    CHECK_EQ(server_discovery_join(&cfg, &res, err), CN_ETIMEDOUT);
    int64_t took = now_ms() - t0;
    CHECK(strncmp(err, "discovery: too many retries", 27) == 0);
    /* 3 retries: 20 + 40 + 80 ms of back-off */
    CHECK(took >= 140);
    CHECK(took < 3000);
}

TEST(discovery_rejects_bad_urls)
{
    struct member m;
    member_init(&m, "solo", 40030);
    char err[CN_ERRMSG_SIZE];
    static struct server_discovery_result res;
    const char *bad[] = {"https://discovery.etcd.io/abc", "ftp://x/y",
                         "http://", "http://127.0.0.1:1", "http://h:p/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct server_discovery_config cfg = dcfg(bad[i], &m);
        CHECK_EQ(server_discovery_join(&cfg, &res, err), CN_EINVAL);
    }
}

TEST(discovery_json_and_http_helpers)
{
    static struct json j;
    const char *s = "{\"action\":\"get\",\"node\":{\"key\":\"/a\",\"dir\":true,"
                    "\"nodes\":[{\"key\":\"/a/x\",\"value\":\"n=http:\\/\\/h"
                    ":1\\u0026\",\"createdIndex\":7},{\"key\":\"/a/y\","
                    "\"nodes\":[]}],\"createdIndex\":3}}";
    REQUIRE_EQ(json_parse(&j, s, strlen(s)), CN_OK);
    int node = j_get(&j, 0, "node");
    REQUIRE(node > 0);
    CHECK_EQ(j_u64(&j, j_get(&j, node, "createdIndex")), 3);
    int nodes = j_get(&j, node, "nodes");
    REQUIRE(nodes > 0);
    CHECK_EQ(j.t[nodes].size, 2);
    struct reg g;
    REQUIRE_EQ(read_reg(&j, nodes + 1, &g), CN_OK);
    CHECK_STR(g.key, "x");
    CHECK_STR(g.value, "n=http://h:1&");
    CHECK_EQ(g.created, 7);
    CHECK_EQ(json_parse(&j, "{\"a\":", 5), CN_ECORRUPT);
    CHECK_EQ(json_parse(&j, "{} x", 4), CN_ECORRUPT);
    CHECK_EQ(json_parse(&j, "<html>", 6), CN_ECORRUPT);
    /* chunked bodies */
    struct cn_buf out = {0};
    const char *ch = "5\r\nhello\r\n3\r\n ok\r\n0\r\n\r\n";
    REQUIRE_EQ(dechunk(ch, strlen(ch), &out), CN_OK);
    CHECK_STR(out.data, "hello ok");
    cn_buf_close(&out);
    CHECK_EQ(dechunk("5\r\nhel", 6, &out), CN_EIO);
    cn_buf_close(&out);
    /* URLs */
    struct endpoint ep;
    char path[64];
    REQUIRE_EQ(
        split_url("http://[::1]:2379/v2/keys/a/", &ep, path, sizeof(path)),
        CN_OK);
    CHECK_STR(ep.host, "::1");
    CHECK_STR(ep.port, "2379");
    CHECK_STR(path, "/v2/keys/a");
    REQUIRE_EQ(split_url("http://example.com/t", &ep, path, sizeof(path)),
               CN_OK);
    CHECK_STR(ep.port, "80");
}
