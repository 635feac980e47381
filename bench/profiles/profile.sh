#!/bin/sh
# Instruction profile of cairn's PUT and GET paths under callgrind.
# Usage: bench/profiles/profile.sh [BUILD_DIR] [N]   (defaults: build-prof 20000)
# Starts cairn under callgrind on a fresh data dir, zeroes the counters once
# it serves, drives N PUTs (16 connections, 1000 random keys, 256 B values)
# and dumps, then N GETs of the same keys and dumps, then stops cairn with
# SIGTERM. Writes callgrind.out.* and the annotated summaries put.txt and
# get.txt into OUT (a temp dir unless OUT is set).
set -eu
B=${1:-build-prof}
N=${2:-20000}
OUT=${OUT:-$(mktemp -d /tmp/cairn-prof.XXXXXX)}
PORT=${PORT:-23790}
URL=http://127.0.0.1:$PORT
DATA=$OUT/data
rm -rf "$DATA"
cd "$OUT"
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
    "$OLDPWD/$B/cairn" --name prof --data-dir "$DATA" \
    --listen-client-urls "$URL" --advertise-client-urls "$URL" \
    --listen-peer-urls http://127.0.0.1:$((PORT + 1)) \
    --initial-advertise-peer-urls http://127.0.0.1:$((PORT + 1)) \
    --initial-cluster prof=http://127.0.0.1:$((PORT + 1)) \
    --initial-cluster-state new --enable-v2 >"$OUT/cairn.log" 2>&1 &
PID=$!
cd "$OLDPWD"
i=0
until curl -sf "$URL/v2/keys/" >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 300 ] || { kill $PID; echo "cairn did not start" >&2; exit 1; }
	sleep 0.1
done
callgrind_control -z $PID >/dev/null 2>&1
"$B/cairn-bench" put --endpoints "$URL" --conns 16 --total "$N" \
    >"$OUT/put-bench.txt"
callgrind_control -d put $PID >/dev/null 2>&1
"$B/cairn-bench" get --endpoints "$URL" --conns 16 --total "$N" \
    --no-preload >"$OUT/get-bench.txt"
callgrind_control -d get $PID >/dev/null 2>&1
kill -TERM $PID
wait $PID || true
for f in "$OUT"/callgrind.out.*; do
	case $(grep -m1 '^desc: Trigger:' "$f") in
	*"dump put") p=put ;;
	*"dump get") p=get ;;
	*) continue ;;
	esac
	{
		echo "== $p: N=$N requests, 16 connections (bench output below)"
		cat "$OUT/$p-bench.txt"
		echo "== inclusive"
		callgrind_annotate --inclusive=yes --threshold=99 "$f" | head -60
		echo "== self"
		callgrind_annotate --threshold=99 "$f" | head -60
	} >"$OUT/$p.txt"
done
echo "$OUT"
