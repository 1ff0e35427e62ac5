#!/bin/sh
# learn.sh - tests of the learning modes: --train, --cv, --predict, --eval,
# and the labels-to-folders converter, on the real sample data sets; and
# the same modes on class folders of DICOM slices, several source folders
# and --subtypes, on slices the project's generator writes (so they run
# everywhere) and on the labelled RSNA slices when present.
#
# Run by `make check` (which sets HEMOSCAN, HEMOSCAN_BUILDDIR,
# HEMOSCAN_SRCDIR and HEMOSCAN_SHARED_DATA). The data is read from
# ../shared/data and never copied into the repository; without it those
# tests are skipped with a message. Trainings here are deliberately short:
# they prove the modes work and learn, not how good a full training is
# (that is in README).

set -u

. "$(dirname "$0")/lib.sh"

srcdir=${HEMOSCAN_SRCDIR:-.}
data=${HEMOSCAN_SHARED_DATA:-../shared/data}
head_ct=$data/head_ct
mri=$data/brain_tumor_mri
rsna=$data/rsna_ich
study_tools learn.sh
export SOURCE_DATE_EPOCH=1700000000

# A small training folder: the first N images of each class of the head
# CT set, as symbolic links.
make_subset() {
    n=$1
    out=$2
    "$srcdir/scripts/labels-to-folders.sh" --groups "$srcdir/testdata/head_ct_groups.csv" \
        "$head_ct/labels.csv" "$head_ct/images" "$tmp/all" >/dev/null 2>&1 || return 1
    for class in normal hemorrhage; do
        mkdir -p "$out/$class"
        for f in $(ls "$tmp/all/$class" | head -n "$n"); do
            ln -s "$(readlink "$tmp/all/$class/$f")" "$out/$class/$f"
        done
    done
}

test_converter() {
    run "$srcdir/scripts/labels-to-folders.sh" --groups "$srcdir/testdata/head_ct_groups.csv" \
        "$head_ct/labels.csv" "$head_ct/images" "$tmp/conv" || return 1
    n=$(ls "$tmp/conv/normal" | wc -l)
    h=$(ls "$tmp/conv/hemorrhage" | wc -l)
    [ "$n" -eq 80 ] && [ "$h" -eq 80 ] || { why "expected 80 + 80 images, got $n + $h"; return 1; }
    [ -f "$tmp/conv/groups.csv" ] || { why "groups.csv not copied"; return 1; }
    # labels.csv says 000 is a hemorrhage and 100 is normal.
    [ -e "$tmp/conv/hemorrhage/000.png" ] && [ -e "$tmp/conv/normal/100.png" ] ||
        { why "000 or 100 in the wrong class folder"; return 1; }
}

test_train() {
    make_subset 12 "$tmp/small" || { why "could not build the subset"; return 1; }
    printf 'not a png' >"$tmp/small/normal/broken.png"
    run "$HEMOSCAN" --train "$tmp/small" --model "$tmp/small.hsm" --epochs 2 --members 2 \
        --val-split 0.3 --plots "$tmp/plots" || return 1
    [ -s "$tmp/small.hsm" ] || { why "no model written"; return 1; }
    grep -q 'broken\.png' "$tmp/err" || { why "the unreadable file was not named"; return 1; }
    lines=$(wc -l <"$tmp/small.history.csv")
    [ "$lines" -eq 3 ] || { why "history has $lines lines, expected a header and 2 epochs"; return 1; }
    head -n 1 "$tmp/small.history.csv" | grep -q '^epoch,loss,accuracy,val_loss,val_accuracy' ||
        { why "history header wrong"; return 1; }
    grep -q 'val_loss' "$tmp/err" || { why "no Keras-like epoch lines"; return 1; }
    grep -q '</svg>' "$tmp/plots/training.svg" || { why "no training curves picture"; return 1; }
    run "$HEMOSCAN" --model-info "$tmp/small.hsm" || return 1
    grep -q '^members: *2' "$tmp/out" || { why "model does not hold 2 members"; return 1; }
    grep -q 'normal hemorrhage' "$tmp/out" || { why "class names missing"; return 1; }
}

test_train_reproducible() {
    [ -s "$tmp/small.hsm" ] || { why "no model from the training test"; return 1; }
    rm -f "$tmp/small/normal/broken.png"
    # The same command (the model records it) twice, SOURCE_DATE_EPOCH fixed.
    run "$HEMOSCAN" --train "$tmp/small" --model "$tmp/again.hsm" --epochs 1 --val-split 0.3 || return 1
    mv "$tmp/again.hsm" "$tmp/again1.hsm"
    run "$HEMOSCAN" --train "$tmp/small" --model "$tmp/again.hsm" --epochs 1 --val-split 0.3 || return 1
    cmp -s "$tmp/again1.hsm" "$tmp/again.hsm" || { why "two identical trainings differ"; return 1; }
}

test_predict() {
    [ -s "$tmp/small.hsm" ] || { why "no model from the training test"; return 1; }
    run "$HEMOSCAN" --predict --model "$tmp/small.hsm" "$head_ct/images/000.png" "$head_ct/images/100.png" ||
        return 1
    [ "$(wc -l <"$tmp/out")" -eq 2 ] || { why "expected one line per image"; return 1; }
    grep -Eq '000\.png: (normal|hemorrhage) \(score 0\.[0-9]+, threshold 0\.[0-9]+\)' "$tmp/out" ||
        { why "line format"; return 1; }
    run "$HEMOSCAN" --predict --json --model "$tmp/small.hsm" "$head_ct/images/000.png" || return 1
    grep -q '"score"' "$tmp/out" && grep -q '"model_sha256"' "$tmp/out" || { why "JSON keys"; return 1; }
    run "$HEMOSCAN" --predict --model "$tmp/small.hsm" "$tmp/nothing.png"
    [ "$status" -eq 1 ] && grep -q 'nothing\.png' "$tmp/err" || { why "a missing file must fail by name"; return 1; }
}

test_eval() {
    [ -s "$tmp/small.hsm" ] || { why "no model from the training test"; return 1; }
    run "$HEMOSCAN" --eval "$tmp/small" --model "$tmp/small.hsm" --plots "$tmp/plots" || return 1
    for word in accuracy sensitivity specificity precision F1 'ROC AUC' 'confusion matrix'; do
        grep -q "$word" "$tmp/out" || { why "'$word' missing"; return 1; }
    done
    grep -q '</svg>' "$tmp/plots/roc.svg" || { why "no ROC picture"; return 1; }
    run "$HEMOSCAN" --eval "$tmp/small" --model "$tmp/small.hsm" --json || return 1
    for key in accuracy sensitivity specificity auc auc_ci95 confusion images; do
        grep -q "\"$key\"" "$tmp/out" || { why "JSON key $key missing"; return 1; }
    done
    # 24 images: the confusion matrix adds up.
    total=$(tr -d ' \n' <"$tmp/out" | sed 's/.*"confusion":\[\[\([0-9]*\),\([0-9]*\)\],\[\([0-9]*\),\([0-9]*\)\]\].*/\1+\2+\3+\4/')
    [ "$(($total))" -eq 24 ] || { why "confusion matrix sums to $total, expected 24"; return 1; }
}

test_cv() {
    [ -d "$tmp/small" ] || { why "no subset from the training test"; return 1; }
    run "$HEMOSCAN" --train "$tmp/small" --cv 2 --epochs 1 --val-split 0.3 || return 1
    grep -q '2-fold cross-validation' "$tmp/out" && grep -q 'ROC AUC .* +- ' "$tmp/out" ||
        { why "no cross-validation summary"; return 1; }
    [ "$(grep -c '^repeat 1 fold' "$tmp/err")" -eq 2 ] || { why "expected 2 fold lines"; return 1; }
    # JSON: every picture is scored once as a test picture of its fold, and
    # the inner validation pictures that set each threshold are listed too.
    run "$HEMOSCAN" --train "$tmp/small" --cv 2 --epochs 1 --val-split 0.3 --json || return 1
    pictures=$(find "$tmp/small" -name '*.png' | wc -l)
    tests=$(grep -c '"set": "test"' "$tmp/out")
    [ "$tests" -eq "$pictures" ] || { why "$tests test scores for $pictures pictures"; return 1; }
    grep -q '"set": "validation"' "$tmp/out" || { why "no validation scores"; return 1; }
}

# --fold-ensemble: one member per fold of all 24 pictures (no separate
# validation split), with mixup; and inside --cv, where it folds only the
# training part of each outer fold.
test_fold_ensemble() {
    [ -d "$tmp/small" ] || { why "no subset from the training test"; return 1; }
    run "$HEMOSCAN" --train "$tmp/small" --model "$tmp/folds.hsm" --epochs 1 --fold-ensemble 3 \
        --mixup 0.4 || return 1
    grep -q '^out-of-fold  24 images: ROC AUC [01]\.[0-9]* (95% CI' "$tmp/out" ||
        { why "no out-of-fold summary line"; return 1; }
    grep -q 'fold ensemble of 3 members on 24 images' "$tmp/err" ||
        { why "the ensemble did not pool all 24 pictures"; return 1; }
    [ "$(grep -c '^member [0-9]/3: training on 16 images, validating on 8' "$tmp/err")" -eq 3 ] ||
        { why "expected 3 members, each validating on its own 8 pictures"; return 1; }
    run "$HEMOSCAN" --model-info "$tmp/folds.hsm" || return 1
    grep -q '^members: *3' "$tmp/out" || { why "model does not hold 3 members"; return 1; }
    # the out-of-fold scores beside the model: one row per picture, 0600
    oof=$tmp/folds.oof.csv
    [ "$(head -n 1 "$oof")" = "file,label,score" ] || { why "no out-of-fold CSV header"; return 1; }
    [ "$(awk -F, 'NR > 1 && $3 >= 0 && $3 <= 1 && ($2 == "normal" || $2 == "hemorrhage")' "$oof" |
        wc -l)" -eq 24 ] || { why "expected 24 out-of-fold scores in [0, 1]"; return 1; }
    [ "$(stat -c %a "$oof")" = 600 ] || { why "the out-of-fold CSV is not 0600"; return 1; }
    # --keep-last keeps the last epoch whatever the validation loss says
    run "$HEMOSCAN" --train "$tmp/small" --model "$tmp/last.hsm" --epochs 3 --fold-ensemble 3 \
        --keep-last --lr 0.5 || return 1
    grep -q 'best epoch 3 of 3' "$tmp/out" || { why "--keep-last did not keep epoch 3"; return 1; }
    run "$HEMOSCAN" --train "$tmp/small" --cv 2 --epochs 1 --fold-ensemble 2 --json || return 1
    tests=$(grep -c '"set": "test"' "$tmp/out")
    [ "$tests" -eq 24 ] || { why "$tests test scores for 24 pictures"; return 1; }
    grep -q 'fold ensemble of 2 members on 12 images' "$tmp/err" ||
        { why "the ensemble of an outer fold must use only its 12 training pictures"; return 1; }
    run "$HEMOSCAN" --train "$tmp/small" --model "$tmp/x.hsm" --fold-ensemble 1
    [ "$status" -eq 2 ] || { why "--fold-ensemble 1 must be a usage error"; return 1; }
}

# --windows: the default recipe cuts a blood and a low window from the
# gray; one window gives a one-channel network; a bad list is a usage error.
test_windows() {
    [ -s "$tmp/small.hsm" ] || { why "no model from the training test"; return 1; }
    run "$HEMOSCAN" --model-info "$tmp/small.hsm" || return 1
    grep -q 'channel 0: gray window center 40 HU, width 80 HU' "$tmp/out" &&
        grep -q 'channel 1: gray-window window center 60 HU, width 40 HU' "$tmp/out" &&
        grep -q 'channel 2: gray-window window center 20 HU, width 40 HU' "$tmp/out" ||
        { why "the default recipe is not gray, blood and low windows"; return 1; }
    # re-windowed channels make it a format version 2 model, which builds
    # that read only version 1 refuse instead of misreading
    grep -q '^format: *version 2$' "$tmp/out" || { why "a gray-window model is not format version 2"; return 1; }
    run "$HEMOSCAN" --train "$tmp/small" --model "$tmp/one.hsm" --epochs 1 --members 1 --windows 40/80 || return 1
    run "$HEMOSCAN" --model-info "$tmp/one.hsm" || return 1
    grep -q '150x150, 1 channels' "$tmp/out" || { why "--windows 40/80 did not give one channel"; return 1; }
    grep -q '^format: *version 1$' "$tmp/out" || { why "a plain gray model is not format version 1"; return 1; }
    run "$HEMOSCAN" --predict --model "$tmp/one.hsm" "$head_ct/images/000.png" || return 1
    grep -q '000\.png: ' "$tmp/out" || { why "the one-channel model did not score a picture"; return 1; }
    run "$HEMOSCAN" --train "$tmp/small" --model "$tmp/x.hsm" --windows 40/0
    [ "$status" -eq 2 ] && grep -q 'CENTER/WIDTH' "$tmp/err" ||
        { why "--windows 40/0 must be a usage error saying what is expected"; return 1; }
    [ ! -e "$tmp/x.hsm" ] || { why "a model was written despite the usage error"; return 1; }
}

# The bundled default model is what every mode uses without --model, and
# it agrees with the input recipe: a sanity check of loading and
# preprocessing on the Kaggle head CT pictures, which it never trained on
# (web pictures of unknown rendering, unlike its RSNA slices: ROC AUC
# 0.736 when written, 2026-12-07; README has the measured figures).
test_default_model() {
    run "$HEMOSCAN" --predict "$head_ct/images/000.png" || return 1
    grep -q 'default\.hsm' "$tmp/err" && { why "default model not found"; return 1; }
    grep -Eq '000\.png: (hemorrhage|normal) \(score 0\.[0-9]+, threshold 0\.[0-9]+\)' "$tmp/out" ||
        { why "000.png was not scored"; return 1; }
    run "$HEMOSCAN" --eval "$tmp/conv" --json || return 1
    auc=$(tr -d ' \n' <"$tmp/out" | sed 's/.*"auc":\([0-9.]*\).*/\1/')
    awk -v a="$auc" 'BEGIN { exit !(a >= 0.70) }' || { why "AUC $auc on the Kaggle pictures, expected 0.70 or more"; return 1; }
    grep -q "$(sha256sum <"$srcdir/models/default.hsm" | cut -d ' ' -f 1)" "$tmp/out" ||
        { why "--eval did not use models/default.hsm"; return 1; }
}

# The K-class path: a 4-class MRI model trained briefly must beat chance
# (0.25) clearly on the held-out test folder. MRI has no Hounsfield units,
# so the CT windows of the default recipe mean nothing there: plain gray.
test_four_classes() {
    mkdir -p "$tmp/mri"
    for class in glioma meningioma notumor pituitary; do
        mkdir -p "$tmp/mri/$class"
        for f in $(ls "$mri/train/$class" | head -n 40); do
            ln -s "$(cd "$mri/train/$class" && pwd)/$f" "$tmp/mri/$class/$f"
        done
    done
    run "$HEMOSCAN" --train "$tmp/mri" --model "$tmp/mri.hsm" --epochs 12 --lr 0.002 --members 1 --val-split 0.2 \
        --windows 40/80,40/80,40/80 --threads 2 || return 1
    run "$HEMOSCAN" --eval "$mri/test" --model "$tmp/mri.hsm" --json || return 1
    acc=$(tr -d ' \n' <"$tmp/out" | sed 's/.*"accuracy":\([0-9.]*\).*/\1/')
    awk -v a="$acc" 'BEGIN { exit !(a >= 0.45) }' || { why "test accuracy $acc, expected >= 0.45"; return 1; }
    grep -q '"glioma"' "$tmp/out" || { why "class names missing"; return 1; }
}

# --init-from: a head CT model started from the 4-class MRI model's weights
# trains and names them in its note; a model with another input is refused.
test_init_from() {
    [ -s "$tmp/mri.hsm" ] && [ -d "$tmp/small" ] && [ -s "$tmp/one.hsm" ] ||
        { why "needs the MRI, training and --windows tests' models"; return 1; }
    run "$HEMOSCAN" --train "$tmp/small" --model "$tmp/started.hsm" --init-from "$tmp/mri.hsm" \
        --epochs 1 --members 1 --val-split 0.3 --windows 40/80,40/80,40/80 || return 1
    run "$HEMOSCAN" --model-info "$tmp/started.hsm" || return 1
    grep -q "started from sha256 $(sha256sum <"$tmp/mri.hsm" | cut -d ' ' -f 1)" "$tmp/out" ||
        { why "the model does not name the weights it started from"; return 1; }
    run "$HEMOSCAN" --train "$tmp/small" --model "$tmp/x.hsm" --init-from "$tmp/one.hsm" --epochs 1 --members 1
    [ "$status" -eq 1 ] && grep -q 'its input is 150x150x1, the networks trained take 150x150x3' "$tmp/err" ||
        { why "a starting model with another input was not refused with the reason"; return 1; }
    [ ! -e "$tmp/x.hsm" ] || { why "a model was written from a refused start"; return 1; }
    run "$HEMOSCAN" --eval "$tmp/small" --init-from "$tmp/mri.hsm"
    [ "$status" -eq 2 ] || { why "--init-from without --train must be a usage error"; return 1; }
}

if [ -f "$head_ct/labels.csv" ]; then
    check "labels-to-folders lays labels.csv out as class folders" test_converter
    check "--train writes a model, history, curves; skips a broken file" test_train
    check "--train is reproducible bit for bit" test_train_reproducible
    check "--predict prints class and score per image, and JSON" test_predict
    check "--eval prints the metrics, JSON and a ROC picture" test_eval
    check "--train --cv prints per-fold lines and a summary" test_cv
    check "--fold-ensemble trains one member per fold, also inside --cv" test_fold_ensemble
    check "--windows sets the input channels of a trained model" test_windows
    check "the default model is used without --model and fits its recipe" test_default_model
else
    for t in converter train reproducible predict eval cv fold-ensemble windows default-model; do
        skip "head CT $t" "no sample data in $head_ct"
    done
fi
if [ -d "$mri/train" ] && [ -d "$mri/test" ]; then
    check "a 4-class model beats chance on the MRI test set" test_four_classes
    if [ -f "$head_ct/labels.csv" ]; then
        check "--init-from starts training from another model's weights" test_init_from
    else
        skip "--init-from" "no sample data in $head_ct"
    fi
else
    skip "4-class MRI model" "no sample data in $mri"
    skip "--init-from" "no sample data in $mri"
fi

# ---- DICOM class folders, several sources, --subtypes --------------------

# Class folders of generated DICOM slices (128 x 128): hemorrhage/ holds a
# series with a bleed, normal/ one without in another storage (unsigned
# 12-bit, implicit VR), one of its files renamed without an extension.
# The hemorrhage files are named hIM0001.dcm...: ids (names without
# extension) must differ between classes for groups.csv to group one
# class alone.
# Beside them: an Enhanced CT multi-frame file and a .dcm that is not
# DICOM (both to be skipped by name), and a README without an extension
# that is not DICOM (to be ignored).
make_dicom_classes() {
    out=$1
    seed=$2
    "$GEN" --out "$out/hemorrhage" --size 128 --slices 6 --seed "$seed" --jobs 1 -q \
        --bleed iph:10,-10,0,40 || return 1
    "$GEN" --out "$out/normal" --size 128 --slices 6 --seed "$((seed + 1))" --jobs 1 -q \
        --storage unsigned --ts implicit || return 1
    mv "$out/normal/IM0006.dcm" "$out/normal/IM0006"
    for f in "$out"/hemorrhage/IM*.dcm; do
        mv "$f" "$out/hemorrhage/h${f##*/}"
    done
}

test_eval_dicom() {
    make_dicom_classes "$tmp/dcm" 21 || { why "the generator failed"; return 1; }
    "$GEN" --out "$tmp/enh" --size 64 --slices 3 --seed 3 --jobs 1 -q --enhanced || return 1
    cp "$tmp/enh/EN0001.dcm" "$tmp/dcm/normal/EN0001.dcm"
    printf 'not dicom\n' >"$tmp/dcm/normal/junk.dcm"
    printf 'notes\n' >"$tmp/dcm/normal/README"
    run "$HEMOSCAN" --eval "$tmp/dcm" --model "$MODEL" --json || return 1
    [ "$(jq .n "$tmp/out")" -eq 12 ] && [ "$(jq .n_dicom "$tmp/out")" -eq 12 ] &&
        [ "$(jq .skipped "$tmp/out")" -eq 2 ] ||
        { why "expected 12 DICOM slices read and 2 files skipped"; return 1; }
    [ "$(jq '[.images[] | select(.read_as == "dicom")] | length' "$tmp/out")" -eq 12 ] ||
        { why "every image should say it was read as dicom"; return 1; }
    jq -r '.images[].file' "$tmp/out" | grep -q '/normal/IM0006$' ||
        { why "the DICOM file without an extension was not read"; return 1; }
    grep -q 'EN0001\.dcm: multi-frame' "$tmp/err" && grep -q 'junk\.dcm' "$tmp/err" ||
        { why "the multi-frame and the broken file were not named"; return 1; }
    grep -q README "$tmp/err" && { why "a README without extension is not an image"; return 1; }
    # the scores are the ones --study gives the same slices
    rm -f "$tmp/dcm/normal/EN0001.dcm" "$tmp/dcm/normal/junk.dcm" "$tmp/dcm/normal/README"
    jq '[.images[] | select(.label == "hemorrhage") | .score] | sort' "$tmp/out" >"$tmp/eval.json"
    run "$HEMOSCAN" --model "$MODEL" --db "$tmp/audit.db" --study --json "$tmp/dcm/hemorrhage"
    jq '.series[0].slice_probabilities | sort' "$tmp/out" >"$tmp/study.json"
    ok=$(jq -n --slurpfile a "$tmp/eval.json" --slurpfile b "$tmp/study.json" \
        '$a[0] | length == 6 and ([range(6) | ($a[0][.] - $b[0][.]) | fabs < 0.00001] | all)')
    [ "$ok" = true ] || { why "--eval scores $(cat "$tmp/eval.json") differ from --study's $(cat "$tmp/study.json")"; return 1; }
    run "$HEMOSCAN" --eval "$tmp/dcm" --model "$MODEL" || return 1
    grep -q 'read  *0 PNG pictures, 12 DICOM slices' "$tmp/out" || { why "no line of what was read"; return 1; }
}

# A folder may mix PNG and DICOM: the exported PNG of a slice (--export)
# scores as its DICOM does, each file through its own path.
test_eval_mixed() {
    [ -d "$tmp/dcm" ] || { why "no DICOM folders from the DICOM test"; return 1; }
    run "$HEMOSCAN" --model "$MODEL" --export "$tmp/dcm/hemorrhage" --out "$tmp/exp" || return 1
    mkdir -p "$tmp/mixed/hemorrhage" "$tmp/mixed/normal"
    cp "$tmp/exp"/*/0003.png "$tmp/mixed/hemorrhage/png0003.png" || return 1
    cp "$tmp/dcm/hemorrhage/hIM0003.dcm" "$tmp/mixed/hemorrhage/"
    cp "$tmp/dcm/normal/IM0001.dcm" "$tmp/dcm/normal/IM0002.dcm" "$tmp/mixed/normal/"
    run "$HEMOSCAN" --eval "$tmp/mixed" --model "$MODEL" --json || return 1
    [ "$(jq .n_png "$tmp/out")" -eq 1 ] && [ "$(jq .n_dicom "$tmp/out")" -eq 3 ] ||
        { why "expected 1 PNG and 3 DICOM"; return 1; }
    png=$(jq '.images[] | select(.read_as == "png") | .score' "$tmp/out")
    dcm=$(jq '.images[] | select(.file | endswith("hIM0003.dcm")) | .score' "$tmp/out")
    ok=$(jq -n "($png - $dcm) | fabs < 0.0005")
    [ "$ok" = true ] || { why "the PNG scores $png, its DICOM $dcm"; return 1; }
}

# --subtypes: a labels file by id (file name without extension) and by
# file path; the figures count exactly the positive images the model
# flagged, per subtype.
test_subtypes() {
    [ -d "$tmp/dcm" ] || { why "no DICOM folders from the DICOM test"; return 1; }
    {
        echo 'sop_instance_uid,subdural,intraparenchymal,any'
        for i in 1 2 3; do echo "hIM000$i,1,0,1"; done
        for i in 4 5; do echo "hIM000$i,0,1,1"; done
        echo 'hIM0006,,"1",1'
    } >"$tmp/labels.csv"
    run "$HEMOSCAN" --eval "$tmp/dcm" --model "$MODEL" --json --subtypes "$tmp/labels.csv" || return 1
    jq '.subtype_sensitivity' "$tmp/out" >"$tmp/sub.json"
    [ "$(jq '.subdural.n' "$tmp/sub.json")" -eq 3 ] && [ "$(jq '.intraparenchymal.n' "$tmp/sub.json")" -eq 3 ] ||
        { why "expected 3 subdural and 3 intraparenchymal images"; return 1; }
    [ "$(jq 'has("epidural")' "$tmp/sub.json")" = false ] || { why "epidural is not in the labels file"; return 1; }
    found=$(jq '[.images[] | select(.label == "hemorrhage" and .predicted == "hemorrhage")
        | select(.file | test("hIM000[123]\\.dcm$"))] | length' "$tmp/out")
    [ "$(jq '.subdural.found' "$tmp/sub.json")" -eq "$found" ] || { why "subdural found is not $found"; return 1; }
    # the file column, relative to a data root, and a bad value
    printf 'file,epidural\nhemorrhage/hIM0001.dcm,1\n' >"$tmp/byfile.csv"
    run "$HEMOSCAN" --eval "$tmp/dcm" --model "$MODEL" --subtypes "$tmp/byfile.csv" || return 1
    grep -Eq '^  epidural +[01] of +1 found' "$tmp/out" || { why "the file column did not match"; return 1; }
    printf 'id,subdural\nhIM0001,yes\n' >"$tmp/bad.csv"
    run "$HEMOSCAN" --eval "$tmp/dcm" --model "$MODEL" --subtypes "$tmp/bad.csv"
    [ "$status" -eq 1 ] && grep -q 'bad\.csv:2: subdural' "$tmp/err" || { why "a bad value must fail by line"; return 1; }
    # --cv: the pooled out-of-fold test images, each at its fold's threshold
    run "$HEMOSCAN" --train "$tmp/dcm" --cv 2 --epochs 1 --members 1 --val-split 0.3 --json \
        --subtypes "$tmp/labels.csv" || return 1
    found=$(jq '[.per_fold[].images[] | select(.set == "test" and .label == "hemorrhage"
        and .predicted == "hemorrhage") | select(.file | test("hIM000[123]\\.dcm$"))] | length' "$tmp/out")
    [ "$(jq '.subtype_sensitivity.subdural.n' "$tmp/out")" -eq 3 ] &&
        [ "$(jq '.subtype_sensitivity.subdural.found' "$tmp/out")" -eq "$found" ] ||
        { why "--cv subdural figures do not match its test images ($found found)"; return 1; }
    run "$HEMOSCAN" --predict --subtypes "$tmp/labels.csv" x.png
    [ "$status" -eq 2 ] || { why "--subtypes without --eval or --cv must be a usage error"; return 1; }
}

# Several --train folders: merged by class name, each with its own
# groups.csv, equal file names kept apart, the checksum over all of them;
# sources whose classes differ are a usage error.
test_train_sources() {
    [ -d "$tmp/dcm" ] || { why "no DICOM folders from the DICOM test"; return 1; }
    make_dicom_classes "$tmp/dcm2" 31 || { why "the generator failed"; return 1; }
    # source 1: three of its hemorrhage slices are one patient
    for i in 1 2 3; do echo "hIM000$i,patient1"; done >"$tmp/dcm/groups.csv"
    run "$HEMOSCAN" --train "$tmp/dcm" --train "$tmp/dcm2" --model "$tmp/two.hsm" --epochs 1 --members 1 \
        --val-split 0.3 || return 1
    grep -q '^24 images in 2 classes' "$tmp/err" || { why "expected 24 images from the two folders"; return 1; }
    run "$HEMOSCAN" --train "$tmp/dcm" --model "$tmp/one.hsm" --epochs 1 --members 1 --val-split 0.3 || return 1
    sha_one=$(sed -n 's/.*data sha256 \([0-9a-f]*\).*/\1/p' "$tmp/err")
    run "$HEMOSCAN" --model-info "$tmp/two.hsm" || return 1
    grep -q "$sha_one" "$tmp/out" && { why "the data checksum does not cover the second folder"; return 1; }
    grep -q -- "--train $tmp/dcm --train $tmp/dcm2" "$tmp/out" ||
        { why "the model's note does not name both folders"; return 1; }
    # 3 folds: the group of 3 and the 9 other hemorrhage slices deal 4 to
    # each fold; had source 2's same-named slices joined the group (6), the
    # folds would hold 6, 3 and 3
    run "$HEMOSCAN" --train "$tmp/dcm" --train "$tmp/dcm2" --cv 3 --epochs 1 --members 1 --val-split 0.3 \
        --json || return 1
    [ "$(jq '[.per_fold[].images[] | select(.set == "test")] | length' "$tmp/out")" -eq 24 ] ||
        { why "every image of both folders is a test image once"; return 1; }
    for fold in 0 1 2; do
        n=$(jq "[.per_fold[$fold].images[] | select(.set == \"test\" and .label == \"hemorrhage\")] | length" "$tmp/out")
        [ "$n" -eq 4 ] || { why "fold $fold has $n hemorrhage test images, expected 4"; return 1; }
    done
    folds=$(jq "[.per_fold[] | select(any(.images[]; .set == \"test\" and (.file | test(\"/dcm/hemorrhage/hIM000[123]\"))))] | length" "$tmp/out")
    [ "$folds" -eq 1 ] || { why "source 1's grouped slices are in $folds folds"; return 1; }
    mkdir -p "$tmp/other/normal" "$tmp/other/ischemia"
    cp "$tmp/dcm/normal/IM0001.dcm" "$tmp/other/normal/"
    cp "$tmp/dcm/normal/IM0002.dcm" "$tmp/other/ischemia/"
    run "$HEMOSCAN" --train "$tmp/dcm" --train "$tmp/other" --model "$tmp/x.hsm" --epochs 1
    [ "$status" -eq 2 ] && grep -q 'different class folders' "$tmp/err" ||
        { why "sources with other classes must be a usage error saying so"; return 1; }
    [ ! -e "$tmp/x.hsm" ] || { why "a model was written despite the usage error"; return 1; }
}

# The labelled RSNA slices (signed and unsigned, implicit and explicit VR):
# every one reads through the DICOM path, and labels.csv gives subtypes.
test_rsna_dicom() {
    run "$HEMOSCAN" --eval "$rsna/dicom" --model "$MODEL" --json --subtypes "$rsna/labels.csv" || return 1
    [ "$(jq .n "$tmp/out")" -eq 136 ] && [ "$(jq .skipped "$tmp/out")" -eq 0 ] &&
        [ "$(jq .n_dicom "$tmp/out")" -eq 136 ] || { why "expected all 136 slices read as DICOM"; return 1; }
    [ "$(jq .subtype_labels_matched "$tmp/out")" -eq 136 ] || { why "every slice has a row in labels.csv"; return 1; }
    [ "$(jq .subtype_sensitivity.intraparenchymal.n "$tmp/out")" -eq 4 ] ||
        { why "labels.csv names 4 intraparenchymal slices among them"; return 1; }
}

check "--eval reads DICOM class folders through the --study slice path" test_eval_dicom
check "--eval on a folder of PNG and DICOM reads each by its own path" test_eval_mixed
check "--subtypes gives the sensitivity per hemorrhage subtype" test_subtypes
check "--train and --cv merge several source folders" test_train_sources
if [ -d "$rsna/dicom/hemorrhage" ] && [ -f "$rsna/labels.csv" ]; then
    check "--eval on the labelled RSNA DICOM slices" test_rsna_dicom
else
    skip "RSNA DICOM slices" "no sample data in $rsna"
fi

finish
