#!/usr/bin/env bash
# detect.sh — print how Linux end-to-end tests can run on this machine:
#   hardware  /proc/cpuinfo has vmx or svm and /dev/kvm exists: boot level-2 guests directly
#   nested    otherwise: run them inside the nested test host (guest/nested/run.sh)
# The reason goes to stderr.
set -euo pipefail

why() { printf 'detect: %s\n' "$*" >&2; }

flag=$(grep -m1 -owE 'vmx|svm' /proc/cpuinfo 2>/dev/null || true)
if [[ -n $flag && -e /dev/kvm ]]; then
    [[ -r /dev/kvm && -w /dev/kvm ]] || why "warning: /dev/kvm exists but is not readable and writable by $(id -un)"
    why "CPU has $flag and /dev/kvm exists: hardware-backed KVM"
    echo hardware
    exit 0
fi
if [[ -z $flag ]]; then
    reason="no vmx or svm flag in /proc/cpuinfo"
    if [[ -e /dev/kvm ]]; then
        if [[ -d /sys/module/kvm_pvm ]]; then
            reason+=" (/dev/kvm is provided by kvm_pvm, a software virtualizer on which stock Linux kernels do not boot)"
        else
            reason+=" (/dev/kvm exists but cannot be hardware-backed)"
        fi
    fi
else
    reason="CPU has $flag but /dev/kvm is missing (kvm-intel/kvm-amd not loaded, or disabled in firmware?)"
fi
why "$reason: use the nested test host"
echo nested
