#!/usr/bin/env bash
# Proves that apus's exit path does not allocate: the benchmark guest is run with 1000 and with
# 11000 accesses per kind (40000 more userspace exits, plus ioeventfd and cpuid exits) under an
# LD_PRELOAD shim that counts malloc/calloc/realloc calls. The counts must be (nearly) equal:
# allowed slack is 40 calls in total, i.e. under 0.001 allocations per exit.
# Usage: tests/malloc-per-exit.sh APUS MALLOC_COUNT_SO GUEST. Prints "N passed, N failed".
set -uo pipefail
APUS=${1:?apus} SHIM=${2:?malloc-count.so} GUEST=${3:?bench-exits.bin}

count() {
    LD_PRELOAD=$SHIM "$APUS" bench exits --guest "$GUEST" --reference none --rounds 1 --iterations "$1" --csv \
        2>&1 >/dev/null | sed -n 's/^malloc-count: //p' | tail -n 1
}
small=$(count 1000)
large=$(count 11000)
if [ -z "$small" ] || [ -z "$large" ]; then
    echo "FAIL malloc-per-exit: no count (is $SHIM loadable?)"
    echo "malloc-per-exit: 0 passed, 1 failed"
    exit 1
fi
extra=$((large - small))
exits=$((10000 * 9))
if [ "${extra#-}" -le 40 ]; then
    echo "PASS malloc-per-exit: $small mallocs with 1000 accesses per kind, $large with 11000 ($extra more for $exits more exits)"
    echo "malloc-per-exit: 1 passed, 0 failed"
else
    echo "FAIL malloc-per-exit: $small mallocs with 1000 accesses per kind, $large with 11000: $extra more for $exits more exits"
    echo "malloc-per-exit: 0 passed, 1 failed"
    exit 1
fi
