#!/usr/bin/env bash
# Runs the named make targets in order, each one whole even if an earlier
# one failed, and ends with one summary line counting the stages.
set -u
passed=0
failed=0
failed_names=()
for stage in "$@"; do
  echo "=== stage: $stage"
  start=$(date +%s)
  if make --no-print-directory "$stage"; then
    passed=$((passed + 1))
    echo "=== stage $stage: ok ($(( $(date +%s) - start ))s)"
  else
    failed=$((failed + 1))
    failed_names+=("$stage")
    echo "=== stage $stage: FAILED ($(( $(date +%s) - start ))s)"
  fi
done
if [ "$failed" -gt 0 ]; then
  echo "failed stages: ${failed_names[*]}"
fi
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
