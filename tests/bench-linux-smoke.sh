#!/usr/bin/env bash
# tests/bench-linux-smoke.sh — `apus bench boot` and `apus bench blk` end to end, one short run
# each (through scripts/bench-linux.sh, so in the nested test host here): every VMM must boot the
# guest, every metric must have a positive median for every VMM and an apus/QEMU ratio. Checks
# that the benchmarks work, not what they measure: no threshold on any figure.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=guest/build/bench-smoke
mkdir -p "$OUT"
failed=0
# python3 validates the JSON; Debian's fio (installed for the benchmark's guest) depends on it.
command -v python3 >/dev/null || { echo "BENCH-SMOKE setup FAIL: python3 is missing"; exit 1; }

# check NAME JSON METRIC...: every METRIC has a median > 0 for each VMM and two non-null ratios.
check() {
    local name=$1 json=$2 metric line vmm ok; shift 2
    if ! python3 -m json.tool "$json" >/dev/null 2>"$OUT/$name.json-error"; then
        echo "BENCH-SMOKE $name.json FAIL: not valid JSON ($(head -c 200 "$OUT/$name.json-error"))"
        failed=$((failed + 1))
        return
    fi
    for metric in "$@"; do
        # A metric's object is three lines: its name, "results" and "ratios" (LinuxBenchReport.json).
        line=$(grep -A2 "\"metric\": \"$metric\"" "$json" | tr -d '\n' || true)
        ok=1
        for vmm in apus qemu-microvm qemu-q35; do
            [[ $line =~ \"$vmm\":\ \{\"transport\":\ \"[a-z-]+\",\ \"median\":\ ([0-9.]+) ]] || { ok=0; continue; }
            awk -v v="${BASH_REMATCH[1]}" 'BEGIN { exit !(v > 0) }' || ok=0
        done
        for vmm in qemu-microvm qemu-q35; do
            [[ $line =~ \"apus/$vmm\":\ [0-9] ]] || ok=0
        done
        if ((ok)); then
            echo "BENCH-SMOKE $name.$metric PASS"
        else
            echo "BENCH-SMOKE $name.$metric FAIL (see $json)"
            failed=$((failed + 1))
        fi
    done
}

# run NAME ARGS...: one benchmark through scripts/bench-linux.sh (whose scripts/linux-host.sh
# reruns it once if the nested test host dies; nothing else is retried).
run() {
    local name=$1 status=0; shift
    echo "bench-smoke: apus bench $name $* ($(date +%T))" >&2
    APUS_BENCH_TIMEOUT=600 scripts/bench-linux.sh "$name" "$@" --json >"$OUT/$name.json" 2>"$OUT/$name.err" ||
        status=$?
    grep -a '^linux-host: .*running the group once more' "$OUT/$name.err" | sed 's/^/BENCH-SMOKE-NOTE /' || true
    if ((status != 0)); then
        echo "BENCH-SMOKE $name FAIL: exit status $status; last lines of $OUT/$name.err:"
        tail -n 30 "$OUT/$name.err"
        failed=$((failed + 1))
        return 1
    fi
}

run boot --runs 1 && check boot "$OUT/boot.json" to-init kernel-uptime-at-init to-exit
run blk --runs 1 --runtime 1 --disk-size 64M &&
    check blk "$OUT/blk.json" seq-read-mib-s seq-write-mib-s rand-read-iops rand-write-iops
echo "bench-smoke: $failed failed"
((failed == 0))
