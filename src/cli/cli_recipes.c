/* cli_recipes: service-discovery recipes (in progress). */
#include "cli_int.h"

int cli_cmd_register(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                     char **argv)
{
    return cli_fail(CLI_EXIT_BAD_ARGS, "not implemented");
}

int cli_cmd_lookup(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                   char **argv)
{
    return cli_fail(CLI_EXIT_BAD_ARGS, "not implemented");
}

int cli_cmd_elect(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                  char **argv)
{
    return cli_fail(CLI_EXIT_BAD_ARGS, "not implemented");
}

int cli_cmd_lock(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                 char **argv)
{
    return cli_fail(CLI_EXIT_BAD_ARGS, "not implemented");
}
