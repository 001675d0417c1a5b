#!/bin/sh
# Scenario "net": virtio-net over a tap whose host end is 10.0.2.1/24 (the e2e harness sets it
# up; the guest is 10.0.2.15). Checks, in order, with the host harness acting on the markers:
#   found          an Ethernet interface driven by virtio_net
#   features       the driver negotiated checksum offload both ways, mergeable receive buffers,
#                  the link status and the control queue (bits of /sys/bus/virtio/.../features)
#   ping-host      3 pings to the host answered
#   host-to-guest  after "APUS-E2E: net.listening", the host sends apus.net.bytes MiB; their
#                  sha256 must be apus.net.sha (the host's, from the command line)
#   queues         with apus.expect.queues=N: N receive and N transmit queues
#   guest-to-host  the guest sends apus.net.bytes MiB of its own to 10.0.2.1:5000 and prints
#                  their sha256 ("net.guest-sha256"); the host compares what it received
APUS_SCENARIO=net
. /scenarios/lib.sh
mib=$(arg apus.net.mib || echo 64)
want=$(arg apus.net.sha || echo none)

ifc=
for d in /sys/class/net/*; do
    [ "$(readlink "$d/device/driver" 2>/dev/null | sed 's,.*/,,')" = virtio_net ] && ifc=${d##*/} && break
done
if [ -n "$ifc" ]; then
    pass found "$ifc, mac $(cat /sys/class/net/$ifc/address), mtu $(cat /sys/class/net/$ifc/mtu)"
else
    fail found "no virtio_net interface: $(ls /sys/class/net | tr '\n' ' ')"
    summary; exit 1
fi

# features is a string of '0'/'1', bit 0 first.
bits=$(cat "/sys/class/net/$ifc/device/features")
bit() { [ "$(echo "$bits" | cut -c$(($1 + 1)))" = 1 ]; }
# apus.expect.version1=0: a legacy driver (virtio_pci.force_legacy=1), which has no VERSION_1.
required="0:CSUM 1:GUEST_CSUM 15:MRG_RXBUF 16:STATUS 17:CTRL_VQ 32:VERSION_1"
[ "$(arg apus.expect.version1)" = 0 ] && required="0:CSUM 1:GUEST_CSUM 15:MRG_RXBUF 16:STATUS 17:CTRL_VQ"
missing=
for b in $required; do
    bit "${b%%:*}" || missing="$missing ${b#*:}"
done
[ "$(arg apus.expect.version1)" = 0 ] && bit 32 && missing="$missing (VERSION_1 negotiated by a legacy driver)"
offloads=
for b in 7:GUEST_TSO4 8:GUEST_TSO6 11:HOST_TSO4 12:HOST_TSO6 29:EVENT_IDX; do bit "${b%%:*}" && offloads="$offloads ${b#*:}"; done
if [ -z "$missing" ]; then pass features "negotiated $(echo "$required" | sed 's/[0-9]*://g')$offloads"
else fail features "not negotiated:$missing (features $bits)"; fi

# apus.expect.queues=N: the interface has N receive and N transmit queues (multiqueue, with the
# driver's default of one pair per CPU); the per-queue interrupt counts are reported.
if want_queues=$(arg apus.expect.queues); then
    rx=$(ls "/sys/class/net/$ifc/queues" | grep -c '^rx-')
    tx=$(ls "/sys/class/net/$ifc/queues" | grep -c '^tx-')
    if [ "$rx" = "$want_queues" ] && [ "$tx" = "$want_queues" ]; then
        pass queues "$rx receive and $tx transmit queues; MQ negotiated: $(bit 22 && echo yes || echo no)"
    else
        fail queues "$rx receive and $tx transmit queues, expected $want_queues"
    fi
fi

ip link set lo up
ip addr add 10.0.2.15/24 dev "$ifc" && ip link set "$ifc" up
out=$(ping -c 3 -W 5 10.0.2.1 2>&1)
case $out in
    *" 0% packet loss"*) pass ping-host "$(echo "$out" | tail -n 1)" ;;
    *) fail ping-host "$(echo "$out" | tail -n 2 | tr '\n' ' ')" ;;
esac

# Host to guest: the host connects once it sees the marker, and closes when its file is sent.
nc -l -p 5001 -e sh -c 'cat > /tmp/from-host' &
listener=$!
echo "APUS-E2E: net.listening"
waited=0
while kill -0 $listener 2>/dev/null && [ $waited -lt 600 ]; do sleep 1; waited=$((waited + 1)); done
got=$(sha256sum /tmp/from-host 2>/dev/null | cut -d' ' -f1)
size=$(wc -c </tmp/from-host 2>/dev/null)
if [ "$got" = "$want" ]; then pass host-to-guest "$size bytes, sha256 $got"
else fail host-to-guest "$size bytes, sha256 $got, the host sent $want"; fi
rm -f /tmp/from-host

# Guest to host.
dd if=/dev/urandom of=/tmp/to-host bs=1M count="$mib" 2>/dev/null
echo "APUS-E2E: net.guest-sha256 $(sha256sum /tmp/to-host | cut -d' ' -f1)"
if nc 10.0.2.1 5000 -e cat /tmp/to-host; then pass guest-to-host-sent "$mib MiB sent"
else fail guest-to-host-sent "nc to 10.0.2.1:5000 failed"; fi
if [ -n "${want_queues-}" ]; then
    echo "apus-net: per-queue interrupts: $(grep -E 'virtio[0-9]+-(input|output)' /proc/interrupts | awk '{ n = 0; for (i = 2; i < NF; i++) if ($i ~ /^[0-9]+$/) n += $i; print $NF "=" n }' | tr '\n' ' ')"
fi
summary
