#!/usr/bin/env bash
# make run: boots the demo Linux guest (Debian cloud kernel + busybox initramfs) under apus with
# its console on this terminal. Where /dev/kvm is hardware-backed apus runs directly; otherwise
# (no VMX/SVM, e.g. kvm_pvm) it runs inside the nested test host, which is announced.
# Quit with Ctrl-A x (apus), or `poweroff` in the guest shell.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
APUS=.build/release/apus
LINUX=guest/build/linux
ARGS=(--kernel "$LINUX/vmlinuz" --initrd "$LINUX/initrd.cpio.gz" --cpus 2 --memory 512M)
mode=${APUS_RUN_MODE:-$(guest/nested/detect.sh 2>/dev/null)}

if [ "$mode" = hardware ]; then
    echo "make run: /dev/kvm is hardware-backed; booting the demo guest directly (Ctrl-A x quits)" >&2
    exec "$APUS" run "${ARGS[@]}"
fi

echo "make run: /dev/kvm here has no VMX/SVM behind it, so a stock Linux kernel cannot run on it." >&2
echo "make run: booting the nested test host (QEMU TCG with SVM) and apus inside it; the demo guest's" >&2
echo "make run: console follows. Ctrl-A x quits apus (then the host powers off); 'poweroff' works too." >&2
payload=guest/build/demo
rm -rf "$payload"; mkdir -p "$payload"
cp "$APUS" "$LINUX/vmlinuz" "$LINUX/initrd.cpio.gz" "$payload/"
cat > "$payload/run.sh" <<'SH'
#!/bin/sh
./apus run --kernel vmlinuz --initrd initrd.cpio.gz --cpus 2 --memory 512M
echo "apus exited with status $?"
SH
chmod +x "$payload/run.sh"
# QEMU's own escape would also be Ctrl-A: move it to Ctrl-] so Ctrl-A x reaches apus.
exec guest/nested/run.sh "$payload" --interactive --append apus.nested.interactive=1
