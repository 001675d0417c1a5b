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
cd "$(dirname "$0")"
./apus run --kernel vmlinuz --initrd initrd.cpio.gz --cpus 2 --memory 512M
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
