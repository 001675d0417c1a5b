#!/usr/bin/env bash
# module-order.sh MODROOT KVER NAME... — print the modules NAME... and everything they depend on,
# dependencies first, with paths relative to MODROOT/lib/modules/KVER, one a line, using the
# modules.dep that `depmod -b MODROOT KVER` wrote. Soft dependencies count too (modules.softdep,
# names resolved through modules.alias): ext4 needs crc32c at mount time without linking to it,
# and a flavour that builds both as modules has no other way to say so. Output lines are
# "NAME PATH" (NAME as the file is spelled, without .ko), or "NAME builtin" / "NAME missing"
# (also noted on stderr) for a NAME that is not a loadable module. Used by fetch-assets.sh (on the
# whole kernel package: which modules to keep), build-initramfs.sh and build-host.sh.
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 MODROOT KVER NAME..." >&2; exit 2; }
root=$1 kver=$2; shift 2
mdir=$root/lib/modules/$kver
[[ -f $mdir/modules.dep ]] || { echo "module-order: no $mdir/modules.dep (run fetch-assets.sh)" >&2; exit 1; }

declare -A path_of=() deps_of=() done_=() pre_of=() post_of=() providers_of=()
while IFS= read -r line; do
    rel=${line%%:*}; base=${rel##*/}; base=${base%%.ko*}; base=${base//-/_}
    path_of[$base]=$rel
    deps_of[$base]=${line#*:}
done <"$mdir/modules.dep"
# "softdep MOD pre: A B post: C" (depmod copies the modules' MODULE_SOFTDEP strings).
if [[ -f $mdir/modules.softdep ]]; then
    while read -r word mod rest; do
        [[ $word == softdep ]] || continue
        mod=${mod//-/_} list=
        for w in $rest; do
            case $w in
                pre:) list=pre ;;
                post:) list=post ;;
                *) [[ $list == pre ]] && pre_of[$mod]+=" $w"
                   [[ $list == post ]] && post_of[$mod]+=" $w" ;;
            esac
        done
    done <"$mdir/modules.softdep"
fi
# Exact aliases only ("alias crypto-crc32c crc32c_generic"): what a soft dependency names.
if [[ -f $mdir/modules.alias ]]; then
    while read -r word alias mod; do
        [[ $word == alias && $alias != *'*'* ]] && providers_of[$alias]+=" ${mod//-/_}"
    done <"$mdir/modules.alias"
fi

# soft NAME...: visit each soft dependency's modules; one that resolves to nothing (built in, or
# absent from this flavour) is skipped without a word, as modprobe would.
soft() {
    local n p
    for n in "$@"; do
        if [[ -n ${path_of[${n//-/_}]:-} ]]; then visit "$n"; continue; fi
        for p in ${providers_of[$n]:-}; do [[ -n ${path_of[$p]:-} ]] && visit "$p"; done
    done
    return 0
}

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
    soft ${pre_of[$name]:-}
    for d in ${deps_of[$name]}; do d=${d##*/}; visit "${d%%.ko*}"; done
    d=${path_of[$name]##*/}
    printf '%s %s\n' "${d%%.ko*}" "${path_of[$name]}"
    soft ${post_of[$name]:-}
}
for n in "$@"; do visit "$n"; done
