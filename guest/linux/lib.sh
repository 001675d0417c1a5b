# Shared bash helpers for the initramfs builders (guest/linux/build-initramfs.sh,
# guest/nested/build-host.sh). Source it; it expects `set -euo pipefail` and a `log` function.

# The kernel the demo guest, the e2e scenarios and the nested test host use unless KERNEL_PACKAGE
# names another Debian kernel package.
DEFAULT_KERNEL_PACKAGE=linux-image-cloud-amd64

# The level-2 guest's modules, loaded by /init in this order (dependencies are pulled in first
# automatically): virtio over both transports, the devices, the filesystem the disk scenarios
# mount (ext4, which also mounts ext2; built in on most flavours), and the ACPI power button
# with the input event interface /init watches it through (`apus ctl shutdown`).
GUEST_MODULES=(virtio virtio_ring virtio_mmio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
    virtio_blk virtio_console virtio_rng virtio_balloon failover net_failover virtio_net ext4
    evdev button)
# The nested test host's (level 1): KVM, and for the network scenarios tun (the guest's tap),
# vhost_net (vhost=on hands the data path to the kernel) and bridge (to bridge taps).
HOST_MODULES=(irqbypass kvm kvm-amd kvm-intel tun vhost_iotlb vhost vhost_net bridge)

# linux_assets_dir PACKAGE: where fetch-assets.sh puts a kernel package's guest assets:
# guest/build/linux for the default kernel, guest/build/linux-FLAVOUR for linux-image-FLAVOUR.
linux_assets_dir() {
    local root; root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    if [[ $1 == "$DEFAULT_KERNEL_PACKAGE" ]]; then echo "$root/guest/build/linux"
    else echo "$root/guest/build/linux-${1#linux-image-}"; fi
}

# rootfs_skeleton DIR BUSYBOX: a fresh busybox tree in DIR — directories, busybox with every
# applet linked where `busybox --list-full` says, /dev/console and /dev/null nodes.
rootfs_skeleton() {
    local dir=$1 bb=$2 applet
    rm -rf "$dir"
    mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,lib,mnt}
    chmod 1777 "$dir/tmp"
    install -m 0755 "$bb" "$dir/bin/busybox"
    while IFS= read -r applet; do
        [[ $applet == bin/busybox ]] && continue
        mkdir -p "$dir/$(dirname "$applet")"
        ln -sf /bin/busybox "$dir/$applet"
    done < <("$bb" --list-full)
    # The kernel opens /dev/console before /init runs; without the node /init has no stdio.
    if [[ $(id -u) == 0 ]]; then
        mknod -m 600 "$dir/dev/console" c 5 1
        mknod -m 666 "$dir/dev/null" c 1 3
    else
        log "warning: not root, so no /dev/console node: /init's output will be lost until devtmpfs"
    fi
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$dir/etc/passwd"
    printf 'root:x:0:\n' >"$dir/etc/group"
}

# install_modules DIR MODROOT KVER NAME...: copy NAME... and their dependencies (in dependency
# order) from MODROOT/lib/modules/KVER into DIR/lib/modules/KVER and write DIR/etc/apus-modules
# ("NAME PATH" | "NAME builtin" | "NAME missing" lines) for /init to insmod in order.
install_modules() {
    local dir=$1 modroot=$2 kver=$3 name path; shift 3
    local here; here=$(dirname "${BASH_SOURCE[0]}")
    mkdir -p "$dir/lib/modules/$kver" "$dir/etc"
    "$here/module-order.sh" "$modroot" "$kver" "$@" >"$dir/etc/apus-modules"
    while read -r name path; do
        case $path in
            builtin|missing) ;;
            *) mkdir -p "$dir/lib/modules/$kver/$(dirname "$path")"
               cp "$modroot/lib/modules/$kver/$path" "$dir/lib/modules/$kver/$path" ;;
        esac
    done <"$dir/etc/apus-modules"
}

# pack_cpio DIR OUT: DIR as a newc cpio archive at OUT (written atomically), gzip'd when OUT ends
# in .gz, else uncompressed (big payloads: packing is instant and the kernel unpacks it faster under
# TCG); all files owned by root, reproducible (sorted names, fixed mtimes).
pack_cpio() {
    local dir=$1 out=$2 compress=(cat)
    [[ $out == *.gz ]] && compress=(gzip -9n)
    find "$dir" -exec touch -h -d @0 {} +
    (cd "$dir" && find . -print0 | LC_ALL=C sort -z |
        cpio --null -o -H newc --owner 0:0 --reproducible --quiet) | "${compress[@]}" >"$out.tmp"
    mv "$out.tmp" "$out"
}

# inputs_hash FILE|DIR...: a hash of the names and contents of the given inputs.
inputs_hash() {
    local p
    for p in "$@"; do
        if [[ -d $p ]]; then
            (cd "$p" && find -L . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
        else
            printf '%s %s\n' "$(sha256sum <"$p" | cut -d' ' -f1)" "${p##*/}"
        fi
    done | sha256sum | cut -d' ' -f1
}

# shared_libs FILE...: the dynamic loader and the shared libraries `ldd` lists for each ELF FILE
# (absolute paths, sorted, once each); static and non-ELF files add nothing. Fails, naming them,
# when a library cannot be found.
shared_libs() {
    local f out line p libs=() missing=()
    for f in "$@"; do
        [[ $(head -c4 "$f" 2>/dev/null | tr -d '\0') == $'\x7fELF' ]] || continue
        out=$(ldd "$f" 2>&1) || continue # "not a dynamic executable": static, nothing to add
        while IFS= read -r line; do
            case $line in
                *"=> not found"*) missing+=("${line%% =>*} (needed by ${f##*/})") ;;
                *"=> /"*) p=${line#*=> }; libs+=("${p%% (0x*}") ;;
                *" (0x"*) p=${line%% (0x*}; p=${p//[[:space:]]/}; [[ $p == /* ]] && libs+=("$p") ;;
            esac
        done <<<"$out"
    done
    ((${#missing[@]} == 0)) || { log "error: ldd cannot find: $(printf '%s; ' "${missing[@]}")"; return 1; }
    ((${#libs[@]} == 0)) || printf '%s\n' "${libs[@]}" | LC_ALL=C sort -u
}

# install_files DIR PATH...: copy each absolute PATH to the same path under DIR (links followed).
install_files() {
    local dir=$1 p; shift
    for p in "$@"; do
        mkdir -p "$dir$(dirname "$p")"
        cp -L "$p" "$dir$p"
    done
}
