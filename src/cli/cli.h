/*
 * cli: cairnctl, an etcdctl (API v2) compatible command line for cairn, plus
 * service-discovery recipes (register, lookup, elect, lock) built only on the
 * public v2 HTTP API.
 *
 * The module talks to servers through its own small blocking HTTP/1.1 client
 * (cli_http.c) and parses JSON through one wrapper file (cli_json.c). It
 * never includes another cairn module besides base.
 */
#ifndef CLI_H
#define CLI_H

/* Runs cairnctl with the given arguments (argv[0] is the program name) and
 * returns the process exit status, following etcdctl v2's codes: 0 success,
 * 1 bad arguments, 2 bad connection, 4 server error, 5 cluster unhealthy.
 * argv is borrowed. Writes to stdout/stderr; may run child processes. */
int cli_main(int argc, char **argv);

#endif
