#!/usr/bin/env bash
# run.sh HOST_INITRD [--interactive] [--args 'WORDS'] [--timeout SECS] [--append 'ARGS'] [--log FILE]
#        [--fault KIND@SECS]
#
# Boots the nested test host (level 1: the Debian cloud kernel under QEMU TCG with an emulated SVM
# CPU) once, from HOST_INITRD (made by build-host.sh), and runs /payload/run.sh WORDS in it.
# scripts/linux-host.sh is the one caller that decides what to boot and what to rerun; this
# script only boots, watches and tells how the host ended.
#
#   default        console on stdout (and in --log FILE); the host's end goes to FILE.verdict:
#                    "exit N"      the payload finished with status N (exit status N)
#                    "died KIND"   the host itself failed (exit status 125), KIND one of
#                                  panic, soft-lockup, reset (QEMU stopped with no panic: a
#                                  reset, a triple fault or a kill), lockup (heartbeat lost: no
#                                  line on the host's second serial port for APUS_NESTED_HEARTBEAT
#                                  seconds, e.g. both CPUs spinning with interrupts off), timeout
#                                  (the heartbeat went on but the payload overran --timeout)
#   --interactive  the terminal is the serial console (Ctrl-] x quits QEMU); no timeout unless given.
#   --args WORDS   arguments for /payload/run.sh (kernel command line apus.nested.args=...).
#   --append ARGS  extra kernel command-line words.
#   --fault K@S    harness self-test: S seconds after the host started the payload, make it fail
#                  on purpose: freeze (stop its vCPUs: a lockup) or kill (SIGKILL QEMU: a reset).
# On a lockup or timeout, QEMU's vCPU registers and LAPICs are saved in FILE.hang (needs socat).
# Environment: APUS_NESTED_CPU (EPYC,+svm,+npt minus what TCG lacks), APUS_NESTED_SMP (2),
#              APUS_NESTED_MEM (2G), APUS_NESTED_ACCEL (tcg), APUS_NESTED_APPEND (kernel options),
#              APUS_NESTED_HEARTBEAT (30 s), APUS_LINUX_ASSETS (guest/build/linux),
#              QEMU (qemu-system-x86_64).
set -euo pipefail

log() { printf 'nested-run: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

initrd= interactive=0 timeout_s= append= logfile= args= fault=
while (($#)); do
    case $1 in
        --interactive) interactive=1 ;;
        --timeout) timeout_s=${2:?--timeout needs seconds}; shift ;;
        --append) append=${2?--append needs an argument}; shift ;;
        --args) args=${2?--args needs an argument}; shift ;;
        --log) logfile=${2:?--log needs a file}; shift ;;
        --fault) fault=${2:?--fault needs KIND@SECONDS}; shift ;;
        -h|--help) sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) [[ -z $initrd ]] || die "more than one HOST_INITRD"; initrd=$1 ;;
    esac
    shift
done
[[ -n $initrd ]] || die "usage: $0 HOST_INITRD [--interactive] [--args WORDS] [--timeout SECS] [--append ARGS] [--log FILE]"
[[ -f $initrd ]] || die "host initramfs $initrd does not exist (guest/nested/build-host.sh makes it)"
[[ $timeout_s =~ ^[0-9]*$ ]] || die "--timeout wants whole seconds"
[[ -z $fault || $fault =~ ^(freeze|kill)@[0-9]+$ ]] || die "--fault wants freeze@SECONDS or kill@SECONDS"
[[ $args =~ ^[A-Za-z0-9@._,:=-]*( [A-Za-z0-9@._,:=-]+)*$ ]] || die "--args: plain words only"

ASSETS=${APUS_LINUX_ASSETS:-$ROOT/guest/build/linux}
QEMU=${QEMU:-qemu-system-x86_64}
# EPYC with SVM and nested paging, minus the features QEMU 7.2's TCG cannot emulate (it would drop
# them anyway, with one warning per feature and vCPU).
CPU=${APUS_NESTED_CPU:-EPYC,+svm,+npt,-rdseed,-sha-ni,-fxsr-opt,-misalignsse,-3dnowprefetch,-osvw,-topoext,-nrip-save,-xsavec}
# Two level-1 vCPUs. With one, `make nested-soak` lost no host in 30 (two vCPUs: 2 in 30), but
# the `--acpi off` groups then lost their host in 4 of 8 attempts (the only CPU halted with a
# timer interrupt pending that it never took), against 1 of 9 with two: docs/architecture.md
# has the figures.
SMP=${APUS_NESTED_SMP:-2}
# Multi-threaded TCG (QEMU's default for -smp 2). Single-threaded TCG (tcg,thread=single) avoided
# a rare level-1 livelock in a stress loop of tiny VMs, but a 2-vCPU level-2 Linux boot under
# apus then made no progress at all in 15 minutes.
ACCEL=${APUS_NESTED_ACCEL:-tcg}
MEM=${APUS_NESTED_MEM:-2G}
HEARTBEAT=${APUS_NESTED_HEARTBEAT:-30}
if ((interactive)); then timeout_s=${timeout_s:-0}; else timeout_s=${timeout_s:-1200}; fi

logfile=${logfile:-$ROOT/guest/build/nested/run.log}
mkdir -p "$(dirname "$logfile")"
verdict=$logfile.verdict
rm -f "$verdict" "$logfile.hang"

# quiet: only the payload's output and errors; panic=1 + -no-reboot: a panic ends QEMU at once.
# softlockup_panic=1: a host CPU stuck in the kernel panics after ~20 s instead of hanging.
cmdline="console=ttyS0 quiet panic=1 oops=panic softlockup_panic=1"
((interactive)) && cmdline+=" apus.nested.interactive=1"
[[ -n $args ]] && cmdline+=" apus.nested.args=${args// /,}"
[[ -n ${APUS_NESTED_APPEND:-} ]] && cmdline+=" $APUS_NESTED_APPEND"
[[ -n $append ]] && cmdline+=" $append"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/apus-nested.XXXXXX")
# ttyS0 is the console; ttyS1 carries the host's heartbeat, a line every 2 s (host-init).
qemu=("$QEMU" -accel "$ACCEL" -cpu "$CPU" -smp "$SMP" -m "$MEM" -display none -no-reboot -nic none
      -kernel "$ASSETS/vmlinuz" -initrd "$initrd" -append "$cmdline")
heartbeat=$tmp/heartbeat

if ((interactive)); then
    trap 'rm -rf "$tmp"' EXIT
    # QEMU's console escape moves from Ctrl-A to Ctrl-] so that Ctrl-A x reaches apus.
    qemu+=(-serial mon:stdio -serial "file:$heartbeat" -echr 0x1d)
    log "${qemu[*]}"
    log "interactive: the terminal is the host's serial console; Ctrl-] x quits QEMU"
    status=0
    if ((timeout_s > 0)); then timeout --foreground "$timeout_s" "${qemu[@]}" || status=$?
    else "${qemu[@]}" || status=$?; fi
    exit "$status"
fi

qemu+=(-serial stdio -serial "file:$heartbeat" -monitor "unix:$tmp/monitor,server,nowait" -pidfile "$tmp/qemu.pid")
log "${qemu[*]}"
log "booting (timeout ${timeout_s} s, heartbeat ${HEARTBEAT} s, log $logfile)"
start=$(date +%s.%N)
since() { awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# Print QEMU's output as it comes, noting the wall-clock time of the host's milestones.
annotate() {
    local line
    while IFS= read -r line || [[ -n $line ]]; do
        printf '%s\n' "$line"
        case $line in
            *"nested-host: running /payload"*|*"nested-host: /payload/run.sh finished"*)
                line=${line%%$'\r'}
                log "$(since) s wall clock: nested-host:${line#*nested-host:}" ;;
        esac
    done
}

monitor() { # COMMAND...: each line a monitor command; prints the answers
    command -v socat >/dev/null || return 0
    local cmd
    for cmd in "$@"; do
        echo "=== ${cmd//$'\n'/; }"
        # Drop the monitor's banner, prompt and line-editing echo.
        printf '%s\n' "$cmd" | socat -t 3 - "UNIX-CONNECT:$tmp/monitor" 2>&1 |
            tr -d '\r' | grep -av -e '^QEMU .* monitor' -e '^(qemu)' || true
    done
}
save_vcpu_state() {
    local i n=${SMP%%,*} cmds=("info status" "info cpus" "info registers -a")
    n=${n#cpus=}; [[ $n =~ ^[0-9]+$ ]] || n=1
    for ((i = 0; i < n; i++)); do cmds+=("cpu $i"$'\n'"info lapic"); done
    monitor "${cmds[@]}" >"$logfile.hang"
}
# Kills QEMU, only if the pid still names a QEMU (after it exited, the number may be reused).
stop_qemu() {
    local pid
    pid=$(cat "$tmp/qemu.pid" 2>/dev/null) || return 0
    [[ $pid =~ ^[0-9]+$ ]] && grep -qa qemu "/proc/$pid/cmdline" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    return 0
}

# The watchdog: ends QEMU when the heartbeat stops or the time is up, noting which in
# $tmp/reason. Before the first heartbeat the host gets 90 s to boot and start it.
watchdog() {
    local last_size=-1 last_change=$SECONDS first_beat= size fault_kind=${fault%@*} fault_at=${fault#*@} started=
    trap 'exit 0' TERM
    while sleep 1; do
        size=$(stat -c %s "$heartbeat" 2>/dev/null || echo 0)
        if ((size != last_size)); then last_size=$size last_change=$SECONDS; fi
        ((size > 0)) && [[ -z $first_beat ]] && first_beat=$SECONDS
        if [[ -n $fault && -z $started ]] && grep -aq 'nested-host: running /payload' "$logfile" 2>/dev/null; then
            started=$SECONDS
        fi
        if [[ -n $fault && -n $started ]] && ((SECONDS - started >= fault_at)); then
            log "harness self-test: making the host fail on purpose ($fault_kind) at $(since) s"
            case $fault_kind in
                freeze) monitor stop >/dev/null ;;
                kill) stop_qemu ;;
            esac
            fault=
        fi
        if ((SECONDS >= timeout_s)); then
            echo timeout >"$tmp/reason"
            log "timeout after ${timeout_s} s: saving vCPU state in $logfile.hang and stopping QEMU"
        elif [[ -n $first_beat ]] && ((SECONDS - last_change >= HEARTBEAT)); then
            echo lockup >"$tmp/reason"
            log "no heartbeat from the host for $((SECONDS - last_change)) s: saving vCPU state in $logfile.hang and stopping QEMU"
        elif [[ -z $first_beat ]] && ((SECONDS >= 90)); then
            echo lockup >"$tmp/reason"
            log "the host sent no heartbeat in 90 s: saving vCPU state in $logfile.hang and stopping QEMU"
        else
            continue
        fi
        save_vcpu_state
        stop_qemu
        exit 0
    done
}
SECONDS=0
watchdog &
watchdog_pid=$!
trap 'kill "$watchdog_pid" 2>/dev/null || true; stop_qemu; rm -rf "$tmp"' EXIT
set +e
# --foreground keeps QEMU in this process group, so Ctrl-C still reaches it; `timeout` is only
# the backstop behind the watchdog.
timeout --foreground -k 10 $((timeout_s + 120)) "${qemu[@]}" </dev/null 2>&1 | tee "$logfile" | annotate
qemu_status=${PIPESTATUS[0]}
set -e
kill "$watchdog_pid" 2>/dev/null || true
wait "$watchdog_pid" 2>/dev/null || true
elapsed=$(since)

console=$(tr -d '\r' <"$logfile")
exit_line=$(grep -a -o 'NESTED-EXIT: [0-9]*' <<<"$console" | tail -n 1 || true)
if [[ -n $exit_line && ! -s $tmp/reason ]]; then
    status=${exit_line#NESTED-EXIT: }
    echo "exit $status" >"$verdict"
    log "payload exited with status $status; QEMU ran ${elapsed} s"
    exit "$status"
fi
if [[ -s $tmp/reason ]]; then kind=$(cat "$tmp/reason")
elif grep -aq 'soft lockup' <<<"$console"; then kind=soft-lockup
elif grep -aq 'Kernel panic' <<<"$console"; then kind=panic
else kind=reset; fi
echo "died $kind" >"$verdict"
log "error: the nested host died ($kind) after ${elapsed} s without finishing (QEMU status $qemu_status; log: $logfile)"
exit 125
