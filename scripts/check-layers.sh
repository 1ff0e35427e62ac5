#!/bin/sh
# check-layers.sh - fails when an arrow points up between the folders of
# src/ (README: "Layout of the source tree").
#
# The folders are layers, highest first:
#
#   cli      the program: options, modes, printing
#   watch    the unattended job
#   store    the audit database
#   learn    training and evaluation   | side by side: neither uses
#   study    DICOM studies and review  | the other
#   picture  the input recipe's pictures
#   nn       the network engine
#   base     the ground floor
#
# A file may use its own folder and the folders below it, nothing else.
# Two checks, each over every file:
#   1. includes: every #include "hemoscan/X.h" names a header whose module
#      (src/*/X.c or X.cc) is in the including file's folder or below;
#      any other quoted include (a private header such as modes.h or
#      cnn_kernels.h) sits in the including file's own folder, apart from
#      config.h. Headers in include/hemoscan/ count as their module's
#      folder. tests/, bench/ and fuzz/ may include any library header,
#      never a private one.
#   2. calls (when the objects are built): no object of a folder has an
#      undefined symbol that an object of a higher or side-by-side folder
#      defines (nm). A declaration written by hand cannot get round the
#      first check this way.
#
# Usage: scripts/check-layers.sh [SRCDIR [BUILDDIR]]; make check runs it
# with HEMOSCAN_SRCDIR and HEMOSCAN_BUILDDIR set. Prints each violation
# and a closing "N passed, N failed" line; exits 1 on any violation.
set -eu
LC_ALL=C
export LC_ALL

src=${1:-${HEMOSCAN_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}}
build=${2:-${HEMOSCAN_BUILDDIR:-$src}}

# rank of a folder; equal ranks may not use each other
rank() {
    case $1 in
    cli) echo 8 ;;
    watch) echo 7 ;;
    store) echo 6 ;;
    learn | study) echo 5 ;;
    picture) echo 4 ;;
    nn) echo 3 ;;
    base) echo 2 ;;
    *) echo 0 ;;
    esac
}

# The rule both checks apply, in awk: may folder "from" not use folder
# "to"? rank[] is filled from the "R FOLDER RANK" lines of $ranks.
arrow_up='function arrow_up(from, to) { return from != to && rank[from] <= rank[to] }'

failed=0
passed=0
fail() {
    echo "check-layers: $*"
    failed=$((failed + 1))
}

report() { # the output of a check; one failure per line
    if [ -n "$1" ]; then
        printf '%s\n' "$1" | while IFS= read -r l; do echo "check-layers: $l"; done
        failed=$((failed + $(printf '%s\n' "$1" | wc -l)))
    else
        passed=$((passed + 1))
    fi
}

# ---- 1. includes ------------------------------------------------------------
cd "$src"
ranks=
for folder_path in src/*/; do
    folder=$(basename "$folder_path")
    [ "$(rank "$folder")" -gt 0 ] ||
        fail "src/$folder/: a folder that is not a layer (add it to scripts/check-layers.sh)"
    ranks="${ranks}R $folder $(rank "$folder")
"
done

# One awk over every quoted include. Its inputs: the ranks, the modules
# ("NAME FOLDER" from src/*/NAME.c or .cc), every file of the tree (to
# find private headers), then grep's "FILE:LINE:TEXT" lines.
modules=$(for f in src/*/*.c src/*/*.cc; do
    [ -f "$f" ] || continue
    name=$(basename "$f")
    echo "${name%.*} $(basename "$(dirname "$f")")"
done)
files=$(find src include tests bench fuzz testdata -type f 2>/dev/null)
out=$(
    {
        printf '%s' "$ranks"
        printf '%s\n' "$modules" | sed 's/^/M /'
        printf '%s\n' "$files" | sed 's/^/F /'
        for f in src/*/*.c src/*/*.cc src/*/*.h include/hemoscan/*.h tests/*.c tests/*.cc tests/*.h \
            bench/*.c fuzz/*.c fuzz/*.h testdata/gen/*.cc; do
            [ -f "$f" ] && grep -Hn '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | sed 's/^/I /'
        done
    } | awk "$arrow_up"'
        $1 == "R" { rank[$2] = $3; next }
        $1 == "M" { folder[$2] = $3; next }
        $1 == "F" { exists[$2] = 1; next }
        {
            line = substr($0, 3)
            split(line, p, ":")
            file = p[1]; num = p[2]
            inc = line; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
            dir = file; sub(/\/[^\/]*$/, "", dir)
            # the including file'"'"'s folder: its own, or its module'"'"'s for a
            # public header; "" for tests and tools
            from = ""
            if (file ~ /^src\/[^\/]*\//) { from = file; sub(/^src\//, "", from); sub(/\/.*/, "", from) }
            else if (file ~ /^include\/hemoscan\//) {
                name = file; sub(/.*\//, "", name); sub(/\.h$/, "", name)
                if (!(name in folder)) { print file ": a header without a module in src/*/" name ".c"; next }
                from = folder[name]
            }
            if (inc == "config.h") next
            if (inc ~ /^hemoscan\//) {
                name = inc; sub(/^hemoscan\//, "", name); sub(/\.h$/, "", name)
                if (!(name in folder)) { print file ":" num ": includes " inc ", whose module src/*/" name ".c is missing"; next }
                to = folder[name]
                if (from != "" && arrow_up(from, to))
                    print file ":" num ": " from "/ includes " inc " of " to "/: an arrow up"
                next
            }
            if (inc ~ /(^|\/)src\// || (from != "" && inc ~ /^\.\.?\//)) {
                print file ":" num ": includes \"" inc "\": reaches into another folder by path"
                next
            }
            # a header of another library (DCMTK: "dcmtk/..."), or a private
            # header, which must sit beside the file that includes it
            if (inc !~ /\// && !((dir "/" inc) in exists))
                print file ":" num ": includes \"" inc "\", not in its own folder"
        }' | sort -u
)
report "$out"

# ---- 2. calls, from the built objects ---------------------------------------
objects=$(find "$build/src" -mindepth 2 -name '*.o' 2>/dev/null | sort)
if [ -z "$objects" ] || ! command -v nm >/dev/null 2>&1; then
    echo "check-layers: no objects under $build/src (or no nm): calls not checked"
else
    # nm -A: "OBJECT:VALUE TYPE SYMBOL" (no value for an undefined one);
    # the ranks first, then the definitions, then the uses.
    # shellcheck disable=SC2086 # objects is a list of paths without spaces
    out=$(
        {
            printf '%s' "$ranks"
            nm -A --defined-only -g $objects 2>/dev/null | sed 's/^/D /'
            nm -A --undefined-only $objects 2>/dev/null | sed 's/^/U /'
        } | awk -v build="$build/" "$arrow_up"'
            function object_of(o) { sub(/:.*/, "", o); return o }
            function folder_of(o) { o = object_of(o); sub(/\/[^\/]*$/, "", o); sub(/.*\//, "", o); return o }
            $1 == "R" { rank[$2] = $3; next }
            $1 == "D" { if ($3 ~ /^[TDBRVWC]$/) def[$4] = folder_of($2); next }
            $1 == "U" {
                sym = $NF; from = folder_of($2); if (!(sym in def) || !(from in rank)) next
                to = def[sym]
                if (arrow_up(from, to)) {
                    o = object_of($2); if (index(o, build) == 1) o = substr(o, length(build) + 1)
                    print o ": " from "/ calls " sym " of " to "/: an arrow up"
                }
            }' | sort -u
    )
    report "$out"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
