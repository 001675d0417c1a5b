#!/usr/bin/env bash
# nested-soak.sh [BOOTS] — how stable is the nested test host? Boots BOOTS fresh nested hosts
# (default 20), each running two level-2 boots under apus: the demo guest on 2 vCPUs (boot to
# /init, checks, power-off) and the disk scenario under sustained I/O (mkfs, 64 MiB written with
# fsync and read back). Nothing is rerun. Prints how each host ended, then the failure rate by kind:
#   ok            both level-2 boots passed
#   died KIND     the level-1 host failed: panic, soft-lockup, reset, lockup (heartbeat lost),
#                 timeout (see guest/nested/run.sh)
#   l2-crash      a level-2 guest crashed (apus status 70), the fault the harness excuses once
#   l2-fail       a level-2 check failed otherwise (an apus or guest failure, never excused)
# Try another configuration through the environment of guest/nested/run.sh, e.g.
#   APUS_NESTED_SMP=1 scripts/nested-soak.sh 20
#   APUS_NESTED_APPEND='clocksource=tsc tsc=reliable' scripts/nested-soak.sh 20
# Where /dev/kvm is hardware-backed there is no nested host, and this says so.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BOOTS=${1:-20}
[[ $BOOTS =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [BOOTS]" >&2; exit 64; }
LINUX=${LINUX_ASSETS:-guest/build/linux}
OUT=guest/build/soak
if [[ $(scripts/linux-host.sh mode 2>/dev/null) != nested ]]; then
    echo "nested-soak: /dev/kvm is hardware-backed here: there is no nested test host to soak"
    exit 0
fi
rm -rf "$OUT"; mkdir -p "$OUT/payload"
cp .build/release/apus "$LINUX/vmlinuz" "$LINUX/initrd.cpio.gz" "$OUT/payload/"
cat >"$OUT/payload/run.sh" <<SH
#!/bin/sh
# Written by scripts/nested-soak.sh: one soak round per group.
if [ "\${1-}" = --list ]; then i=1; while [ \$i -le $BOOTS ]; do echo "soak-\$i 400"; i=\$((i + 1)); done; exit 0; fi
BASE="console=ttyS0 panic=-1 quiet loglevel=4"
verdict() { # NAME STATUS LOG CHECKS: CHECKS, an extended regex of the guest's checks that count
    if [ "\$2" -eq 70 ]; then echo "HOST-FAULT l2-crash \$1"; fi
    failed=\$(grep -aE "APUS-E2E: (\$4) FAIL" "\$3" | head -n 1)
    if [ "\$2" -ne 0 ] || [ -n "\$failed" ]; then echo "SOAK \$1 l2-fail (apus status \$2) \$failed"; else echo "SOAK \$1 ok"; fi
}
timeout 150 ./apus run --kernel vmlinuz --initrd initrd.cpio.gz --cpus 2 --memory 512M --console file=/tmp/boot.log \\
    --cmdline "\$BASE apus.test=boot apus.marker=xyz apus.expect.cpus=2" </dev/null 2>/tmp/boot.err
verdict demo-boot \$? /tmp/boot.log 'boot\\.(cmdline|nproc|memtotal)'
dd if=/dev/zero of=/tmp/disk.img bs=1M count=128 2>/dev/null
timeout 200 ./apus run --kernel vmlinuz --initrd initrd.cpio.gz --memory 512M --console file=/tmp/disk.log \\
    --disk path=/tmp/disk.img --cmdline "\$BASE apus.test=disk apus.disk.stress_mib=64" </dev/null 2>/tmp/disk.err
verdict disk-io \$? /tmp/disk.log 'disk\\.(found|write|read-back|stress)'
tail -n 5 /tmp/boot.err /tmp/disk.err
exit 0
SH
chmod +x "$OUT/payload/run.sh"
echo "nested-soak: $BOOTS nested hosts (${APUS_NESTED_SMP:-2} vCPUs, ${APUS_NESTED_MEM:-2G}, cpu ${APUS_NESTED_CPU:-default}, extra kernel options '${APUS_NESTED_APPEND:-}')" >&2
start=$SECONDS
scripts/linux-host.sh run --no-rerun --payload "$OUT/payload" --out "$OUT/groups" || true
declare -A kinds=()
while IFS=$'\t' read -r group _ end _; do
    log=$OUT/groups/$group.log
    case $end in
        "died l2-crash") kind=l2-crash ;;
        died*) kind=$end ;;
        "exit 0") if grep -aq '^SOAK .* l2-fail' "$log"; then kind=l2-fail; else kind=ok; fi ;;
        *) kind="payload status ${end#exit }" ;;
    esac
    echo "nested-soak: $group: $kind $(tr -d '\r' <"$log" | grep -a '^SOAK ' | cut -d' ' -f2- | tr '\n' ';')"
    kinds[$kind]=$(( ${kinds[$kind]:-0} + 1 ))
done <"$OUT/groups/groups.tsv"
summary=
for k in "${!kinds[@]}"; do summary+=" $k ${kinds[$k]},"; done
echo "nested-soak: $BOOTS hosts, $((BOOTS * 2)) level-2 boots in $((SECONDS - start)) s:${summary%,}"
