#!/usr/bin/env bash
# bzimage-info.sh [BZIMAGE] — print the x86 boot-protocol setup header of a bzImage (default
# guest/build/linux/vmlinuz) and check what Apus's 64-bit loader relies on: boot_flag 0xAA55,
# "HdrS", protocol >= 2.12, XLF_KERNEL_64, relocatable. Exits 1 if a check fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
img=${1:-$ROOT/guest/build/linux/vmlinuz}
[[ -f $img ]] || { echo "bzimage-info: no $img (run guest/linux/fetch-assets.sh)" >&2; exit 2; }

# u OFFSET SIZE: little-endian unsigned integer of SIZE bytes at OFFSET.
u() { od -An -tu"$2" -j "$1" -N "$2" --endian=little "$img" | tr -d ' '; }
hex() { printf '0x%x' "$1"; }

setup_sects=$(u 0x1F1 1); ((setup_sects == 0)) && setup_sects=4
boot_flag=$(u 0x1FE 2) header=$(u 0x202 4) version=$(u 0x206 2) loadflags=$(u 0x211 1)
code32_start=$(u 0x214 4) initrd_addr_max=$(u 0x22C 4) kernel_alignment=$(u 0x230 4)
relocatable=$(u 0x234 1) min_alignment=$(u 0x235 1) xloadflags=$(u 0x236 2)
cmdline_size=$(u 0x238 4) payload_offset=$(u 0x248 4) payload_length=$(u 0x24C 4)
pref_address=$(u 0x258 8) init_size=$(u 0x260 4) handover_offset=$(u 0x264 4)
pm_offset=$(((setup_sects + 1) * 512))
size=$(stat -c %s "$img")

xlf=()
((xloadflags & 0x01)) && xlf+=(KERNEL_64)
((xloadflags & 0x02)) && xlf+=(CAN_BE_LOADED_ABOVE_4G)
((xloadflags & 0x04)) && xlf+=(EFI_HANDOVER_32)
((xloadflags & 0x08)) && xlf+=(EFI_HANDOVER_64)
((xloadflags & 0x10)) && xlf+=(EFI_KEXEC)
((xloadflags & 0x20)) && xlf+=(5LEVEL)
((xloadflags & 0x40)) && xlf+=(5LEVEL_ENABLED)
lf=()
((loadflags & 0x01)) && lf+=(LOADED_HIGH)
((loadflags & 0x20)) && lf+=(QUIET_FLAG)
((loadflags & 0x40)) && lf+=(KEEP_SEGMENTS)
((loadflags & 0x80)) && lf+=(CAN_USE_HEAP)
magic=$(od -An -tx1 -j $((pm_offset + payload_offset)) -N 6 "$img" | tr -d ' ')
case $magic in
    1f8b*) comp=gzip ;; fd377a585a00) comp=xz ;; 28b52ffd*) comp=zstd ;; 894c5a4f*) comp=lzo ;;
    02214c18*) comp=lz4 ;; 425a68*) comp=bzip2 ;; 5d00*) comp=lzma ;; *) comp="unknown ($magic)" ;;
esac

printf '%-20s %s\n' \
    file "$img ($size bytes)" \
    setup_sects "$setup_sects (protected-mode kernel at file offset $(hex $pm_offset), $((size - pm_offset)) bytes)" \
    boot_flag "$(hex "$boot_flag")" \
    header "$(hex "$header")" \
    version "$(hex "$version") (protocol $((version >> 8)).$(printf %02d $((version & 0xff))))" \
    loadflags "$(hex "$loadflags") (${lf[*]-})" \
    code32_start "$(hex "$code32_start")" \
    initrd_addr_max "$(hex "$initrd_addr_max")" \
    kernel_alignment "$(hex "$kernel_alignment") ($((kernel_alignment >> 20)) MiB)" \
    relocatable_kernel "$relocatable" \
    min_alignment "$min_alignment ($(hex $((1 << min_alignment))))" \
    xloadflags "$(hex "$xloadflags") (${xlf[*]-})" \
    cmdline_size "$cmdline_size" \
    payload "offset $(hex "$payload_offset") length $payload_length, $comp" \
    pref_address "$(hex "$pref_address")" \
    init_size "$(hex "$init_size") ($((init_size >> 10)) KiB; pref_address + init_size = $(hex $((pref_address + init_size))))" \
    handover_offset "$(hex "$handover_offset")" \
    entry_64 "load address + 0x200 (startup_64)"

fail=0
check() { if ! eval "$1"; then echo "bzimage-info: FAIL $2" >&2; fail=1; fi; }
check '((boot_flag == 0xAA55))' "boot_flag is not 0xAA55"
check '((header == 0x53726448))' "no HdrS magic"
check '((version >= 0x020C))' "boot protocol older than 2.12 (no xloadflags)"
check '((xloadflags & 1))' "no XLF_KERNEL_64: no 64-bit entry point"
check '((relocatable == 1))' "kernel is not relocatable"
exit $fail
