/* Unit tests for src/cli/cli_elect.c through its public header only (what
 * the fleet engine sees): the requests each transition sends, how etcd's
 * answers (100, 101, 105) move the state, and the step-down rules. The
 * peer is a scripted HTTP responder in a child process (one canned answer
 * per connection) that reports every request it got through a pipe; an
 * unreachable endpoint stands for a store that cannot be reached. */
#include "cli/cli_elect.h"
#include "tap.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct peer {
    pid_t pid;
    int port;
    int report_fd;    /* read end: "<request line>\n<body>\n" per request */
    char seen[16384]; /* what the peer reported, after peer_stop */
};

/* Reads one request (head and Content-Length body) from fd into buf. */
static size_t read_request(int fd, char *buf, size_t size, const char **body)
{
    size_t n = 0;
    char *end = NULL;
    while (n + 1 < size && end == NULL) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (end == NULL)
        return 0;
    *body = end + 4;
    const char *cl = strcasestr(buf, "Content-Length:");
    size_t want = cl && cl < end ? (size_t)atol(cl + 15) : 0;
    while ((size_t)(buf + n - *body) < want && n + 1 < size) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
    }
    return n;
}

static void serve(int lfd, int report, const char *const *answers)
{
    for (size_t i = 0; answers[i] != NULL; i++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            _exit(1);
        char buf[8192];
        const char *body = "";
        if (read_request(fd, buf, sizeof(buf), &body) == 0)
            _exit(1);
        char line[8300];
        int len = snprintf(line, sizeof(line), "%.*s\n%s\n",
                           (int)strcspn(buf, "\r"), buf, body);
        if (write(report, line, (size_t)len) != len)
            _exit(1);
        /* answers[i] is "<status line>|<json body>" */
        const char *bar = strchr(answers[i], '|');
        char out[4096];
        len = snprintf(out, sizeof(out),
                       "%.*s\r\nContent-Type: application/json\r\n"
                       "X-Etcd-Index: 9\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n%s",
                       (int)(bar - answers[i]), answers[i], strlen(bar + 1),
                       bar + 1);
        if (write(fd, out, (size_t)len) != len)
            _exit(1);
        close(fd);
    }
    _exit(0);
}

/* Starts a peer answering answers[] (NULL-terminated) in order. */
static void peer_start(struct peer *p, const char *const *answers)
{
    memset(p, 0, sizeof(*p));
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    REQUIRE_EQ(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    REQUIRE_EQ(listen(lfd, 16), 0);
    REQUIRE_EQ(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    p->port = ntohs(a.sin_port);
    int fds[2];
    REQUIRE_EQ(pipe(fds), 0);
    p->pid = fork();
    REQUIRE(p->pid >= 0);
    if (p->pid == 0) {
        close(fds[0]);
        serve(lfd, fds[1], answers);
    }
    close(fds[1]);
    close(lfd);
    p->report_fd = fds[0];
}

/* Waits for the peer to end (it ends after its last answer) and collects
 * its report. */
static void peer_stop(struct peer *p)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < sizeof(p->seen) &&
           (r = read(p->report_fd, p->seen + n, sizeof(p->seen) - 1 - n)) > 0)
        n += (size_t)r;
    p->seen[n] = '\0';
    close(p->report_fd);
    int st = 0;
    kill(p->pid, SIGTERM); /* when a test stopped before the last answer */
    waitpid(p->pid, &st, 0);
}

/* A port nothing listens on. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &alen);
    close(fd);
    return ntohs(a.sin_port);
}

static void client_on(struct cli_client *cl, int port)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    struct cli_global g = {.endpoints = url, .timeout_ms = 2000};
    REQUIRE_EQ(cli_client_init(cl, &g), CN_OK);
}

#define NODE(action, value, idx)                                               \
    "{\"action\":\"" action "\",\"node\":{\"key\":\"/e/x\",\"value\":\"" value \
    "\",\"ttl\":5,\"modifiedIndex\":" #idx ",\"createdIndex\":" #idx "}}"
#define CREATED(value, idx) "HTTP/1.1 201 Created|" NODE("create", value, idx)
#define OK(action, value, idx) "HTTP/1.1 200 OK|" NODE(action, value, idx)
#define ETCD(status, code, msg)                                                \
    status "|{\"errorCode\":" #code ",\"message\":\"" msg                      \
           "\",\"cause\":\"/e/x\",\"index\":12}"
#define E100 ETCD("HTTP/1.1 404 Not Found", 100, "Key not found")
#define E101 ETCD("HTTP/1.1 412 Precondition Failed", 101, "Compare failed")
#define E105 ETCD("HTTP/1.1 412 Precondition Failed", 105, "Key already exists")

TEST(cli_elect_init_copies_and_rejects_bad_arguments)
{
    struct cli_client cl;
    client_on(&cl, dead_port());
    struct cli_elect e;
    char key[] = "/e/x", value[] = "me";
    REQUIRE_EQ(cli_elect_init(&e, &cl, key, value, 6, 1000), CN_OK);
    key[1] = value[0] = 'Z';
    CHECK_STR(e.key, "/e/x");
    CHECK_STR(e.value, "me");
    CHECK_EQ(e.interval_ms, 2000);
    CHECK_EQ(e.leader, 0);
    cli_elect_close(&e);
    CHECK_EQ(cli_elect_init(&e, &cl, "", "me", 6, 1000), CN_EINVAL);
    cli_elect_close(&e);
    CHECK_EQ(cli_elect_init(&e, &cl, "/e/x", "me", 0, 1000), CN_EINVAL);
    cli_elect_close(&e);
    REQUIRE_EQ(cli_elect_init(&e, &cl, "/e/x", NULL, 1, 1000), CN_OK);
    CHECK(e.value == NULL);
    cli_elect_close(&e);
    cli_client_close(&cl);
}

TEST(cli_elect_campaign_creates_with_prev_exist_false)
{
    const char *answers[] = {CREATED("me", 7), NULL};
    struct peer p;
    peer_start(&p, answers);
    struct cli_client cl;
    client_on(&cl, p.port);
    struct cli_elect e;
    REQUIRE_EQ(cli_elect_init(&e, &cl, "/e/x", "me", 5, 2000), CN_OK);
    uint64_t index = 0;
    CHECK_EQ(cli_elect_campaign(&e, &index), CN_OK);
    CHECK_EQ(e.leader, 1);
    CHECK_EQ(index, 7);
    peer_stop(&p);
    CHECK_STR(p.seen, "PUT /v2/keys/e/x?prevExist=false HTTP/1.1\n"
                      "ttl=5&value=me\n");
    cli_elect_close(&e);
    cli_client_close(&cl);
}

TEST(cli_elect_campaign_taken_returns_eexist_and_watch_index)
{
    const char *answers[] = {E105, NULL};
    struct peer p;
    peer_start(&p, answers);
    struct cli_client cl;
    client_on(&cl, p.port);
    struct cli_elect e;
    REQUIRE_EQ(cli_elect_init(&e, &cl, "/e/x", "me", 5, 2000), CN_OK);
    uint64_t index = 0;
    CHECK_EQ(cli_elect_campaign(&e, &index), CN_EEXIST);
    CHECK_EQ(e.leader, 0);
    CHECK_EQ(index, 12);
    CHECK_EQ(e.etcd_code, 105);
    peer_stop(&p);
    cli_elect_close(&e);
    cli_client_close(&cl);
}

TEST(cli_elect_refresh_compares_on_our_value_without_event)
{
    const char *answers[] = {CREATED("me", 7), OK("update", "me", 8), E101,
                             NULL};
    struct peer p;
    peer_start(&p, answers);
    struct cli_client cl;
    client_on(&cl, p.port);
    struct cli_elect e;
    REQUIRE_EQ(cli_elect_init(&e, &cl, "/e/x", "a b", 5, 2000), CN_OK);
    uint64_t index = 0;
    REQUIRE_EQ(cli_elect_campaign(&e, &index), CN_OK);
    CHECK_EQ(cli_elect_refresh(&e, &index), CN_OK);
    CHECK_EQ(index, 8);
    CHECK_EQ(e.leader, 1);
    CHECK_EQ(cli_elect_refresh(&e, &index), CN_EBUSY);
    CHECK_EQ(e.leader, 0);
    CHECK_EQ(e.etcd_code, 101);
    peer_stop(&p);
    CHECK_STR(p.seen, "PUT /v2/keys/e/x?prevExist=false HTTP/1.1\n"
                      "ttl=5&value=a+b\n"
                      "PUT /v2/keys/e/x?prevExist=true&prevValue=a+b "
                      "HTTP/1.1\nrefresh=true&ttl=5\n"
                      "PUT /v2/keys/e/x?prevExist=true&prevValue=a+b "
                      "HTTP/1.1\nrefresh=true&ttl=5\n");
    cli_elect_close(&e);
    cli_client_close(&cl);
}

TEST(cli_elect_refresh_unreachable_keeps_leader_step_steps_down)
{
    const char *answers[] = {CREATED("me", 7), NULL};
    struct peer p;
    peer_start(&p, answers);
    struct cli_client cl;
    client_on(&cl, p.port);
    struct cli_elect e;
    REQUIRE_EQ(cli_elect_init(&e, &cl, "/e/x", "me", 5, 2000), CN_OK);
    uint64_t index = 0;
    REQUIRE_EQ(cli_elect_step(&e), CN_OK);
    CHECK_EQ(e.leader, 1);
    CHECK_STR(e.holder, "me");
    peer_stop(&p); /* the store is gone from now on */
    /* cairnctl's policy: an unknown outcome does not end leadership. */
    CHECK_EQ(cli_elect_refresh(&e, &index), CN_EIO);
    CHECK_EQ(e.leader, 1);
    CHECK_EQ(e.etcd_code, 0);
    CHECK(e.errmsg[0] != '\0');
    /* The fleet engine's: any failed refresh steps down at once. */
    CHECK_EQ(cli_elect_step(&e), CN_EIO);
    CHECK_EQ(e.leader, 0);
    CHECK(e.holder == NULL);
    cli_elect_close(&e);
    cli_client_close(&cl);
}

TEST(cli_elect_step_follower_learns_holder_leader_recampaigns_on_loss)
{
    const char *answers[] = {E105, OK("get", "other", 5), E100,
                             CREATED("me", 13), NULL};
    struct peer p;
    peer_start(&p, answers);
    struct cli_client cl;
    client_on(&cl, p.port);
    struct cli_elect e;
    REQUIRE_EQ(cli_elect_init(&e, &cl, "/e/x", "me", 5, 2000), CN_OK);
    CHECK_EQ(cli_elect_step(&e), CN_OK);
    CHECK_EQ(e.leader, 0);
    CHECK_STR(e.holder, "other");
    e.leader = 1; /* as if a campaign had won meanwhile */
    CHECK_EQ(cli_elect_step(&e), CN_OK);
    CHECK_EQ(e.leader, 1);
    CHECK_STR(e.holder, "me");
    peer_stop(&p);
    CHECK_STR(p.seen, "PUT /v2/keys/e/x?prevExist=false HTTP/1.1\n"
                      "ttl=5&value=me\n"
                      "GET /v2/keys/e/x HTTP/1.1\n\n"
                      "PUT /v2/keys/e/x?prevExist=true&prevValue=me "
                      "HTTP/1.1\nrefresh=true&ttl=5\n"
                      "PUT /v2/keys/e/x?prevExist=false HTTP/1.1\n"
                      "ttl=5&value=me\n");
    cli_elect_close(&e);
    cli_client_close(&cl);
}

TEST(cli_elect_resign_deletes_only_our_value_and_only_when_leading)
{
    const char *answers[] = {CREATED("me", 7), OK("compareAndDelete", "me", 8),
                             NULL};
    struct peer p;
    peer_start(&p, answers);
    struct cli_client cl;
    client_on(&cl, p.port);
    struct cli_elect e;
    REQUIRE_EQ(cli_elect_init(&e, &cl, "/e/x", "me", 5, 2000), CN_OK);
    uint64_t index = 0;
    REQUIRE_EQ(cli_elect_campaign(&e, &index), CN_OK);
    CHECK_EQ(cli_elect_resign(&e), CN_OK);
    CHECK_EQ(e.leader, 0);
    peer_stop(&p);
    /* Not leading: nothing is sent (the peer is gone; a request would
     * fail). */
    CHECK_EQ(cli_elect_resign(&e), CN_OK);
    CHECK_STR(p.seen, "PUT /v2/keys/e/x?prevExist=false HTTP/1.1\n"
                      "ttl=5&value=me\n"
                      "DELETE /v2/keys/e/x?prevValue=me HTTP/1.1\n\n");
    cli_elect_close(&e);
    cli_client_close(&cl);
}

struct seen_values {
    char text[256];
};

static void record(void *ctx, const char *value)
{
    struct seen_values *s = ctx;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof(s->text) - n, "%s;", value);
}

TEST(cli_elect_observe_reports_each_leader_once)
{
    /* GET a; watch: a refreshed (same leader, not reported), b, b removed,
     * b again (a new term: reported); then the store goes away. */
    const char *answers[] = {OK("get", "a", 5),    OK("update", "a", 6),
                             OK("set", "b", 7),    OK("expire", "", 8),
                             OK("create", "b", 9), NULL};
    struct peer p;
    peer_start(&p, answers);
    struct cli_client cl;
    client_on(&cl, p.port);
    struct cli_elect e;
    REQUIRE_EQ(cli_elect_init(&e, &cl, "/e/x", NULL, 5, 2000), CN_OK);
    struct seen_values s = {{0}};
    CHECK_EQ(cli_elect_observe(&e, record, &s), CN_EIO);
    CHECK_STR(s.text, "a;b;b;");
    peer_stop(&p);
    CHECK(strstr(p.seen, "GET /v2/keys/e/x?quorum=true HTTP/1.1\n") == p.seen);
    CHECK(strstr(p.seen, "wait=true&waitIndex=10 ") != NULL);
    cli_elect_close(&e);
    cli_client_close(&cl);
}
