#!/bin/sh
# generated-training-set.sh - labelled slices of the project's own synthetic
# heads (testdata/gen/hs-gen-ct), as class folders for --train.
#
# Why: a network trained on real RSNA slices alone took the generator's
# bleed-free heads for bleeds (every slice above the ventricles scored
# 0.8-0.98: the phantom's cortex, sulci and noise are unlike any real
# scan), so the project's own tests, the bundled sample study and the
# generated validation set would all have read as positive. A second
# training source of generated heads teaches the phantom's normal look and
# its bleeds; the studies that test the default model (other seeds, sizes
# and places) are never among these.
#
# 30 studies of 32 slices of 5 mm at 256 x 256 (the RSNA PNGs' size), 12
# without a bleed (3 with contrast) and 18 with one (6 each of iph, sdh,
# sah; places and sizes drawn once and written out below). Each bleed study
# is made twice with the same seed, with and without its bleed: the noise
# is the same, so a slice whose exported picture differs holds blood
# (class hemorrhage) and one that does not is normal. Pictures are written
# by --export through a gray model of the default model's window (35/80),
# as the RSNA PNGs are renderings in their headers' windows. groups.csv
# keeps every study's slices in one fold.
#
# Usage: scripts/generated-training-set.sh OUT [HEMOSCAN] [GEN]
#   OUT       the folder to create (OUT/normal, OUT/hemorrhage, OUT/groups.csv)
#   HEMOSCAN  the program (default: src/hemoscan)
#   GEN       the generator (default: testdata/gen/hs-gen-ct)
set -eu

out=${1:?usage: generated-training-set.sh OUT [HEMOSCAN] [GEN]}
hemoscan=${2:-src/hemoscan}
gen=${3:-testdata/gen/hs-gen-ct}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rm -rf "$out"
mkdir -p "$out/normal" "$out/hemorrhage"
"$hemoscan" --init-model "$work/gray.hsm" --windows 35/80,55/40,15/40 >/dev/null
echo "id,group" >"$out/groups.csv"

# export STUDY_DIR PICTURE_DIR: the slices as pictures, 0001.png ... in order
export_slices() {
    "$hemoscan" --model "$work/gray.hsm" --export "$1" --out "$2" -q
    mv "$2"/*/*.png "$2"/
}

# one NAME SEED [generator options...]
one() {
    name=$1
    seed=$2
    shift 2
    "$gen" -q --jobs 1 --size 256 --seed "$seed" --out "$work/$name/plain" $(echo "$@" | sed 's/--bleed=[^ ]*//g')
    export_slices "$work/$name/plain" "$work/$name/p"
    bleed=$(echo "$@" | sed -n 's/.*--bleed=\([^ ]*\).*/\1/p')
    if [ -n "$bleed" ]; then
        "$gen" -q --jobs 1 --size 256 --seed "$seed" --out "$work/$name/bleed" --bleed "$bleed"
        export_slices "$work/$name/bleed" "$work/$name/b"
    fi
    for f in "$work/$name/p"/*.png; do
        n=$(basename "$f" .png)
        id=$name-$n
        if [ -n "$bleed" ] && ! cmp -s "$f" "$work/$name/b/$n.png"; then
            cp "$work/$name/b/$n.png" "$out/hemorrhage/$id.png"
        else
            cp "$f" "$out/normal/$id.png"
        fi
        echo "$id,$name" >>"$out/groups.csv"
    done
}

one n00 1001
one n01 1002
one n02 1003
one n03 1004 --contrast
one n04 1005
one n05 1006
one n06 1007
one n07 1008 --contrast
one n08 1009
one n09 1010
one n10 1011
one n11 1012 --contrast
one b00-iph 1101 --bleed=iph:-34,0,18,28
one b01-sdh 1102 --bleed=sdh:-60,30,40,10
one b02-sah 1103 --bleed=sah:-4,-1,27,34
one b03-iph 1104 --bleed=iph:0,27,14,10
one b04-sdh 1105 --bleed=sdh:-60,-31,36,8
one b05-sah 1106 --bleed=sah:18,4,20,20
one b06-iph 1107 --bleed=iph:-22,47,41,27
one b07-sdh 1108 --bleed=sdh:-60,17,4,9
one b08-sah 1109 --bleed=sah:-12,-22,19,32
one b09-iph 1110 --bleed=iph:-17,34,10,20
one b10-sdh 1111 --bleed=sdh:-60,-8,26,9
one b11-sah 1112 --bleed=sah:-23,-4,23,30
one b12-iph 1113 --bleed=iph:0,41,4,19
one b13-sdh 1114 --bleed=sdh:60,1,36,10
one b14-sah 1115 --bleed=sah:15,10,33,28
one b15-iph 1116 --bleed=iph:15,21,13,13
one b16-sdh 1117 --bleed=sdh:-60,27,5,11
one b17-sah 1118 --bleed=sah:10,5,33,39
echo "$out: $(ls "$out/hemorrhage" | wc -l) hemorrhage, $(ls "$out/normal" | wc -l) normal slices"
