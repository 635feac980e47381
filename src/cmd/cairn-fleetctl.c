/* cairn-fleetctl: fleetctl for cairn's fleet layer (src/fleet). */
#include "fleet/fleet.h"

int main(int argc, char **argv)
{
    return fleet_ctl_main(argc, argv);
}
