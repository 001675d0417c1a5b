#!/usr/bin/env bash
# build-initramfs.sh [OUT_DIR] — build OUT_DIR/initrd.cpio.gz (default guest/build/linux), the
# level-2 demo guest: static busybox, the virtio modules (insmod'ed in dependency order by /init),
# /init from guest/linux/init and the scenarios from guest/linux/scenarios/. Runs fetch-assets.sh
# first (a no-op when the assets are there). Rebuilds only when an input changed.
set -euo pipefail

log() { printf 'build-initramfs: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$ROOT/guest/build/linux}
# shellcheck source=lib.sh
. "$HERE/lib.sh"

# Loaded in this order (dependencies are pulled in first automatically).
MODULES=(virtio virtio_ring virtio_mmio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
    virtio_blk virtio_console virtio-rng failover net_failover virtio_net)

"$HERE/fetch-assets.sh" "$OUT"
OUT=$(cd "$OUT" && pwd)
kver=$(cat "$OUT/kernel-version")
initrd=$OUT/initrd.cpio.gz

hash=$(inputs_hash "$0" "$HERE/lib.sh" "$HERE/module-order.sh" "$HERE/init" "$HERE/scenarios" \
    "$OUT/assets.stamp" "$OUT/busybox"; echo "${MODULES[*]}")
if [[ -s $initrd && -f $OUT/initrd.stamp && $(cat "$OUT/initrd.stamp") == "$hash" ]]; then
    log "up to date: $initrd"
    exit 0
fi

stage=$OUT/initrd-root
log "staging the level-2 guest in $stage"
rootfs_skeleton "$stage" "$OUT/busybox"
install_modules "$stage" "$OUT/modules" "$kver" "${MODULES[@]}"
install -m 0755 "$HERE/init" "$stage/init"
mkdir -p "$stage/scenarios"
cp "$HERE"/scenarios/*.sh "$stage/scenarios/"
chmod 0755 "$stage"/scenarios/*.sh
printf 'Apus demo guest\n' >"$stage/etc/motd"
printf 'export PS1='\''apus-guest:\\w\\$ '\''\n' >"$stage/etc/profile"

log "packing $initrd"
pack_cpio "$stage" "$initrd"
printf '%s\n' "$hash" >"$OUT/initrd.stamp"
log "done: $initrd ($(du -k "$initrd" | cut -f1) KiB, kernel $kver, $(grep -c '\.ko$' "$stage/etc/apus-modules") modules)"
