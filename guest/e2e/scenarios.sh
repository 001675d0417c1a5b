#!/bin/sh
# The Linux end-to-end scenarios, in groups: each group boots the demo guest under apus a few
# times and checks what the guest printed and how apus exited. scripts/linux-host.sh runs each
# group in its own nested test host boot (or directly where /dev/kvm is hardware-backed), so a
# nested host that dies costs one group, not the run. POSIX sh: it runs the same on a host with
# hardware KVM and inside the nested test host (busybox).
#
#   scenarios.sh --list    the groups, one "NAME SECONDS" line each (SECONDS: the group's budget)
#   scenarios.sh GROUP     run one group
#
# Kernels: kernels/main/ (KERNEL_PACKAGE's, every group) and, when present, kernels/second/ (a
# second Debian flavour, for what the first cannot show: groups named NAME@FLAVOUR). Each holds
# vmlinuz, initrd.cpio.gz, kernel-config and kernel-package.
# Environment: APUS (./apus), WORK (/tmp/e2e-work), APUS_E2E_TIMEOUT (seconds per boot, 150).
# Output: one "E2E-RESULT <name> PASS|FAIL <details>" line per check. In the nested host only, a
# level-2 guest crash adds "HOST-FAULT l2-crash <boot>": see boot() below.
APUS=${APUS:-./apus}
WORK=${WORK:-/tmp/e2e-work}
LIMIT=${APUS_E2E_TIMEOUT:-150}
BASE="console=ttyS0 panic=-1 quiet loglevel=4"
# A network boot moves 64 MiB each way (about 20 s in the nested host, QEMU's TCG, here).
NET_LIMIT=$LIMIT

# flavour DIR: "rt-amd64" for kernels built from linux-image-rt-amd64.
flavour() { sed 's/^linux-image-//' "$1/kernel-package" 2>/dev/null || echo unknown; }

if [ "${1-}" = --list ]; then
    for g in boot-smp-memory-cmdline:$LIMIT reboot-i8042-and-acpi:$((2 * LIMIT)) \
             acpi-off-mptable-smp:$LIMIT mmio-disk-rng:$LIMIT console-input-ttyS0-hvc0:$((2 * LIMIT)) \
             pci-disk-rng-hvc0-msix-smp:$((2 * LIMIT)) pci-pio-notify-disk-rng-hvc0:$((2 * LIMIT)) \
             pci-transitional-legacy-and-modern-driver:$((3 * LIMIT)) pci-nomsi-intx-disk-rng-hvc0:$((2 * LIMIT)) \
             pci-acpi-off-disk:$LIMIT mmio-legacy-disk-rng-hvc0:$((2 * LIMIT)) \
             disk-durability-sigkill-pci-mmio:$((2 * LIMIT)) balloon-pci-mmio:$((5 * LIMIT)) \
             ttyS0-input-repeat-1:$((5 * LIMIT)) ttyS0-input-repeat-2:$((5 * LIMIT)) \
             net-tap-pci-mmio:$((3 * NET_LIMIT)) net-vhost-pci-mmio:$((2 * NET_LIMIT)) \
             net-multiqueue-smp:$((2 * NET_LIMIT)) \
             control-socket-stats-pause-shutdown:$LIMIT control-socket-acpi-off-sigterm:$LIMIT \
             balloon-ctl-stats-shutdown:$LIMIT; do
        echo "${g%%:*} ${g##*:}"
    done
    if [ -d kernels/second ]; then
        f=$(flavour kernels/second)
        echo "acpi-off-mptable-smp@$f $((2 * LIMIT))"
        echo "pci-acpi-off-intx-mptable@$f $LIMIT"
        echo "ttyS0-input-repeat-1@$f $((5 * LIMIT))"
        echo "ttyS0-input-repeat-2@$f $((5 * LIMIT))"
        echo "net-tap-pci-mmio@$f $((3 * NET_LIMIT))"
    fi
    exit 0
fi

GROUP=${1:?usage: scenarios.sh --list | GROUP}
case $GROUP in
    *@*) KDIR=kernels/second; SUFFIX=@${GROUP#*@} ;;
    *) KDIR=kernels/main; SUFFIX= ;;
esac
KERNEL=$KDIR/vmlinuz
INITRD=$KDIR/initrd.cpio.gz
WORK=$WORK/$GROUP
mkdir -p "$WORK"
echo "e2e: group $GROUP, kernel $(cat "$KDIR/kernel-package" 2>/dev/null)" >&2

result() { echo "E2E-RESULT $1$SUFFIX $2 $3"; }
expect() { # expect NAME CONDITION-STATUS DETAILS
    if [ "$2" -eq 0 ]; then result "$1" PASS "$3"; else result "$1" FAIL "$3"; fi
}
# guest_check NAME LOG CHECK: PASS when the guest printed "APUS-E2E: CHECK PASS".
guest_check() {
    line=$(grep -a "APUS-E2E: $3 " "$2" | head -n 1 | tr -d '\r')
    case $line in
        *" PASS"*) result "$1" PASS "${line#APUS-E2E: }" ;;
        "") result "$1" FAIL "the guest never reported $3 (see $2)" ;;
        *) result "$1" FAIL "${line#APUS-E2E: }" ;;
    esac
}
# crashed NAME STATUS: inside the nested test host, a level-2 crash (apus status 70) is most often
# QEMU 7.2's TCG emulation of nested SVM (seen about once in ten 2-CPU boots, never twice in a row
# on one scenario): say so, and scripts/linux-host.sh reruns the group once. A crash that repeats
# fails; on hardware a crash is never excused.
crashed() {
    [ "$2" -eq 70 ] && [ "${APUS_NESTED:-0}" = 1 ] &&
        echo "HOST-FAULT l2-crash $1: $(grep -a 'guest crashed' "$WORK/$1.err" | head -n 1)"
    return 0
}
# boot NAME ARGS...: runs apus with its console in $WORK/NAME.log, stderr in $WORK/NAME.err.
boot() {
    name=$1; shift
    echo "e2e: booting '$name' ($(date +%T))" >&2
    timeout "$LIMIT" "$APUS" run --kernel "$KERNEL" --initrd "$INITRD" --console "file=$WORK/$name.log" \
        --stats "$@" </dev/null 2>"$WORK/$name.err"
    status=$?
    echo "e2e: '$name' exited with status $status ($(date +%T))" >&2
    crashed "$name" $status
    return $status
}
# has_config OPTION: the kernel under test was built with OPTION=y.
has_config() { grep -q "^$1=y" "$KDIR/kernel-config" 2>/dev/null; }

# typed_input NAME EXPECT-LINE ARGS...: boots with stdin from a FIFO, waits for the shell, starts
# a command that prints 100 lines and types a 70-byte command line (over four times the UART's
# 16-byte FIFO) while they are printing; PASS when the shell ran it. A stalled console (input
# that stops reaching the guest for good) shows up here as a FAIL and apus killed at the limit.
typed_input() {
    name=$1; shift
    rm -f "$WORK/$name.fifo"; mkfifo "$WORK/$name.fifo"
    echo "e2e: booting '$name' ($(date +%T))" >&2
    timeout "$LIMIT" "$APUS" run --kernel "$KERNEL" --initrd "$INITRD" "$@" \
        <"$WORK/$name.fifo" >"$WORK/$name.log" 2>"$WORK/$name.err" &
    pid=$!
    exec 3>"$WORK/$name.fifo"
    waited=0
    until grep -aq 'Interactive shell' "$WORK/$name.log" 2>/dev/null || [ $waited -ge "$LIMIT" ]; do
        sleep 1; waited=$((waited + 1))
    done
    sleep 1
    printf 'i=0; while [ $i -lt 100 ]; do echo printing-line-$i; i=$((i + 1)); done\n' >&3
    printf 'echo typed-$((6 * 7))-back-abcdefghijklmnopqrstuvwxyz-0123456789\n' >&3
    waited=0
    until grep -aq 'typed-42-back-abcdefghijklmnopqrstuvwxyz-0123456789' "$WORK/$name.log" || [ $waited -ge 60 ]; do
        sleep 1; waited=$((waited + 1))
    done
    printf 'poweroff -f\n' >&3
    wait $pid
    status=$?
    exec 3>&-
    crashed "$name" $status
    if grep -aq 'typed-42-back-abcdefghijklmnopqrstuvwxyz-0123456789' "$WORK/$name.log"; then
        result "$name-reaches-shell" PASS "the shell ran the typed line (typed-42-back-...); apus exit $status"
    else
        result "$name-reaches-shell" FAIL "the typed line never ran (input stalled?); apus exit $status; console tail: $(tail -c 200 "$WORK/$name.log" | tr -d '\r' | tr '\n' '|')"
    fi
}

# disk_rng NAME CMDLINE-WORDS ARGS...: boots the disk scenario with a writable and a read-only
# disk and virtio-rng, on the transport ARGS choose, and checks what the guest and the host see.
disk_rng() {
    n=$1 words=$2; shift 2
    dd if=/dev/zero of="$WORK/$n.img" bs=1M count=32 2>/dev/null
    dd if=/dev/zero of="$WORK/$n-ro.img" bs=1M count=4 2>/dev/null
    printf 'apus-readonly-disk' | dd of="$WORK/$n-ro.img" conv=notrunc 2>/dev/null
    boot "$n" --disk "path=$WORK/$n.img" --disk "path=$WORK/$n-ro.img,readonly=on" --rng "$@" \
        --cmdline "$BASE apus.test=disk apus.expect.rng=1 $words"
    status=$?
    case $words in
        *apus.end=reboot*) expect $n-boot-reboots $([ $status -eq 32 ]; echo $?) "apus exit status $status (the i8042 reset)" ;;
        *) expect $n-boot-poweroff $([ $status -eq 0 ]; echo $?) "apus exit status $status" ;;
    esac
    guest_check $n-disk-found "$WORK/$n.log" disk.found
    guest_check $n-disk-mkfs-mount-write "$WORK/$n.log" disk.write
    guest_check $n-disk-read-back "$WORK/$n.log" disk.read-back
    guest_check $n-disk-readonly-reads "$WORK/$n.log" disk.ro-read
    guest_check $n-disk-readonly-refuses-writes "$WORK/$n.log" disk.ro-write
    guest_check $n-rng-hwrng-returns-data "$WORK/$n.log" disk.hwrng
    for w in $words; do
        case $w in apus.expect.*) c=${w#apus.expect.}; guest_check $n-${c%%=*} "$WORK/$n.log" disk.${c%%=*} ;; esac
    done
    grep -aq apus-e2e-file-content-4711 "$WORK/$n.img"
    expect $n-disk-data-reaches-image $? "the host finds the guest's file content in $n.img"
    grep -aq apus-readonly-disk "$WORK/$n-ro.img"
    expect $n-disk-readonly-image-unchanged $? "$n-ro.img still starts with its marker"
}

# hvc0_input NAME ARGS...: typed input over virtio-console (hvc0) on the transport ARGS choose.
hvc0_input() {
    n=$1; shift
    case "$*" in
        *--cmdline*) typed_input "hvc0-$n-input" --console virtio "$@" ;;
        *) typed_input "hvc0-$n-input" --console virtio "$@" --cmdline "console=hvc0 panic=-1 quiet loglevel=4" ;;
    esac
}

# net_tap NAME NET-OPTIONS ARGS...: the guest on a tap (--net tap=...,NET-OPTIONS) whose host end
# is 10.0.2.1 (the guest is 10.0.2.15): pings both ways and 64 MiB over TCP each way (busybox
# nc), checked by sha256 on both sides. NET_WORDS: more kernel command-line words.
net_tap() {
    n=$1 options=${2:+,$2}; shift 2
    tap=apus-$n mib=64
    ip link del "$tap" 2>/dev/null
    # A single-queue tap is made here and apus attaches to it; a multi-queue one (which busybox
    # cannot make) apus creates itself, and it is configured once it appears.
    case $options in
        *queues=*) created_by_apus=1 ;;
        *) created_by_apus=0
           if ! { ip tuntap add "$tap" mode tap 2>/dev/null || tunctl -t "$tap" >/dev/null 2>&1; }; then
               result $n-tap-setup FAIL "cannot create tap $tap (needs root, CAP_NET_ADMIN, and the tun module)"
               return
           fi
           ip addr add 10.0.2.1/24 dev "$tap" && ip link set "$tap" up ;;
    esac
    dd if=/dev/urandom of="$WORK/$n-to-guest" bs=1M count=$mib 2>/dev/null
    sha=$(sha256sum "$WORK/$n-to-guest" | cut -d' ' -f1)
    rm -f "$WORK/$n-from-guest"
    nc -l -p 5000 -e sh -c "cat > $WORK/$n-from-guest" &
    listener=$!
    echo "e2e: booting '$n' ($(date +%T))" >&2
    case $options in *queues=*) q=${options##*queues=}; words="apus.expect.queues=${q%%,*}" ;; *) words= ;; esac
    timeout "$NET_LIMIT" "$APUS" run --kernel "$KERNEL" --initrd "$INITRD" --console "file=$WORK/$n.log" --stats \
        --memory 512M --net "tap=$tap$options" "$@" --cmdline "$BASE apus.test=net apus.net.mib=$mib apus.net.sha=$sha $words ${NET_WORDS-}" \
        </dev/null 2>"$WORK/$n.err" &
    pid=$!
    if [ $created_by_apus = 1 ]; then
        waited=0
        until [ -d "/sys/class/net/$tap" ] || ! kill -0 $pid 2>/dev/null || [ $waited -ge 300 ]; do
            sleep 0.1; waited=$((waited + 1))
        done
        ip addr add 10.0.2.1/24 dev "$tap" && ip link set "$tap" up
    fi
    waited=0
    until grep -aq 'APUS-E2E: net.listening' "$WORK/$n.log" 2>/dev/null || ! kill -0 $pid 2>/dev/null ||
          [ $waited -ge "$NET_LIMIT" ]; do
        sleep 1; waited=$((waited + 1))
    done
    if grep -aq 'APUS-E2E: net.listening' "$WORK/$n.log"; then
        out=$(ping -c 3 -W 5 10.0.2.15 2>&1)
        case $out in *" 0% packet loss"*) ok=0 ;; *) ok=1 ;; esac
        expect $n-host-pings-guest $ok "$(echo "$out" | tail -n 1)"
        start=$(date +%s)
        nc -w 10 10.0.2.15 5001 -e cat "$WORK/$n-to-guest"
        expect $n-host-sends $? "$mib MiB to the guest in $(($(date +%s) - start)) s"
    else
        result $n-guest-listens FAIL "the guest never got to listen (apus ended or the limit passed)"
    fi
    wait $pid
    status=$?
    echo "e2e: '$n' exited with status $status ($(date +%T))" >&2
    crashed "$n" $status
    expect $n-boot-poweroff $([ $status -eq 0 ]; echo $?) "apus exit status $status"
    for c in found features ping-host host-to-guest guest-to-host-sent ${words:+queues}; do
        guest_check $n-$c "$WORK/$n.log" net.$c
    done
    sleep 1
    kill $listener 2>/dev/null
    want=$(grep -a 'APUS-E2E: net.guest-sha256 ' "$WORK/$n.log" | head -n 1 | tr -d '\r' | cut -d' ' -f3)
    got=$(sha256sum "$WORK/$n-from-guest" 2>/dev/null | cut -d' ' -f1)
    expect $n-guest-to-host-intact $([ -n "$want" ] && [ "$got" = "$want" ]; echo $?) \
        "$(wc -c <"$WORK/$n-from-guest" 2>/dev/null) bytes received, sha256 ${got:-none}, the guest sent ${want:-nothing}"
    rm -f "$WORK/$n-to-guest" "$WORK/$n-from-guest"
    ip link del "$tap" 2>/dev/null || tunctl -d "$tap" >/dev/null 2>&1
}

# apus_pid PID: the apus process `timeout` started as PID (busybox's timeout execs the program in
# its own process; coreutils' runs it as a child).
apus_pid() {
    for p in "$1" $(grep -l "^PPid:[[:space:]]*$1\$" /proc/[0-9]*/status 2>/dev/null | cut -d/ -f3); do
        [ "$(cat /proc/"$p"/comm 2>/dev/null)" = apus ] && { echo "$p"; return; }
    done
}
# rss_kib PID: the process's resident memory ("VmRSS:<tab>   N kB").
rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/"$1"/status 2>/dev/null; }
# wait_mark LOG STEP PID: waits until the guest printed "APUS-E2E-MARK balloon.STEP" (or apus ended).
wait_mark() {
    waited=0
    until grep -aq "APUS-E2E-MARK balloon.$2" "$1" 2>/dev/null || ! kill -0 "$3" 2>/dev/null ||
          [ $waited -ge $((LIMIT * 10)) ]; do
        sleep 0.1; waited=$((waited + 1))
    done
}

# balloon NAME MODE DROP-MIB BALLOON-OPTIONS CMDLINE-WORDS ARGS...: boots the balloon scenario (512 MiB of RAM)
# in MODE (resize: a 128 MiB balloon at boot, deflated and inflated again by the driver; report:
# free page reporting) and checks from the host that apus's RSS dropped by DROP-MIB between the
# guest's two marks: after it made nearly all its free memory resident, and after the balloon
# (or the guest's free page reports) gave it back.
balloon() {
    n=$1 mode=$2 drop=$3 options=$4 words=$5; shift 5
    echo "e2e: booting '$n' ($(date +%T))" >&2
    timeout "$LIMIT" "$APUS" run --kernel "$KERNEL" --initrd "$INITRD" --console "file=$WORK/$n.log" --stats \
        --memory 512M --balloon "$options" "$@" \
        --cmdline "$BASE apus.test=balloon apus.balloon.mib=128 apus.balloon.mode=$mode $words" </dev/null 2>"$WORK/$n.err" &
    pid=$!
    wait_mark "$WORK/$n.log" touched $pid
    apid=$(apus_pid $pid)
    touched=$(rss_kib "$apid")
    case $mode in resize) step=inflated ;; *) step=reported ;; esac
    wait_mark "$WORK/$n.log" $step $pid
    after=$(rss_kib "$apid")
    wait $pid
    status=$?
    echo "e2e: '$n' exited with status $status ($(date +%T))" >&2
    crashed "$n" $status
    expect $n-poweroff $([ $status -eq 0 ]; echo $?) "apus exit status $status"
    guest_check $n-driver-bound "$WORK/$n.log" balloon.driver
    case $mode in
        resize)
            guest_check $n-guest-memtotal-inflated "$WORK/$n.log" balloon.inflated
            guest_check $n-guest-memtotal-reinflated "$WORK/$n.log" balloon.reinflated ;;
        report) guest_check $n-reporting-negotiated "$WORK/$n.log" balloon.reporting ;;
    esac
    if [ -n "$touched" ] && [ -n "$after" ] && [ $((touched - after)) -ge $((drop * 1024)) ]; then
        result $n-apus-rss-drops PASS "apus VmRSS $touched kB with the guest's memory touched, $after kB after $step: $(((touched - after) / 1024)) MiB given back (at least $drop)"
    else
        result $n-apus-rss-drops FAIL "apus VmRSS ${touched:-?} kB with the guest's memory touched, ${after:-?} kB after $step: expected a drop of at least $drop MiB"
    fi
    line=$(grep -a '^balloon: target' "$WORK/$n.err")
    case $line in
        *" inflated "*) result $n-host-counters PASS "$line" ;;
        *) result $n-host-counters FAIL "no balloon line in apus --stats ($WORK/$n.err)" ;;
    esac
    case $options in
        *stats=*)
            line=$(grep -a '^balloon: guest statistics:' "$WORK/$n.err")
            case $line in
                *" total="*" free="*|*" free="*" total="*) result $n-guest-statistics PASS "$line" ;;
                *) result $n-guest-statistics FAIL "no guest statistics in apus --stats: ${line:-nothing}" ;;
            esac ;;
    esac
}

# show_logs: the tails of this group's logs (inside the nested host they are gone afterwards).
show_logs() {
    for f in "$WORK"/*.log "$WORK"/*.err; do
        [ -f "$f" ] || continue
        echo "---- ${f##*/} (last 15 lines)"
        tail -n 15 "$f" | tr -d '\r' | sed 's/^/    /'
    done
}

case ${GROUP%@*} in
boot-smp-memory-cmdline)
    # Two CPUs, 384 MiB, a marker on the command line; the guest powers off.
    boot boot --cpus 2 --memory 384M \
        --cmdline "$BASE apus.test=boot apus.marker=xyz apus.expect.cpus=2 apus.expect.mem_mib=384"
    status=$?
    expect poweroff-exits-0 $([ $status -eq 0 ]; echo $?) "apus exit status $status after poweroff"
    guest_check cmdline-intact "$WORK/boot.log" boot.cmdline
    guest_check two-cpus-online "$WORK/boot.log" boot.nproc
    guest_check memory-size "$WORK/boot.log" boot.memtotal
    times=$(grep -a '^boot: ' "$WORK/boot.err")
    case $times in
        *"first console byte after "*" ms, init after "*" ms"*) result boot-time-reported PASS "$times" ;;
        *) result boot-time-reported FAIL "no boot times in $WORK/boot.err: $times" ;;
    esac ;;
reboot-i8042-and-acpi)
    # Reboot through the i8042 (reboot=k) and through the ACPI reset register (reboot=a).
    for how in k a; do
        boot reboot-$how --cmdline "$BASE reboot=$how apus.test=reboot"
        status=$?
        expect reboot-$how-exits-32 $([ $status -eq 32 ]; echo $?) "apus exit status $status after reboot=$how"
    done ;;
acpi-off-mptable-smp)
    # Without ACPI the guest learns its CPUs and the IOAPIC from the MP table, where the kernel
    # parses one (CONFIG_X86_MPPARSE: Debian's generic and rt flavours, not cloud, which then
    # runs on one CPU with the legacy PIC).
    counts=2; [ -n "$SUFFIX" ] && counts="2 4"
    for cpus in $counts; do
        if has_config CONFIG_X86_MPPARSE; then want=$cpus ioapic=1; else want=1 ioapic=0; fi
        boot acpi-off-$cpus --acpi off --cpus $cpus \
            --cmdline "$BASE reboot=k apus.test=platform apus.expect.cpus=$want apus.expect.ioapic=$ioapic"
        status=$?
        expect acpi-off-$cpus-cpus-reboots $([ $status -eq 32 ]; echo $?) "apus exit status $status (the i8042 reset)"
        guest_check acpi-off-$cpus-cpus-online "$WORK/acpi-off-$cpus.log" platform.cpus
        guest_check acpi-off-$cpus-cpus-interrupt-controller "$WORK/acpi-off-$cpus.log" platform.ioapic
    done ;;
mmio-disk-rng)
    # virtio-blk over virtio-mmio (a writable and a read-only disk) and virtio-rng.
    disk_rng mmio "apus.expect.bus=mmio apus.expect.version1=1" --transport mmio ;;
mmio-legacy-disk-rng-hvc0)
    # The same over virtio-mmio version 1 (the legacy interface: QueuePFN, no FEATURES_OK).
    disk_rng mmio-legacy "apus.expect.bus=mmio apus.expect.version1=0" --transport mmio-legacy
    hvc0_input mmio-legacy --transport mmio-legacy ;;
pci-disk-rng-hvc0-msix-smp)
    # virtio-pci 1.0 on two CPUs: disk, rng and MSI-X vectors that count; then hvc0 over PCI.
    disk_rng pci "apus.expect.bus=pci apus.expect.msix=1 apus.expect.version1=1" --transport pci --cpus 2
    hvc0_input pci --transport pci ;;
pci-pio-notify-disk-rng-hvc0)
    # The notify structure in an I/O BAR: doorbells are port writes caught by port ioeventfds.
    disk_rng pci-pio "apus.expect.bus=pci apus.expect.msix=1" --transport pci --notify pio
    hvc0_input pci-pio --transport pci --notify pio ;;
pci-transitional-legacy-and-modern-driver)
    # One transitional device, two drivers: Linux's legacy virtio-pci driver (force_legacy) uses
    # the I/O header in BAR0; without it the modern driver uses the capabilities.
    disk_rng pci-legacy "virtio_pci.force_legacy=1 apus.expect.bus=pci apus.expect.msix=1 apus.expect.version1=0" --transport pci-transitional
    hvc0_input pci-legacy --transport pci-transitional --cmdline "console=hvc0 panic=-1 quiet loglevel=4 virtio_pci.force_legacy=1"
    disk_rng pci-transitional "apus.expect.bus=pci apus.expect.version1=1" --transport pci-transitional ;;
pci-nomsi-intx-disk-rng-hvc0)
    # pci=nomsi: interrupts through INTx, the _PRT route to an IOAPIC pin, and ISR read-to-clear.
    disk_rng pci-intx "pci=nomsi apus.expect.bus=pci apus.expect.intx=1" --transport pci
    hvc0_input pci-intx --transport pci --cmdline "console=hvc0 panic=-1 quiet loglevel=4 pci=nomsi" ;;
pci-acpi-off-intx-mptable)
    # No ACPI and no MSI: INTx routed by the MP table's PCI interrupt entries (a kernel that
    # parses the MP table; Debian's cloud flavour does not, so this runs on the second one).
    disk_rng pci-acpi-off-intx "pci=nomsi reboot=k apus.end=reboot apus.expect.bus=pci apus.expect.intx=1" --transport pci --acpi off ;;
pci-acpi-off-disk)
    # Without ACPI the kernel finds the PCI bus through configuration mechanism #1 (and, for
    # INTx, the MP table's PCI interrupt entries, where the kernel parses one).
    disk_rng pci-acpi-off "reboot=k apus.end=reboot apus.expect.bus=pci" --transport pci --acpi off ;;
disk-durability-sigkill-pci-mmio)
    # What apus acknowledged is in the image even when apus dies at once: SIGKILL the moment
    # the guest reports its data durable, with the write-back cache and FLUSH (over virtio-pci),
    # and with the driver's write-through mode, no FLUSH at all (over virtio-mmio).
    yes apus-durability-0123456789abcdef | head -c 4194304 >"$WORK/pattern"
    for mode in fsync:pci writethrough:mmio; do
        transport=${mode#*:} mode=${mode%:*}
        name=durability-$mode
        dd if=/dev/zero of="$WORK/$name.img" bs=1M count=16 2>/dev/null
        echo "e2e: booting '$name' ($(date +%T))" >&2
        timeout "$LIMIT" "$APUS" run --kernel "$KERNEL" --initrd "$INITRD" --console "file=$WORK/$name.log" \
            --disk "path=$WORK/$name.img" --transport "$transport" --cmdline "$BASE apus.test=durability apus.durability.mode=$mode" \
            </dev/null 2>"$WORK/$name.err" &
        pid=$!
        waited=0
        until grep -aq 'APUS-E2E: durability.written' "$WORK/$name.log" 2>/dev/null || ! kill -0 $pid 2>/dev/null ||
              [ $waited -ge $((LIMIT * 10)) ]; do
            sleep 0.1; waited=$((waited + 1))
        done
        kill -9 $pid 2>/dev/null
        wait $pid
        status=$?
        crashed "$name" $status
        guest_check $name-guest-wrote "$WORK/$name.log" durability.written
        head -c 4194304 "$WORK/$name.img" | cmp -s - "$WORK/pattern"
        expect $name-sigkill-keeps-every-byte $? "apus killed with SIGKILL (status $status) right after the guest's report; the image's first 4 MiB equal what the guest made durable"
    done ;;
balloon-pci-mmio)
    # virtio-balloon over virtio-pci and virtio-mmio: inflated at boot (size=), deflated and
    # inflated again by the driver, statistics polled every second; then free page reporting.
    # apus's RSS must drop by 100 of the balloon's 128 MiB, and by 100 MiB of freed memory.
    # The legacy interfaces too: Linux's legacy virtio-pci driver writes `actual` a byte at a
    # time; virtio-mmio version 1.
    balloon balloon-pci resize 100 size=128M,stats=1 "" --transport pci
    balloon balloon-mmio resize 100 size=128M,stats=1 "" --transport mmio
    balloon balloon-report-pci report 100 free-page-reporting=on "" --transport pci
    balloon balloon-pci-legacy resize 100 size=128M,stats=1 virtio_pci.force_legacy=1 --transport pci-transitional
    balloon balloon-mmio-legacy resize 100 size=128M,deflate-on-oom=on "" --transport mmio-legacy ;;
control-socket-stats-pause-shutdown)
    # apus run --control: live stats, pause (the exit counters stand still), resume, then
    # `apus ctl shutdown` presses the ACPI power button (GED -> PNP0C0C), the guest's /init
    # powers off, apus exits 0 and removes its socket.
    sock=$WORK/apus.sock
    echo "e2e: booting 'control' ($(date +%T))" >&2
    timeout "$LIMIT" "$APUS" run --kernel "$KERNEL" --initrd "$INITRD" --console "file=$WORK/control.log" \
        --cpus 2 --control "$sock" --cmdline "$BASE" </dev/null 2>"$WORK/control.err" &
    pid=$!
    waited=0
    until grep -aq 'Interactive shell' "$WORK/control.log" 2>/dev/null || ! kill -0 $pid 2>/dev/null ||
          [ $waited -ge $((LIMIT * 10)) ]; do
        sleep 0.1; waited=$((waited + 1))
    done
    [ "$(stat -c %a "$sock" 2>/dev/null)" = 600 ]
    expect control-socket-owner-only $? "socket mode $(stat -c %a "$sock" 2>&1)"
    "$APUS" ctl "$sock" stats >"$WORK/stats.out" 2>&1
    s=$?
    grep -q '^state: running' "$WORK/stats.out" && grep -q '^  total: [1-9]' "$WORK/stats.out"
    g=$?
    expect control-stats-live $([ $s -eq 0 ] && [ $g -eq 0 ]; echo $?) "ctl status $s: $(tr '\n' ' ' <"$WORK/stats.out" | head -c 300)"
    out=$("$APUS" ctl "$sock" pause 2>&1)
    expect control-pause $([ "$out" = "state: paused" ]; echo $?) "ctl pause: $out"
    t1=$("$APUS" ctl "$sock" stats --json 2>&1 | sed -n 's/.*"exits":{"total":\([0-9]*\).*/\1/p')
    sleep 1
    t2=$("$APUS" ctl "$sock" stats --json 2>&1 | sed -n 's/.*"exits":{"total":\([0-9]*\).*/\1/p')
    state=$("$APUS" ctl "$sock" stats 2>&1 | head -n 1)
    expect control-paused-counters-still $([ -n "$t1" ] && [ "$t1" = "$t2" ] && [ "$state" = "state: paused" ]; echo $?) \
        "exits $t1 then $t2 one second later; $state"
    out=$("$APUS" ctl "$sock" resume 2>&1)
    expect control-resume $([ "$out" = "state: running" ]; echo $?) "ctl resume: $out"
    out=$("$APUS" ctl "$sock" frobnicate 2>&1); s=$?
    expect control-unknown-command-fails $([ $s -ne 0 ]; echo $?) "ctl status $s: $out"
    out=$("$APUS" ctl "$sock" shutdown 2>&1); s=$?
    expect control-shutdown-accepted $([ $s -eq 0 ]; echo $?) "ctl status $s: $out"
    wait $pid
    status=$?
    crashed control $status
    expect control-shutdown-exits-0 $([ $status -eq 0 ]; echo $?) "apus exit status $status after the power button"
    grep -aq 'power button pressed' "$WORK/control.log"
    expect control-guest-saw-power-button $? "the guest's /init reported the button"
    [ ! -e "$sock" ]
    expect control-socket-removed $? "$sock is gone after apus exited" ;;
balloon-ctl-stats-shutdown)
    # The balloon driven as a user would: `apus ctl balloon 128M` with the guest's memory
    # resident, apus's RSS drops by at least 100 MiB and the guest's MemTotal by 128 MiB;
    # `apus ctl balloon-stats` returns the guest's numbers; `apus ctl balloon 0` gives the memory
    # back; `apus ctl shutdown` ends the guest and apus exits 0.
    n=balloon-ctl sock=$WORK/balloon.sock
    echo "e2e: booting '$n' ($(date +%T))" >&2
    timeout "$LIMIT" "$APUS" run --kernel "$KERNEL" --initrd "$INITRD" --console "file=$WORK/$n.log" --stats \
        --memory 512M --balloon stats=1 --control "$sock" \
        --cmdline "$BASE apus.test=balloon apus.balloon.mib=128 apus.balloon.mode=ctl" </dev/null 2>"$WORK/$n.err" &
    pid=$!
    wait_mark "$WORK/$n.log" touched $pid
    apid=$(apus_pid $pid)
    touched=$(rss_kib "$apid")
    wait_mark "$WORK/$n.log" ready $pid
    out=$("$APUS" ctl "$sock" balloon 128M 2>&1)
    expect $n-ctl-balloon-128M $? "apus ctl balloon 128M: $(echo "$out" | tr '\n' ' ')"
    wait_mark "$WORK/$n.log" inflated $pid
    after=$(rss_kib "$apid")
    if [ -n "$touched" ] && [ -n "$after" ] && [ $((touched - after)) -ge $((100 * 1024)) ]; then
        result $n-apus-rss-drops PASS "apus VmRSS $touched kB with the guest's memory touched, $after kB after apus ctl balloon 128M: $(((touched - after) / 1024)) MiB given back"
    else
        result $n-apus-rss-drops FAIL "apus VmRSS ${touched:-?} kB with the guest's memory touched, ${after:-?} kB after apus ctl balloon 128M: expected a drop of at least 100 MiB"
    fi
    out=$("$APUS" ctl "$sock" balloon-stats 2>&1); s=$?
    case $out in *free*total*|*total*free*) ok=0 ;; *) ok=1 ;; esac
    expect $n-ctl-balloon-stats $([ $s -eq 0 ] && [ $ok -eq 0 ]; echo $?) "apus ctl balloon-stats: $(echo "$out" | tr '\n' ' ' | head -c 300)"
    out=$("$APUS" ctl "$sock" balloon 0 2>&1)
    expect $n-ctl-balloon-0 $? "apus ctl balloon 0: $(echo "$out" | tr '\n' ' ')"
    wait_mark "$WORK/$n.log" deflated $pid
    out=$("$APUS" ctl "$sock" shutdown 2>&1)
    expect $n-ctl-shutdown $? "apus ctl shutdown: $out"
    wait $pid
    status=$?
    crashed $n $status
    expect $n-shutdown-exits-0 $([ $status -eq 0 ]; echo $?) "apus exit status $status after apus ctl shutdown"
    guest_check $n-guest-memtotal-inflated "$WORK/$n.log" balloon.ctl-inflated
    guest_check $n-guest-memtotal-deflated "$WORK/$n.log" balloon.ctl-deflated ;;
control-socket-acpi-off-sigterm)
    # Without ACPI the guest has no power button: `shutdown` is an error reply and changes
    # nothing; SIGTERM still ends apus cleanly (143) and the socket goes with it.
    sock=$WORK/apus.sock
    echo "e2e: booting 'control-acpi-off' ($(date +%T))" >&2
    timeout "$LIMIT" "$APUS" run --kernel "$KERNEL" --initrd "$INITRD" --console "file=$WORK/control-acpi-off.log" \
        --acpi off --control "$sock" --cmdline "$BASE" </dev/null 2>"$WORK/control-acpi-off.err" &
    pid=$!
    waited=0
    until grep -aq 'Interactive shell' "$WORK/control-acpi-off.log" 2>/dev/null || ! kill -0 $pid 2>/dev/null ||
          [ $waited -ge $((LIMIT * 10)) ]; do
        sleep 0.1; waited=$((waited + 1))
    done
    out=$("$APUS" ctl "$sock" shutdown 2>&1); s=$?
    case $out in *"no power button"*) ok=0 ;; *) ok=1 ;; esac
    expect control-acpi-off-shutdown-refused $([ $s -eq 1 ] && [ $ok -eq 0 ]; echo $?) "ctl status $s: $out"
    state=$("$APUS" ctl "$sock" stats 2>&1 | head -n 1)
    expect control-acpi-off-still-running $([ "$state" = "state: running" ]; echo $?) "after the refused shutdown: $state"
    kill -TERM $pid
    wait $pid
    status=$?
    crashed control-acpi-off $status
    expect control-acpi-off-sigterm-exits-143 $([ $status -eq 143 ]; echo $?) "apus exit status $status after SIGTERM"
    [ ! -e "$sock" ]
    expect control-acpi-off-socket-removed $? "$sock is gone after apus exited" ;;
console-input-ttyS0-hvc0)
    # Typed input reaches the guest shell and its answer comes back: on the UART (ttyS0) and on
    # virtio-console (hvc0).
    typed_input ttyS0-input --cmdline "$BASE"
    typed_input hvc0-input --console virtio --transport mmio --cmdline "console=hvc0 panic=-1 quiet loglevel=4" ;;
net-tap-pci-mmio)
    # virtio-net on a tap, the data path in apus: over virtio-pci (MSI-X) and virtio-mmio, and
    # Linux's legacy virtio-pci driver on a transitional device.
    net_tap pci "" --transport pci
    net_tap mmio "" --transport mmio
    NET_WORDS="virtio_pci.force_legacy=1 apus.expect.version1=0"
    net_tap legacy "" --transport pci-transitional
    NET_WORDS= ;;
net-vhost-pci-mmio)
    # The same with vhost-net: the kernel carries the receive and transmit queues.
    net_tap pci-vhost vhost=on --transport pci
    net_tap mmio-vhost vhost=on --transport mmio ;;
net-multiqueue-smp)
    # Two queue pairs on two CPUs (a multi-queue tap, a thread or a vhost worker per pair).
    net_tap mq2 queues=2 --transport pci --cpus 2
    net_tap mq2-vhost queues=2,vhost=on --transport pci --cpus 2 ;;
ttyS0-input-repeat-*)
    # The ttyS0 input stall (an interrupt edge lost for good) came 1 boot in 2 on some kernels:
    # five boots per group, one and two vCPUs.
    n=${GROUP%@*}; n=${n##*-}
    for i in 1 2 3 4 5; do
        typed_input ttyS0-repeat-$n.$i --cpus $(( (i % 2) + 1 )) --cmdline "$BASE"
    done ;;
*)
    result "$GROUP" FAIL "no such group"
    exit 0 ;;
esac
show_logs
exit 0
