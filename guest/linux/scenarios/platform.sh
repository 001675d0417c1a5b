#!/bin/sh
# Scenario "platform": what the firmware tables told the kernel about the board.
# Command line: apus.test=platform [apus.expect.cpus=N] [apus.expect.ioapic=0|1]
#   platform.cpus   PASS if N CPUs are online (every CPU the MP table or MADT lists came up)
#   platform.ioapic PASS if interrupts go through the IOAPIC (1) or the legacy PIC may serve (0)
# Then reboots with `reboot -f`: without ACPI there is no power-off, and with reboot=k the i8042
# reset ends apus with status 32.
APUS_SCENARIO=platform
. /scenarios/lib.sh

cpus=$(grep -c '^processor' /proc/cpuinfo)
want=$(arg apus.expect.cpus) || want=1
if [ "$cpus" -eq "$want" ]; then
    pass cpus "$cpus online"
else
    fail cpus "$cpus online, expected $want; $(dmesg | grep -iE 'mptable|smpboot|MP-table' | head -n 4 | tr '\n' '|')"
fi

controllers=$(sed -n '2,$p' /proc/interrupts | grep -oE 'IO-APIC|XT-PIC' | sort | uniq -c | tr -s ' \n' '  ')
if [ "$(arg apus.expect.ioapic)" = 1 ]; then
    if grep -q 'IO-APIC' /proc/interrupts; then pass ioapic "IO-APIC in use:$controllers"
    else fail ioapic "no IO-APIC interrupts:$controllers; $(dmesg | grep -iE 'ioapic|io-apic' | head -n 3 | tr '\n' '|')"; fi
else
    pass ioapic "not required on this kernel:$controllers"
fi
summary
sync
reboot -f
