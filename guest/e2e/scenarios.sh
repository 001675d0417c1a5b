#!/bin/sh
# The Linux end-to-end scenarios: boots the demo guest under apus several times and checks what
# the guest printed and how apus exited. POSIX sh, so it runs the same on a host with hardware
# KVM and inside the nested test host (busybox).
#
# Environment: APUS (./apus), KERNEL (./vmlinuz), INITRD (./initrd.cpio.gz), WORK (./e2e-work),
#              APUS_E2E_TIMEOUT (seconds per boot, 300).
# Output: one "E2E-RESULT <name> PASS|FAIL <details>" line per check; exit status 0.
APUS=${APUS:-./apus}
KERNEL=${KERNEL:-./vmlinuz}
INITRD=${INITRD:-./initrd.cpio.gz}
WORK=${WORK:-./e2e-work}
LIMIT=${APUS_E2E_TIMEOUT:-300}
BASE="console=ttyS0 panic=-1 quiet loglevel=4"
mkdir -p "$WORK"

result() { echo "E2E-RESULT $1 $2 $3"; }
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
# boot NAME ARGS...: runs apus with its console in $WORK/NAME.log, stderr in $WORK/NAME.err.
#
# Inside the nested test host only: when the guest crashes (status 70), the boot is tried once
# more and an E2E-NOTE line says so. QEMU 7.2's TCG emulation of nested SVM occasionally
# triple-faults a level-2 vCPU (seen about once in ten 2-CPU boots, never on the same scenario
# twice in a row); a crash that repeats still fails the check.
boot() {
    name=$1; shift
    attempt=1
    while :; do
        echo "e2e: booting '$name' ($(date +%T))" >&2
        timeout "$LIMIT" "$APUS" run --kernel "$KERNEL" --initrd "$INITRD" --console "file=$WORK/$name.log" \
            --stats "$@" </dev/null 2>"$WORK/$name.err"
        status=$?
        echo "e2e: '$name' exited with status $status ($(date +%T))" >&2
        if [ $status -eq 70 ] && [ "${APUS_NESTED:-0}" = 1 ] && [ $attempt -eq 1 ]; then
            echo "E2E-NOTE $name: the guest crashed on the first attempt, retrying once: $(grep -a 'guest crashed' "$WORK/$name.err" | head -n 1)"
            attempt=2
            continue
        fi
        return $status
    done
}

# 1. Two CPUs, 384 MiB, a marker on the command line; the guest powers off.
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
esac

# 2. reboot (through the i8042 with reboot=k, and through the ACPI reset register with reboot=a).
for how in k a; do
    boot reboot-$how --cmdline "$BASE reboot=$how apus.test=reboot"
    status=$?
    expect reboot-$how-exits-32 $([ $status -eq 32 ]; echo $?) "apus exit status $status after reboot=$how"
done

# 3. Without ACPI the guest still boots (MP table; this kernel then runs on one CPU).
boot acpi-off --acpi off --cmdline "$BASE reboot=k apus.test=reboot"
status=$?
guest_check acpi-off-boots "$WORK/acpi-off.log" reboot.reached
expect acpi-off-reboots $([ $status -eq 32 ]; echo $?) "apus exit status $status"

# 4. virtio-blk over virtio-mmio (a writable and a read-only disk) and virtio-rng.
dd if=/dev/zero of="$WORK/disk.img" bs=1M count=32 2>/dev/null
dd if=/dev/zero of="$WORK/ro.img" bs=1M count=4 2>/dev/null
printf 'apus-readonly-disk' | dd of="$WORK/ro.img" conv=notrunc 2>/dev/null
boot disk --disk "path=$WORK/disk.img" --disk "path=$WORK/ro.img,readonly=on" --rng \
    --cmdline "$BASE apus.test=disk apus.expect.rng=1"
status=$?
expect disk-boot-poweroff $([ $status -eq 0 ]; echo $?) "apus exit status $status"
guest_check disk-found-over-acpi "$WORK/disk.log" disk.found
guest_check disk-mkfs-mount-write "$WORK/disk.log" disk.write
guest_check disk-read-back "$WORK/disk.log" disk.read-back
guest_check disk-readonly-reads "$WORK/disk.log" disk.ro-read
guest_check disk-readonly-refuses-writes "$WORK/disk.log" disk.ro-write
guest_check rng-hwrng-returns-data "$WORK/disk.log" disk.hwrng
grep -aq apus-e2e-file-content-4711 "$WORK/disk.img"
expect disk-data-reaches-image $? "the host finds the guest's file content in disk.img"
grep -aq apus-readonly-disk "$WORK/ro.img"
expect disk-readonly-image-unchanged $? "ro.img still starts with its marker"

# 5. Typed input reaches the guest shell and its answer comes back: on the UART (ttyS0) and on
#    virtio-console (hvc0).
# interactive NAME ARGS...: boots with stdin from a FIFO, waits for the shell, types a command.
interactive() {
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
    sleep 2
    printf 'echo typed-$((6 * 7))-back\n' >&3
    waited=0
    until grep -aq 'typed-42-back' "$WORK/$name.log" || [ $waited -ge 120 ]; do sleep 1; waited=$((waited + 1)); done
    printf 'poweroff -f\n' >&3
    wait $pid
    status=$?
    exec 3>&-
    grep -aq 'typed-42-back' "$WORK/$name.log"
    expect "$name-reaches-shell" $? "the shell computed typed-\$((6 * 7))-back -> typed-42-back; apus exit $status"
}
interactive input --cmdline "$BASE"
interactive hvc0-input --console virtio --cmdline "console=hvc0 panic=-1 quiet loglevel=4"

# Show the tails of the logs: inside the nested host they are gone afterwards.
for f in "$WORK"/*.log "$WORK"/*.err; do
    [ -f "$f" ] || continue
    echo "---- ${f##*/} (last 15 lines)"
    tail -n 15 "$f" | tr -d '\r' | sed 's/^/    /'
done
exit 0
