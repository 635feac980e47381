/* cairn-agent: runs units on this machine for the fleet (src/fleet). */
#include "fleet/fleet.h"

int main(int argc, char **argv)
{
    return fleet_agent_main(argc, argv);
}
