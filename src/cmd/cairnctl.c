/* cairnctl: the command line client (etcdctl v2 compatible); all logic
 * lives in src/cli/. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
