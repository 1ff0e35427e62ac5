#!/bin/sh
# study.sh - tests of `hemoscan --study` and `--export` end to end (POSIX sh):
# generated studies through the real binary, the JSON and text a user sees,
# the exit status, what lands in the audit database, and the expected
# outcome of every folder of real and edge-case DICOM in ../shared/data.
#
# Run by `make check`, which sets HEMOSCAN, HEMOSCAN_BUILDDIR (for the
# generator), HEMOSCAN_SRCDIR and HEMOSCAN_SHARED_DATA. Needs jq and the
# sqlite3 shell (scripts/install-deps.sh installs both). The harness (run,
# check, skip, why) is tests/lib.sh.

set -u

. "$(dirname "$0")/lib.sh"

study_tools study.sh

# Every run writes to a private database unless a test says otherwise.
DB=$tmp/audit.db
study() {
    run "$HEMOSCAN" --model "$MODEL" --db "$DB" --study "$@"
}
sql() {
    "$SQLITE3" -readonly "$DB" "$1"
}

# A small study with a bleed and one without (128 x 128, 16 slices of 5 mm).
"$GEN" --out "$tmp/bleed" --size 128 --slices 16 --thickness 5 --seed 5 --jobs 1 -q \
    --bleed iph:25,-15,10,30 --ts jpeg-lossless || exit 99
"$GEN" --out "$tmp/short" --size 128 --slices 4 --thickness 5 --seed 6 --jobs 1 -q || exit 99
"$GEN" --out "$tmp/mr" --size 64 --slices 8 --seed 7 --modality MR --jobs 1 -q || exit 99
mkdir "$tmp/empty" || exit 99
# the bleed study again as one Enhanced CT file, frames shuffled, rescale per frame
"$GEN" --out "$tmp/enhanced" --size 128 --slices 16 --thickness 5 --seed 5 --jobs 1 -q \
    --bleed iph:25,-15,10,30 --ts jpeg-lossless --enhanced --enhanced-rescale vary --shuffle || exit 99

test_json_verdict() {
    study --json "$tmp/bleed" || { why "expected exit 0"; return 1; }
    j=$(sed -n 1p "$tmp/out")
    [ "$(wc -l <"$tmp/out")" -eq 1 ] || { why "expected one JSON line per study"; return 1; }
    for key in study_uid verdict probability threshold key_slice model_sha256 reason; do
        echo "$j" | jq -e "has(\"$key\")" >/dev/null || { why "no key $key"; return 1; }
    done
    [ "$(echo "$j" | jq -r .verdict)" = hemorrhage ] || { why "verdict is not hemorrhage"; return 1; }
    echo "$j" | jq -e '.probability > .threshold and .probability <= 1 and .reason == null' >/dev/null ||
        { why "probability/threshold/reason wrong"; return 1; }
    # the key slice lies on the bleed (slices 7-12, 0-based 6-11)
    echo "$j" | jq -e '.key_slice.index >= 6 and .key_slice.index <= 11' >/dev/null ||
        { why "key slice not on the bleed"; return 1; }
    sum=$(sha256sum "$MODEL" | cut -d' ' -f1)
    [ "$(echo "$j" | jq -r .model_sha256)" = "$sum" ] || { why "model_sha256 is not the file's SHA-256"; return 1; }
    [ "$(echo "$j" | jq '.series[0].slice_probabilities | length')" -eq 16 ] ||
        { why "expected 16 slice probabilities"; return 1; }
}

test_text_summary() {
    study "$tmp/bleed" || return 1
    grep -q "HEMORRHAGE SUSPECTED" "$tmp/out" || { why "no verdict line"; return 1; }
    grep -q "key slice:" "$tmp/out" || { why "no key slice line"; return 1; }
    grep -q "not a diagnosis" "$tmp/out" || { why "no decision-support warning"; return 1; }
    grep -q "recorded:   $DB" "$tmp/out" || { why "does not say where it was recorded"; return 1; }
}

test_exit_statuses() {
    study "$tmp/empty"
    [ "$status" -eq 3 ] || { why "empty folder: expected 3 (no readable series)"; return 1; }
    study "$tmp/mr"
    [ "$status" -eq 3 ] || { why "MR study: expected 3"; return 1; }
    study --json "$tmp/short"
    [ "$status" -eq 4 ] || { why "4-slice study: expected 4 (not assessable)"; return 1; }
    jq -e '.verdict == "not_assessable" and (.reason | test("only 4 slices")) and .probability == null' \
        "$tmp/out" >/dev/null || { why "not_assessable JSON wrong"; return 1; }
    study "$tmp/no-such-folder"
    [ "$status" -eq 1 ] || { why "missing folder: expected 1 (error)"; return 1; }
    grep -q "no-such-folder" "$tmp/err" || { why "error does not name the folder"; return 1; }
    run "$HEMOSCAN" --study
    [ "$status" -eq 2 ] || { why "no folder: expected 2 (usage)"; return 1; }
    # several studies: the worst outcome wins
    study "$tmp/bleed" "$tmp/short" "$tmp/empty"
    [ "$status" -eq 4 ] || { why "mixed studies: expected 4"; return 1; }
}

test_database_record() {
    rm -f "$DB" "$DB-wal" "$DB-shm"
    study "$tmp/bleed" || return 1
    mode=$(stat -c %a "$DB")
    [ "$mode" = 600 ] || { why "database mode is $mode, expected 600"; return 1; }
    [ "$(sql 'PRAGMA journal_mode')" = wal ] || { why "not in WAL mode"; return 1; }
    uid=$("$HEMOSCAN" --model "$MODEL" --db "$DB" --study --json "$tmp/bleed" | jq -r .study_uid)
    n=$(sql "SELECT count(*) FROM current_verdicts WHERE study_uid = '$uid' AND verdict = 'hemorrhage'")
    [ "$n" = 1 ] || { why "expected one current hemorrhage verdict, got $n"; return 1; }
    n=$(sql "SELECT count(*) FROM verdicts")
    [ "$n" = 2 ] || { why "expected two verdicts kept (one superseded), got $n"; return 1; }
    n=$(sql "SELECT count(*) FROM runs WHERE finished_at IS NOT NULL AND exit_status = 0")
    [ "$n" = 2 ] || { why "expected two finished runs, got $n"; return 1; }
    n=$(sql "SELECT count(*) FROM slices WHERE probability IS NOT NULL")
    [ "$n" = 32 ] || { why "expected 2 x 16 scored slices, got $n"; return 1; }
    sum=$(sha256sum "$MODEL" | cut -d' ' -f1)
    n=$(sql "SELECT count(*) FROM runs WHERE model_sha256 = '$sum'")
    [ "$n" = 2 ] || { why "runs do not carry the model checksum"; return 1; }
}

test_database_not_assessable() {
    rm -f "$DB" "$DB-wal" "$DB-shm"
    study "$tmp/short"
    n=$(sql "SELECT count(*) FROM verdicts WHERE verdict = 'not_assessable' AND reason LIKE '%only 4 slices%'")
    [ "$n" = 1 ] || { why "not-assessable verdict not recorded with its reason"; return 1; }
    study "$tmp/no-such-folder"
    n=$(sql "SELECT count(*) FROM failures WHERE message LIKE '%no-such-folder%'")
    [ "$n" = 1 ] || { why "failure not recorded"; return 1; }
}

test_default_database() {
    # no --db: $HEMOSCAN_DB, else under XDG_STATE_HOME, created private
    HOME=$tmp/home XDG_STATE_HOME=$tmp/state run "$HEMOSCAN" --model "$MODEL" --study "$tmp/short"
    [ -f "$tmp/state/hemoscan/audit.db" ] || { why "no database under XDG_STATE_HOME"; return 1; }
    [ "$(stat -c %a "$tmp/state/hemoscan")" = 700 ] || { why "state folder not private"; return 1; }
    HEMOSCAN_DB=$tmp/env.db run "$HEMOSCAN" --model "$MODEL" --study "$tmp/short"
    [ -f "$tmp/env.db" ] || { why "HEMOSCAN_DB not used"; return 1; }
}

# What --export writes is exactly what the model scores: each PNG, scored by
# --predict, gives the slice's probability from --study.
test_export_matches_study() {
    run "$HEMOSCAN" --model "$MODEL" --export "$tmp/bleed" --out "$tmp/png" || return 1
    set -- "$tmp"/png/*/
    [ $# -eq 1 ] || { why "expected one series folder, got $#"; return 1; }
    series=$1
    [ "$(ls "$series" | grep -c '\.png$')" -eq 16 ] || { why "expected 16 PNGs"; return 1; }
    [ "$(wc -l <"$series/index.csv")" -eq 17 ] || { why "index.csv should have a header and 16 rows"; return 1; }
    study --json "$tmp/bleed" || return 1
    cp "$tmp/out" "$tmp/study.json"
    run "$HEMOSCAN" --model "$MODEL" --predict --json "$series/0008.png" "$series/0003.png" || return 1
    for pair in "0008.png 7" "0003.png 2"; do
        set -- $pair
        want=$(jq ".series[0].slice_probabilities[$2]" "$tmp/study.json")
        got=$(jq ".images[] | select(.file | endswith(\"$1\")) | .score" "$tmp/out")
        # the exported picture is 8-bit: a gray level is 80/255 HU, which
        # moves a score by about 0.001 (0.0013 on 0003.png, 2026-12-07)
        ok=$(jq -n "($want - $got) | fabs < 0.005")
        [ "$ok" = true ] || { why "$1: --predict $got, --study $want"; return 1; }
    done
}

test_enhanced() {
    # Databases of their own: the two are copies of one study, and a study
    # is read with every file of it known from before.
    run "$HEMOSCAN" --model "$MODEL" --db "$tmp/single.db" --study --json "$tmp/bleed" || return 1
    cp "$tmp/out" "$tmp/single.json"
    saved_db=$DB
    DB=$tmp/enhanced.db
    test_enhanced_in_own_db
    rc=$?
    DB=$saved_db
    return $rc
}

test_enhanced_in_own_db() {
    study --json "$tmp/enhanced" || { why "Enhanced CT: expected exit 0"; return 1; }
    cp "$tmp/out" "$tmp/enhanced.json"
    # same verdict, key slice and slice scores as the single-frame files
    for f in .verdict .key_slice.index; do
        [ "$(jq "$f" "$tmp/single.json")" = "$(jq "$f" "$tmp/enhanced.json")" ] || { why "$f differs"; return 1; }
    done
    jq -e --slurpfile s "$tmp/single.json" '[.series[0].slice_probabilities, $s[0].series[0].slice_probabilities]
        | transpose | all(.[0] - .[1] | fabs < 0.000001)' "$tmp/enhanced.json" >/dev/null ||
        { why "slice probabilities differ"; return 1; }
    jq -e '.key_slice.frame_number >= 1 and .key_slice.frame_number <= 16' "$tmp/enhanced.json" >/dev/null ||
        { why "key_slice.frame_number missing"; return 1; }
    jq -e '.key_slice.frame_number == null' "$tmp/single.json" >/dev/null ||
        { why "single-frame key slice has a frame_number"; return 1; }
    frame=$(jq .key_slice.frame_number "$tmp/enhanced.json")
    study "$tmp/enhanced" || return 1
    grep -q "key slice:.* frame $frame (" "$tmp/out" || { why "summary does not name frame $frame"; return 1; }
    # the database: 16 slices of one file, frames 1..16, NULL for single-frame files
    got=$(sql "SELECT count(*), count(DISTINCT file_path), min(frame_number), max(frame_number)
               FROM slices WHERE file_path LIKE '$tmp/enhanced/%' AND series_id =
               (SELECT max(series_id) FROM slices WHERE file_path LIKE '$tmp/enhanced/%')")
    [ "$got" = "16|1|1|16" ] || { why "slices of the Enhanced CT: $got"; return 1; }
    [ "$(sql "SELECT count(*) FROM slices WHERE file_path LIKE '$tmp/bleed/%' AND frame_number IS NOT NULL")" = 0 ] ||
        { why "single-frame slices have a frame_number"; return 1; }
    # --export: NNNN.png per slice, the frame in index.csv
    run "$HEMOSCAN" --model "$MODEL" --export "$tmp/enhanced" --out "$tmp/png-enh" || return 1
    set -- "$tmp"/png-enh/*/
    [ "$(ls "$1" | grep -c '\.png$')" -eq 16 ] || { why "expected 16 PNGs"; return 1; }
    head -1 "$1/index.csv" | grep -q ',frame_number$' || { why "index.csv has no frame_number column"; return 1; }
    [ "$(tail -n +2 "$1/index.csv" | awk -F, '$NF >= 1 && $NF <= 16' | wc -l)" -eq 16 ] ||
        { why "index.csv rows lack frame numbers"; return 1; }
}

test_export_needs_out() {
    run "$HEMOSCAN" --export "$tmp/bleed"
    [ "$status" -eq 2 ] || { why "expected 2 without --out"; return 1; }
}

# ---- real data: every folder's expected outcome ------------------------------------

test_real_ge_series() {
    study --json "$DATA/headct/ge_hispeed_dual_head_tilt" || { why "expected a verdict (exit 0)"; return 1; }
    jq -e '.series[0].slices == 28 and .series[0].slices_scored == 28 and .verdict != "not_assessable"' \
        "$tmp/out" >/dev/null || { why "expected 28 slices scored and a verdict"; return 1; }
}

# folder, expected exit status, expected reason fragment (for 3 and 4)
expect_folder() {
    study -v "$DATA/$1"
    [ "$status" -eq "$2" ] || { why "$1: exit $status, expected $2"; return 1; }
    grep -q "$3" "$tmp/out" || { why "$1: output lacks '$3'"; return 1; }
}

test_edge_folders() {
    expect_folder edge/mr 3 "NOT ASSESSABLE" || return 1
    expect_folder edge/mr 3 "not_ct" || return 1
    expect_folder edge/other_modality 3 "not_ct" || return 1
    expect_folder edge/no_pixels 3 "no_pixels" || return 1
    expect_folder edge/corrupt 3 "corrupt" || return 1
    # the WG04 copies are all marked SECONDARY (derived): nothing to read
    expect_folder edge/ts_wg04_ct2_head 3 "derived" || return 1
    expect_folder edge/ct_other 4 "NOT ASSESSABLE" || return 1
    expect_folder headct/misc 4 "only 1 slices" || return 1
    expect_folder headct/pydicom_dicomdir_head_16px 4 "only 4 slices" || return 1
    # the whole edge tree: every file accounted for, nothing crashes
    study --json "$DATA/edge"
    [ "$status" -eq 4 ] || { why "edge: exit $status, expected 4"; return 1; }
    total=$(find "$DATA/edge" -type f ! -name '.*' | wc -l)
    # several studies, each read on its own, every file in exactly one of them
    grep -q "holds [0-9]* studies; each is read" "$tmp/err" || { why "edge: several studies not said"; return 1; }
    jq -se "length > 1 and (map(.files_found) | add) == $total and
            (map(.files_skipped + ([.series[].slices] | add // 0)) | add) == $total" \
        "$tmp/out" >/dev/null || { why "edge: files found/skipped/used do not add up to $total"; return 1; }
}

# A 30 mm bleed whose rescale makes HU meaningless (hemoscan issue 20, case
# 5): every slice is refused with the value named, the study is not
# assessable (exit 4), never "no hemorrhage found".
test_meaningless_hu() {
    "$GEN" --out "$tmp/hu/signed" --size 256 --slices 16 --thickness 5 --seed 8 --jobs 1 -q \
        --bleed iph:25,-15,10,30 || return 1
    "$GEN" --out "$tmp/hu/unsigned" --size 256 --slices 16 --thickness 5 --seed 8 --jobs 1 -q \
        --bleed iph:25,-15,10,30 --storage unsigned || return 1
    study "$tmp/hu/signed" || { why "the unedited study: exit $status"; return 1; }
    grep -q "HEMORRHAGE SUSPECTED" "$tmp/out" || { why "the unedited study is not read as a bleed"; return 1; }
    for edit in "signed|-m (0028,1052)=NaN|RescaleIntercept is not a finite number" \
        "signed|-m (0028,1053)=-1|RescaleSlope -1: Hounsfield units would be meaningless" \
        "signed|-m (0028,1053)=1e30|RescaleSlope 1e+30: Hounsfield units would be meaningless" \
        "signed|-m (0028,1053)=1e-3|RescaleSlope 0.001 (RescaleIntercept 0): signed 16-bit" \
        "signed|-m (0028,1052)=-3000|with RescaleIntercept -3000 and RescaleSlope 1, Hounsfield units" \
        "unsigned|-e (0028,1052)|RescaleIntercept missing with unsigned 12-bit storage"; do
        src=${edit%%|*}
        rest=${edit#*|}
        change=${rest%%|*}
        reason=${rest#*|}
        rm -rf "$tmp/hu/edited"
        cp -r "$tmp/hu/$src" "$tmp/hu/edited" || return 1
        # $change is an option and its argument: split on purpose
        dcmodify -nb -q $change "$tmp"/hu/edited/*.dcm || { why "dcmodify $change failed"; return 1; }
        # a database of its own: one that knows the unedited copy's files
        # reads the study with them (a study is read whole)
        rm -f "$tmp/hu/edited.db"*
        run "$HEMOSCAN" --model "$MODEL" --db "$tmp/hu/edited.db" --study "$tmp/hu/edited"
        [ "$status" -eq 4 ] || { why "$change: exit $status, expected 4 (not assessable)"; return 1; }
        grep -q "verdict: *NOT ASSESSABLE" "$tmp/out" || { why "$change: not 'not assessable'"; return 1; }
        ! grep -qi "no hemorrhage" "$tmp/out" || { why "$change: says no hemorrhage"; return 1; }
        [ "$(grep "not scored: IM[0-9]*\.dcm: " "$tmp/out" | grep -cF "$reason")" -eq 16 ] ||
            { why "$change: the 16 slices are not all refused with '$reason'"; return 1; }
    done
}

test_review() {
    study --json --no-tta --review "$tmp/review" "$tmp/bleed" || { why "expected exit 0"; return 1; }
    f=$(jq -r .review_file "$tmp/out")
    [ -f "$f" ] || { why "review_file $f does not exist"; return 1; }
    case $f in "$tmp/review/"*.tif) ;; *) why "review file $f not in the --review folder"; return 1 ;; esac
    [ "$(sql "SELECT r.path || '|' || r.sha256 FROM review_files AS r JOIN current_verdicts AS v
              USING (verdict_id) ORDER BY review_file_id DESC LIMIT 1")" = "$f|$(sha256sum "$f" | cut -d' ' -f1)" ] ||
        { why "review_files row does not match the file"; return 1; }
    if command -v tiffinfo >/dev/null 2>&1; then
        tiffinfo "$f" 2>/dev/null | grep -q "PageName: contact sheet" || { why "no contact sheet page"; return 1; }
    fi
    # an unwritable folder (a file in the way): error naming it, verdict still recorded, exit 1
    : >"$tmp/blocker"
    before=$(sql "SELECT count(*) FROM verdicts")
    study --no-tta --review "$tmp/blocker/sub" "$tmp/bleed"
    [ "$status" -eq 1 ] || { why "expected exit 1 for an unwritable review folder, got $status"; return 1; }
    grep -q "review.*$tmp/blocker" "$tmp/err" || { why "the error does not name the folder"; return 1; }
    grep -q "HEMORRHAGE SUSPECTED" "$tmp/out" || { why "no verdict printed"; return 1; }
    [ "$(sql "SELECT count(*) FROM verdicts")" -eq $((before + 1)) ] || { why "verdict not recorded"; return 1; }
    # --review needs --study
    run "$HEMOSCAN" --review "$tmp/review" --predict x.png
    [ "$status" -eq 2 ] || { why "--review without --study: expected exit 2"; return 1; }
}

# --review-dicom: the key picture as a Secondary Capture of the same patient
# and study, in a series of its own, referring to the key slice; recorded
# with the TIFF; storescp takes it; a study folder it lands in is read as
# before (the capture is skipped, not scored).
test_review_dicom() {
    study --json --no-tta --review "$tmp/review-sc" --review-dicom "$tmp/bleed" || { why "expected exit 0"; return 1; }
    d=$(jq -r .review_dicom.path "$tmp/out")
    [ -f "$d" ] || { why "review_dicom.path $d does not exist"; return 1; }
    [ "$d" = "$(jq -r .review_file "$tmp/out" | sed 's/\.tif$/.dcm/')" ] || { why "the capture is not named after the TIFF"; return 1; }
    key_sop=$(jq -r .key_slice.sop_instance_uid "$tmp/out")
    key_file=$(jq -r .key_slice.file "$tmp/out")
    verdict=$(jq -r .verdict "$tmp/out")
    dcmdump -q -Un "$d" >"$tmp/sc.txt" 2>&1 || { why "dcmdump cannot read it: $(head -3 "$tmp/sc.txt")"; return 1; }
    dcmdump -q -Un "$key_file" >"$tmp/key.txt" 2>&1 || { why "dcmdump cannot read the key slice"; return 1; }
    # value of the first element named $2 in dump $1
    value() {
        awk -v n="$2" '$NF == n { s = $0; i = index(s, "["); v = "";
            if (i) { s = substr(s, i + 1); v = substr(s, 1, index(s, "]") - 1) }
            print v; exit }' "$1"
    }
    [ "$(value "$tmp/sc.txt" SOPClassUID)" = 1.2.840.10008.5.1.4.1.1.7 ] || { why "not Secondary Capture: $(value "$tmp/sc.txt" SOPClassUID)"; return 1; }
    [ "$(value "$tmp/sc.txt" MediaStorageSOPClassUID)" = 1.2.840.10008.5.1.4.1.1.7 ] || { why "meta header SOP class wrong"; return 1; }
    for t in StudyInstanceUID PatientID PatientName StudyDate AccessionNumber; do
        [ "$(value "$tmp/sc.txt" $t)" = "$(value "$tmp/key.txt" $t)" ] || { why "$t not copied from the key slice"; return 1; }
    done
    [ "$(value "$tmp/sc.txt" StudyInstanceUID)" = "$(jq -r .study_uid "$tmp/out")" ] || { why "another study"; return 1; }
    [ -n "$(value "$tmp/sc.txt" SeriesInstanceUID)" ] &&
        [ "$(value "$tmp/sc.txt" SeriesInstanceUID)" != "$(value "$tmp/key.txt" SeriesInstanceUID)" ] ||
        { why "not a series of its own"; return 1; }
    grep -q "NOT FOR DIAGNOSTIC USE.*SeriesDescription" "$tmp/sc.txt" || { why "SeriesDescription does not warn"; return 1; }
    [ "$(value "$tmp/sc.txt" Modality)" = OT ] || { why "Modality is not OT"; return 1; }
    [ "$(grep -c "\[$key_sop\].*ReferencedSOPInstanceUID" "$tmp/sc.txt")" -eq 2 ] ||
        { why "Source/ReferencedImageSequence do not name the key slice $key_sop"; return 1; }
    for t in Rows Columns; do
        [ "$(grep "# .* $t\$" "$tmp/sc.txt" | awk '{print $3}')" = "$(grep "# .* $t\$" "$tmp/key.txt" | awk '{print $3}')" ] ||
            { why "$t differ from the key slice"; return 1; }
    done
    [ "$(value "$tmp/sc.txt" PhotometricInterpretation)" = RGB ] || { why "not RGB"; return 1; }
    [ "$(sql "SELECT dicom_sop_uid || '|' || dicom_sha256 || '|' || dicom_path FROM review_files
              ORDER BY review_file_id DESC LIMIT 1")" = "$(value "$tmp/sc.txt" SOPInstanceUID)|$(sha256sum "$d" | cut -d' ' -f1)|$d" ] ||
        { why "review_files does not record the capture"; return 1; }
    # PACS takes it: storescp on a free port
    rm -rf "$tmp/pacs"
    mkdir -p "$tmp/pacs"
    start_storescp "$tmp/scp.log" --output-directory "$tmp/pacs" --aetitle PACS ||
        { why "storescp did not start: $(cat "$tmp/scp.log")"; return 1; }
    storescu --aetitle HEMOSCAN --call PACS 127.0.0.1 "$port" "$d" >"$tmp/scu.log" 2>&1
    rc=$?
    kill $spid
    wait $spid 2>/dev/null
    [ $rc -eq 0 ] || { why "storescu failed: $(cat "$tmp/scu.log")"; return 1; }
    [ "$(find "$tmp/pacs" -type f | wc -l)" -eq 1 ] || { why "storescp stored nothing"; return 1; }
    # back in the study folder: skipped, the verdict unchanged
    rm -rf "$tmp/bleed-sc"
    cp -r "$tmp/bleed" "$tmp/bleed-sc" && cp "$d" "$tmp/bleed-sc/" || return 1
    # (a database of its own: this database knows the files in $tmp/bleed)
    run "$HEMOSCAN" --model "$MODEL" --db "$tmp/sc.db" --study --json --no-tta "$tmp/bleed-sc" ||
        { why "the study with its capture: exit $status"; return 1; }
    [ "$(jq -r .verdict "$tmp/out")" = "$verdict" ] && [ "$(jq -r .files_skipped "$tmp/out")" = 1 ] ||
        { why "the capture changed the reading: $(jq -c '{verdict, files_skipped}' "$tmp/out")"; return 1; }
    # --review-dicom needs --review
    run "$HEMOSCAN" --study --review-dicom "$tmp/bleed"
    [ "$status" -eq 2 ] || { why "--review-dicom without --review: expected exit 2"; return 1; }
}

# -q: a positive still makes exactly one line (issue 20, case 8), naming
# the study, its score and its verdict id; the command's own output does
# not reach stdout.
test_quiet_positive() {
    study -q "$tmp/bleed" || { why "expected exit 0"; return 1; }
    [ "$(wc -l <"$tmp/out")" -eq 1 ] || { why "expected exactly one line on stdout"; return 1; }
    id=$(sql "SELECT max(verdict_id) FROM verdicts")
    uid=$(sql "SELECT study_uid FROM current_verdicts WHERE verdict_id = $id")
    acc=$(sql "SELECT accession FROM current_verdicts WHERE verdict_id = $id")
    grep -Eq "^HEMORRHAGE SUSPECTED: accession $acc, study $uid, folder $tmp/bleed: study score 0\.[0-9]{3} \(threshold 0\.[0-9]{3}\), verdict id $id\$" "$tmp/out" ||
        { why "the line does not name accession $acc, study $uid, the folder, score, verdict id $id"; return 1; }
    # a study without a verdict either way stays silent with -q
    study -q "$tmp/short"
    [ "$status" -eq 4 ] && [ ! -s "$tmp/out" ] || { why "-q printed a not-assessable study"; return 1; }
}

# --on-positive: the command gets the study in its environment, after the
# verdict is recorded, stdin /dev/null, its output on stderr; each run
# recorded in notifications.
test_on_positive_env() {
    rm -rf "$tmp/rev-np"
    study -q --review "$tmp/rev-np" --on-positive \
        "env >'$tmp/env.txt'; readlink /proc/\$\$/fd/0 >'$tmp/stdin.txt'; echo from-the-command; sqlite3 -readonly \"\$HEMOSCAN_DB\" \"SELECT verdict FROM verdicts WHERE verdict_id = \$HEMOSCAN_VERDICT_ID\" >'$tmp/seen.txt'" \
        "$tmp/bleed" || { why "expected exit 0"; return 1; }
    [ "$(wc -l <"$tmp/out")" -eq 1 ] || { why "the command's output reached stdout"; return 1; }
    grep -q from-the-command "$tmp/err" || { why "the command's output is not on stderr"; return 1; }
    [ "$(cat "$tmp/stdin.txt")" = /dev/null ] || { why "stdin was $(cat "$tmp/stdin.txt")"; return 1; }
    [ "$(cat "$tmp/seen.txt")" = hemorrhage ] || { why "the verdict was not recorded before the command ran"; return 1; }
    id=$(sql "SELECT max(verdict_id) FROM verdicts")
    row=$(sql "SELECT study_uid || '|' || ifnull(accession, '') || '|' || ifnull(patient_id, '') || '|' || key_slice_instance || '|' || key_slice_sop_instance_uid FROM current_verdicts WHERE verdict_id = $id")
    review=$(sql "SELECT path FROM review_files WHERE verdict_id = $id")
    for want in "HEMOSCAN_VERDICT=hemorrhage" "HEMOSCAN_VERDICT_ID=$id" "HEMOSCAN_DB=$DB" \
        "HEMOSCAN_STUDY_DIR=$tmp/bleed" "HEMOSCAN_STUDY_UID=$(echo "$row" | cut -d'|' -f1)" \
        "HEMOSCAN_ACCESSION=$(echo "$row" | cut -d'|' -f2)" "HEMOSCAN_PATIENT_ID=$(echo "$row" | cut -d'|' -f3)" \
        "HEMOSCAN_KEY_INSTANCE=$(echo "$row" | cut -d'|' -f4)" "HEMOSCAN_KEY_SOP_UID=$(echo "$row" | cut -d'|' -f5)" \
        "HEMOSCAN_REVIEW_FILE=$review"; do
        grep -qxF "$want" "$tmp/env.txt" || { why "the environment lacks $want"; return 1; }
    done
    p=$(sed -n 's/^HEMOSCAN_STUDY_PROBABILITY=//p' "$tmp/env.txt")
    t=$(sed -n 's/^HEMOSCAN_THRESHOLD=//p' "$tmp/env.txt")
    [ "$(sql "SELECT abs(probability - $p) < 1e-5 AND abs(threshold - $t) < 1e-5 FROM verdicts WHERE verdict_id = $id")" = 1 ] ||
        { why "probability $p or threshold $t is not the verdict's"; return 1; }
    [ "$(sql "SELECT outcome, exit_status, message IS NULL, finished_at >= started_at FROM notifications WHERE verdict_id = $id")" = "ok|0|1|1" ] ||
        { why "notification not recorded as ok: $(sql "SELECT * FROM notifications")"; return 1; }
    # a negative study runs nothing
    : >"$tmp/ran.txt"
    study -q --on-positive "echo ran >>'$tmp/ran.txt'" "$tmp/short"
    [ ! -s "$tmp/ran.txt" ] || { why "the command ran for a study that is not positive"; return 1; }
}

# A hostile AccessionNumber (a command substitution and a newline) stays a
# string: in the environment with the newline made '?', never run.
test_on_positive_hostile() {
    rm -rf "$tmp/hostile" "$tmp/cwd"
    cp -r "$tmp/bleed" "$tmp/hostile" && mkdir "$tmp/cwd" || return 1
    dcmodify -nb -m "(0008,0050)=;\$(touch x)
y" "$tmp/hostile"/* >/dev/null 2>&1 || { why "dcmodify failed"; return 1; }
    hs=$(cd "$(dirname "$HEMOSCAN")" && pwd)/$(basename "$HEMOSCAN")
    model=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")
    (cd "$tmp/cwd" && "$hs" --model "$model" --db "$DB" --study -q \
        --on-positive "env >'$tmp/env-h.txt'; echo \"\$HEMOSCAN_ACCESSION\" >'$tmp/acc.txt'" \
        "$tmp/hostile" </dev/null >"$tmp/out" 2>"$tmp/err")
    status=$?
    [ "$status" -eq 0 ] || { why "expected exit 0"; return 1; }
    [ ! -e "$tmp/cwd/x" ] || { why "the accession number was run as a command"; return 1; }
    grep -qxF 'HEMOSCAN_ACCESSION=;$(touch x)?y' "$tmp/env-h.txt" || { why "accession not passed, cleaned: $(grep ACCESSION "$tmp/env-h.txt")"; return 1; }
    [ "$(wc -l <"$tmp/out")" -eq 1 ] && grep -qF 'accession ;$(touch x)?y,' "$tmp/out" ||
        { why "the -q line is not one cleaned line"; return 1; }
}

# A failing command (exit 3, a timeout, a missing program) is recorded
# and reported; the verdict stands, the exit status says the run failed.
test_on_positive_failures() {
    for c in "exit 3|exit_status|3" "sleep 30|timeout|" "/nonexistent/notify-me|exit_status|127"; do
        cmd=${c%%|*}
        rest=${c#*|}
        HEMOSCAN_ON_POSITIVE_TIMEOUT_S=1 study -q --on-positive "$cmd" "$tmp/bleed"
        [ "$status" -eq 1 ] || { why "$cmd: expected exit 1, got $status"; return 1; }
        [ "$(wc -l <"$tmp/out")" -eq 1 ] && grep -q "^HEMORRHAGE SUSPECTED" "$tmp/out" ||
            { why "$cmd: the positive line is missing"; return 1; }
        id=$(sql "SELECT max(verdict_id) FROM verdicts")
        [ "$(sql "SELECT verdict FROM current_verdicts WHERE verdict_id = $id")" = hemorrhage ] ||
            { why "$cmd: the verdict does not stand"; return 1; }
        [ "$(sql "SELECT outcome || '|' || ifnull(exit_status, '') FROM notifications WHERE verdict_id = $id AND command = '$cmd'")" = "$rest" ] ||
            { why "$cmd: recorded as $(sql "SELECT * FROM notifications WHERE verdict_id = $id")"; return 1; }
        grep -q "hemoscan: --on-positive for study .*verdict id $id, which stands" "$tmp/err" ||
            { why "$cmd: no message on stderr"; return 1; }
    done
    [ "$(sql "SELECT exit_status FROM runs ORDER BY run_id DESC LIMIT 1")" = 1 ] ||
        { why "the run is not marked failed"; return 1; }
    run "$HEMOSCAN" --on-positive true --predict x.png
    [ "$status" -eq 2 ] || { why "--on-positive without --study or --watch: expected exit 2"; return 1; }
}

check "--study --json: verdict, keys, key slice, model checksum" test_json_verdict
check "--study -q: a positive prints one line naming it" test_quiet_positive
check "--study --on-positive: the study in the environment, recorded" test_on_positive_env
check "--study --on-positive: a hostile accession number stays a string" test_on_positive_hostile
check "--study --on-positive: exit 3, timeout, missing program recorded; verdict stands" test_on_positive_failures
check "--study --review: TIFF named in JSON, recorded with its checksum; unwritable folder" test_review
if command -v dcmdump >/dev/null 2>&1 && command -v storescp >/dev/null 2>&1 && command -v storescu >/dev/null 2>&1; then
    check "--study --review-dicom: a Secondary Capture PACS accepts, in the same study, pointing at the key slice" test_review_dicom
else
    skip "--review-dicom" "DCMTK's dcmdump, storescp and storescu are missing (apt-get install dcmtk)"
fi
check "--study: readable summary with the warning" test_text_summary
check "--study: exit statuses 0/1/2/3/4" test_exit_statuses
check "--study: run, study, slices and verdicts in the database" test_database_record
check "--study: not assessable and failures recorded" test_database_not_assessable
check "--study: default database path, private" test_default_database
check "--export: PNGs score like the study's slices" test_export_matches_study
check "--export needs --out" test_export_needs_out
check "--study and --export: Enhanced CT reads as its single-frame series" test_enhanced
if command -v dcmodify >/dev/null 2>&1; then
    check "--study: NaN, negative, huge or tiny rescale, intercept -3000 or missing: not assessable" test_meaningless_hu
else
    skip "meaningless rescale" "DCMTK's dcmodify is missing (apt-get install dcmtk)"
fi
if [ -d "$DATA/headct/ge_hispeed_dual_head_tilt" ] && [ -d "$DATA/edge" ]; then
    check "real GE head series read whole" test_real_ge_series
    check "edge-case folders: expected outcome each" test_edge_folders
else
    skip "real GE head series" "no $DATA (../shared/data absent)"
    skip "edge-case folders" "no $DATA (../shared/data absent)"
fi
finish
