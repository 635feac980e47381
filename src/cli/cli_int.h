/*
 * cli_int: what the files of src/cli/ share (private to the directory).
 *
 * Layers, bottom up:
 *   cli_http.c     blocking HTTP/1.1 client over POSIX sockets: URL parsing,
 *                  response head parsing, chunked decoding, keep-alive.
 *   cli_json.c     the only file that includes jansson: v2 answers into
 *                  struct cli_resp / cli_etcd_error / cli_member.
 *   cli_fmt.c      etcdctl's output formats (simple, extended, json with Go's
 *                  encoding rules), error lines, URL escaping. Pure.
 *   cli_args.c     Go flag package + urfave/cli argument rules. Pure.
 *   cli_client.c   endpoints, fail-over, member sync, key API calls.
 *   cli_proc.c     clock, signals, child processes, health checks.
 *   cli_elect.c    leader election on a TTL key (public: cli_elect.h),
 *                  shared by `cairnctl elect` and the fleet engine.
 *   cli_cmd_*.c    the commands; cli_main.c dispatches.
 *
 * cli_client.h is the part other layers may use (client, key calls, answer
 * structs, clock and signals); this header adds what only src/cli uses.
 */
#ifndef CLI_INT_H
#define CLI_INT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "base/base.h"
#include "cli_client.h"

/* etcdctl v2 exit codes (etcdctl/ctlv2/command/error.go). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_BAD_ARGS = 1,
    CLI_EXIT_BAD_CONN = 2,
    CLI_EXIT_BAD_AUTH = 3,
    CLI_EXIT_SERVER = 4,
    CLI_EXIT_UNHEALTHY = 5,
};

/* ---- HTTP client (cli_http.c) ---------------------------------------- */

/* Parses "http://host[:port][/path]" (a missing scheme becomes http, as
 * etcdctl does for "host:port"-less names). Returns 0, or CN_EINVAL with a
 * Go-style message in errmsg (CN_ERRMSG_SIZE bytes, borrowed). */
int cli_url_parse(const char *s, struct cli_url *u, char *errmsg);

struct cli_http_resp {
    int status;             /* 200, 404, ... */
    int chunked;            /* Transfer-Encoding: chunked */
    int64_t content_length; /* -1 when absent */
    int conn_close;         /* server will close after this response */
    int has_etcd_index;
    uint64_t etcd_index;        /* X-Etcd-Index */
    char location[CLI_URL_MAX]; /* Location, for redirects */
    char content_type[128];     /* Content-Type */
    struct cn_buf body;         /* owned; decoded body */
};

void cli_http_resp_init(struct cli_http_resp *r);
void cli_http_resp_close(struct cli_http_resp *r);

/* Parses a response head (status line and headers) at p[0..n). Returns the
 * head's length in bytes when it is complete, 0 when more bytes are needed,
 * CN_EPROTO when malformed, CN_ETOOBIG when longer than the header limit.
 * Fills the head fields of r (not body). p is borrowed. */
long cli_http_parse_head(const char *p, size_t n, struct cli_http_resp *r);

/* Incremental decoder of a chunked body. Zero-initialise to start. */
struct cli_chunked {
    int state;          /* internal */
    uint64_t remaining; /* bytes left in the current chunk */
};

/* Feeds in[0..n): decoded bytes are appended to out, *used says how many
 * input bytes were consumed. Returns 1 when the last chunk and trailers are
 * complete (bytes after it are not consumed), 0 when more input is needed,
 * CN_EPROTO on a malformed stream, CN_ENOMEM. */
int cli_chunked_feed(struct cli_chunked *d, const char *in, size_t n,
                     size_t *used, struct cn_buf *out);

struct cli_http_req {
    const char *method;       /* "GET" */
    const char *target;       /* "/v2/keys/a?x=y", borrowed */
    const char *content_type; /* NULL: none */
    const char *body;         /* NULL: no body */
    size_t body_len;
    int64_t deadline_ms; /* cli_now_ms() clock; 0: no deadline */
};

void cli_http_conn_init(struct cli_http_conn *c);
void cli_http_conn_close(struct cli_http_conn *c);

/* Sends req to u (reusing c's connection when it is to the same host and
 * still open) and reads the whole response into resp (initialised by the
 * caller; its body is appended to). Waits are cut short when a termination
 * signal arrives (cli_signal_pending).
 * Returns 0; CN_ECONNREFUSED / CN_EIO (connect or I/O failure),
 * CN_ETIMEDOUT (deadline), CN_EPROTO (bad response), CN_ESHUTDOWN
 * (signal), CN_ENOMEM. c->errmsg says what happened. */
int cli_http_do(struct cli_http_conn *c, const struct cli_url *u,
                const struct cli_http_req *req, struct cli_http_resp *resp);

/* Opens and closes a TCP connection to host:port before deadline_ms:
 * 0 or a CN_E* code (the TCP health check). */
int cli_tcp_probe(const char *host, const char *port, int64_t deadline_ms);

/* ---- JSON (cli_json.c) ----------------------------------------------- */

struct cli_member {
    char *id;         /* owned */
    char *name;       /* owned; "" for an unstarted member */
    char **peer_urls; /* owned */
    size_t peer_count;
    char **client_urls; /* owned */
    size_t client_count;
};

/* Each parser returns 0, CN_EPROTO (not the expected JSON) or CN_ENOMEM;
 * body is borrowed; the result is owned by the caller and freed with the
 * matching _close/_free even after a failure. */
int cli_json_parse_resp(const char *body, size_t len, struct cli_resp *out);
int cli_json_parse_error(const char *body, size_t len,
                         struct cli_etcd_error *out);
int cli_json_parse_members(const char *body, size_t len,
                           struct cli_member **out, size_t *count);
int cli_json_parse_member(const char *body, size_t len, struct cli_member *m);
void cli_member_close(struct cli_member *m);
void cli_members_free(struct cli_member *ms, size_t count);
/* {"health":"true"} or {"health":true}: *healthy 0/1. */
int cli_json_parse_health(const char *body, size_t len, int *healthy);
/* {"message":"..."}: *msg owned by the caller (cn_free). */
int cli_json_parse_message(const char *body, size_t len, char **msg);
/* Appends {"peerURLs":[...]} to out. */
int cli_json_peer_urls(struct cn_buf *out, char *const *urls, size_t n);

/* ---- peer URLs of member add/update (cli_peer_url.c) --------------- */

/* etcd's types.NewURLs as etcdctl applies it: each of in[0..n) trimmed and
 * checked (Go's url.Parse errors, scheme, host:port, no path); out[0..n)
 * receives the URLs to send, sorted, owned by the caller
 * (cli_peer_urls_free). CN_EINVAL with etcdctl's message in err. */
int cli_peer_urls_parse(char *const *in, size_t n, char **out,
                        struct cn_buf *err);
void cli_peer_urls_free(char **urls, size_t n);

/* Service instance value (docs/recipes.md):
 * {"addr":"10.0.0.1:80","healthy":true,"updated":"2024-01-02T03:04:05Z"} */
struct cli_service_value {
    char *addr;    /* owned */
    int healthy;   /* 0 or 1 */
    char *updated; /* owned; RFC 3339 UTC */
};
int cli_json_service_encode(struct cn_buf *out, const char *addr, int healthy,
                            const char *updated);
/* CN_EPROTO when the value is not such an object. */
int cli_json_service_decode(const char *s, size_t len,
                            struct cli_service_value *out);
void cli_service_value_close(struct cli_service_value *v);

/* ---- Formatting (cli_fmt.c) ------------------------------------------ */

/* Appends s[0..n) as a JSON string the way Go's encoding/json does
 * (escapes <, >, &, U+2028, U+2029, control bytes; invalid UTF-8 becomes
 * U+FFFD). */
int cli_fmt_go_string(struct cn_buf *out, const char *s, size_t n);
/* Rewrites an RFC 3339 time the way Go re-marshals it (RFC3339Nano: no
 * trailing zeros in the fraction). */
int cli_fmt_go_time(struct cn_buf *out, const char *t);
/* The response as Go's json.Marshal(client.Response) writes it. */
int cli_fmt_json_resp(struct cn_buf *out, const struct cli_resp *r);
/* printResponseKey: "simple", "extended" or "json" into out; any other
 * format writes "Unsupported output format: X\n" into err. */
int cli_fmt_resp(struct cn_buf *out, struct cn_buf *err,
                 const struct cli_resp *r, const char *format);
/* ls output for "simple": keys one per line, recursive into nodes,
 * directories with a '/' when dir_slash. */
int cli_fmt_ls(struct cn_buf *out, const struct cli_resp *r, int dir_slash);
/* "Error:  100: Key not found (/foo) [12]\n" */
int cli_fmt_etcd_error(struct cn_buf *out, const struct cli_etcd_error *e);
/* Go url.PathEscape-like escaping of a path (keeps '/'). */
int cli_fmt_escape_path(struct cn_buf *out, const char *s);
/* Go url.QueryEscape ("a b" -> "a+b"). */
int cli_fmt_escape_query(struct cn_buf *out, const char *s);
/* Go pathutil.CanonicalURLPath: clean "//", ".", ".." keeping a trailing
 * slash; result always starts with '/'. */
int cli_fmt_clean_path(struct cn_buf *out, const char *p);

/* ---- Arguments (cli_args.c) ------------------------------------------ */

enum cli_flag_type {
    CLI_FLAG_BOOL,     /* int * */
    CLI_FLAG_STRING,   /* const char ** */
    CLI_FLAG_INT,      /* long long * */
    CLI_FLAG_DURATION, /* int64_t * (milliseconds) */
};

struct cli_flag {
    const char *names; /* "recursive,r": first is the long name */
    enum cli_flag_type type;
    void *dst;               /* borrowed; see enum cli_flag_type */
    const char *placeholder; /* "value" in the help line; NULL: none */
    const char *usage;
    const char *default_text; /* "(default: 0)" part; NULL: none */
};

enum {
    CLI_ARGS_OK = 0,
    CLI_ARGS_HELP = 1, /* -h / --help was given */
};

/* Parses argv[0..argc) with Go's flag rules against flags. With reorder,
 * flags found after positional arguments are moved before them first (the
 * urfave/cli behaviour etcdctl commands have). Positional arguments are
 * stored in pos (array of argc pointers, borrowed from argv) and counted in
 * *npos. Returns CLI_ARGS_OK, CLI_ARGS_HELP, or CN_EINVAL with Go's message
 * in errmsg ("flag provided but not defined: -x"). */
int cli_args_parse(const struct cli_flag *flags, size_t nflags, int argc,
                   char **argv, int reorder, char **pos, int *npos,
                   char *errmsg);

/* Go time.ParseDuration subset ("2s", "500ms", "1m30s", "1.5s") into ms:
 * 0 or CN_EINVAL. */
int cli_parse_duration(const char *s, int64_t *ms);

/* ---- Clock, signals, processes (cli_proc.c) -------------------------- */

/* "2024-01-02T03:04:05Z" (UTC, seconds) of the wall clock. */
void cli_utc_now(char *buf, size_t size);

/* Starts argv[0] (PATH lookup) in its own process group with extra
 * environment entries ("K=V", NULL-terminated, may be NULL). Returns 0 and
 * *pid, or CN_EIO. */
int cli_proc_spawn(char *const *argv, char *const *env_extra, pid_t *pid);
/* Non-blocking: 1 and *status (exit code, or 128+signal) when pid ended,
 * 0 while it runs. */
int cli_proc_poll(pid_t pid, int *status);
/* Sends SIGTERM to the child's group, waits up to grace_ms, then SIGKILL;
 * returns its status like cli_proc_poll. */
int cli_proc_stop(pid_t pid, int64_t grace_ms);
/* Runs "/bin/sh -c cmd" to completion or deadline; 0 when it exits 0. */
int cli_proc_check(const char *cmd, int64_t deadline_ms);

/* ---- Client (cli_client.c; the public part is in cli_client.h) ------- */

/* Unless no_sync, replaces the endpoints by the members' client URLs
 * (GET /v2/members). Returns 0, or the exit code etcdctl uses when it
 * gives up (the message is already printed). */
int cli_client_sync(struct cli_client *cl, const struct cli_global *g);

/* Sends one request to the endpoints in turn, following redirects.
 * deadline_ms overrides cl->deadline_ms when non-zero (-1: none).
 * Returns 0 with any HTTP status in resp, or a CN_E* code with cl->fail
 * set. */
int cli_client_do(struct cli_client *cl, const char *method, const char *target,
                  const char *body, int flags, int64_t deadline_ms,
                  struct cli_http_resp *resp);

/* Prints cl's failure the way etcdctl's handleError does and returns
 * code. */
int cli_client_report(struct cli_client *cl, int code);

/* ---- Commands -------------------------------------------------------- */

struct cli_cmd;
typedef int cli_cmd_fn(const struct cli_cmd *cmd, struct cli_global *g,
                       int argc, char **argv);

struct cli_cmd {
    const char *name;
    const char *usage;       /* one line */
    const char *args_usage;  /* "<key> <value>" */
    const char *description; /* NULL or paragraphs */
    cli_cmd_fn *fn;
};

/* Key commands (cli_cmd_keys.c). */
cli_cmd_fn cli_cmd_set, cli_cmd_get, cli_cmd_mk, cli_cmd_mkdir, cli_cmd_setdir,
    cli_cmd_update, cli_cmd_updatedir, cli_cmd_rm, cli_cmd_rmdir, cli_cmd_ls,
    cli_cmd_watch, cli_cmd_exec_watch;
/* Cluster commands (cli_cmd_cluster.c). */
cli_cmd_fn cli_cmd_member, cli_cmd_cluster_health, cli_cmd_backup;
/* Recipes (cli_cmd_register.c, cli_cmd_elect.c). */
cli_cmd_fn cli_cmd_register, cli_cmd_lookup, cli_cmd_elect, cli_cmd_lock;

/* Recipe helpers (cli_recipes.c). */
/* One key API call with the command's total timeout (deadline_ms 0) or an
 * explicit deadline (-1: none). query and form are escaped strings or
 * NULL. Returns CLI_KEYS_*. */
int cli_recipe_call(struct cli_client *cl, const struct cli_global *g,
                    const char *method, const char *key, const char *query,
                    const char *form, int flags, int64_t deadline_ms,
                    struct cli_resp *resp, struct cli_etcd_error *e);
/* Refreshes key's TTL without waking watchers (refresh=true,
 * prevExist=true), guarded by prev_value when not NULL. Returns CLI_KEYS_*;
 * on success *index is the key's new modifiedIndex. */
int cli_recipe_refresh(struct cli_client *cl, const struct cli_global *g,
                       const char *key, long long ttl, const char *prev_value,
                       uint64_t *index, struct cli_etcd_error *e);
/* A watch request on key from wait_index until deadline_ms (-1: none).
 * Returns CLI_KEYS_*; a deadline or an empty answer is CLI_KEYS_FAILED with
 * *timed_out set. */
int cli_recipe_watch(struct cli_client *cl, const char *key, int recursive,
                     uint64_t wait_index, int64_t deadline_ms,
                     struct cli_resp *resp, struct cli_etcd_error *e,
                     int *timed_out);
/* Splits positional arguments at "--": *nargs before it, *cmd the command
 * after it (NULL when there is none). */
void cli_recipe_split(char **pos, int npos, int *nargs, char ***cmd);
/* "cairnctl <what>: <message>" on stderr. */
void cli_recipe_log(const char *what, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* 1 for events that remove a key: delete, expire, compareAndDelete. */
int cli_action_removes(const char *action);

/* Help (cli_help.c). */
const struct cli_cmd *cli_cmd_find(const char *name);
void cli_help_main(FILE *f);
void cli_help_cmd(FILE *f, const struct cli_cmd *cmd,
                  const struct cli_flag *flags, size_t nflags);

/* Parses a command's flags; on help or a usage error prints what etcdctl
 * prints and returns the exit code through *rc (returns non-zero to stop). */
int cli_cmd_args(const struct cli_cmd *cmd, const struct cli_flag *flags,
                 size_t nflags, int argc, char **argv, char **pos, int *npos,
                 int *rc);

/* Prints "Error:  <msg>" and returns code (handleError with a plain error). */
int cli_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Connects a client for a command (init + sync): 0, or the exit code with
 * the failure printed. */
int cli_connect(struct cli_client *cl, struct cli_global *g, int sync);

/* Writes b to stdout/stderr and flushes. */
void cli_out(const struct cn_buf *b);
void cli_err(const struct cn_buf *b);

#endif
