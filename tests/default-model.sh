#!/bin/sh
# default-model.sh - what the bundled default model must do, end to end
# through --validate and --eval: the behaviour README and hemoscan(1)
# promise of it, so that a retrained model that loses it fails here.
#
# - Generated studies (512 x 512, 32 slices of 5 mm, like the sample study)
#   from seeds and places that scripts/generated-training-set.sh never
#   uses: bleed-free heads (plain and with contrast) stay negative; an
#   intraparenchymal (20 mm), a subdural (10 mm) and a subarachnoid bleed
#   are found.
# - Real labelled slices, when ../shared/data/rsna_ich is present: the
#   RSNA DICOM slices through the DICOM path rank bleeds above normals
#   (ROC AUC at least 0.80; the model of 2026-12-06 scored 0.62).
#
# Run by `make check` (HEMOSCAN, HEMOSCAN_BUILDDIR, HEMOSCAN_SRCDIR,
# HEMOSCAN_SHARED_DATA). Needs jq.

set -u

. "$(dirname "$0")/lib.sh"

study_tools default-model.sh
rsna=${HEMOSCAN_SHARED_DATA:-../shared/data}/rsna_ich

set_up() {
    echo "study,label,subtypes" >"$tmp/labels.csv"
    while read -r name seed label sub opts; do
        # shellcheck disable=SC2086 # opts holds several options
        "$GEN" --out "$tmp/studies/$name" --seed "$seed" --jobs 1 -q $opts || return 1
        [ "$sub" = - ] && sub=
        echo "$name,$label,$sub" >>"$tmp/labels.csv"
    done <<EOF
normal-a 21 0 -
normal-b 22 0 - --noise 6
normal-contrast 23 0 - --contrast
iph-20 24 1 intraparenchymal --bleed iph:30,10,20,20
sdh-10 25 1 subdural --bleed sdh:60,10,25,10
sah-50 26 1 subarachnoid --bleed sah:-10,-10,10,50
EOF
}

test_generated_studies() {
    run "$HEMOSCAN" --model "$MODEL" --db "$tmp/v.db" --validate "$tmp/studies" \
        --labels "$tmp/labels.csv" --json || return 1
    for s in normal-a normal-b normal-contrast; do
        v=$(jq -r ".studies[] | select(.study == \"$s\") | .verdict" "$tmp/out")
        [ "$v" = no_hemorrhage ] || { why "$s: verdict $v, expected no_hemorrhage"; return 1; }
    done
    for s in iph-20 sdh-10 sah-50; do
        v=$(jq -r ".studies[] | select(.study == \"$s\") | .verdict" "$tmp/out")
        [ "$v" = hemorrhage ] || { why "$s: verdict $v, expected hemorrhage"; return 1; }
    done
}

test_rsna_dicom_slices() {
    run "$HEMOSCAN" --model "$MODEL" --eval "$rsna/dicom" --json || return 1
    jq -e '.n_dicom == 136 and .auc >= 0.80' "$tmp/out" >/dev/null ||
        { why "RSNA DICOM slices: $(jq -c '{n_dicom, auc}' "$tmp/out"), expected 136 slices and AUC >= 0.80"; return 1; }
}

if set_up; then
    check "the default model: bleed-free generated heads negative, iph, sdh and sah found" \
        test_generated_studies
else
    check "generating the studies" false
fi
if [ -d "$rsna/dicom/hemorrhage" ]; then
    check "the default model ranks the real RSNA DICOM slices (AUC >= 0.80)" test_rsna_dicom_slices
else
    skip "RSNA DICOM slices" "no data in $rsna (../shared/data/rsna_ich)"
fi
finish
