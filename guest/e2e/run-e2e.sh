#!/usr/bin/env bash
# make e2e: the Linux end-to-end scenarios (guest/e2e/scenarios.sh), group by group, through
# scripts/linux-host.sh: directly where /dev/kvm is hardware-backed, one nested test host boot per
# group where it is not. Prints every check, the groups that were rerun and why, and a final
# "e2e: N passed, N failed" line; fails if any check failed.
#
# Environment: LINUX_ASSETS (the main kernel's guest, guest/build/linux by default: what
#              KERNEL_PACKAGE built), SECOND_LINUX_ASSETS (a second flavour's guest, for the
#              groups named NAME@FLAVOUR; empty: none), APUS_E2E_GROUPS (space-separated subset),
#              APUS_E2E_OUT (guest/build/e2e), APUS_LINUX_HOST=hardware|nested (overrides the
#              detection), APUS_NESTED_FAULT (see scripts/linux-host.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
LINUX=${LINUX_ASSETS:-guest/build/linux}
SECOND=${SECOND_LINUX_ASSETS-}
APUS_BIN=${APUS_BIN:-.build/release/apus}
OUT=${APUS_E2E_OUT:-guest/build/e2e}
rm -rf "$OUT"; mkdir -p "$OUT"

mode=$(scripts/linux-host.sh mode 2>/dev/null)
echo "e2e: /dev/kvm here is $([ "$mode" = hardware ] && echo 'hardware-backed: running the groups directly' \
    || echo 'not hardware-backed (no VMX/SVM): each group runs in its own nested test host boot')" >&2

# The payload: apus, the scenarios and the kernels, packaged once for every group.
payload=$OUT/payload
add_kernel() { # add_kernel NAME ASSETS-DIR
    local dir=$payload/kernels/$1
    mkdir -p "$dir"
    for f in vmlinuz initrd.cpio.gz kernel-config kernel-package; do
        [[ -s $2/$f ]] || { echo "e2e: error: $2/$f is missing (make guest-linux KERNEL_PACKAGE=...)" >&2; exit 1; }
        cp "$2/$f" "$dir/"
    done
}
mkdir -p "$payload"
cp "$APUS_BIN" "$payload/apus"
cp guest/e2e/scenarios.sh "$payload/run.sh"
add_kernel main "$LINUX"
[[ -z $SECOND || $(cat "$SECOND/kernel-package") == $(cat "$LINUX/kernel-package") ]] || add_kernel second "$SECOND"
echo "e2e: kernels: $(cat "$payload"/kernels/*/kernel-package | tr '\n' ' ')" >&2

read -ra groups <<<"${APUS_E2E_GROUPS:-}"
status=0
scripts/linux-host.sh run --payload "$payload" --out "$OUT/groups" ${groups[@]+"${groups[@]}"} || status=$?

if [[ ! -s $OUT/groups/groups.tsv ]]; then
    echo "E2E-RESULT harness FAIL scripts/linux-host.sh ran no group (status $status; see above)"
    echo "e2e: 0 passed, 1 failed"
    exit 1
fi

# Results: each group's last attempt; a group without any result failed as a whole.
: >"$OUT/results.log"
reruns=()
while IFS=$'\t' read -r group tries end why; do
    log=$OUT/groups/$group.log
    found=$(tr -d '\r' <"$log" | grep -a '^E2E-RESULT ' || true)
    [[ -z $found ]] || printf '%s\n' "$found" >>"$OUT/results.log"
    case $end in
        "exit 0") [[ -n $found ]] || echo "E2E-RESULT $group FAIL the group reported nothing (console: $log)" >>"$OUT/results.log" ;;
        died*) echo "E2E-RESULT $group FAIL the nested test host failed twice (${why:+$why, then }${end#died }; consoles: $OUT/groups/$group.died-1.log, $log)" >>"$OUT/results.log" ;;
        *) echo "E2E-RESULT $group FAIL the group ended with status ${end#exit } (console: $log)" >>"$OUT/results.log" ;;
    esac
    [[ -z $why ]] || reruns+=("$group ($why)")
    if [[ $end != "exit 0" ]] || grep -q ' FAIL ' <<<"$found"; then
        echo "---- console of group $group (last 60 lines)"
        tail -n 60 "$log" | tr -d '\r'
    fi
done <"$OUT/groups/groups.tsv"
cat "$OUT/results.log"

ngroups=$(wc -l <"$OUT/groups/groups.tsv")
passed=$(grep -c ' PASS ' "$OUT/results.log" || true)
failed=$(grep -c ' FAIL ' "$OUT/results.log" || true)
if ((passed + failed == 0)); then
    echo "E2E-RESULT no-results FAIL no group reported anything" >>"$OUT/results.log"
    failed=1
fi
if ((${#reruns[@]})); then
    echo "e2e: $ngroups groups, ${#reruns[@]} rerun because the nested test host failed: ${reruns[*]}"
else
    echo "e2e: $ngroups groups, none rerun"
fi
echo "e2e: $passed passed, $failed failed"
((failed == 0 && status == 0))
