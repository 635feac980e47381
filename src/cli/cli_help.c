/*
 * cli_help: the command table and help pages, laid out like etcdctl's
 * (urfave/cli) so users of one find their way in the other. Each
 * command's flags live with the command; `cairnctl help CMD` runs the
 * command with --help, which prints its page through cli_help_cmd.
 */
#include "cli_int.h"

#include <string.h>

static const struct cli_cmd cli_cmds[] = {
    {"backup", "backup an etcd directory", " ", NULL, cli_cmd_backup},
    {"cluster-health", "check the health of the etcd cluster", " ", NULL,
     cli_cmd_cluster_health},
    {"mk", "make a new key with a given value", "<key> <value>", NULL,
     cli_cmd_mk},
    {"mkdir", "make a new directory", "<key>", NULL, cli_cmd_mkdir},
    {"rm", "remove a key or a directory", "<key>", NULL, cli_cmd_rm},
    {"rmdir", "removes the key if it is an empty directory or a key-value pair",
     "<key>", NULL, cli_cmd_rmdir},
    {"get", "retrieve the value of a key", "<key>", NULL, cli_cmd_get},
    {"ls", "retrieve a directory", "[key]", NULL, cli_cmd_ls},
    {"set", "set the value of a key", "<key> <value>",
     "Set sets the value of a key.\n\n"
     "   When <value> begins with '-', <value> is interpreted as a flag.\n"
     "   Insert '--' for workaround:\n\n"
     "   $ set -- <key> <value>",
     cli_cmd_set},
    {"setdir", "create a new directory or update an existing directory TTL",
     "<key>", NULL, cli_cmd_setdir},
    {"update", "update an existing key with a given value", "<key> <value>",
     NULL, cli_cmd_update},
    {"updatedir", "update an existing directory", "<key> <value>", NULL,
     cli_cmd_updatedir},
    {"watch", "watch a key for changes", "<key>", NULL, cli_cmd_watch},
    {"exec-watch", "watch a key for changes and exec an executable",
     "<key> <command> [args...]", NULL, cli_cmd_exec_watch},
    {"member", "member add, remove and list subcommands",
     "list | add <name> <peerURL> | remove <memberID> | "
     "update <memberID> <peerURLs>",
     "list                         enumerate existing cluster members\n"
     "   add <name> <peerURL>         add a new member to the cluster\n"
     "   remove <memberID>            remove an existing member\n"
     "   update <memberID> <peerURLs> update an existing member's peer URLs",
     cli_cmd_member},
    {"register", "register a service instance and keep it alive",
     "<service> <instance> <addr> [-- command [args...]]",
     "Keeps /services/<service>/<instance> alive with a TTL heartbeat while\n"
     "   its health check passes (or while <command> runs) and removes it on\n"
     "   exit. While a check fails the instance stays registered with\n"
     "   \"healthy\":false. The value is JSON:\n"
     "   {\"addr\":\"<addr>\",\"healthy\":true,\"updated\":\"<RFC 3339>\"}\n"
     "   See docs/recipes.md for what a TTL can and cannot promise.",
     cli_cmd_register},
    {"lookup", "list the live instances of a service", "<service>",
     "Prints one line per instance: <instance> <addr> healthy|unhealthy.\n"
     "   With --watch, then prints changes as they happen:\n"
     "   \"+ <instance> <addr> <state>\" and \"- <instance>\".",
     cli_cmd_lookup},
    {"elect", "campaign for leadership, or observe an election",
     "<name> <proposal> [-- command [args...]] | --observe <name>",
     "Campaigns on /elections/<name> with a TTL key created with\n"
     "   prevExist=false and kept by prevValue-guarded refreshes. The leader\n"
     "   runs <command>; on losing leadership the command is stopped and the\n"
     "   campaign starts over. --observe prints each new leader's proposal.",
     cli_cmd_elect},
    {"lock", "run a command while holding a distributed lock",
     "<name> -- command [args...]",
     "Queues on /locks/<name> with an in-order key (POST), waits for the\n"
     "   deletion of its predecessor, runs <command> while holding the lock\n"
     "   and releases it when the command ends.",
     cli_cmd_lock},
};

#define CLI_CMD_COUNT (sizeof(cli_cmds) / sizeof(cli_cmds[0]))

const struct cli_cmd *cli_cmd_find(const char *name)
{
    for (size_t i = 0; i < CLI_CMD_COUNT; i++)
        if (strcmp(cli_cmds[i].name, name) == 0)
            return &cli_cmds[i];
    return NULL;
}

void cli_help_main(FILE *f)
{
    fprintf(f,
            "NAME:\n   cairnctl - A simple command line client for cairn "
            "(etcd v2 compatible).\n\n"
            "USAGE:\n   cairnctl [global options] command [command "
            "options] [arguments...]\n\n"
            "VERSION:\n   %s\n\nCOMMANDS:\n",
            "3.4.23");
    for (size_t i = 0; i < CLI_CMD_COUNT; i++)
        fprintf(f, "   %-15s %s\n", cli_cmds[i].name, cli_cmds[i].usage);
    fprintf(f, "   %-15s %s\n", "help, h",
            "Shows a list of commands or help for one command");
    fprintf(
        f, "\nGLOBAL OPTIONS:\n"
           "   --debug                     output cURL commands which can be "
           "used to reproduce the request\n"
           "   --no-sync                   don't synchronize cluster "
           "information before sending request\n"
           "   --output simple, -o simple  output response in the given format "
           "(simple, `extended` or `json`) (default: \"simple\")\n"
           "   --peers value, -C value     DEPRECATED - \"--endpoints\" should "
           "be used instead\n"
           "   --endpoint value            DEPRECATED - \"--endpoints\" should "
           "be used instead\n"
           "   --endpoints value           a comma-delimited list of machine "
           "addresses in the cluster (default: "
           "\"http://127.0.0.1:2379,http://127.0.0.1:4001\")\n"
           "   --timeout value             connection timeout per request "
           "(default: 2s)\n"
           "   --total-timeout value       timeout for the command execution "
           "(except watch) (default: 5s)\n"
           "   --help, -h                  show help\n"
           "   --version, -v               print the version\n"
           "\nENVIRONMENT:\n"
           "   ETCDCTL_ENDPOINTS, ETCDCTL_ENDPOINT, ETCDCTL_PEERS  endpoints, "
           "when no flag gives them\n");
}

/* "--name value, -n value" for one flag. */
static void flag_label(char *buf, size_t size, const struct cli_flag *fl)
{
    size_t used = 0;
    const char *p = fl->names;
    buf[0] = '\0';
    while (*p && used < size) {
        size_t l = strcspn(p, ",");
        const char *q = p;
        while (*q == ' ')
            q++, l--;
        used += (size_t)snprintf(buf + used, size - used, "%s%s%.*s%s%s",
                                 used ? ", " : "", l > 1 ? "--" : "-", (int)l,
                                 q, fl->placeholder ? " " : "",
                                 fl->placeholder ? fl->placeholder : "");
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
}

void cli_help_cmd(FILE *f, const struct cli_cmd *cmd,
                  const struct cli_flag *flags, size_t nflags)
{
    fprintf(f, "NAME:\n   cairnctl %s - %s\n\nUSAGE:\n   cairnctl %s%s %s\n",
            cmd->name, cmd->usage, cmd->name,
            nflags ? " [command options]" : "", cmd->args_usage);
    if (cmd->description != NULL)
        fprintf(f, "\nDESCRIPTION:\n   %s\n", cmd->description);
    if (nflags == 0)
        return;
    fprintf(f, "\nOPTIONS:\n");
    size_t width = 0;
    char label[256];
    for (size_t i = 0; i < nflags; i++) {
        flag_label(label, sizeof(label), &flags[i]);
        if (strlen(label) > width)
            width = strlen(label);
    }
    for (size_t i = 0; i < nflags; i++) {
        flag_label(label, sizeof(label), &flags[i]);
        fprintf(f, "   %-*s  %s%s%s\n", (int)width, label, flags[i].usage,
                flags[i].default_text ? " " : "",
                flags[i].default_text ? flags[i].default_text : "");
    }
    fprintf(f, "   \n");
}
