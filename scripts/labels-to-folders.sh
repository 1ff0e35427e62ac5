#!/bin/sh
# labels-to-folders.sh - lay a Kaggle-style labels.csv out as class folders.
#
# Many public image sets come as one folder of images plus a CSV of
# "id,<class>" lines with 1 or 0 (the head CT hemorrhage set: "id,hemorrhage",
# with ids zero-padded or not). hemoscan trains from one folder per class,
# so this makes OUT/<class>/ and OUT/normal/ with a symbolic link (or, with
# --copy, a copy) per image. With --groups FILE the groups file is copied to
# OUT/groups.csv, which hemoscan --train then uses for grouped splits.
#
# Usage: labels-to-folders.sh [--copy] [--groups FILE] LABELS.csv IMAGES_DIR OUT_DIR
set -eu

copy=0
groups=
while [ $# -gt 0 ]; do
    case $1 in
    --copy) copy=1; shift ;;
    --groups) groups=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) echo "labels-to-folders.sh: unknown option '$1'" >&2; exit 2 ;;
    *) break ;;
    esac
done
if [ $# -ne 3 ]; then
    echo "usage: labels-to-folders.sh [--copy] [--groups FILE] LABELS.csv IMAGES_DIR OUT_DIR" >&2
    exit 2
fi
labels=$1
images=$(cd "$2" && pwd)
out=$3

# The positive class is the second column's name, spaces trimmed.
positive=$(head -n 1 "$labels" | tr -d '\r' | cut -d, -f2 | tr -d ' ')
if [ -z "$positive" ] || [ "$positive" = normal ]; then
    echo "labels-to-folders.sh: $labels: expected a header like 'id,hemorrhage'" >&2
    exit 1
fi
mkdir -p "$out/normal" "$out/$positive"

tail -n +2 "$labels" | tr -d '\r' | while IFS=, read -r id value; do
    id=$(echo "$id" | tr -d ' ')
    value=$(echo "$value" | tr -d ' ')
    [ -n "$id" ] || continue
    case $value in
    1) class=$positive ;;
    0) class=normal ;;
    *) echo "labels-to-folders.sh: $labels: id $id has label '$value', expected 0 or 1" >&2; exit 1 ;;
    esac
    # Ids may be written without the zero padding of the file names.
    src=
    for name in "$id" "$(printf '%03d' "$id" 2>/dev/null || true)"; do
        if [ -f "$images/$name.png" ]; then
            src="$images/$name.png"
            base=$name
            break
        fi
    done
    if [ -z "$src" ]; then
        echo "labels-to-folders.sh: no image for id $id in $images (skipped)" >&2
        continue
    fi
    if [ "$copy" = 1 ]; then
        cp "$src" "$out/$class/$base.png"
    else
        ln -sf "$src" "$out/$class/$base.png"
    fi
done
if [ -n "$groups" ]; then
    cp "$groups" "$out/groups.csv"
fi
echo "labels-to-folders.sh: $(ls "$out/normal" | wc -l) normal, $(ls "$out/$positive" | wc -l) $positive in $out"
