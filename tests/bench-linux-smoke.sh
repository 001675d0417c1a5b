#!/usr/bin/env bash
# tests/bench-linux-smoke.sh — `apus bench boot`, `blk` and `net` end to end, one short run each
# (through scripts/bench-linux.sh, so in the nested test host here) of every column: for boot and
# blk each VMM (every apus transport), for net apus-pci and qemu-q35 with and without vhost-net.
# Every metric must have a positive median for every column and a ratio to the baseline
# (apus-mmio; apus-pci for net) for every other; a loss percentage may be 0 (and then has no
# ratio). Checks that the benchmarks work, not what they measure: no threshold on any figure.
set -euo pipefail
# Environment: BENCH_SMOKE_BENCHMARKS (default "boot blk net") runs only those.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=guest/build/bench-smoke
mkdir -p "$OUT"
failed=0
# python3 reads the JSON; Debian's fio (installed for the benchmark's guest) depends on it.
command -v python3 >/dev/null || { echo "BENCH-SMOKE setup FAIL: python3 is missing"; exit 1; }
VMMS="apus-mmio apus-pci apus-pci-pio qemu-microvm qemu-q35"
# The report's columns and baseline, as check() expects them (net changes them).
SMOKE_COLUMNS=$VMMS
BASELINE=apus-mmio

# check NAME JSON METRIC...: prints one PASS or FAIL line per METRIC (or one FAIL when the file
# is not the report's JSON): a median > 0 for each of $SMOKE_COLUMNS (>= 0 for a "-loss-pct" metric),
# a non-null ratio for each but $BASELINE (not for losses), and $BASELINE named as the report's
# baseline.
check() {
    local name=$1 json=$2 line; shift 2
    while IFS= read -r line; do
        echo "$line"
        [[ $line == *" PASS" ]] || failed=$((failed + 1))
    done < <(python3 - "$name" "$json" "$SMOKE_COLUMNS" "$BASELINE" "$@" <<'PY' 2>&1 || echo "BENCH-SMOKE $name FAIL: the check itself failed"
import json, sys
name, path, vmms, baseline, metrics = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4], sys.argv[5:]
try:
    report = json.load(open(path))
    by_key = {m["metric"]: m for m in report["metrics"]}
except Exception as error:
    print(f"BENCH-SMOKE {name}.json FAIL: not the report's JSON ({str(error)[:200]})")
    sys.exit(0)
for metric in metrics:
    m = by_key.get(metric, {})
    results, ratios = m.get("results", {}), m.get("ratios", {})
    loss = metric.endswith("-loss-pct")
    ok = report.get("baseline") == baseline
    ok = ok and all(results.get(v, {}).get("median", -1) >= 0 if loss else results.get(v, {}).get("median", 0) > 0 for v in vmms)
    ok = ok and (loss or all(ratios.get(f"{v}/{baseline}") is not None for v in vmms if v != baseline))
    print(f"BENCH-SMOKE {name}.{metric} PASS" if ok else f"BENCH-SMOKE {name}.{metric} FAIL (see {path})")
PY
    )
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

wanted() { [[ " ${BENCH_SMOKE_BENCHMARKS:-boot blk net} " == *" $1 "* ]]; }

wanted boot && run boot --runs 1 --vmm $VMMS && check boot "$OUT/boot.json" to-init kernel-uptime-at-init to-exit
wanted blk && run blk --runs 1 --runtime 1 --disk-size 64M --vmm $VMMS &&
    check blk "$OUT/blk.json" seq-read-mib-s seq-write-mib-s rand-read-iops rand-write-iops
SMOKE_COLUMNS="apus-pci apus-pci-vhost qemu-q35 qemu-q35-vhost" BASELINE=apus-pci
net_metrics=()
for t in tcp-guest-to-host-1 tcp-guest-to-host-4 tcp-host-to-guest-1 tcp-host-to-guest-4; do net_metrics+=("$t-mbit-s"); done
for t in udp-guest-to-host-64b udp-host-to-guest-64b; do net_metrics+=("$t-pps" "$t-loss-pct"); done
# only_qemu_boots_failed: the net report's failed boots are all QEMU's. In the nested test host
# QEMU's own level-2 guest sometimes dies under network load (its emulated SVM: see
# docs/linux-benchmarks.md), which says nothing about apus; that alone earns one more run there.
# A failed apus boot, or anything on hardware, is never run again.
only_qemu_boots_failed() {
    [[ $(scripts/linux-host.sh mode 2>/dev/null) == nested ]] || return 1
    python3 - "$OUT/net.json" <<'PY'
import json, sys
try:
    failed = {c for c, n in json.load(open(sys.argv[1])).get("failed_boots", {}).items() if n}
except (OSError, ValueError):
    sys.exit(1)
sys.exit(0 if failed and all(c.startswith("qemu") for c in failed) else 1)
PY
}
net_args=(--runs 1 --time 1 --vmm apus-pci qemu-q35 --vhost off on)
if wanted net; then
    if run net "${net_args[@]}"; then
        check net "$OUT/net.json" "${net_metrics[@]}"
    elif only_qemu_boots_failed; then
        echo "bench-smoke: net: only QEMU's guest failed to boot or finish (the nested host's emulated SVM); running it once more" >&2
        failed=$((failed - 1))
        run net "${net_args[@]}" && check net "$OUT/net.json" "${net_metrics[@]}"
    fi
fi
echo "bench-smoke: $failed failed"
((failed == 0))
