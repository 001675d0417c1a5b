#!/bin/sh
# Scenario "boot": the guest reached /init; check what the VMM handed over.
# Command line: apus.test=boot apus.marker=xyz [apus.expect.cpus=N] [apus.expect.mem_mib=M]
#   boot.cmdline   PASS if apus.marker=xyz arrived intact
#   boot.nproc     PASS if nproc = N (or >= 1 when N is not given)
#   boot.memtotal  PASS if the RAM the kernel found is within 5 % of M MiB (or MemTotal > 0 without M)
# Then powers off with `poweroff -f`.
APUS_SCENARIO=boot
. /scenarios/lib.sh

marker=$(arg apus.marker) || marker="<absent>"
if [ "$marker" = xyz ]; then pass cmdline "apus.marker=$marker"; else fail cmdline "apus.marker=$marker, expected xyz; cmdline: $(cat /proc/cmdline)"; fi

cpus=$(nproc)
if want=$(arg apus.expect.cpus); then
    if [ "$cpus" -eq "$want" ]; then pass nproc "$cpus"; else fail nproc "$cpus, expected $want"; fi
else
    if [ "$cpus" -ge 1 ]; then pass nproc "$cpus"; else fail nproc "$cpus"; fi
fi

# The RAM the kernel found (dmesg "Memory: availK/totalK available") must match --memory
# within 5 %; MemTotal is what is left after the kernel's own reservations, reported as well.
mem_kib=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)
seen_kib=$(dmesg | sed -n 's/.*Memory: [0-9]*K\/\([0-9]*\)K available.*/\1/p' | head -n 1)
if want=$(arg apus.expect.mem_mib); then
    lo=$((want * 1024 * 95 / 100)) hi=$((want * 1024 * 105 / 100))
    if [ -n "$seen_kib" ] && [ "$seen_kib" -ge "$lo" ] && [ "$seen_kib" -le "$hi" ]; then
        pass memtotal "kernel sees ${seen_kib} kB of RAM (MemTotal $mem_kib kB) for $want MiB"
    else
        fail memtotal "kernel sees ${seen_kib:-?} kB (MemTotal $mem_kib kB), expected $lo..$hi kB for $want MiB"
    fi
else
    if [ "${mem_kib:-0}" -gt 0 ]; then pass memtotal "$mem_kib kB"; else fail memtotal "no MemTotal"; fi
fi

summary
sync
poweroff -f
