#!/usr/bin/env bash
# build-host.sh PAYLOAD_DIR [OUT] — build the nested test host's initramfs (level 1) at OUT
# (default guest/build/nested/host-initrd.cpio; gzip'd if OUT ends in .gz): the Debian cloud kernel's HOST_MODULES
# (guest/linux/lib.sh: KVM, tun, vhost_net, bridge), static busybox, /init from guest/nested/host-init, PAYLOAD_DIR
# copied to /payload (symlinks followed), and the dynamic loader and shared libraries that `ldd`
# lists for every ELF file in the payload (at the paths ldd prints). /init runs /payload/run.sh.
# Kernel assets come from $APUS_LINUX_ASSETS (default guest/build/linux; fetched if missing).
# Rebuilds only when an input changed.
set -euo pipefail

log() { printf 'build-host: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LINUX=$ROOT/guest/linux
# shellcheck source=../linux/lib.sh
. "$LINUX/lib.sh"

[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: $0 PAYLOAD_DIR [OUT]" >&2; exit 2; }
PAYLOAD=$1
OUT=${2:-$ROOT/guest/build/nested/host-initrd.cpio}
ASSETS=${APUS_LINUX_ASSETS:-$ROOT/guest/build/linux}
MODULES=("${HOST_MODULES[@]}")  # guest/linux/lib.sh

[[ -d $PAYLOAD ]] || die "payload directory $PAYLOAD does not exist"
[[ -f $PAYLOAD/run.sh ]] || log "warning: $PAYLOAD has no run.sh; the host will report NESTED-EXIT: 127"
PAYLOAD=$(cd "$PAYLOAD" && pwd)
mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")

# The nested host always runs the default (cloud) kernel, whatever KERNEL_PACKAGE the level-2
# guest uses.
KERNEL_PACKAGE=$DEFAULT_KERNEL_PACKAGE "$LINUX/fetch-assets.sh" "$ASSETS"
kver=$(cat "$ASSETS/kernel-version")

# Shared libraries of the payload's ELF files (the loader included), as absolute host paths.
mapfile -d '' payload_files < <(find -L "$PAYLOAD" -type f -print0)
libs_text=$(shared_libs "${payload_files[@]}") || die "the payload needs libraries this host lacks"
libs=()
[[ -z $libs_text ]] || mapfile -t libs <<<"$libs_text"

hash=$(inputs_hash "$0" "$LINUX/lib.sh" "$LINUX/module-order.sh" "$HERE/host-init" \
    "$ASSETS/assets.stamp" "$ASSETS/busybox" "$PAYLOAD" ${libs[@]+"${libs[@]}"}
    echo "${MODULES[*]} ${libs[*]-}")
stamp=$OUT.stamp
if [[ -s $OUT && -f $stamp && $(cat "$stamp") == "$hash" ]]; then
    log "up to date: $OUT"
    exit 0
fi

stage=$(mktemp -d "$OUT.root.XXXXXX")
trap 'rm -rf "$stage"' EXIT
log "staging the nested host in $stage"
rootfs_skeleton "$stage" "$ASSETS/busybox"
install_modules "$stage" "$ASSETS/modules" "$kver" "${MODULES[@]}"
install -m 0755 "$HERE/host-init" "$stage/init"
mkdir -p "$stage/payload"
cp -RL --preserve=mode "$PAYLOAD/." "$stage/payload/"
install_files "$stage" ${libs[@]+"${libs[@]}"}
((${#libs[@]})) && log "added ${#libs[@]} shared libraries: ${libs[*]}"

log "packing $OUT"
pack_cpio "$stage" "$OUT"
printf '%s\n' "$hash" >"$stamp"
log "done: $OUT ($(du -k "$OUT" | cut -f1) KiB; payload $(du -skL "$PAYLOAD" | cut -f1) KiB)"
