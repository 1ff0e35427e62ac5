#!/bin/sh
# reliability.sh - proof that the watcher loses nothing (POSIX sh), run by
# `make check-reliability` (and .ci/run after make check):
#
#   kill -9   30 generated studies (some with bleeds, some with shuffled
#             names, one split over two folders) in a drop folder;
#             `hemoscan --watch --done` is started again and again and
#             killed with SIGKILL after a seeded random delay (2% to
#             12% of an uninterrupted run, timed first on a copy, so
#             that a fast build is killed as often as a slow one), every
#             other run copying as across file systems
#             (HEMOSCAN_TEST_FORCE_COPY=1, the slow path with part files),
#             until a run finishes by itself. Then: every study has exactly
#             one verdict, current, made from all its instances (no study
#             was ever read twice or from part of its files); no journaled
#             move is left pending; PRAGMA integrity_check is ok; the drop
#             and done folders together hold exactly the files dropped
#             (compared as a multiset of SHA-256), with no part file. It
#             prints how many kills landed in which phase (the -v phase
#             lines: listing, reading, recording, moving, idle).
#   load      200 generated studies plus junk (text and empty files, MR
#             and corrupt files from ../shared/data/dicom/edge when
#             present, empty folders, deep nesting, names with spaces and
#             non-ASCII letters) in one `--watch` run under /usr/bin/time:
#             the summary line's counts and the database must add up to
#             what was dropped; prints studies per minute and peak RSS.
#
# Environment: HEMOSCAN_RELIABILITY_SEED (default 1) seeds the kill
# delays; HEMOSCAN_LOAD_STUDIES (default 200) sizes the load test.

set -u

. "$(dirname "$0")/lib.sh"

study_tools reliability.sh
SEED=${HEMOSCAN_RELIABILITY_SEED:-1}
LOAD=${HEMOSCAN_LOAD_STUDIES:-200}
for tool in awk sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || { echo "reliability.sh: $tool is missing" >&2; exit 99; }
done

sums() {
    find "$@" -type f -exec sha256sum {} + 2>/dev/null | cut -d' ' -f1 | sort
}

test_kill9() {
    drop=$tmp/k/drop
    done_dir=$tmp/k/done
    DB=$tmp/k/audit.db
    mkdir -p "$drop"
    n=30
    i=1
    while [ $i -le $n ]; do
        opts="--size 64 --slices $((12 + i % 5)) --seed $((1000 + i)) --jobs 1 -q"
        [ $((i % 4)) -eq 0 ] && opts="$opts --bleed iph:25,-15,10,30"
        [ $((i % 3)) -eq 0 ] && opts="$opts --shuffle"
        # shellcheck disable=SC2086
        "$GEN" --out "$drop/study $i" $opts || return 1
        i=$((i + 1))
    done
    # one study split over two folders (a second series elsewhere)
    uid=$("$GEN" --out "$tmp/k/probe" --size 16 --slices 1 --seed 1001 --jobs 1 | sed 's/.* study \([^ ]*\) .*/\1/')
    rm -rf "$tmp/k/probe"
    "$GEN" --out "$drop/elsewhere/part two" --size 64 --slices 14 --seed 2001 --study-uid "$uid" \
        --series-number 7 --jobs 1 -q || return 1
    files=$(find "$drop" -type f | wc -l)
    sums "$drop" >"$tmp/k/before"

    # How long one uninterrupted run takes here, on a copy: the kill delays
    # are a fraction of it, so that a faster build or machine is killed as
    # often as a slow one (seeded, 2% to 12% of that time, 20 ms at least).
    cp -R "$drop" "$tmp/k/calibrate"
    t0=$(date +%s.%N)
    "$HEMOSCAN" --model "$MODEL" --db "$tmp/k/calibrate.db" --threads 1 --watch "$tmp/k/calibrate" \
        --done "$tmp/k/calibrate-done" --stable-age 0 </dev/null >/dev/null 2>&1 ||
        { why "the calibration run failed"; return 1; }
    full=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
    rm -rf "$tmp/k/calibrate" "$tmp/k/calibrate-done" "$tmp/k/calibrate.db"*
    awk -v seed="$SEED" -v full="$full" 'BEGIN { srand(seed); for (i = 0; i < 400; i++) {
        d = full * (0.02 + rand() * 0.10); if (d < 0.02) d = 0.02; printf "%.3f\n", d } }' >"$tmp/k/delays"
    kills=0
    runs=0
    : >"$tmp/k/phases"
    finished=0
    for delay in $(cat "$tmp/k/delays"); do
        runs=$((runs + 1))
        copy=$((runs % 2))
        HEMOSCAN_TEST_FORCE_COPY=$copy "$HEMOSCAN" -v --model "$MODEL" --db "$DB" --threads 1 \
            --watch "$drop" --done "$done_dir" --stable-age 0 </dev/null >"$tmp/k/out" 2>"$tmp/k/err" &
        pid=$!
        sleep "$delay"
        if kill -9 $pid 2>/dev/null; then
            wait $pid 2>/dev/null
            kills=$((kills + 1))
            phase=$(sed -n 's/^hemoscan: phase \([a-z]*\) .*/\1/p' "$tmp/k/err" | tail -1)
            echo "${phase:-starting}" >>"$tmp/k/phases"
        else
            wait $pid
            rc=$?
            if [ $rc -ne 0 ]; then
                cp "$tmp/k/err" "$tmp/err"
                why "run $runs (not killed) exited $rc"
                return 1
            fi
            finished=1
            break
        fi
    done
    [ $finished -eq 1 ] || { why "no run finished in $runs tries"; return 1; }
    # one more run: nothing left to do
    "$HEMOSCAN" --model "$MODEL" --db "$DB" --threads 1 --watch "$drop" --done "$done_dir" \
        --stable-age 0 </dev/null >"$tmp/out" 2>"$tmp/err" || { why "the run after the last kill failed"; return 1; }
    grep -q ": 0 studies read" "$tmp/out" || { why "the last run still read something"; return 1; }

    phases=$(sort "$tmp/k/phases" | uniq -c | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')
    echo "kill -9: $kills kills in $runs runs (seed $SEED; an uninterrupted run takes $full s); killed while: $phases"
    [ $kills -ge 5 ] || { why "only $kills kills: the test exercised too little"; return 1; }

    q() { "$SQLITE3" -readonly "$DB" "$1"; }
    [ "$(q 'PRAGMA integrity_check')" = ok ] || { why "integrity_check: $(q 'PRAGMA integrity_check')"; return 1; }
    [ "$(q 'SELECT count(*) FROM pragma_foreign_key_check')" = 0 ] || { why "foreign key violations"; return 1; }
    [ "$(q 'SELECT count(DISTINCT study_uid), count(*) FROM current_verdicts')" = "$n|$n" ] ||
        { why "expected $n studies with one current verdict each: $(q 'SELECT count(DISTINCT study_uid), count(*) FROM current_verdicts')"; return 1; }
    [ "$(q 'SELECT count(*) FROM verdicts')" = $n ] ||
        { why "$(q 'SELECT count(*) FROM verdicts') verdicts for $n studies: a study was read twice"; return 1; }
    [ "$(q 'SELECT sum(files) FROM current_verdicts JOIN readings USING (reading_id)')" = "$files" ] ||
        { why "the verdicts were not made from all $files files"; return 1; }
    [ "$(q "SELECT count(*) FROM watch_files WHERE state = 'pending'")" = 0 ] || { why "moves left pending"; return 1; }
    [ "$(q "SELECT count(*) FROM watch_files")" = "$files" ] || { why "every file should have been moved exactly once"; return 1; }
    [ "$(find "$drop" "$done_dir" -name '*.hemoscan-part' | wc -l)" -eq 0 ] || { why "part files left"; return 1; }
    sums "$drop" "$done_dir" >"$tmp/k/after"
    cmp -s "$tmp/k/before" "$tmp/k/after" || { why "files lost or duplicated: $(diff "$tmp/k/before" "$tmp/k/after" | head -5)"; return 1; }
    [ "$(find "$done_dir" -type f | wc -l)" -eq "$files" ] || { why "not every file reached the done folder"; return 1; }
}

test_load() {
    drop=$tmp/l/drop
    DB=$tmp/l/audit.db
    mkdir -p "$drop"
    i=1
    while [ $i -le "$LOAD" ]; do
        opts="--size 64 --slices $((12 + i % 5)) --seed $((5000 + i)) --jobs 1 -q"
        [ $((i % 7)) -eq 0 ] && opts="$opts --bleed iph:25,-15,10,30"
        [ $((i % 5)) -eq 0 ] && opts="$opts --shuffle"
        case $((i % 4)) in
        0) dir="$drop/study $i" ;;
        1) dir="$drop/deep/a/b/c/d/e/f/g/h/i/j/k/l/study-$i" ;;
        2) dir="$drop/r\303\266ntgen \303\274berweisung/$i" ;;
        3) dir="$drop/flat-$i" ;;
        esac
        # shellcheck disable=SC2086
        "$GEN" --out "$dir" $opts || return 1
        i=$((i + 1))
    done
    # junk without a study
    loose=0
    for junk in "notes.txt" "r\303\251sum\303\251 du jour.pdf" "Thumbs.db" "deep/a/readme" "empty file"; do
        mkdir -p "$(dirname "$drop/$junk")"
        if [ "$junk" = "empty file" ]; then : >"$drop/$junk"; else echo "not DICOM: $junk" >"$drop/$junk"; fi
        loose=$((loose + 1))
    done
    mkdir -p "$drop/empty" "$drop/empty too/x/y/z"
    echo hidden >"$drop/.DS_Store"
    # real junk from the shared edge cases: MR, corrupt, no pixels
    extra_studies=0
    if [ -d "$DATA/edge" ]; then
        mkdir -p "$drop/edge"
        for f in mr/pydicom_MR_small.dcm corrupt/pydicom_MR_truncated.dcm corrupt/pydicom_meta_missing_tsyntax.dcm \
            no_pixels/DICOMDIR no_pixels/pydicom_SR.dcm; do
            [ -f "$DATA/edge/$f" ] && cp "$DATA/edge/$f" "$drop/edge/$(basename "$f")"
        done
        # what the manifest says: files with a StudyInstanceUID form studies
        extra_studies=$(awk -F'\t' 'NR > 1 && ($1 ~ /MR_small.dcm$|MR_truncated|meta_missing|DICOMDIR$|pydicom_SR/) && $7 != "" { print $7 }' \
            "$DATA/MANIFEST.tsv" | sort -u | wc -l)
        no_uid=$(awk -F'\t' 'NR > 1 && ($1 ~ /MR_small.dcm$|MR_truncated|meta_missing|DICOMDIR$|pydicom_SR/) && $7 == "" { n++ } END { print n + 0 }' \
            "$DATA/MANIFEST.tsv")
        loose=$((loose + no_uid))
    else
        echo "load: $DATA/edge absent: no real MR or corrupt files in the junk"
    fi
    files=$(find "$drop" -type f ! -name '.*' | wc -l)
    studies=$((LOAD + extra_studies))

    if [ -x /usr/bin/time ]; then
        /usr/bin/time -v -o "$tmp/l/time" "$HEMOSCAN" --model "$MODEL" --db "$DB" --threads 2 \
            --watch "$drop" --stable-age 0 </dev/null >"$tmp/out" 2>"$tmp/err"
        status=$?
    else
        start=$(date +%s.%N)
        "$HEMOSCAN" --model "$MODEL" --db "$DB" --threads 2 --watch "$drop" --stable-age 0 \
            </dev/null >"$tmp/out" 2>"$tmp/err"
        status=$?
        end=$(date +%s.%N)
        echo "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:$(echo "$end - $start" | bc)" >"$tmp/l/time"
    fi
    [ $status -eq 0 ] || { why "load run exited $status"; return 1; }
    line=$(grep '^hemoscan watch' "$tmp/out")
    echo "$line" | grep -q ": $studies studies read (" || { why "summary: expected $studies studies read: $line"; return 1; }
    echo "$line" | grep -q " 0 waiting (not stable), 0 failed, $loose loose files ($loose new)" ||
        { why "summary: expected 0 waiting, 0 failed, $loose loose files: $line"; return 1; }
    q() { "$SQLITE3" -readonly "$DB" "$1"; }
    [ "$(q 'SELECT count(*) FROM current_verdicts')" = "$studies" ] || { why "database: not $studies verdicts"; return 1; }
    in_db=$(q 'SELECT (SELECT sum(files) FROM readings) + (SELECT count(*) FROM loose_files)')
    [ "$in_db" = "$files" ] || { why "database accounts for $in_db files, $files were dropped"; return 1; }
    [ "$(q 'SELECT studies_read, failed, loose_files FROM watch_runs')" = "$studies|0|$loose" ] ||
        { why "watch_runs: $(q 'SELECT * FROM watch_runs')"; return 1; }
    positives=$(q "SELECT count(*) FROM current_verdicts WHERE verdict = 'hemorrhage'")
    wall=$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$tmp/l/time" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/l/time")
    echo "load: $studies studies ($files files, $loose loose) in ${wall} s:" \
        "$(awk -v s="$studies" -v w="$wall" 'BEGIN { printf "%.0f", s / w * 60 }') studies per minute," \
        "peak RSS ${rss:-?} kB; $positives flagged"
}

check "kill -9 at random moments: every study once, nothing lost" test_kill9
check "load: $LOAD studies and junk, counts add up" test_load
finish
