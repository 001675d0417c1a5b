#!/bin/sh
# Scenario "disk": virtio-blk over the transport apus was given (virtio-mmio found through ACPI,
# or virtio-pci found by scanning the bus).
#   /dev/vda (writable): mke2fs, mount, write a file, unmount, sync — the host then finds the
#                        file's content in the image
#   /dev/vdb (read-only): reads work, writes are refused
#   /dev/hwrng (with apus.expect.rng=1): returns random bytes from virtio-rng
# Transport checks, each only when its apus.expect.* word is on the command line:
#   apus.expect.bus=pci|mmio   /dev/vda's device sits under the PCI root (or a virtio-mmio platform device)
#   apus.expect.msix=1         virtio's interrupts are PCI-MSI(-X) lines that counted, on any CPU
#   apus.expect.intx=1         virtio's interrupts are IO-APIC lines that counted (pci=nomsi)
#   apus.expect.version1=0|1   the driver negotiated VIRTIO_F_VERSION_1 (1) or is a legacy driver (0)
# apus.end=reboot ends with a reboot instead of a power-off (for --acpi off).
APUS_SCENARIO=disk
. /scenarios/lib.sh

if [ -b /dev/vda ]; then
    pass found "/dev/vda, $(cat /sys/block/vda/size) sectors; devices: $(ls /sys/bus/virtio/devices | tr '\n' ' ')"
else
    fail found "no /dev/vda; block devices: $(ls /sys/block | tr '\n' ' '); virtio: $(ls /sys/bus/virtio/devices 2>&1 | tr '\n' ' ')"
fi

mkdir -p /mnt
if mke2fs -q /dev/vda && mount /dev/vda /mnt && echo apus-e2e-file-content-4711 > /mnt/hello.txt &&
        umount /mnt && sync; then
    pass write "mke2fs, mount, write, umount on /dev/vda"
else
    fail write "mke2fs/mount/write/umount on /dev/vda failed"
fi
if mount /dev/vda /mnt && grep -q apus-e2e-file-content-4711 /mnt/hello.txt && umount /mnt; then
    pass read-back "the file reads back after a remount"
else
    fail read-back "cannot read the file back"
fi

if [ -b /dev/vdb ]; then
    if dd if=/dev/vdb of=/dev/null bs=4096 count=4 2>/dev/null; then pass ro-read "reads work"; else fail ro-read "read failed"; fi
    if dd if=/dev/zero of=/dev/vdb bs=512 count=1 conv=fsync 2>/dev/null; then
        fail ro-write "a write to the read-only disk succeeded"
    else
        pass ro-write "the write was refused"
    fi
else
    fail ro-read "no /dev/vdb"
fi
# Sustained I/O (nested soak): write N MiB through the filesystem with fsync, read it back cold.
if mib=$(arg apus.disk.stress_mib); then
    if mount /dev/vda /mnt && dd if=/dev/zero of=/mnt/stress bs=1M count="$mib" conv=fsync 2>/dev/null &&
            echo 3 >/proc/sys/vm/drop_caches && dd if=/mnt/stress of=/dev/null bs=1M 2>/dev/null && umount /mnt; then
        pass stress "wrote and read back $mib MiB"
    else
        fail stress "writing or reading $mib MiB failed"
    fi
fi
# virtio-rng, when apus was given --rng.
if grep -q apus.expect.rng=1 /proc/cmdline; then
    bytes=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
    if [ ${#bytes} -eq 64 ] && [ "$bytes" != "0000000000000000000000000000000000000000000000000000000000000000" ]; then
        pass hwrng "32 bytes from /dev/hwrng ($(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)): $bytes"
    else
        fail hwrng "read '$bytes' from /dev/hwrng ($(cat /sys/class/misc/hw_random/rng_current 2>&1))"
    fi
fi
# interrupt_lines KIND: the /proc/interrupts lines of virtio devices delivered as KIND.
interrupt_lines() { grep -E "$1" /proc/interrupts | grep virtio; }
# counted LINES: the sum of the per-CPU counts of those lines.
counted() {
    cpus=$(grep -c '^processor' /proc/cpuinfo)
    echo "$1" | awk -v n="$cpus" '{ for (i = 2; i <= n + 1; i++) s += $i } END { print s + 0 }'
}
if bus=$(arg apus.expect.bus); then
    path=$(readlink -f /sys/block/vda/device 2>/dev/null)
    case $bus:$path in
        pci:*/pci0000:00/*|mmio:*LNRO0005*|mmio:*virtio-mmio*|mmio:*.virtio_mmio*) pass bus "/dev/vda is $path" ;;
        *) fail bus "expected a $bus device, /dev/vda is '$path'" ;;
    esac
fi
if [ "$(arg apus.expect.msix)" = 1 ]; then
    lines=$(interrupt_lines 'PCI-MSI')
    n=$(counted "$lines")
    if [ -n "$lines" ] && [ "$n" -gt 0 ]; then
        pass msix "$n MSI-X interrupts: $(echo "$lines" | tr -s ' ' | tr '\n' '|')"
    else
        fail msix "no counting virtio PCI-MSI lines: $(grep -E 'virtio|MSI' /proc/interrupts | tr -s ' ' | tr '\n' '|')"
    fi
fi
if [ "$(arg apus.expect.intx)" = 1 ]; then
    lines=$(interrupt_lines 'IO-APIC')
    n=$(counted "$lines")
    if [ -n "$lines" ] && [ "$n" -gt 0 ] && ! grep -q 'PCI-MSI.*virtio' /proc/interrupts; then
        pass intx "$n INTx interrupts: $(echo "$lines" | tr -s ' ' | tr '\n' '|')"
    else
        fail intx "no counting virtio IO-APIC lines (or MSI in use): $(grep -E 'virtio|MSI' /proc/interrupts | tr -s ' ' | tr '\n' '|')"
    fi
fi
if want=$(arg apus.expect.version1); then
    bad=
    for f in /sys/bus/virtio/devices/*/features; do
        [ "$(cut -c33 "$f")" = "$want" ] || bad="$bad ${f%/features}"
    done
    if [ -z "$bad" ] && [ -n "$(ls /sys/bus/virtio/devices)" ]; then
        pass version1 "every virtio device has VERSION_1=$want ($(ls /sys/bus/virtio/devices | wc -l) devices)"
    else
        fail version1 "VERSION_1 is not $want on:$bad"
    fi
fi
summary
sync
# Without ACPI there is no power-off: apus.end=reboot ends through the i8042 (reboot=k) instead.
if [ "$(arg apus.end)" = reboot ]; then reboot -f; else poweroff -f; fi
