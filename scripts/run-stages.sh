#!/usr/bin/env bash
# Runs the named make targets, each one whole even if an earlier one failed,
# and ends with one summary line counting the stages.
#
# Two lanes run side by side (STAGE_LANES=1 runs everything in order): the
# compile- and CPU-bound stages (style, unit, sanitizer, valgrind, fuzz,
# simulation) in one, the process-level suites, which mostly wait on their
# servers, in the other. Each stage's output is kept in a file and printed
# whole when the stage ends, so the two lanes never interleave lines.
set -u
lanes=${STAGE_LANES:-2}
logdir=$(mktemp -d "${TMPDIR:-/tmp}/cairn-stages.XXXXXX")
trap 'rm -rf "$logdir"' EXIT

is_cpu_stage() {
  case "$1" in
    check-style|check-includes|check-unit*|check-fuzz*|check-sim*|\
    check-bench-unit|check-store-*|check-cluster-unit) return 0 ;;
  esac
  return 1
}

# run_lane STAGE... : runs stages in order; writes "<name> <rc> <secs>" lines.
run_lane() {
  for stage in "$@"; do
    start=$(date +%s)
    make --no-print-directory "$stage" >"$logdir/$stage.log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    {
      echo "=== stage: $stage"
      cat "$logdir/$stage.log"
      if [ $rc -eq 0 ]; then echo "=== stage $stage: ok (${secs}s)"
      else echo "=== stage $stage: FAILED (${secs}s)"; fi
    } | flock "$logdir/.out" cat
    echo "$stage $rc" >>"$logdir/results"
  done
}

touch "$logdir/results" "$logdir/.out"
if [ "$lanes" -le 1 ]; then
  run_lane "$@"
else
  cpu=(); procs=()
  for s in "$@"; do
    if is_cpu_stage "$s"; then cpu+=("$s"); else procs+=("$s"); fi
  done
  run_lane "${cpu[@]}" &
  pid_cpu=$!
  run_lane "${procs[@]}" &
  pid_proc=$!
  wait $pid_cpu $pid_proc
fi

passed=0
failed=0
failed_names=()
while read -r name rc; do
  if [ "$rc" -eq 0 ]; then passed=$((passed + 1))
  else failed=$((failed + 1)); failed_names+=("$name"); fi
done <"$logdir/results"
if [ "$failed" -gt 0 ]; then
  echo "failed stages: ${failed_names[*]}"
fi
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
