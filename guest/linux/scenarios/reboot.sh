#!/bin/sh
# Scenario "reboot": reports that the guest came up, then reboots (how is up to the kernel's
# reboot= parameter). Apus ends with its reboot status (32).
APUS_SCENARIO=reboot
. /scenarios/lib.sh
pass reached "$(nproc) CPU(s), kernel $(uname -r)"
summary
sync
reboot -f
