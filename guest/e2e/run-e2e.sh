#!/usr/bin/env bash
# make e2e: boots Linux under apus and runs guest/e2e/scenarios.sh, directly where /dev/kvm is
# hardware-backed and inside the nested test host (QEMU TCG with SVM) where it is not.
# Prints every check and a final "N passed, N failed" line; fails if any check failed.
#
# Environment: APUS_E2E_KERNEL / APUS_E2E_INITRD to test another kernel or initramfs;
#              APUS_E2E_MODE=hardware|nested to override the detection.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
LINUX=guest/build/linux
KERNEL=${APUS_E2E_KERNEL:-$LINUX/vmlinuz}
INITRD=${APUS_E2E_INITRD:-$LINUX/initrd.cpio.gz}
APUS_BIN=${APUS_BIN:-.build/release/apus}
OUT=guest/build/e2e
mode=${APUS_E2E_MODE:-$(guest/nested/detect.sh 2>/dev/null)}
rm -rf "$OUT"; mkdir -p "$OUT"

echo "e2e: /dev/kvm here is $([ "$mode" = hardware ] && echo 'hardware-backed: running the scenarios directly' \
    || echo 'not hardware-backed (no VMX/SVM): running the scenarios inside the nested test host')" >&2

if [ "$mode" = hardware ]; then
    APUS=$APUS_BIN KERNEL=$KERNEL INITRD=$INITRD WORK=$OUT/work guest/e2e/scenarios.sh > "$OUT/console.log"
    grep -a '^E2E-RESULT' "$OUT/console.log" > "$OUT/results.log" || true
    cat "$OUT/console.log"
else
    payload=$OUT/payload
    mkdir -p "$payload"
    cp "$APUS_BIN" "$payload/apus"
    cp "$KERNEL" "$payload/vmlinuz"
    cp "$INITRD" "$payload/initrd.cpio.gz"
    cp guest/e2e/scenarios.sh "$payload/run.sh"
    # A nested host that dies (status 125: QEMU TCG's nested SVM reset it or it panicked on a
    # soft lockup) or goes silent past its timeout (124: a level-1 hard lockup, both CPUs spinning
    # with interrupts off, seen once in CI) is the test host failing: boot it once more and say
    # so. A second failure fails. The timeout (900 s; the scenarios take about 4 minutes) leaves
    # room for one boot to hit its own limit (APUS_E2E_TIMEOUT, 300 s) and be reported as a FAIL
    # by the scenarios, which is how a hung apus shows up.
    for attempt in 1 2; do
        status=0
        guest/nested/run.sh "$payload" --timeout "${APUS_E2E_NESTED_TIMEOUT:-900}" --log "$OUT/nested.log" \
            > "$OUT/console.log" || status=$?
        if { [ "$status" -ne 125 ] && [ "$status" -ne 124 ]; } || [ "$attempt" -eq 2 ]; then break; fi
        cp "$OUT/console.log" "$OUT/console.died.log"
        echo "E2E-NOTE the nested test host failed (status $status: 125 died, 124 went silent; console in $OUT/console.died.log); booting it once more"
    done
    grep -a '^E2E-RESULT' "$OUT/console.log" | tr -d '\r' > "$OUT/results.log" || true
    grep -a '^E2E-NOTE' "$OUT/console.log" | tr -d '\r' || true
    cat "$OUT/results.log"
    if [ "$status" -ne 0 ]; then
        echo "e2e: the nested host ended with status $status; its console (last 40 lines):" >&2
        tail -n 40 "$OUT/console.log" >&2
        echo "E2E-RESULT nested-host FAIL status $status" >> "$OUT/results.log"
    fi
fi

passed=$(grep -c ' PASS ' "$OUT/results.log" || true)
failed=$(grep -c ' FAIL ' "$OUT/results.log" || true)
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
    echo "E2E-RESULT no-results FAIL no scenario reported" >> "$OUT/results.log"
    failed=1
fi
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
