/* scenario: placeholder, replaced below. */
#include "sim.h"

int sim_scenario_file(const char *path, int rewrite)
{
    (void)path;
    (void)rewrite;
    return 1;
}
