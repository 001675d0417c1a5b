#!/usr/bin/env bash
# linux-host.sh — the one owner of "where Linux guests can run" for e2e, `make run`, the Linux
# benchmarks and the nested soak: it detects the machine, packages a payload once, runs it in
# groups, and applies the single retry policy.
#
#   linux-host.sh mode
#       print "hardware" (/dev/kvm has VMX/SVM behind it: level-2 guests run directly) or
#       "nested" (no VMX/SVM, e.g. kvm_pvm: they run inside the nested test host, QEMU TCG with
#       an emulated SVM CPU); the reason goes to stderr. APUS_LINUX_HOST=hardware|nested overrides.
#
#   linux-host.sh run --payload DIR --out DIR [--no-rerun] [--follow] [GROUP...]
#       DIR/run.sh is a POSIX sh script: `run.sh --list` prints "GROUP SECONDS" lines (the
#       groups and the time each may take), `run.sh GROUP` runs one group. With no GROUP given,
#       every listed group runs. Each group runs in its own nested host boot (or directly, on
#       hardware), its console in OUT/GROUP.log. The retry policy, the only one in the project:
#         - a group whose nested host died (panic, soft lockup, reset, lost heartbeat, overrun)
#           is rerun once; the dead host's console stays in OUT/GROUP.died-1.log;
#         - a group whose payload reported "HOST-FAULT <why>" (a level-2 crash that only the
#           nested host's emulated SVM produces, see guest/e2e/scenarios.sh) is rerun once too;
#         - a group whose payload failed in any other way is never rerun: that is Apus's failure;
#         - on hardware nothing is rerun.
#       OUT/groups.tsv gets one line per group: name, attempts, end ("exit N" or "died KIND"),
#       and what each rerun was for. Exits 0 when every group's payload exited 0, else 1.
#       --no-rerun: one attempt per group (the soak measures how often the host fails).
#       --follow: also show each group's console on stderr as it comes (long benchmarks).
#
#   linux-host.sh interactive --payload DIR
#       run DIR/run.sh with the terminal as its console (make run); no retry, a person is there.
#
# Environment: APUS_NESTED_FAULT=GROUP:freeze|kill@SECONDS (harness self-test: fail the nested
#              host of GROUP's first attempt on purpose); APUS_NESTED_* as for guest/nested/run.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf 'linux-host: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

mode() {
    if [[ -n ${APUS_LINUX_HOST:-} ]]; then echo "$APUS_LINUX_HOST"; return; fi
    "$ROOT/guest/nested/detect.sh"
}

# package PAYLOAD: the nested host's initramfs holding PAYLOAD, built once for all groups.
package() {
    local payload=$1 initrd
    payload=$(cd "$payload" && pwd)
    # Named after the payload's place (guest/build/e2e/payload → host-e2e-payload.cpio).
    initrd=$ROOT/guest/build/nested/host-$(basename "$(dirname "$payload")")-$(basename "$payload").cpio
    command -v qemu-system-x86_64 >/dev/null || "$ROOT/guest/linux/fetch-assets.sh" # installs QEMU
    "$ROOT/guest/nested/build-host.sh" "$payload" "$initrd" >&2
    echo "$initrd"
}

follow=/dev/null

# attempt MODE PAYLOAD INITRD GROUP SECONDS LOG FAULT: one run of GROUP; prints its end
# ("exit N" or "died KIND").
attempt() {
    local mode=$1 payload=$2 initrd=$3 group=$4 seconds=$5 logfile=$6 fault=$7 status=0
    if [[ $mode == hardware ]]; then
        (cd "$payload" && APUS_NESTED=0 timeout -k 10 "$seconds" ./run.sh "$group") </dev/null 2>&1 |
            tee "$logfile" >"$follow" || status=${PIPESTATUS[0]}
        echo "exit $status"
        return
    fi
    # 90 s more than the group needs: the host's own boot and module loading.
    "$ROOT/guest/nested/run.sh" "$initrd" --args "$group" --timeout $((seconds + 90)) --log "$logfile" \
        ${fault:+--fault "$fault"} >"$follow" 2>>"$logfile.run" || true
    cat "$logfile.verdict" 2>/dev/null || echo "died reset"
}

run_groups() {
    local payload= out= groups=() mode initrd group seconds tries end reruns line start elapsed fault max_tries=2
    while (($#)); do
        case $1 in
            --no-rerun) max_tries=1 ;;
            --follow) follow=/dev/stderr ;;
            --payload) payload=${2:?}; shift ;;
            --out) out=${2:?}; shift ;;
            -*) die "unknown option $1" ;;
            *) groups+=("$1") ;;
        esac
        shift
    done
    [[ -f $payload/run.sh ]] || die "--payload DIR must hold run.sh"
    [[ -n $out ]] || die "--out DIR is required"
    mkdir -p "$out"
    declare -A budget=()
    while read -r group seconds; do
        [[ -n $group ]] && budget[$group]=$seconds
    done < <(cd "$payload" && sh ./run.sh --list)
    if ((${#groups[@]} == 0)); then
        mapfile -t groups < <(cd "$payload" && sh ./run.sh --list | cut -d' ' -f1)
    fi
    for group in "${groups[@]}"; do
        [[ -n ${budget[$group]:-} ]] || die "group $group is not in $payload/run.sh --list"
    done

    mode=$(mode 2>/dev/null)
    initrd=
    if [[ $mode == nested ]]; then
        log "packaging $payload for the nested test host (once, for ${#groups[@]} groups)"
        initrd=$(package "$payload")
    fi
    : >"$out/groups.tsv"
    local failed=0
    for group in "${groups[@]}"; do
        seconds=${budget[$group]}
        tries=0 reruns=()
        while :; do
            tries=$((tries + 1))
            fault=
            if [[ $tries == 1 && ${APUS_NESTED_FAULT:-} == "$group:"* ]]; then fault=${APUS_NESTED_FAULT#"$group:"}; fi
            log "group $group: attempt $tries ($mode, up to ${seconds} s)"
            start=$SECONDS
            end=$(attempt "$mode" "$payload" "$initrd" "$group" "$seconds" "$out/$group.log" "$fault")
            elapsed=$((SECONDS - start))
            # "HOST-FAULT KIND DETAILS": the payload says the nested host failed it.
            line=$(tr -d '\r' <"$out/$group.log" | grep -a -m1 '^HOST-FAULT ' || true)
            line=${line#HOST-FAULT }
            if [[ $mode == nested && $end == "exit 0" && -n $line ]]; then end="died ${line%% *}"; fi
            log "group $group: $end after ${elapsed} s"
            [[ $end == died* ]] && ((tries < max_tries)) || break
            cp "$out/$group.log" "$out/$group.died-1.log"
            # The next attempt starts afresh: keep the dead host's saved vCPU state too.
            [[ ! -f $out/$group.log.hang ]] || cp "$out/$group.log.hang" "$out/$group.died-1.log.hang"
            reruns+=("${end#died }")
            log "group $group: the nested test host failed (${end#died }; console in $out/$group.died-1.log): running the group once more"
        done
        printf '%s\t%s\t%s\t%s\n' "$group" "$tries" "$end" "${reruns[*]-}" >>"$out/groups.tsv"
        [[ $end == "exit 0" ]] || failed=1
    done
    return $failed
}

interactive() {
    local payload=
    [[ ${1-} == --payload ]] || die "usage: $0 interactive --payload DIR"
    payload=${2:?}
    [[ -f $payload/run.sh ]] || die "--payload DIR must hold run.sh"
    if [[ $(mode 2>/dev/null) == hardware ]]; then
        cd "$payload" && exec ./run.sh
    fi
    local initrd
    initrd=$(package "$payload")
    exec "$ROOT/guest/nested/run.sh" "$initrd" --interactive
}

case ${1-} in
    mode) mode ;;
    run) shift; run_groups "$@" ;;
    interactive) shift; interactive "$@" ;;
    -h|--help) sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0" ;;
    *) die "usage: $0 mode | run --payload DIR --out DIR [GROUP...] | interactive --payload DIR" ;;
esac
