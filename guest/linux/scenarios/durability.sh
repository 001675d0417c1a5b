#!/bin/sh
# Scenario "durability": writes 4 MiB of a known pattern to the raw disk /dev/vda, makes it
# durable, reports it, and then waits: the host kills apus with SIGKILL the moment the report
# arrives and checks the image holds every byte (nothing acknowledged may sit in apus).
# Command line: apus.test=durability apus.durability.mode=fsync|writethrough
#   fsync         write-back cache (the default): dd with conv=fsync, i.e. a FLUSH at the end
#   writethrough  the driver switches the cache to write-through (CONFIG_WCE, the disk's
#                 cache_type), then the writes go out with no FLUSH at all: apus must make each
#                 one durable before it completes
#   durability.written PASS once the data is durable; then the guest sleeps until killed.
APUS_SCENARIO=durability
. /scenarios/lib.sh

mode=$(arg apus.durability.mode) || mode=fsync
yes apus-durability-0123456789abcdef | head -c 4194304 > /tmp/pattern
case $mode in
    writethrough)
        echo "write through" > /sys/block/vda/cache_type 2>/dev/null
        cache=$(cat /sys/block/vda/cache_type 2>/dev/null)
        if [ "$cache" != "write through" ]; then
            fail written "the disk's cache_type stayed '$cache' after asking for write through"
            summary; sleep 600
        fi
        # Dirty pages go out through the page cache; with no volatile cache, `sync` sends the
        # writes and no FLUSH.
        dd if=/tmp/pattern of=/dev/vda bs=64k 2>/dev/null && sync ;;
    *)
        dd if=/tmp/pattern of=/dev/vda bs=64k conv=fsync 2>/dev/null ;;
esac
if [ $? -eq 0 ]; then
    pass written "$mode: 4 MiB durable (cache_type $(cat /sys/block/vda/cache_type 2>/dev/null))"
else
    fail written "$mode: writing /dev/vda failed"
fi
summary
sleep 600
