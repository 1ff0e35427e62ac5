#!/bin/sh
# train-default-model.sh - retrain models/default.hsm exactly as it was made.
#
# The default model is trained by hemoscan itself on the 160 head CT images
# of ../shared/data/head_ct (Kitamura 2018), laid out as class folders with
# the project's groups file. Everything that could change the bytes is
# pinned: the data folder's path (it is recorded in the model's note), the
# seed, the thread count and the date (SOURCE_DATE_EPOCH), so on the same
# kind of machine the result has the same SHA-256 as the committed file.
#
# Usage: scripts/train-default-model.sh [HEMOSCAN] [DATA] [OUT]
#   HEMOSCAN  the program (default: src/hemoscan)
#   DATA      the shared head CT folder (default: ../shared/data/head_ct)
#   OUT       the model to write (default: models/default.hsm)
set -eu

hemoscan=${1:-src/hemoscan}
data=${2:-../shared/data/head_ct}
out=${3:-models/default.hsm}
folders=/tmp/hemoscan-head-ct

rm -rf "$folders"
"$(dirname "$0")/labels-to-folders.sh" --groups "$(dirname "$0")/../testdata/head_ct_groups.csv" \
    "$data/labels.csv" "$data/images" "$folders" 2>/dev/null
SOURCE_DATE_EPOCH=1795305600 "$hemoscan" --train "$folders" --model "$out" --seed 1 --threads 2
sha256sum "$out"
