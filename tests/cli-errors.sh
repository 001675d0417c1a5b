#!/usr/bin/env bash
# Bad input to `apus run`: each case must fail with a non-zero status and one line on stderr
# that names the problem, before any guest starts (no console output at all).
# Usage: tests/cli-errors.sh APUS KERNEL INITRD. Prints "N passed, N failed".
set -uo pipefail
APUS=${1:?apus binary} KERNEL=${2:?kernel} INITRD=${3:?initrd}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
passed=0 failed=0

# case NAME EXPECTED-TEXT -- ARGS...   (ARGS of `apus run`; ctl_case: of `apus ctl`)
case_() { run_case run "$@"; }
ctl_case() { run_case ctl "$@"; }
run_case() {
    local subcommand=$1 name=$2 expected=$3; shift 4
    local status=0
    "$APUS" "$subcommand" "$@" >"$work/out" 2>"$work/err" </dev/null || status=$?
    local lines; lines=$(grep -c . "$work/err")
    if [ "$status" -ne 0 ] && [ "$lines" -eq 1 ] && grep -q -- "$expected" "$work/err" && [ ! -s "$work/out" ]; then
        echo "PASS $name: status $status: $(cat "$work/err")"
        passed=$((passed + 1))
    else
        echo "FAIL $name: status $status, $lines stderr line(s), expected '$expected':"
        sed 's/^/    /' "$work/err" "$work/out"
        failed=$((failed + 1))
    fi
}

printf '#!/bin/sh\necho not a kernel\n' > "$work/script"
long=$(head -c 3000 /dev/zero | tr '\0' 'a')

case_ missing-kernel "cannot read the kernel" -- --kernel "$work/nope"
case_ unreadable-initrd "cannot read the initrd" -- --kernel "$KERNEL" --initrd "$work/nope"
case_ not-a-kernel "not a Linux bzImage" -- --kernel "$work/script"
case_ memory-too-small "guest memory is too small" -- --kernel "$KERNEL" --initrd "$INITRD" --memory 32M
case_ cmdline-too-long "command line is 3000 bytes" -- --kernel "$KERNEL" --cmdline "$long"
case_ zero-cpus "cpus must be at least 1" -- --kernel "$KERNEL" --cpus 0
case_ too-many-cpus "out of range" -- --kernel "$KERNEL" --cpus 5000
case_ bad-memory-size "is not a size" -- --kernel "$KERNEL" --memory lots
case_ nothing-to-boot "nothing to boot" --
case_ bad-console "console" -- --kernel "$KERNEL" --console tty9
case_ bad-seccomp "'maybe' is invalid for '--seccomp" -- --kernel "$KERNEL" --seccomp maybe
case_ probe-without-seccomp "needs --seccomp on" -- --kernel "$KERNEL" --seccomp off --seccomp-probe io
case_ tap-name-too-long "a tap name is 1 to 15 bytes" -- --kernel "$KERNEL" --net tap=a-name-of-sixteen
case_ malformed-mac "not a MAC address" -- --kernel "$KERNEL" --net tap=apus0,mac=52:54:00:12:34
case_ multicast-mac "multicast address" -- --kernel "$KERNEL" --net tap=apus0,mac=01:00:5e:00:00:01
case_ net-without-tap "which tap" -- --kernel "$KERNEL" --net mac=52:54:00:12:34:56
case_ too-many-queues "1 to 16" -- --kernel "$KERNEL" --net tap=apus0,queues=17
# Attaching to an interface that is not a tap (as root: the tun driver refuses it, EINVAL).
if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ]; then
    case_ not-a-tap "attach tap lo" -- --kernel "$KERNEL" --initrd "$INITRD" --net tap=lo
    # A user who may not open /dev/net/tun (mode 0600 here) hears what is missing, before any VM
    # exists (taps are opened first). Run as nobody, with copies of the files it must read.
    if [ "$(stat -c %a /dev/net/tun)" = 600 ] && command -v setpriv >/dev/null; then
        mkdir -p "$work/nobody"
        cp "$APUS" "$KERNEL" "$work/nobody/"
        chmod 755 "$work" "$work/nobody"; chmod 644 "$work/nobody/$(basename "$KERNEL")"
        status=0
        setpriv --reuid=65534 --regid=65534 --clear-groups "$work/nobody/$(basename "$APUS")" run \
            --kernel "$work/nobody/$(basename "$KERNEL")" --net tap=apus-perm </dev/null >"$work/out" 2>"$work/err" || status=$?
        if [ $status -ne 0 ] && [ "$(grep -c . "$work/err")" -eq 1 ] && grep -q "open /dev/net/tun (no permission" "$work/err"; then
            echo "PASS tun-permission-denied: status $status: $(cat "$work/err")"; passed=$((passed + 1))
        else
            echo "FAIL tun-permission-denied: status $status:"; sed 's/^/    /' "$work/err"; failed=$((failed + 1))
        fi
    fi
fi
case_ balloon-bad-option "is invalid for '--balloon" -- --kernel "$KERNEL" --balloon colour=red
case_ balloon-larger-than-ram "more than the guest's --memory" -- --kernel "$KERNEL" --memory 256M --balloon size=1G
# --control never replaces a file that is not a stale socket, and says so before booting.
printf 'precious\n' > "$work/not-a-socket"
case_ control-over-a-file "exists and is not a socket; refusing to replace it" -- --kernel "$KERNEL" --initrd "$INITRD" --control "$work/not-a-socket"
grep -q precious "$work/not-a-socket" || { echo "FAIL control-over-a-file: the file was changed"; failed=$((failed + 1)); }
case_ control-path-too-long "longer than 107 bytes" -- --kernel "$KERNEL" --initrd "$INITRD" --control "$work/$(head -c 120 /dev/zero | tr "\0" b)"
ctl_case ctl-no-socket "cannot reach $work/nope" -- "$work/nope" stats
ctl_case ctl-unknown-command "unknown command 'reboot'" -- "$work/nope" reboot
ctl_case ctl-balloon-bad-size "is not a size" -- "$work/nope" balloon lots
ctl_case ctl-balloon-no-size "balloon takes one SIZE" -- "$work/nope" balloon

echo "cli-errors: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
