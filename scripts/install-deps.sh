#!/usr/bin/env bash
# Installs the Debian packages Apus needs to build and test, if they are missing.
# Safe to run repeatedly: it does nothing when everything is present.
set -euo pipefail

need=()
[ -f /usr/include/linux/kvm.h ] || need+=(linux-libc-dev)
[ -f /usr/include/x86_64-linux-gnu/sys/ioctl.h ] || [ -f /usr/include/sys/ioctl.h ] || need+=(libc6-dev)
command -v gcc >/dev/null || need+=(gcc)
# The fuzz targets link libFuzzer (shipped with the Swift toolchain, as are ASan and lld), which
# needs the C++ library to link against: g++ brings the libstdc++-dev that matches gcc.
command -v gcc >/dev/null && [ -e "$(gcc -print-file-name=libstdc++.so)" ] || need+=(g++)
command -v ld >/dev/null || need+=(binutils)
command -v make >/dev/null || need+=(make)
# libseccomp: apus confines each thread with a seccomp allow-list (Sources/CSeccomp).
[ -f /usr/include/seccomp.h ] || need+=(libseccomp-dev)
# The image-lock unit tests check apus against QEMU's own locking.
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "apus: installing Debian packages: ${need[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "apus: need root to install ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
