#!/usr/bin/env bash
# run.sh PAYLOAD_DIR [--interactive] [--timeout SECS] [--append 'ARGS'] [--log FILE]
#
# Boots the nested test host (level 1: Debian's cloud kernel under QEMU TCG with an emulated SVM
# CPU) with PAYLOAD_DIR as /payload, and runs /payload/run.sh in it.
#   default        output on stdout (also saved in --log FILE, default guest/build/nested/NAME.log);
#                  exits with the payload's status (from the "NESTED-EXIT: N" line), 124 when the
#                  timeout (default 1200 s) expired, 125 when the host died without NESTED-EXIT.
#   --interactive  the terminal is the serial console (Ctrl-] x quits QEMU); no timeout unless given.
#   --append ARGS  extra kernel command-line words (e.g. apus.nested.shell=1).
# On timeout, QEMU's vCPU registers and LAPICs are saved in FILE.hang (needs socat).
# Environment: APUS_NESTED_CPU (EPYC,+svm,+npt minus what TCG lacks), APUS_NESTED_SMP (2),
#              APUS_NESTED_MEM (2G), APUS_NESTED_ACCEL (tcg), APUS_NESTED_TIMEOUT
#              (1200), APUS_LINUX_ASSETS (guest/build/linux), QEMU (qemu-system-x86_64).
set -euo pipefail

log() { printf 'nested-run: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

payload= interactive=0 timeout_s= append= logfile=
while (($#)); do
    case $1 in
        --interactive) interactive=1 ;;
        --timeout) timeout_s=${2:?--timeout needs seconds}; shift ;;
        --timeout=*) timeout_s=${1#*=} ;;
        --append) append=${2?--append needs an argument}; shift ;;
        --append=*) append=${1#*=} ;;
        --log) logfile=${2:?--log needs a file}; shift ;;
        --log=*) logfile=${1#*=} ;;
        -h|--help) sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) [[ -z $payload ]] || die "more than one PAYLOAD_DIR"; payload=$1 ;;
    esac
    shift
done
[[ -n $payload ]] || die "usage: $0 PAYLOAD_DIR [--interactive] [--timeout SECS] [--append ARGS] [--log FILE]"
[[ -d $payload ]] || die "payload directory $payload does not exist"
[[ $timeout_s =~ ^[0-9]*$ ]] || die "--timeout wants whole seconds"

ASSETS=${APUS_LINUX_ASSETS:-$ROOT/guest/build/linux}
export APUS_LINUX_ASSETS=$ASSETS
QEMU=${QEMU:-qemu-system-x86_64}
# EPYC with SVM and nested paging, minus the features QEMU 7.2's TCG cannot emulate (it would drop
# them anyway, with one warning per feature and vCPU).
CPU=${APUS_NESTED_CPU:-EPYC,+svm,+npt,-rdseed,-sha-ni,-fxsr-opt,-misalignsse,-3dnowprefetch,-osvw,-topoext,-nrip-save,-xsavec}
SMP=${APUS_NESTED_SMP:-2}
# Multi-threaded TCG (QEMU's default for -smp 2). Single-threaded TCG (APUS_NESTED_ACCEL=
# tcg,thread=single) avoided a rare level-1 livelock in KVM VM creation/destruction in a stress
# loop of tiny VMs, but a 2-vCPU level-2 Linux boot under apus then made no progress at all in
# 15 minutes, so the default stays multi-threaded.
ACCEL=${APUS_NESTED_ACCEL:-tcg}
MEM=${APUS_NESTED_MEM:-2G}
if ((interactive)); then timeout_s=${timeout_s:-0}; else timeout_s=${timeout_s:-${APUS_NESTED_TIMEOUT:-1200}}; fi

name=$(basename "$(cd "$payload" && pwd)")
build=$ROOT/guest/build/nested
mkdir -p "$build"
initrd=$build/host-$name.cpio # uncompressed: see pack_cpio in guest/linux/lib.sh
logfile=${logfile:-$build/$name.log}

command -v "$QEMU" >/dev/null || "$ROOT/guest/linux/fetch-assets.sh" "$ASSETS" # installs QEMU
"$HERE/build-host.sh" "$payload" "$initrd"

# quiet: only the payload's output and errors; panic=1 + -no-reboot: a panic ends QEMU at once.
# softlockup_panic=1: QEMU 7.2's TCG emulation of nested SVM can leave a host CPU spinning in the
# kernel for good (seen once in about a hundred level-2 boots, "watchdog: BUG: soft lockup" with
# KVM busy on the other CPU); better a panic after ~20 s (no NESTED-EXIT: status 125) than a hang
# until the timeout.
cmdline="console=ttyS0 quiet panic=1 oops=panic softlockup_panic=1"
((interactive)) && cmdline+=" apus.nested.interactive=1"
[[ -n $append ]] && cmdline+=" $append"
qemu=("$QEMU" -accel "$ACCEL" -cpu "$CPU" -smp "$SMP" -m "$MEM" -nographic -no-reboot -nic none
      -kernel "$ASSETS/vmlinuz" -initrd "$initrd" -append "$cmdline")
log "${qemu[*]}"

if ((interactive)); then
    # QEMU's console escape moves from Ctrl-A to Ctrl-] so that Ctrl-A x reaches apus.
    qemu+=(-echr 0x1d)
    log "interactive: the terminal is the host's serial console; Ctrl-] x quits QEMU"
    if ((timeout_s > 0)); then exec timeout --foreground "$timeout_s" "${qemu[@]}"; fi
    exec "${qemu[@]}"
fi

log "booting (timeout ${timeout_s} s, log $logfile)"
start=$(date +%s.%N)
# Print QEMU's output as it comes, noting the wall-clock time of the host's milestones.
annotate() {
    local line now
    while IFS= read -r line || [[ -n $line ]]; do
        printf '%s\n' "$line"
        case $line in
            *"nested-host: init reached"*|*"nested-host: running /payload"*|*"nested-host: /payload/run.sh finished"*|*NESTED-EXIT:*)
                now=$(date +%s.%N)
                line=${line%%$'\r'}
                case $line in *nested-host:*) line=nested-host:${line#*nested-host:} ;; *) line=NESTED-EXIT:${line#*NESTED-EXIT:} ;; esac
                log "$(awk -v a="$start" -v b="$now" 'BEGIN{printf "%.1f", b-a}') s wall clock: $line" ;;
        esac
    done
}
# Watchdog: at the timeout, save QEMU's view of the vCPUs (monitor `info registers -a`, via socat)
# in $logfile.hang, then stop QEMU. `timeout` is only the backstop.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/apus-nested.XXXXXX")
qemu+=(-monitor "unix:$tmp/monitor,server,nowait" -pidfile "$tmp/qemu.pid")
watchdog() {
    # The sleep must not outlive the watchdog: it holds our stdout, and a reader of run.sh's
    # output would wait for it.
    local sleeper
    sleep "$timeout_s" &
    sleeper=$!
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    wait "$sleeper"
    touch "$tmp/timed-out"
    log "timeout after ${timeout_s} s: saving vCPU state in $logfile.hang and stopping QEMU"
    if command -v socat >/dev/null; then
        local cmd i n=${SMP%%,*} cmds=("info status" "info cpus" "info registers -a")
        n=${n#cpus=}; [[ $n =~ ^[0-9]+$ ]] || n=1
        for ((i = 0; i < n; i++)); do cmds+=("cpu $i"$'\n'"info lapic"); done
        for cmd in "${cmds[@]}"; do
            echo "=== ${cmd//$'\n'/; }"
            # Drop the monitor's banner, prompt and line-editing echo.
            printf '%s\n' "$cmd" | socat -t 3 - "UNIX-CONNECT:$tmp/monitor" 2>&1 |
                tr -d '\r' | grep -av -e '^QEMU .* monitor' -e '^(qemu)'
        done >"$logfile.hang"
    fi
    [[ -s $tmp/qemu.pid ]] && kill "$(cat "$tmp/qemu.pid")" 2>/dev/null
}
watchdog &
watchdog_pid=$!
trap 'kill "$watchdog_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
rm -f "$logfile.hang"
set +e
# --foreground keeps QEMU in this process group, so Ctrl-C still reaches it.
timeout --foreground -k 10 $((timeout_s + 60)) "${qemu[@]}" </dev/null 2>&1 | tee "$logfile" | annotate
qemu_status=${PIPESTATUS[0]}
set -e
kill "$watchdog_pid" 2>/dev/null || true
[[ -e $tmp/timed-out ]] && qemu_status=124
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')

exit_line=$(tr -d '\r' <"$logfile" | grep -a -o 'NESTED-EXIT: [0-9]*' | tail -n 1 || true)
if [[ -n $exit_line ]]; then
    status=${exit_line#NESTED-EXIT: }
    log "payload exited with status $status; QEMU ran ${elapsed} s"
    exit "$status"
fi
if ((qemu_status == 124 || qemu_status == 137)); then
    log "error: timed out after ${timeout_s} s without NESTED-EXIT (log: $logfile${logfile:+, vCPU state: $logfile.hang})"
    exit 124
fi
log "error: QEMU exited with status $qemu_status after ${elapsed} s without NESTED-EXIT (log: $logfile)"
exit 125
