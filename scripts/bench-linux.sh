#!/usr/bin/env bash
# bench-linux.sh boot|blk|net [APUS-BENCH-OPTIONS...] — `apus bench boot`, `blk` or `net` (apus
# beside QEMU, booting the same Linux guest), run where Linux can boot:
#   hardware  /dev/kvm has VMX/SVM behind it: the release apus runs the benchmark directly (net
#             needs root: it creates the tap)
#   nested    otherwise (kvm_pvm): inside the nested test host, with apus, QEMU (Debian's
#             qemu-system-x86, with its shared libraries and firmware), the guest and, for net,
#             the host's iperf3 (with its libraries) as payload
# For net, the payload creates the tap apusbench0 with 10.0.2.1/24 before the benchmark (the
# guest is 10.0.2.15) and removes it after.
# scripts/linux-host.sh decides which and reruns the benchmark once if the nested host dies, or
# if the benchmark failed and a level-2 guest crashed under apus in the nested host (the payload
# then reports "HOST-FAULT l2-crash", as e2e does; QEMU's guests end silently on a crash).
# The report (table, or --json/--csv output) goes to stdout; progress and the nested host's
# console to stderr. Exits with apus bench's status.
#
#   scripts/bench-linux.sh boot
#   scripts/bench-linux.sh blk --runs 3 --json > blk.json
#   scripts/bench-linux.sh blk --vmm apus-pci apus-pci-pio --baseline apus-pci
#   scripts/bench-linux.sh net --runs 3 --time 5
#
# Environment: LINUX_ASSETS (guest/build/linux), APUS_BENCH_TIMEOUT (3600 s),
# APUS_LINUX_HOST=hardware|nested (overrides the detection), APUS_NESTED_* (guest/nested/run.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf 'bench-linux: %s\n' "$*" >&2; }

kind=${1-}
case $kind in
    boot|blk|net) shift ;;
    -h|--help) sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) log "usage: $0 boot|blk|net [apus bench options...]"; exit 64 ;;
esac
APUS=.build/release/apus
LINUX=${LINUX_ASSETS:-guest/build/linux}
initrd=$LINUX/initrd.cpio.gz
[[ $kind == blk ]] && initrd=$LINUX/initrd-fio.cpio.gz
[[ $kind == net ]] && initrd=$LINUX/initrd-iperf3.cpio.gz
payload=guest/build/bench-linux
rm -rf "$payload"
mkdir -p "$payload/qemu/share"
cp "$APUS" "$LINUX/vmlinuz" "$payload/"
cp "$initrd" "$payload/initrd.cpio.gz"
cp "$(command -v qemu-system-x86_64)" "$payload/qemu/"
# net: the host end's iperf3 (build-host.sh adds its shared libraries).
if [[ $kind == net ]]; then
    cp "$(command -v iperf3)" "$payload/" || { log "error: iperf3 is not installed (guest/linux/fetch-assets.sh installs it)"; exit 1; }
fi
# The firmware the two machines load with -kernel: SeaBIOS (q35), its microvm build, and the
# option ROMs that boot a kernel from fw_cfg. Found where Debian's QEMU looks for them.
for f in bios-256k.bin bios-microvm.bin linuxboot_dma.bin linuxboot.bin kvmvapic.bin pvh.bin multiboot_dma.bin qboot.rom; do
    src=
    for dir in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
        [[ -e $dir/$f ]] && { src=$dir/$f; break; }
    done
    [[ -n $src ]] || { log "error: QEMU firmware $f not found (is qemu-system-x86 installed?)"; exit 1; }
    cp -L "$src" "$payload/qemu/share/$f"
done
{
    echo '#!/bin/sh'
    echo '# Written by scripts/bench-linux.sh: the benchmark, its report between two marker lines.'
    printf 'if [ "${1-}" = --list ]; then echo "bench-%s %s"; exit 0; fi\n' "$kind" "${APUS_BENCH_TIMEOUT:-3600}"
    echo 'cd "$(dirname "$0")"'
    echo '# Kernel messages on the nested host'"'"'s console could land inside the report: keep only emergencies.'
    echo '[ "${APUS_NESTED:-0}" = 1 ] && dmesg -n 1'
    echo 'logs=$(mktemp -d /tmp/apus-bench.XXXXXX)'
    if [[ $kind == net ]]; then
        echo '# The tap every VMM attaches to, its host end 10.0.2.1 (the guest takes 10.0.2.15).'
        echo 'tap=apusbench0'
        echo 'ip link del $tap 2>/dev/null'
        echo '{ ip tuntap add $tap mode tap 2>/dev/null || tunctl -t $tap >/dev/null 2>&1; } &&'
        echo '    ip addr add 10.0.2.1/24 dev $tap && ip link set $tap up ||'
        echo '    { echo "bench-linux: cannot create the tap $tap (needs root and the tun module)"; exit 1; }'
    fi
    printf './apus bench %s --kernel vmlinuz --initrd initrd.cpio.gz' "$kind"
    printf ' --qemu ./qemu/qemu-system-x86_64 --qemu-firmware ./qemu/share --log-dir "$logs"'
    [[ $kind == net ]] && printf ' --tap "$tap" --iperf3 ./iperf3'
    (($# == 0)) || printf ' %q' "$@"
    echo ' > "$logs/report"'
    echo 'status=$?'
    [[ $kind == net ]] && echo 'ip link del $tap 2>/dev/null || tunctl -d $tap >/dev/null 2>&1'
    echo 'echo "BENCH-REPORT-BEGIN"; cat "$logs/report"; echo "BENCH-REPORT-END"'
    echo '[ $status -eq 0 ] || for f in "$logs"/*.log; do echo "== $f"; tail -n 20 "$f"; done'
    echo '# A level-2 guest that crashed under apus in the nested host: the emulated SVM'"'"'s fault, as'
    echo '# e2e reports it (guest/e2e/scenarios.sh); scripts/linux-host.sh reruns the group once.'
    echo 'crash=$(cat "$logs"/*.log 2>/dev/null | grep -a -m1 "guest crashed")'
    echo 'if [ $status -ne 0 ] && [ "${APUS_NESTED:-0}" = 1 ] && [ -n "$crash" ]; then'
    echo '    echo "HOST-FAULT l2-crash $crash"; exit 0'
    echo 'fi'
    echo 'exit $status'
} >"$payload/run.sh"
chmod +x "$payload/run.sh"

out=guest/build/bench-linux-out
status=0
scripts/linux-host.sh run --follow --payload "$payload" --out "$out" || status=$?
console=$out/bench-$kind.log
tr -d '\r' <"$console" | sed -n '/^BENCH-REPORT-BEGIN$/,/^BENCH-REPORT-END$/{/^BENCH-REPORT-/d;p}'
end=$(cut -f3 "$out/groups.tsv")
case $end in
    "exit "*) exit "${end#exit }" ;;
    *) log "error: the nested test host failed twice ($(cut -f4 "$out/groups.tsv") then ${end#died }); consoles in $out"; exit 125 ;;
esac
