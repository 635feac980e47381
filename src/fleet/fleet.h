/*
 * fleet: units on a fleet of machines, the scheduler layer of cairn.
 *
 * Every machine runs cairn-agent: it registers the machine under a TTL key,
 * runs the units the engine assigns to it under its own supervisor and
 * publishes their states with a TTL. Every agent is also an engine
 * candidate; the elected engine schedules units onto machines, honouring
 * the [X-Fleet] constraints. cairn-fleetctl is the user's command line.
 *
 * The module talks to the store only through the etcd v2 HTTP API, so it
 * runs unchanged against cairn and against etcd 3.4 (--enable-v2). The key
 * layout is written in docs/units.md.
 */
#ifndef FLEET_H
#define FLEET_H

/* Runs cairn-agent with the given arguments (argv[0] is the program name)
 * until SIGTERM/SIGINT; returns the process exit status (0 on a clean stop,
 * 1 on bad flags, 2 when the state directory cannot be used). argv is
 * borrowed. */
int fleet_agent_main(int argc, char **argv);

/* Runs cairn-fleetctl; returns the process exit status as fleetctl does
 * (0 success, 1 failure). argv is borrowed. Writes to stdout/stderr. */
int fleet_ctl_main(int argc, char **argv);

#endif
