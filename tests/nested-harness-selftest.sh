#!/usr/bin/env bash
# tests/nested-harness-selftest.sh — the nested test harness itself: a level-1 host that fails in
# the middle of a group must cost that group exactly one rerun, and the run must still pass.
# Two faults, each injected on purpose 3 s into the first attempt of one small e2e group (whose
# level-2 boot takes several seconds there; APUS_NESTED_FAULT, scripts/linux-host.sh):
#   freeze  the host's vCPUs stop (as in a level-1 hard lockup): found by the lost heartbeat
#   kill    QEMU is killed (as in a silent reset)
# Where /dev/kvm is hardware-backed there is no nested host to fail, and this says so.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=guest/build/harness-selftest
GROUP=boot-smp-memory-cmdline
mkdir -p "$OUT"
if [[ $(scripts/linux-host.sh mode 2>/dev/null) != nested ]]; then
    echo "harness-selftest: /dev/kvm is hardware-backed here: no nested test host to test (nothing run)"
    exit 0
fi
passed=0 failed=0
for fault in freeze kill; do
    out=$OUT/$fault
    status=0
    echo "harness-selftest: group $GROUP, nested host made to fail ($fault) 3 s into its first attempt ($(date +%T))" >&2
    APUS_E2E_OUT=$out APUS_E2E_GROUPS=$GROUP APUS_NESTED_FAULT="$GROUP:$fault@3" SECOND_LINUX_ASSETS= \
        guest/e2e/run-e2e.sh >"$out.log" 2>&1 || status=$?
    want=lockup; [[ $fault == kill ]] && want=reset
    row=$(cat "$out/groups/groups.tsv" 2>/dev/null || true)
    if ((status == 0)) && [[ $row == "$GROUP"$'\t'2$'\t'"exit 0"$'\t'"$want" ]] &&
        grep -q "^e2e: 1 groups, 1 rerun because the nested test host failed: $GROUP ($want)$" "$out.log"; then
        echo "HARNESS-SELFTEST $fault PASS the group was rerun once ($want) and passed"
        passed=$((passed + 1))
    else
        echo "HARNESS-SELFTEST $fault FAIL (run-e2e status $status; groups.tsv: ${row:-none}); last lines of $out.log:"
        tail -n 25 "$out.log"
        failed=$((failed + 1))
    fi
done
echo "harness-selftest: $passed passed, $failed failed"
((failed == 0))
