#!/bin/sh
# Scenario "disk": virtio-blk over virtio-mmio, found through ACPI.
#   /dev/vda (writable): mke2fs, mount, write a file, unmount, sync — the host then finds the
#                        file's content in the image
#   /dev/vdb (read-only): reads work, writes are refused
#   /dev/hwrng (with apus.expect.rng=1): returns random bytes from virtio-rng
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
summary
sync
poweroff -f
