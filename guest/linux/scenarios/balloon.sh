#!/bin/sh
# Scenario "balloon": a virtio-balloon that apus created with a size at boot (--balloon size=).
# Command line: apus.test=balloon apus.balloon.mib=M [apus.balloon.mode=resize|report]
#   balloon.driver      the virtio_balloon driver is bound to a device
#   resize (the default), the balloon is M MiB at boot:
#   balloon.inflated    the driver inflated it: MemTotal rises by M MiB (within 5 %) when the driver
#                       is unbound (which deflates the balloon fully and resets the device)
#   balloon.reinflated  bound again, the driver inflates it again: MemTotal drops by M MiB
#   (With DEFLATE_ON_OOM the guest keeps ballooned pages in MemTotal: MemFree moves instead,
#   checked within 10 %.)
#   ctl (--balloon --control, no size): the host inflates by M MiB with `apus ctl balloon`, then
#   deflates to 0, reading apus's RSS at the marks (touched, inflated); then `apus ctl shutdown`:
#   balloon.ctl-inflated  MemTotal drops by M MiB
#   balloon.ctl-deflated  MemTotal comes back
#   report (--balloon free-page-reporting=on, no size):
#   balloon.reporting   the driver negotiated free page reporting (feature bit 5)
# Between the two (and in report mode), the guest fills all but 24 MiB of its free memory (a
# tmpfs file), so that nearly every free page is resident in apus, and deletes the file again;
# the host reads apus's RSS at each "APUS-E2E-MARK balloon.<step>" line (touched, then inflated
# or reported; the guest waits 5 s after each) and checks the drop.
APUS_SCENARIO=balloon
. /scenarios/lib.sh

mib=$(arg apus.balloon.mib) || mib=128
mode=$(arg apus.balloon.mode) || mode=resize
meminfo() { sed -n "s/^$1: *\([0-9]*\) kB/\1/p" /proc/meminfo; }
mark() { echo "APUS-E2E-MARK balloon.$1"; sleep 5; }
drv=/sys/bus/virtio/drivers/virtio_balloon

dev=$(ls "$drv" 2>/dev/null | grep '^virtio' | head -n 1)
if [ -z "$dev" ]; then
    fail driver "no device bound to virtio_balloon; virtio devices: $(ls /sys/bus/virtio/devices 2>&1 | tr '\n' ' ')"
    summary; sync; poweroff -f
fi
features=$(cat /sys/bus/virtio/devices/"$dev"/features)
pass driver "virtio_balloon bound to $dev, features $features"

# Bit 2 of the features string (one character per bit, bit 0 first): DEFLATE_ON_OOM.
case $features in ??1*) field=MemFree tolerance=10 jitter=1024 ;; *) field=MemTotal tolerance=5 jitter=0 ;; esac

# settle: waits until $field has moved by at most $jitter kB for 2 s (at most 60 s); prints it.
settle() {
    _last=$(meminfo $field) _same=0 _waited=0
    while [ $_same -lt 4 ] && [ $_waited -lt 120 ]; do
        sleep 0.5; _waited=$((_waited + 1))
        _now=$(meminfo $field)
        if [ $((_now - _last)) -le $jitter ] && [ $((_last - _now)) -le $jitter ]; then _same=$((_same + 1)); else _same=0; fi
        _last=$_now
    done
    echo "$_last"
}

# fill: makes nearly every free page resident in the host (the host reads apus's RSS at the
# mark), then frees it again.
fill() {
    mount -o remount,size=95% /tmp
    free=$(meminfo MemFree)
    n=$(( (free / 1024) - 24 ))
    dd if=/dev/zero of=/tmp/fill bs=1M count=$n 2>/dev/null
    echo "balloon: filled $n MiB (MemFree was $free kB, now $(meminfo MemFree) kB)"
    mark touched
    rm -f /tmp/fill
}

# near KIB WANT-KIB: within $tolerance %.
near() { [ "$1" -ge $(($2 * (100 - tolerance) / 100)) ] && [ "$1" -le $(($2 * (100 + tolerance) / 100)) ]; }

case $mode in
resize)
    inflated=$(settle)
    echo "$dev" >"$drv/unbind"
    deflated=$(meminfo $field)
    d=$((deflated - inflated))
    if near $d $((mib * 1024)); then pass inflated "unbinding deflated $d kB ($field $inflated -> $deflated kB) for $mib MiB"
    else fail inflated "unbinding gave back $d kB ($field $inflated -> $deflated kB), expected $mib MiB"; fi
    fill
    # MemFree before the balloon takes its share (the freed file is back in it).
    [ $field = MemFree ] && deflated=$(settle)
    echo "$dev" >"$drv/bind"
    reinflated=$(settle)
    d=$((deflated - reinflated))
    if near $d $((mib * 1024)); then pass reinflated "$field $deflated -> $reinflated kB: $d kB in the balloon"
    else fail reinflated "$field $deflated -> $reinflated kB: $d kB in the balloon, expected $mib MiB"; fi
    mark inflated ;;
report)
    # Bit 5 of the features string (one character per bit, bit 0 first).
    case $features in ?????1*) pass reporting "features $features" ;; *) fail reporting "features $features: no REPORTING" ;; esac
    fill
    # Linux reports free 2 MiB blocks 2 s after they appear, in batches.
    sleep 15
    mark reported ;;
ctl)
    # The host drives the balloon through `apus ctl` and ends the guest with `apus ctl shutdown`.
    before=$(settle)
    fill
    mark ready
    # The host asks for M MiB (`apus ctl balloon`): wait until MemTotal drops by that much.
    waited=0
    while [ $(( before - $(meminfo $field) )) -lt $((mib * 1024 * (100 - tolerance) / 100)) ] && [ $waited -lt 240 ]; do
        sleep 0.5; waited=$((waited + 1))
    done
    inflated=$(settle)
    d=$((before - inflated))
    if near $d $((mib * 1024)); then pass ctl-inflated "$field $before -> $inflated kB: $d kB in the balloon after apus ctl balloon"
    else fail ctl-inflated "$field $before -> $inflated kB: $d kB in the balloon, expected $mib MiB"; fi
    mark inflated
    # The host asks for 0 (`apus ctl balloon 0`): wait until MemTotal is back.
    waited=0
    while [ $(( before - $(meminfo $field) )) -gt $((mib * 1024 * tolerance / 100)) ] && [ $waited -lt 240 ]; do
        sleep 0.5; waited=$((waited + 1))
    done
    deflated=$(settle)
    if near $deflated $before; then pass ctl-deflated "$field back to $deflated kB (was $before) after apus ctl balloon 0"
    else fail ctl-deflated "$field $deflated kB after deflating, was $before"; fi
    summary
    mark deflated
    # Until the host presses the power button (/init powers off then).
    sleep 600 ;;
esac

summary
sync
poweroff -f
