#!/bin/sh
# Scenario "bench-net" (apus bench net): the guest's side of iperf3 over its virtio-net NIC. It
# gives the first virtio_net interface the address apus.bench.ip (default 10.0.2.15/24), starts
# an iperf3 server (port 5201) and, once it listens, prints "APUS-BENCH: ready". The host then
# runs its iperf3 clients against it (every figure is read on the host), and when it is done it
# connects to port 5202: the guest stops the server and finishes.
# Prints:  APUS-BENCH: ready
#          APUS-BENCH: guest-net rx_packets=N tx_packets=N rx_dropped=N tx_dropped=N (its NIC's counters)
#          APUS-BENCH: done
# or "APUS-BENCH: error <why>" when the NIC, iperf3 or the server is missing.
. /scenarios/lib.sh

address=$(arg apus.bench.ip) || address=10.0.2.15/24
command -v iperf3 >/dev/null || { echo "APUS-BENCH: error no iperf3 in this initramfs (use initrd-iperf3.cpio.gz)"; exit 1; }
ifc=
for _ in 1 2 3 4 5 6 7 8 9 10; do
    for d in /sys/class/net/*; do
        [ "$(readlink "$d/device/driver" 2>/dev/null | sed 's,.*/,,')" = virtio_net ] && ifc=${d##*/} && break
    done
    [ -n "$ifc" ] && break
    sleep 0.5
done
[ -n "$ifc" ] || { echo "APUS-BENCH: error no virtio_net interface ($(ls /sys/class/net | tr '\n' ' '))"; exit 1; }
ip link set lo up
ip addr add "$address" dev "$ifc" && ip link set "$ifc" up ||
    { echo "APUS-BENCH: error cannot give $ifc the address $address"; exit 1; }

iperf3 -s >/tmp/iperf3.log 2>&1 &
server=$!
# Listening on 5201 (hex 1451), state 0A, in either address family: only then may the host connect.
listening() { grep -q ':1451 [0-9A-F]*:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null; }
waited=0
until listening || [ $waited -ge 100 ]; do sleep 0.2; waited=$((waited + 1)); done
listening || { echo "APUS-BENCH: error the iperf3 server does not listen: $(tail -n 3 /tmp/iperf3.log | tr '\n' ' ')"; exit 1; }
# The stop port opens before "ready": the host knocks only after its tests, seconds later.
nc -l -p 5202 </dev/null >/dev/null 2>&1 &
stop=$!
echo "APUS-BENCH: ready"
wait $stop
kill $server 2>/dev/null
s=/sys/class/net/$ifc/statistics
echo "APUS-BENCH: guest-net rx_packets=$(cat $s/rx_packets) tx_packets=$(cat $s/tx_packets)" \
    "rx_dropped=$(cat $s/rx_dropped) tx_dropped=$(cat $s/tx_dropped)"
echo "APUS-BENCH: done"
