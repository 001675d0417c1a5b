#!/bin/sh
# run.sh of the kvmcheck payload (made by `make -f mk/linux.mk nested-host-check`).
cd "$(dirname "$0")"
start=$(cut -d' ' -f1 /proc/uptime)
./kvmcheck
status=$?
echo "kvmcheck-run: kvmcheck exited $status (started at ${start} s, ended at $(cut -d' ' -f1 /proc/uptime) s guest time)"
exit $status
