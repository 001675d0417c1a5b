#!/usr/bin/env bash
# module-order.sh MODROOT KVER NAME... — print the modules NAME... and everything they depend on,
# dependencies first, with paths relative to MODROOT/lib/modules/KVER, one a line, using the
# modules.dep that `depmod -b MODROOT KVER` wrote. Output lines are "NAME PATH" (NAME as the file is
# spelled, without .ko), or "NAME builtin" / "NAME missing" (also noted on stderr) for a NAME that
# is not a loadable module. Used by build-initramfs.sh and build-host.sh.
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 MODROOT KVER NAME..." >&2; exit 2; }
root=$1 kver=$2; shift 2
mdir=$root/lib/modules/$kver
[[ -f $mdir/modules.dep ]] || { echo "module-order: no $mdir/modules.dep (run fetch-assets.sh)" >&2; exit 1; }

declare -A path_of=() deps_of=() done_=()
while IFS= read -r line; do
    rel=${line%%:*}; base=${rel##*/}; base=${base%%.ko*}; base=${base//-/_}
    path_of[$base]=$rel
    deps_of[$base]=${line#*:}
done <"$mdir/modules.dep"

visit() {
    local name=${1//-/_} d
    [[ -n ${done_[$name]:-} ]] && return 0
    if [[ -z ${path_of[$name]:-} ]]; then
        done_[$name]=1
        if grep -Eq "/${name//_/[-_]}\.ko(\.[a-z]+)?\$" "$mdir/modules.builtin" 2>/dev/null; then
            echo "module-order: $1: builtin" >&2; printf '%s builtin\n' "$1"
        else
            echo "module-order: $1: missing" >&2; printf '%s missing\n' "$1"
        fi
        return 0
    fi
    done_[$name]=1
    for d in ${deps_of[$name]}; do d=${d##*/}; visit "${d%%.ko*}"; done
    d=${path_of[$name]##*/}
    printf '%s %s\n' "${d%%.ko*}" "${path_of[$name]}"
}
for n in "$@"; do visit "$n"; done
