#!/bin/sh
# Scenario "bench-blk" (apus bench blk): fio against the raw disk /dev/vda, one job at a time,
# O_DIRECT (the guest's page cache stays out of it). At queue depth 1 (psync) each figure is the
# cost of a request's round trip through the VMM; a deeper queue (libaio) shows how the VMM
# copes with requests in flight. The disk is a scratch image: it is overwritten.
# Command line: apus.test=bench-blk [apus.bench.runtime=SECONDS (5)] [apus.bench.iodepth=N (1)]
# Prints, per job:  APUS-BENCH: <job> kib_s=<KiB/s> iops=<IOPS>
# then "APUS-BENCH: done", or "APUS-BENCH: error <why>" when something is missing or fio fails.
. /scenarios/lib.sh

runtime=$(arg apus.bench.runtime) || runtime=5
iodepth=$(arg apus.bench.iodepth) || iodepth=1
engine=psync
[ "$iodepth" -gt 1 ] && engine=libaio
disk=/dev/vda
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -b $disk ] && break; sleep 0.2; done
[ -b $disk ] || { echo "APUS-BENCH: error no $disk (is a disk attached?)"; exit 1; }
command -v fio >/dev/null || { echo "APUS-BENCH: error no fio in this initramfs (use initrd-fio.cpio.gz)"; exit 1; }

# job NAME RW BLOCKSIZE. fio's terse format v3: field 7/8 = read KiB/s and IOPS, 48/49 = write.
# A job counts only if fio exited 0 and reports no error (terse field 5): a VMM that fails some
# requests must not pass with the bandwidth of the others.
job() {
    out=$(fio --name="$1" --filename=$disk --rw="$2" --bs="$3" --direct=1 --ioengine=$engine \
        --iodepth="$iodepth" --time_based --runtime="$runtime" --output-format=terse --terse-version=3 2>&1)
    status=$?
    line=$(echo "$out" | grep '^3;')
    error=$(echo "$line" | cut -d';' -f5)
    if [ $status -ne 0 ] || [ -z "$line" ] || [ "$error" != 0 ]; then
        echo "APUS-BENCH: error fio $1 failed (status $status, error ${error:-?}): $(echo "$out" | tail -n 3 | tr '\n' ' ')"
        exit 1
    fi
    case $2 in *read) f=7 ;; *) f=48 ;; esac
    echo "$line" | awk -F';' -v job="$1" -v f=$f '{ printf "APUS-BENCH: %s kib_s=%s iops=%s\n", job, $f, $(f + 1) }'
}
job seq-read read 1M
job seq-write write 1M
job rand-read randread 4k
job rand-write randwrite 4k
echo "APUS-BENCH: done"
