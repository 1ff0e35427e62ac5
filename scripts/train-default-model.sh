#!/bin/sh
# train-default-model.sh - retrain models/default.hsm exactly as it was made.
#
# The default model is trained by hemoscan itself, in one run, on two
# sources: the 3,986 labelled real head CT slices of the RSNA 2019 Brain CT
# Hemorrhage Challenge in ../shared/data/rsna_ich/png (601 with hemorrhage,
# every level of the head, patient groups in its groups.csv; see its
# SOURCE.md), and 960 slices of 30 of the project's generated heads
# (scripts/generated-training-set.sh, which says why; 161 with blood):
#   - a fold ensemble of 5 (hemoscan's default): the slices are dealt into
#     5 folds by patient group, stratified, and network k trains on the
#     other four and is scored on fold k;
#   - 30 epochs per network, the other settings --train's defaults;
#   - --keep-last: each network keeps its last epoch, so fold k chose
#     nothing and the out-of-fold scores (written beside the model as
#     default.oof.csv) are an honest grouped 5-fold cross-validation;
#   - --balance 0.33: a third of every epoch's slices are hemorrhage (15%
#     of the data), the rarer class repeated;
#   - --windows 35/80,55/40,15/40: the PNGs were rendered through each
#     slice's own header window, mostly width 80 with centres 30 to 47 HU
#     (about 35 on average; SOURCE.md), so a DICOM slice is rendered
#     through 35/80, and the blood (40-80 HU above brain) and low windows
#     are cut from that picture as before;
#   - --max-false-alarm 0.05: the threshold is the lowest whose
#     out-of-fold false-positive rate on normal slices is at most 5%; a
#     study is read as 30-40 slices and needs two adjacent slices over the
#     threshold, which is how that slice rate becomes a study rate (see
#     hemoscan(1), "From slice scores to a verdict"). 0.02 was trained
#     too (the same weights) and missed the sample study's bleed.
# Everything that could change the bytes is pinned: the paths (they are
# recorded in the model's note), the seed, the thread count and the date
# (SOURCE_DATE_EPOCH), so on the same kind of machine the result has the
# same SHA-256 as the committed file. Run it from the top of the source
# tree with ../shared beside it.
#
# The data's terms pass to the model: RSNA's challenge data may be used for
# non-commercial research and education, and so may this model.
#
# Usage: scripts/train-default-model.sh [HEMOSCAN] [GEN]
#   HEMOSCAN  the program (default: src/hemoscan)
#   GEN       the generator (default: testdata/gen/hs-gen-ct)
set -eu

hemoscan=${1:-src/hemoscan}
gen=${2:-testdata/gen/hs-gen-ct}
export SOURCE_DATE_EPOCH=1796601600

"$(dirname "$0")/generated-training-set.sh" /tmp/hemoscan-generated "$hemoscan" "$gen"
"$hemoscan" --train ../shared/data/rsna_ich/png --train /tmp/hemoscan-generated \
    --model models/default.hsm --epochs 30 --balance 0.33 --keep-last \
    --windows 35/80,55/40,15/40 --max-false-alarm 0.05 --seed 1 --threads 2
sha256sum models/default.hsm
