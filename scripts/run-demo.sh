#!/usr/bin/env bash
# make run: boots the demo Linux guest (LINUX_ASSETS: the kernel KERNEL_PACKAGE built, Debian's
# cloud kernel by default, and the busybox initramfs) under apus with its console on this terminal,
# through scripts/linux-host.sh: directly where /dev/kvm is hardware-backed, otherwise (no
# VMX/SVM, e.g. kvm_pvm) inside the nested test host, which is announced.
# Quit with Ctrl-A x (apus), or `poweroff` in the guest shell.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LINUX=${LINUX_ASSETS:-guest/build/linux}
payload=guest/build/demo
rm -rf "$payload"; mkdir -p "$payload"
cp .build/release/apus "$LINUX/vmlinuz" "$LINUX/initrd.cpio.gz" "$payload/"
cat > "$payload/run.sh" <<'SH'
#!/bin/sh
# The demo guest with a disk (/dev/vda, 256 MiB, empty) and a network: tap apus0, this side
# 10.0.2.1/24, the guest 10.0.2.15 (creating the tap needs root and the tun module; without them
# the guest boots without a network, and says so).
cd "$(dirname "$0")"
dd if=/dev/zero of=demo-disk.img bs=1M count=0 seek=256 2>/dev/null
net= ip=
if [ -d /sys/class/net/apus0 ] || ip tuntap add apus0 mode tap 2>/dev/null || tunctl -t apus0 >/dev/null 2>&1; then
    ip addr add 10.0.2.1/24 dev apus0 2>/dev/null
    ip link set apus0 up
    net="--net tap=apus0" ip="apus.ip=10.0.2.15/24"
    echo "demo: disk /dev/vda (256 MiB, empty: mke2fs /dev/vda); network: the guest is 10.0.2.15, this host 10.0.2.1 on tap apus0 (try: ping 10.0.2.1)"
else
    echo "demo: no network (creating tap apus0 needs root and the tun module); disk /dev/vda (256 MiB, empty)"
fi
# shellcheck disable=SC2086 # $net is one option and its value, or nothing
./apus run --kernel vmlinuz --initrd initrd.cpio.gz --cpus 2 --memory 512M --disk path=demo-disk.img $net \
    --cmdline "console=ttyS0 reboot=k panic=-1 $ip"
status=$?
echo "apus exited with status $status"
exit $status
SH
chmod +x "$payload/run.sh"

if [[ $(scripts/linux-host.sh mode 2>/dev/null) == hardware ]]; then
    echo "make run: /dev/kvm is hardware-backed; booting the demo guest directly (Ctrl-A x quits)" >&2
else
    echo "make run: /dev/kvm here has no VMX/SVM behind it, so a stock Linux kernel cannot run on it." >&2
    echo "make run: booting the nested test host (QEMU TCG with SVM) and apus inside it; the demo guest's" >&2
    echo "make run: console follows. Ctrl-A x quits apus (then the host powers off); 'poweroff' works too." >&2
fi
exec scripts/linux-host.sh interactive --payload "$payload"
