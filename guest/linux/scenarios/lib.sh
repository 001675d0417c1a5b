# Helpers for scenarios; source with `. /scenarios/lib.sh`.
#
# Result protocol (read by the e2e harness on the serial console), one line per check:
#   APUS-E2E: <scenario>.<check> PASS|FAIL <details>
# and a final summary line:
#   APUS-E2E: <scenario> PASS|FAIL <n> checks, <m> failed

APUS_SCENARIO=${APUS_SCENARIO:-unnamed}
APUS_CHECKS=0
APUS_FAILED=0

# arg KEY: print the value of KEY=VALUE from the kernel command line; status 1 if absent.
arg() {
    for _w in $(cat /proc/cmdline); do
        case $_w in "$1="*) echo "${_w#*=}"; return 0 ;; esac
    done
    return 1
}

# pass CHECK DETAILS... / fail CHECK DETAILS...
pass() { APUS_CHECKS=$((APUS_CHECKS + 1)); _c=$1; shift; echo "APUS-E2E: $APUS_SCENARIO.$_c PASS $*"; }
fail() { APUS_CHECKS=$((APUS_CHECKS + 1)); APUS_FAILED=$((APUS_FAILED + 1)); _c=$1; shift; echo "APUS-E2E: $APUS_SCENARIO.$_c FAIL $*"; }

# check CHECK DETAILS -- COMMAND...: PASS if COMMAND succeeds.
check() {
    _c=$1; _d=$2; shift 3
    if "$@"; then pass "$_c" "$_d"; else fail "$_c" "$_d"; fi
}

# summary: print the summary line; status 0 if nothing failed.
summary() {
    if [ "$APUS_FAILED" -eq 0 ]; then
        echo "APUS-E2E: $APUS_SCENARIO PASS $APUS_CHECKS checks, 0 failed"
    else
        echo "APUS-E2E: $APUS_SCENARIO FAIL $APUS_CHECKS checks, $APUS_FAILED failed"
    fi
    [ "$APUS_FAILED" -eq 0 ]
}
