#!/usr/bin/env bash
# A local cairn cluster on 127.0.0.1, in the foreground (make cluster).
#
#   scripts/cluster.sh [FLAG...]          3 members; FLAGs go to every member
#   NODES=5 PORT=32379 scripts/cluster.sh
#   CAIRN=/usr/bin/etcd scripts/cluster.sh   the same with etcd 3.4
#
# Member i (1..NODES) is named n<i>, serves clients on PORT+2(i-1) and peers
# on PORT+2(i-1)+1 (PORT defaults to 2379: 2379/2380, 2381/2382, ...), and
# keeps its data dir and log in a fresh temp dir. Without CAIRN, the script
# builds $B/cairn first (B defaults to build). Once every member answers, it
# prints the endpoints and waits. Ctrl-C (SIGINT) or SIGTERM stops exactly
# the members it started (SIGTERM, then SIGKILL after 5 s) and removes the
# temp dir. A member that exits by itself stops the others the same way and
# the script exits 1.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
nodes=${NODES:-3}
base=${PORT:-2379}
token=cairn-local-$$

die() {
  echo "cluster: $*" >&2
  exit 1
}

case $nodes in '' | *[!0-9]*) die "NODES must be a number, not '$nodes'" ;; esac
case $base in '' | *[!0-9]*) die "PORT must be a number, not '$base'" ;; esac
if [ "$nodes" -lt 1 ] || [ "$nodes" -gt 15 ]; then
  die "NODES must be 1..15"
fi
if [ "$base" -lt 1024 ] || [ $((base + 2 * nodes)) -gt 65535 ]; then
  die "PORT must leave room for $((2 * nodes)) ports in 1024..65535"
fi

bin=${CAIRN:-}
if [ -z "$bin" ]; then
  b=${B:-build}
  make -s --no-print-directory -C "$root" B="$b" "$b/cairn" ||
    die "could not build $b/cairn"
  bin=$root/$b/cairn
fi
[ -x "$bin" ] || die "no executable $bin"
case $bin in */*) bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin") ;; esac

# Something already listening on one of our ports: say so before starting.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for ((i = 0; i < 2 * nodes; i++)); do
  p=$((base + i))
  if port_busy "$p"; then
    die "127.0.0.1:$p is in use; choose another base with PORT=..."
  fi
done

client_url() { echo "http://127.0.0.1:$((base + 2 * ($1 - 1)))"; }
peer_url() { echo "http://127.0.0.1:$((base + 2 * ($1 - 1) + 1))"; }

initial=
endpoints=
for ((i = 1; i <= nodes; i++)); do
  initial+="${initial:+,}n$i=$(peer_url "$i")"
  endpoints+="${endpoints:+,}$(client_url "$i")"
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/cairn-cluster.XXXXXX") || die "no temp dir"
pids=()
stopping=0

# A pid of ours that has not exited (a zombie has exited: we reap it).
running() {
  [ -r "/proc/$1/stat" ] || return 1
  local stat
  stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# One member at a time, the leader last: a leader stopped while members
# are still up hands leadership over first (etcd does), and one stopped
# after a quorum is gone can wait long for a hand-over that cannot happen.
stop_order() {
  local i leader=0
  for ((i = 1; i <= nodes; i++)); do
    if running "${pids[i - 1]}" &&
      curl -fs -m 1 "$(client_url "$i")/v2/stats/self" 2>/dev/null |
      grep -q '"state": *"StateLeader"'; then
      leader=$i
    fi
  done
  for ((i = 1; i <= nodes; i++)); do
    [ $i = $leader ] || echo "${pids[i - 1]}"
  done
  [ $leader = 0 ] || echo "${pids[leader - 1]}"
}

stop_all() {
  trap '' INT TERM
  local pid waited
  for pid in $(stop_order); do
    kill -TERM "$pid" 2>/dev/null
    waited=0
    while running "$pid" && [ $waited -lt 50 ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    if running "$pid"; then
      echo "cluster: pid $pid ignored SIGTERM for 5 s; SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  done
  rm -rf "$dir"
}

trap 'stopping=1' INT TERM

extra=()
case $(basename "$bin") in etcd*) extra+=(--enable-v2) ;; esac

# Each member in its own session (setsid does not fork here: a background
# job of this shell is no process-group leader, so the pid is the member's),
# so a Ctrl-C in the terminal reaches this script only, which then stops
# the members in order.
for ((i = 1; i <= nodes; i++)); do
  setsid "$bin" --name "n$i" --data-dir "$dir/n$i.data" \
    --listen-client-urls "$(client_url "$i")" \
    --advertise-client-urls "$(client_url "$i")" \
    --listen-peer-urls "$(peer_url "$i")" \
    --initial-advertise-peer-urls "$(peer_url "$i")" \
    --initial-cluster "$initial" \
    --initial-cluster-token "$token" \
    --initial-cluster-state new \
    "${extra[@]}" "$@" </dev/null >"$dir/n$i.log" 2>&1 &
  pids+=($!)
done

# Until every member answers /version (30 s), or one exits, or a signal.
member_died() {
  local i
  for ((i = 1; i <= nodes; i++)); do
    if ! running "${pids[i - 1]}"; then
      echo "cluster: member n$i (pid ${pids[i - 1]}) exited;" \
        "last lines of its log:" >&2
      tail -n 20 "$dir/n$i.log" >&2
      return 0
    fi
  done
  return 1
}

deadline=$((SECONDS + 30))
for ((i = 1; i <= nodes; i++)); do
  until curl -fs -m 1 -o /dev/null "$(client_url "$i")/version"; do
    if [ $stopping = 1 ]; then
      stop_all
      exit 130
    fi
    if member_died; then
      stop_all
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "cluster: n$i does not answer on $(client_url "$i") after 30 s" >&2
      stop_all
      exit 1
    fi
    sleep 0.1
  done
done

version=$("$bin" --version 2>/dev/null | head -n 1)
echo "cluster: $nodes members on 127.0.0.1, $version"
for ((i = 1; i <= nodes; i++)); do
  echo "  n$i  pid ${pids[i - 1]}  client $(client_url "$i")" \
    " peer $(peer_url "$i")  log $dir/n$i.log"
done
# Members that list fewer than all: started, but not one cluster.
for ((i = 1; i <= nodes; i++)); do
  listed=$(curl -fs -m 2 "$(client_url "$i")/v2/members" |
    grep -o '"peerURLs"' | wc -l)
  if [ "$listed" -ne "$nodes" ]; then
    echo "cluster: warning: n$i lists $listed member(s), not $nodes:" \
      "the members did not form one cluster"
  fi
done
echo "data: $dir"
echo "pids: ${pids[*]}"
echo "endpoints: $endpoints"
ctl=$(dirname "$bin")/cairnctl
[ -x "$ctl" ] || ctl=$root/build/cairnctl
echo "try:"
echo "  ETCDCTL_API=2 etcdctl --endpoints $endpoints member list"
echo "  $ctl --endpoints $endpoints set /message hello"
echo "  curl -L $(client_url 1)/v2/keys/message"
echo "Ctrl-C stops the members and removes $dir"

# Polls rather than `wait -n`: a member that died before the wait began is
# already reaped and would not wake it. A signal ends the `wait` at once.
while [ $stopping = 0 ]; do
  if member_died; then
    stop_all
    exit 1
  fi
  sleep 0.2 &
  wait $! 2>/dev/null
done
echo "cluster: stopping pids ${pids[*]}"
stop_all
echo "cluster: stopped; removed $dir"
exit 0
