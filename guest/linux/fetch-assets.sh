#!/usr/bin/env bash
# fetch-assets.sh [OUT_DIR] — fetch a Debian kernel and busybox-static by package name.
#
# KERNEL_PACKAGE (environment) names the kernel: a Debian metapackage such as
# linux-image-cloud-amd64 (the default), linux-image-amd64 or linux-image-rt-amd64, or a versioned
# package (linux-image-6.1.0-57-rt-amd64). Every flavour brings its own modules.
#
# Produces, in OUT_DIR (default: `linux_assets_dir` in lib.sh, guest/build/linux for the cloud
# kernel, guest/build/linux-FLAVOUR for the others):
#   vmlinuz            the bzImage of the kernel package
#   kernel-version     its `uname -r` string (e.g. 6.1.0-56-cloud-amd64)
#   kernel-config      its build configuration (boot/config-*), for scenarios that depend on it
#   kernel-package     the package name it came from
#   busybox            the static busybox binary
#   modules/           the modules Apus needs (GUEST_MODULES and HOST_MODULES of lib.sh)
#                      plus their dependencies, uncompressed, in lib/modules/VER/ layout, with a
#                      modules.dep made by `depmod -b`, and modules/modules.builtin from the package
#   debs/              the downloaded .deb files
#   assets.stamp       the package versions these files came from (makes re-runs a no-op)
# Also installs the host tools the other scripts need (qemu-system-x86, cpio, kmod, socat, fio,
# iperf3) when missing.
set -euo pipefail

log() { printf 'fetch-assets: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=lib.sh
. "$ROOT/guest/linux/lib.sh"
KERNEL_PACKAGE=${KERNEL_PACKAGE:-$DEFAULT_KERNEL_PACKAGE}
[[ $KERNEL_PACKAGE =~ ^linux-image-[a-z0-9.+-]+$ ]] || die "KERNEL_PACKAGE=$KERNEL_PACKAGE is not a Debian kernel image package (linux-image-...)"
OUT=${1:-$(linux_assets_dir "$KERNEL_PACKAGE")}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# Modules wanted in some initramfs (names as modinfo/depmod spell them, '-' and '_' equivalent):
# the level-2 guest's (GUEST_MODULES in lib.sh) and the nested host's. A flavour that builds one
# in, or lacks it, is fine: module-order.sh says so.
WANTED_MODULES=("${GUEST_MODULES[@]}" "${HOST_MODULES[@]}")
# Bumped when what this script extracts changes, so that old assets are redone (2: soft deps).
FORMAT=format=2

# --- package lists ----------------------------------------------------------------------------
# A fresh machine may have no apt lists (or stale ones): update once when a look-up needs it.
apt_updated=0
apt_update_once() {
    ((apt_updated)) && return 0
    apt_updated=1
    [[ $(id -u) == 0 ]] || { log "no apt lists and not root: run 'apt-get update' first"; return 0; }
    log "apt-get update"
    apt-get update -q >&2 || log "apt-get update failed; trying with the lists we have"
}
compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt_update_once

# --- host tools -------------------------------------------------------------------------------
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
command -v cpio >/dev/null || need_pkgs+=(cpio)
{ command -v depmod >/dev/null && command -v modinfo >/dev/null; } || need_pkgs+=(kmod)
command -v socat >/dev/null || need_pkgs+=(socat) # nested/run.sh: QEMU monitor dump on timeout
command -v fio >/dev/null || need_pkgs+=(fio) # apus bench blk: the guest's I/O load (build-initramfs.sh --fio)
command -v iperf3 >/dev/null || need_pkgs+=(iperf3) # apus bench net: both ends (build-initramfs.sh --iperf3)
command -v dpkg-deb >/dev/null || die "dpkg-deb missing: this script needs a Debian host"
if ((${#need_pkgs[@]})); then
    log "installing host tools: ${need_pkgs[*]}"
    [[ $(id -u) == 0 ]] || die "need root to apt-get install ${need_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2 || {
        apt_update_once
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2
    }
fi

# --- fast path: nothing changed since the last run --------------------------------------------
# apt-cache takes ~1 s a query; skip it when the package lists are older than our stamp.
if [[ -f $OUT/assets.stamp && -s $OUT/vmlinuz && -s $OUT/kernel-version && -x $OUT/busybox &&
      -d $OUT/modules && -s $OUT/kernel-config &&
      $(cat "$OUT/assets.stamp") == "$KERNEL_PACKAGE->"*" modules=${WANTED_MODULES[*]} $FORMAT" ]] &&
   [[ -z $(find /var/lib/apt/lists -maxdepth 1 -newer "$OUT/assets.stamp" -print -quit 2>/dev/null) ]]; then
    log "up to date: $(cat "$OUT/kernel-version") in $OUT"
    exit 0
fi

# --- resolve package names and versions -------------------------------------------------------
# A metapackage names the versioned package it depends on; a versioned package is itself.
resolve_kernel_package() {
    if [[ $KERNEL_PACKAGE =~ ^linux-image-[0-9] ]]; then
        apt-cache show "$KERNEL_PACKAGE" >/dev/null 2>&1 && echo "$KERNEL_PACKAGE"
        return 0
    fi
    apt-cache depends "$KERNEL_PACKAGE" 2>/dev/null |
        sed -n 's/^ *|\{0,1\}Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1
}
kpkg=$(resolve_kernel_package)
[[ -n $kpkg ]] || { apt_update_once; kpkg=$(resolve_kernel_package); }
[[ -n $kpkg ]] || die "cannot resolve a kernel image from KERNEL_PACKAGE=$KERNEL_PACKAGE (no such package? try: apt-cache search --names-only '^linux-image-')"
kver_pkg=$(apt-cache policy "$kpkg" | sed -n 's/^ *Candidate: //p')
bver_pkg=$(apt-cache policy busybox-static | sed -n 's/^ *Candidate: //p')
[[ -n $kver_pkg && $kver_pkg != "(none)" ]] || die "no candidate version for $kpkg"
[[ -n $bver_pkg && $bver_pkg != "(none)" ]] || die "no candidate version for busybox-static"
stamp="$KERNEL_PACKAGE->$kpkg=$kver_pkg busybox-static=$bver_pkg modules=${WANTED_MODULES[*]} $FORMAT"

if [[ -f $OUT/assets.stamp && $(cat "$OUT/assets.stamp") == "$stamp" &&
      -s $OUT/vmlinuz && -s $OUT/kernel-version && -s $OUT/kernel-config && -x $OUT/busybox && -d $OUT/modules ]]; then
    touch "$OUT/assets.stamp"
    log "up to date: $kpkg $kver_pkg ($(cat "$OUT/kernel-version")), busybox-static $bver_pkg"
    exit 0
fi
rm -f "$OUT/assets.stamp"

# --- download ---------------------------------------------------------------------------------
mkdir -p "$OUT/debs"
deb_of() { # PKG VERSION -> path of the downloaded .deb (downloads if absent)
    local pkg=$1 ver=$2 f
    f=$(find "$OUT/debs" -maxdepth 1 \( -name "${pkg}_${ver#*:}_*.deb" -o -name "${pkg}_${ver/:/%3a}_*.deb" \) -print -quit)
    if [[ -z $f ]]; then
        log "downloading $pkg $ver"
        # apt drops privileges to _apt for downloads; give it a directory it may write to.
        local tmp; tmp=$(mktemp -d); chmod 777 "$tmp"
        (cd "$tmp" && apt-get download -q "$pkg=$ver" >&2) || { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
        mv "$tmp"/*.deb "$OUT/debs/" && rm -rf "$tmp"
        f=$(find "$OUT/debs" -maxdepth 1 \( -name "${pkg}_${ver#*:}_*.deb" -o -name "${pkg}_${ver/:/%3a}_*.deb" \) -print -quit)
    fi
    [[ -n $f ]] || die "no .deb for $pkg $ver after download"
    printf '%s\n' "$f"
}
kdeb=$(deb_of "$kpkg" "$kver_pkg")
bdeb=$(deb_of busybox-static "$bver_pkg")

work=$(mktemp -d "$OUT/.extract.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- busybox ----------------------------------------------------------------------------------
log "extracting busybox from $(basename "$bdeb")"
dpkg-deb -x "$bdeb" "$work/bb"
install -m 0755 "$work/bb/bin/busybox" "$OUT/busybox.new" && mv "$OUT/busybox.new" "$OUT/busybox"

# --- kernel -----------------------------------------------------------------------------------
log "extracting $(basename "$kdeb") (this takes a few seconds)"
dpkg-deb -x "$kdeb" "$work/k"
vmlinuz=$(find "$work/k/boot" -maxdepth 1 -name 'vmlinuz-*' -print -quit)
[[ -n $vmlinuz ]] || die "no boot/vmlinuz-* in $kdeb"
kver=${vmlinuz##*/vmlinuz-}
[[ -d $work/k/lib/modules/$kver ]] || die "no lib/modules/$kver in $kdeb"
log "kernel version $kver"

log "running depmod -b on the unpacked package"
depmod -b "$work/k" "$kver"
mdir=$work/k/lib/modules/$kver

# The wanted modules and everything they need (hard and soft dependencies), as paths relative to
# $mdir: the same walk the initramfs builders make later on the kept subset.
picked=()
while read -r name rel; do
    case $rel in
        builtin) log "note: module $name is built into the kernel" ;;
        missing) log "note: module $name is not in this kernel" ;;
        *) picked+=("$rel") ;;
    esac
done < <("$ROOT/guest/linux/module-order.sh" "$work/k" "$kver" "${WANTED_MODULES[@]}" 2>/dev/null)

rm -rf "$OUT/modules.new"
dst=$OUT/modules.new/lib/modules/$kver
mkdir -p "$dst"
for rel in "${picked[@]}"; do
    mkdir -p "$dst/$(dirname "$rel")"
    case $rel in
        *.ko) cp "$mdir/$rel" "$dst/$rel" ;;
        *.ko.xz) xz -dc "$mdir/$rel" >"$dst/${rel%.xz}" ;;
        *.ko.zst) zstd -qdc "$mdir/$rel" >"$dst/${rel%.zst}" ;;
        *.ko.gz) gzip -dc "$mdir/$rel" >"$dst/${rel%.gz}" ;;
        *) die "unexpected module file $rel" ;;
    esac
done
cp "$mdir/modules.builtin" "$mdir/modules.order" "$dst/" 2>/dev/null || true
[[ -f $mdir/modules.builtin.modinfo ]] && cp "$mdir/modules.builtin.modinfo" "$dst/"
depmod -b "$OUT/modules.new" "$kver"
rm -rf "$OUT/modules" && mv "$OUT/modules.new" "$OUT/modules"
log "kept ${#picked[@]} modules under $OUT/modules/lib/modules/$kver"

cp "$vmlinuz" "$OUT/vmlinuz.new" && mv "$OUT/vmlinuz.new" "$OUT/vmlinuz"
config=$work/k/boot/config-$kver
[[ -f $config ]] || die "no boot/config-$kver in $kdeb"
cp "$config" "$OUT/kernel-config"
printf '%s\n' "$KERNEL_PACKAGE" >"$OUT/kernel-package"
printf '%s\n' "$kver" >"$OUT/kernel-version"
printf '%s\n' "$stamp" >"$OUT/assets.stamp"
log "done: $OUT/vmlinuz ($kver), $OUT/busybox, $OUT/modules"
