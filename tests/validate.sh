#!/bin/sh
# validate.sh - tests of `hemoscan --validate DIR --labels FILE` end to end
# (POSIX sh): generated studies with and without big bleeds through the
# real binary and the bundled model, a labels CSV as a site would write it,
# and what the user and the auditor see: the JSON figures and whether they
# add up, the text report, the lists of unlabelled studies and unmatched
# labels, the validation run in the audit database leaving current
# verdicts alone, slice labels, the ROC picture and the usage errors.
#
# Run by `make check` (see study.sh for the environment). One validation
# run's JSON is shared by the tests that only read it, to keep the time
# down; the harness (run, check, why) is tests/lib.sh.

set -u

. "$(dirname "$0")/lib.sh"

study_tools validate.sh

DB=$tmp/audit.db
sql() {
    "$SQLITE3" -readonly "$DB" "$1"
}
validate() {
    run "$HEMOSCAN" --model "$MODEL" --db "$DB" --validate "$@"
}

# Five study folders: two without a bleed, two with a big one, one too
# short to assess (labelled positive: a miss for the user), and one with no
# label; the label file names a sixth study that is not there.
S=$tmp/studies
gen() {
    name=$1
    shift
    # 256 x 256: the size the default model learnt the generator's heads at
    "$GEN" --out "$S/$name" --size 256 --thickness 5 --jobs 1 -q "$@" || exit 99
}
gen normal1 --slices 16 --seed 1 --bleed-none
gen normal2 --slices 16 --seed 2 --bleed-none
gen bleed1 --slices 16 --seed 3 --bleed iph:25,-15,10,30
gen bleed2 --slices 16 --seed 4 --bleed iph:-25,10,5,30
gen short --slices 4 --seed 5 --bleed iph:0,0,0,30
gen extra --slices 16 --seed 6 --bleed-none
cat >"$tmp/labels.csv" <<'EOF'
study,label,subtypes
normal1,0
normal2,normal
bleed1,1,intraparenchymal
bleed2,yes,IPH|subdural
short,1,subdural
ghost,1
EOF

# A production reading of two of the studies first: their current
# verdicts must survive the validation run.
run "$HEMOSCAN" --model "$MODEL" --db "$DB" --study "$S/bleed1" "$S/normal1" || exit 99
current_before=$(sql "SELECT group_concat(verdict_id || ':' || verdict, ' ') FROM current_verdicts")

# Slice labels from that reading: bleed1's key slice and its neighbours
# hemorrhage, every other slice of the two studies normal; one UID that is
# in no study.
sql "SELECT s.sop_instance_uid || ',' ||
            CASE WHEN abs(s.slice_index - (SELECT k.slice_index FROM slices AS k WHERE k.slice_id = v.key_slice_id)) <= 1
                      AND r.study_dir LIKE '%bleed1' THEN 1 ELSE 0 END
     FROM slices AS s JOIN series AS se ON se.series_id = s.series_id
     JOIN readings AS r ON r.reading_id = se.reading_id JOIN verdicts AS v ON v.reading_id = r.reading_id" \
    >"$tmp/slices.csv" || exit 99
echo "1.2.3.999.1,1" >>"$tmp/slices.csv"
n_slice_rows=$(wc -l <"$tmp/slices.csv")

validate "$S" --labels "$tmp/labels.csv" --slice-labels "$tmp/slices.csv" --plots "$tmp/plots" --json
main_status=$status
cp "$tmp/out" "$tmp/main.json"
cp "$tmp/err" "$tmp/main.err"
J=$tmp/main.json

test_json_fields() {
    [ "$main_status" -eq 0 ] || { why "expected exit 0, got $main_status"; cat "$tmp/main.err" >>"$tmp/why"; return 1; }
    [ "$(wc -l <"$J")" -eq 1 ] || { why "expected one JSON object"; return 1; }
    for key in study_auc study_auc_ci95 sensitivity specificity threshold studies confusion model_sha256 \
        subtype_sensitivity slice_auc slice_auc_ci95 n_slices studies_without_label labels_without_study \
        not_assessable; do
        jq -e "has(\"$key\")" "$J" >/dev/null || { why "no key $key"; return 1; }
    done
    jq -e '(.study_auc_ci95 | length) == 2 and (.studies | length) == 6' "$J" >/dev/null ||
        { why "CI or study list malformed"; return 1; }
    sum=$(sha256sum "$MODEL" | cut -d' ' -f1)
    [ "$(jq -r .model_sha256 "$J")" = "$sum" ] || { why "model_sha256 is not the model file's"; return 1; }
    t=$("$HEMOSCAN" --model-info "$MODEL" | sed -n 's/^threshold: *//p')
    jq -e --argjson t "$t" '(.threshold - $t) | fabs < 1e-5' "$J" >/dev/null ||
        { why "threshold $(jq .threshold "$J"), the model's is $t"; return 1; }
}

test_json_consistent() {
    # counts add up; sensitivity = found / positives, a not-assessable
    # positive counted as missed; specificity = tn / negatives
    jq -e '.confusion as $c
           | ($c.tp + $c.fn + $c.fp + $c.tn + $c.not_assessable_positive + $c.not_assessable_negative) == .n_labelled
           and .positives == ($c.tp + $c.fn + $c.not_assessable_positive)
           and .negatives == ($c.fp + $c.tn + $c.not_assessable_negative)
           and .n_labelled == 5 and .positives == 3 and .negatives == 2
           and (.sensitivity - $c.tp / .positives | fabs) < 1e-9
           and (.specificity - $c.tn / .negatives | fabs) < 1e-9
           and ([.studies[] | select(.outcome == "tp")] | length) == $c.tp
           and ([.studies[] | select(.outcome == "tn")] | length) == $c.tn' "$J" >/dev/null ||
        { why "figures do not add up: $(jq -c '{confusion, positives, negatives, sensitivity, specificity}' "$J")"; return 1; }
}

test_big_bleeds_found() {
    for s in bleed1 bleed2; do
        jq -e --arg s "$s" '.studies[] | select(.study == $s) | .outcome == "tp" and .verdict == "hemorrhage"
                            and .key_slice >= 1 and (.key_slice_sop_instance_uid | length) > 0' "$J" >/dev/null ||
            { why "$s not found"; return 1; }
    done
    for s in normal1 normal2; do
        jq -e --arg s "$s" '.studies[] | select(.study == $s) | .outcome == "tn"' "$J" >/dev/null ||
            { why "$s flagged"; return 1; }
    done
    jq -e '.confusion.tp == 2 and .confusion.tn == 2 and .confusion.not_assessable_positive == 1
           and (.sensitivity - 2/3 | fabs) < 1e-9 and .specificity == 1' "$J" >/dev/null ||
        { why "expected 2 of 3 positives found (one not assessable), 2 of 2 normals"; return 1; }
    jq -e '.subtype_sensitivity.intraparenchymal == {"sensitivity": 1, "found": 2, "positives": 2}
           and .subtype_sensitivity.subdural.positives == 2 and .subtype_sensitivity.subdural.found == 1' \
        "$J" >/dev/null || { why "subtype sensitivity wrong: $(jq -c .subtype_sensitivity "$J")"; return 1; }
}

test_unmatched_reported() {
    jq -e '.studies_without_label == ["extra"]' "$J" >/dev/null || { why "extra not listed as unlabelled"; return 1; }
    jq -e '.labels_without_study == [{"study": "ghost", "line": 7, "label": 1}]' "$J" >/dev/null ||
        { why "ghost not listed as a label with no study"; return 1; }
    jq -e '.not_assessable | length == 1 and .[0].study == "short" and .[0].label == 1' "$J" >/dev/null ||
        { why "short not listed as not assessable"; return 1; }
    jq -e '.studies[] | select(.study == "extra") | .outcome == "unlabelled" and .label == null' "$J" >/dev/null ||
        { why "extra's row wrong"; return 1; }
}

test_slice_labels() {
    matched=$((n_slice_rows - 1))
    jq -e --argjson m "$matched" '.n_slices == $m and .slice_auc != null and .slice_auc > 0.5
                                  and (.slice_auc_ci95 | length) == 2' "$J" >/dev/null ||
        { why "slice figures wrong: $(jq -c '{n_slices, slice_labels, slice_auc, slice_auc_ci95}' "$J")"; return 1; }
}

test_database() {
    [ "$(sql "SELECT group_concat(verdict_id || ':' || verdict, ' ') FROM current_verdicts")" = "$current_before" ] ||
        { why "current_verdicts changed by the validation run"; return 1; }
    run_id=$(jq .run_id "$J")
    [ "$(sql "SELECT purpose || ' ' || exit_status FROM runs WHERE run_id = $run_id")" = "validation 0" ] ||
        { why "no finished validation run $run_id"; return 1; }
    [ "$(sql "SELECT count(*) FROM verdicts WHERE purpose = 'validation' AND superseded_by IS NULL")" = 6 ] ||
        { why "expected 6 validation verdicts, none superseded"; return 1; }
    # the auditor's recomputation: sensitivity over the labelled studies read
    got=$(sql "SELECT sum(verdict = 'hemorrhage') || '/' || count(*) FROM validation_results
               WHERE run_id = $run_id AND label = 1 AND verdict IS NOT NULL")
    [ "$got" = "2/3" ] || { why "SQL sensitivity $got, expected 2/3"; return 1; }
    [ "$(sql "SELECT count(*) FROM validation_labels WHERE run_id = $run_id")" = $((6 + n_slice_rows)) ] ||
        { why "not every label row recorded"; return 1; }
    # a production reading after the validation supersedes the production verdict
    run "$HEMOSCAN" --model "$MODEL" --db "$DB" --study "$S/bleed1" || { why "--study failed"; return 1; }
    uid=$(jq -r '.studies[] | select(.study == "bleed1") | .study_uid' "$J")
    [ "$(sql "SELECT count(*) FROM current_verdicts WHERE study_uid = '$uid'")" = 1 ] ||
        { why "not one current verdict"; return 1; }
    [ "$(sql "SELECT r.purpose FROM current_verdicts AS c JOIN runs AS r USING (run_id) WHERE c.study_uid = '$uid'")" = production ] ||
        { why "the current verdict is not the production reading's"; return 1; }
    [ "$(stat -c %a "$DB")" = 600 ] || { why "database not private"; return 1; }
}

test_plots() {
    [ -s "$tmp/plots/validation-roc.svg" ] && grep -q "<svg" "$tmp/plots/validation-roc.svg" ||
        { why "no study ROC picture"; return 1; }
    [ -s "$tmp/plots/validation-slice-roc.svg" ] || { why "no slice ROC picture"; return 1; }
}

test_text_report() {
    validate "$S" --labels "$tmp/labels.csv" || { why "expected exit 0"; return 1; }
    grep -q "sensitivity 0.667 (2/3), specificity 1.000 (2/2)" "$tmp/out" || { why "no sensitivity line"; return 1; }
    grep -q "^Study ROC AUC " "$tmp/out" || { why "no AUC line"; return 1; }
    grep -q "labels.csv:7: ghost" "$tmp/out" || { why "ghost not reported"; return 1; }
    grep -q "short (label 1, a miss)" "$tmp/out" || { why "not-assessable positive not reported as a miss"; return 1; }
    grep -q "^  extra" "$tmp/out" || { why "extra not reported"; return 1; }
    grep -q "^bleed1 .* hemorrhage " "$tmp/out" || { why "no per-study row for bleed1"; return 1; }
}

# A study labelled both by its folder and by its UID uses the UID's row
# and says so; the folder's row is not "a label with no study".
test_labelled_twice() {
    uid=$(jq -r '.studies[] | select(.study == "bleed1") | .study_uid' "$J")
    printf 'bleed1,1\n%s,1\nnormal1,0\n' "$uid" >"$tmp/twice.csv"
    validate "$S" --labels "$tmp/twice.csv" --json || { why "expected exit 0"; return 1; }
    jq -e '.labels_without_study == [] and .n_labelled == 2 and .confusion.tp == 1' "$tmp/out" >/dev/null ||
        { why "double label miscounted"; return 1; }
    grep -q "bleed1: labelled by its UID (.*twice.csv:2) and by its folder (line 1)" "$tmp/err" ||
        { why "no warning about the double label"; return 1; }
}

# The flat form: one folder holding the files of two studies, labelled by
# StudyInstanceUID.
test_flat_folder() {
    mkdir -p "$tmp/flat" || return 1
    for s in bleed1 normal1; do
        for f in "$S/$s"/*.dcm; do cp "$f" "$tmp/flat/$s-$(basename "$f")" || return 1; done
    done
    b=$(jq -r '.studies[] | select(.study == "bleed1") | .study_uid' "$J")
    n=$(jq -r '.studies[] | select(.study == "normal1") | .study_uid' "$J")
    printf '%s,1\n%s,0\n' "$b" "$n" >"$tmp/flat.csv"
    validate "$tmp/flat" --labels "$tmp/flat.csv" --json || { why "expected exit 0"; return 1; }
    jq -e '.n_studies == 2 and .n_labelled == 2 and .confusion.tp == 1 and .confusion.tn == 1
           and .study_auc == 1' "$tmp/out" >/dev/null || { why "flat folder not read as two studies"; return 1; }
}

test_usage_and_errors() {
    run "$HEMOSCAN" --validate "$S"
    [ "$status" -eq 2 ] || { why "--validate without --labels: expected 2"; return 1; }
    grep -q -- "--labels" "$tmp/err" || { why "message does not name --labels"; return 1; }
    run "$HEMOSCAN" --labels "$tmp/labels.csv" --study "$S/bleed1"
    [ "$status" -eq 2 ] || { why "--labels without --validate: expected 2"; return 1; }
    run "$HEMOSCAN" --validate "$S" --labels "$tmp/labels.csv" --study "$S/bleed1"
    [ "$status" -eq 2 ] || { why "two modes: expected 2"; return 1; }
    validate "$S" --labels "$tmp/no-such.csv"
    [ "$status" -eq 1 ] && grep -q "no-such.csv" "$tmp/err" || { why "missing labels: expected 1 naming it"; return 1; }
    printf 'study,label\nbleed1,maybe\n' >"$tmp/bad.csv"
    validate "$S" --labels "$tmp/bad.csv"
    [ "$status" -eq 1 ] && grep -q "bad.csv:2: label \"maybe\"" "$tmp/err" ||
        { why "bad label: expected 1 naming the line"; return 1; }
    validate "$tmp/no-such-dir" --labels "$tmp/labels.csv"
    [ "$status" -eq 1 ] || { why "missing folder: expected 1"; return 1; }
}

check "--validate --json: the fields, the model and its threshold" test_json_fields
check "--validate --json: counts add up, sensitivity = found / positives" test_json_consistent
check "--validate: big bleeds found, normals not flagged, subtypes" test_big_bleeds_found
check "--validate: unlabelled studies, labels with no study, not assessable" test_unmatched_reported
check "--validate --slice-labels: slice AUC over the matched slices" test_slice_labels
check "--validate: a validation run, current verdicts unchanged, SQL recomputes" test_database
check "--validate --plots: ROC pictures" test_plots
check "--validate: the text report" test_text_report
check "--validate: a study labelled by folder and by UID" test_labelled_twice
check "--validate: a flat folder grouped by StudyInstanceUID" test_flat_folder
check "--validate: usage errors 2, other errors 1" test_usage_and_errors
finish
