#!/bin/sh
# train-default-model.sh - retrain models/default.hsm exactly as it was made.
#
# The default model is trained by hemoscan itself in two steps:
#   1. starting weights: the same network trained as a 4-class model on the
#      320 brain MRI pictures of ../shared/data/brain_tumor_mri (its train/
#      and test/ folders together; test/ is also the validation folder, so
#      the epoch kept is in effect one of the last: what this network is for
#      is features learned from as many pictures as possible, not an MRI
#      model's held-out accuracy);
#   2. the hemorrhage model: the 160 head CT images of
#      ../shared/data/head_ct (Kitamura 2018), laid out as class folders
#      with the project's groups file, every network starting from step 1's
#      weights (--init-from) and trained at learning rate 0.002 (twice the
#      --train default, which suits networks that start at random).
# Everything that could change the bytes is pinned: the folders' paths
# (they are recorded in the models' notes), the seeds, the thread count and
# the date (SOURCE_DATE_EPOCH), so on the same kind of machine the result
# has the same SHA-256 as the committed file.
#
# Usage: scripts/train-default-model.sh [HEMOSCAN] [HEAD_CT] [OUT] [MRI]
#   HEMOSCAN  the program (default: src/hemoscan)
#   HEAD_CT   the shared head CT folder (default: ../shared/data/head_ct)
#   OUT       the model to write (default: models/default.hsm)
#   MRI       the shared brain MRI folder (default: ../shared/data/brain_tumor_mri)
set -eu

hemoscan=${1:-src/hemoscan}
data=${2:-../shared/data/head_ct}
out=${3:-models/default.hsm}
mri=${4:-../shared/data/brain_tumor_mri}
folders=/tmp/hemoscan-head-ct
mri_folders=/tmp/hemoscan-mri
start=/tmp/hemoscan-mri-start.hsm
export SOURCE_DATE_EPOCH=1795305600

# 1. The MRI pictures as train/CLASS (both of the set's parts, named by
# part so that their file names stay apart) and validate/CLASS (test/).
rm -rf "$mri_folders"
mri_abs=$(cd "$mri" && pwd)
for dir in "$mri_abs"/train/*/; do
    class=$(basename "$dir")
    mkdir -p "$mri_folders/train/$class" "$mri_folders/validate/$class"
    for part in train test; do
        for f in "$mri_abs/$part/$class"/*.png; do
            ln -s "$f" "$mri_folders/train/$class/$part-$(basename "$f")"
        done
    done
    for f in "$mri_abs/test/$class"/*.png; do
        ln -s "$f" "$mri_folders/validate/$class/$(basename "$f")"
    done
done
"$hemoscan" --train "$mri_folders" --model "$start" --members 1 --epochs 100 --seed 1 --threads 2

# 2. The hemorrhage model, started from those weights.
rm -rf "$folders"
"$(dirname "$0")/labels-to-folders.sh" --groups "$(dirname "$0")/../testdata/head_ct_groups.csv" \
    "$data/labels.csv" "$data/images" "$folders" 2>/dev/null
"$hemoscan" --train "$folders" --model "$out" --init-from "$start" --lr 0.002 --seed 1 --threads 2
sha256sum "$start" "$out"
