#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS seconds: the seed corpus in Fuzz/corpus/TARGET first
# (every seed must pass), then mutations. New inputs go to BUILD/corpus/TARGET, so the
# committed seeds stay small; crashes, leaks, timeouts and out-of-memory inputs go to
# BUILD/artifacts/TARGET/ and fail the run (after the other targets had their turn).
#
#   Fuzz/run.sh SECONDS BUILD TARGET...     (BUILD: the fuzz build's scratch path, .build-fuzz)
# Prints one summary line per target: executions, coverage (edges), features, corpus size.
set -uo pipefail
seconds=$1 build=$2
shift 2
cd "$(dirname "$0")/.."
# libFuzzer prints the stack of a crash itself; the Swift runtime's backtracer would be a second,
# slow child process holding on to the caller's file descriptors (a build lock, say).
export SWIFT_BACKTRACE=enable=no
failed=()
for target in "$@"; do
  work=$build/corpus/$target artifacts=$build/artifacts/$target log=$build/logs/$target.log
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  # -timeout: one input running this long is a hang (a loop a guest could trigger);
  # -rss_limit_mb: a guest must not make the VMM allocate without bound either.
  "$build/debug/fuzz-$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$work" "Fuzz/corpus/$target" >"$log" 2>&1
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
  if [ $status -ne 0 ]; then
    echo "fuzz-$target: FAILED (exit $status) after ${runs:-?} runs; ${cov:-no stats}; log $log" >&2
    grep -E 'ERROR|invariant broken|Fatal error|Test unit written' "$log" | head -5 >&2
    failed+=("$target")
  else
    echo "fuzz-$target: ${runs} runs in ${seconds}s, ${cov}, 0 crashes"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing failed: ${failed[*]} (inputs in $build/artifacts/; replay one with $build/debug/fuzz-TARGET FILE)" >&2
  exit 1
fi
