#!/usr/bin/env bash
# build-initramfs.sh [--fio|--iperf3] [OUT_DIR] — build OUT_DIR/initrd.cpio.gz, the level-2 demo guest, for
# the kernel package KERNEL_PACKAGE names (default: the cloud kernel, in guest/build/linux; see
# fetch-assets.sh): static busybox, that kernel's own modules (insmod'ed in dependency order by
# /init), /init from guest/linux/init and the scenarios from guest/linux/scenarios/. Runs
# fetch-assets.sh first (a no-op when the assets are there). Rebuilds only when an input changed.
#   --fio   build OUT_DIR/initrd-fio.cpio.gz instead: the same guest plus the host's fio (Debian's
#           package, installed by fetch-assets.sh) and its shared libraries, for `apus bench blk`.
#   --iperf3  build OUT_DIR/initrd-iperf3.cpio.gz: the same with Debian's iperf3, for `apus bench net`.
set -euo pipefail

log() { printf 'build-initramfs: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# The benchmark tool the initramfs carries (fio, iperf3), if any.
tool=
case ${1-} in --fio|--iperf3) tool=${1#--}; shift ;; esac
# shellcheck source=lib.sh
. "$HERE/lib.sh"
OUT=${1:-$(linux_assets_dir "${KERNEL_PACKAGE:-$DEFAULT_KERNEL_PACKAGE}")}
MODULES=("${GUEST_MODULES[@]}")

"$HERE/fetch-assets.sh" "$OUT"
OUT=$(cd "$OUT" && pwd)
kver=$(cat "$OUT/kernel-version")
name=initrd extras=()
if [[ -n $tool ]]; then
    name=initrd-$tool
    bin=$(command -v "$tool") || die "$tool is not installed (guest/linux/fetch-assets.sh installs it)"
    libs=$(shared_libs "$bin") || die "$tool needs libraries this host lacks"
    mapfile -t extras <<<"$bin"$'\n'"$libs"
fi
initrd=$OUT/$name.cpio.gz
stamp=$OUT/$name.stamp

hash=$(inputs_hash "$0" "$HERE/lib.sh" "$HERE/module-order.sh" "$HERE/init" "$HERE/scenarios" \
    "$OUT/assets.stamp" "$OUT/busybox" ${extras[@]+"${extras[@]}"}; echo "${MODULES[*]} ${extras[*]-}")
if [[ -s $initrd && -f $stamp && $(cat "$stamp") == "$hash" ]]; then
    log "up to date: $initrd"
    exit 0
fi

stage=$OUT/$name-root
log "staging the level-2 guest in $stage"
rootfs_skeleton "$stage" "$OUT/busybox"
install_modules "$stage" "$OUT/modules" "$kver" "${MODULES[@]}"
install -m 0755 "$HERE/init" "$stage/init"
mkdir -p "$stage/scenarios"
cp "$HERE"/scenarios/*.sh "$stage/scenarios/"
chmod 0755 "$stage"/scenarios/*.sh
install_files "$stage" ${extras[@]+"${extras[@]}"}
printf 'Apus demo guest\n' >"$stage/etc/motd"
printf 'export PS1='\''apus-guest:\\w\\$ '\''\n' >"$stage/etc/profile"

log "packing $initrd"
pack_cpio "$stage" "$initrd"
printf '%s\n' "$hash" >"$stamp"
log "done: $initrd ($(du -k "$initrd" | cut -f1) KiB, kernel $kver, $(grep -c '\.ko$' "$stage/etc/apus-modules") modules)"
