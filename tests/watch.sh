#!/bin/sh
# watch.sh - tests of `hemoscan --watch` end to end (POSIX sh): the cron
# form, exactly once (and a study that gains instances), the stable age
# (files still arriving, files moved in with an old mtime, a study copied
# in slowly under --follow), --done / --delete / --quarantine moves, also
# across file systems, the lock, --follow with SIGTERM, the storescp
# hand-off, a database locked by another process, a full disk, a
# read-only drop folder and unreadable files, review pictures, usage
# errors, a study the watcher died reading.
#
# Run by `make check`. Needs jq and the sqlite3 shell; the storescp test
# needs DCMTK's storescp/storescu, the permission tests root and setpriv,
# the full-disk tests root and a mountable tmpfs: each skips with the
# reason when its tool is missing. Waits are polls with a generous limit,
# never a fixed sleep that a slow machine could miss; the stable age is
# 1 to 3 s where a test needs one at all.

set -u

. "$(dirname "$0")/lib.sh"

study_tools watch.sh

DB=$tmp/audit.db
# watch ARGS...: a watch run with the test model and database, one thread.
watch() {
    run "$HEMOSCAN" --model "$MODEL" --db "$DB" --threads 1 --watch "$@"
}
sql() {
    "$SQLITE3" -readonly "$DB" "$1"
}
fresh_db() {
    DB=$tmp/$1.db
    rm -f "$DB" "$DB-wal" "$DB-shm" "$DB.watch-lock"
}
# gen DIR SEED [OPTIONS...]: a small study (256 x 256: the default model learnt the generator's heads at that size, 14 slices of 5 mm).
gen() {
    out=$1
    seed=$2
    shift 2
    "$GEN" --out "$out" --size 256 --slices 14 --seed "$seed" --jobs 1 -q "$@"
}
# sums DIR...: the sorted SHA-256 of every file below the folders.
sums() {
    find "$@" -type f -exec sha256sum {} + 2>/dev/null | cut -d' ' -f1 | sort
}
# summary FIELD: a number from the last summary line on stdout.
summary() {
    sed -n 's/.*[ (]\([0-9][0-9]*\) '"$1"'.*/\1/p' "$tmp/out" | tail -1
}
# wait_for SQL WANT: polls the database until SQL gives WANT (60 s at most).
wait_for() {
    i=0
    while [ $i -lt 600 ]; do
        [ "$("$SQLITE3" -readonly "$DB" "$1" 2>/dev/null)" = "$2" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    why "waited 60 s for '$1' to give '$2'; it gives '$("$SQLITE3" -readonly "$DB" "$1" 2>&1)'"
    return 1
}
uid_of() {
    "$GEN" --out "$tmp/uid-probe" --size 16 --slices 1 --seed "$1" --jobs 1 |
        sed 's/.* study \([^ ]*\) .*/\1/'
    rm -rf "$tmp/uid-probe"
}

# The test drop folder: a study with a bleed, a normal one (shuffled names,
# deep), an MR study, junk.
make_drop() {
    d=$1
    rm -rf "$d"
    mkdir -p "$d" || return 1
    gen "$d/bleed study" 31 --bleed iph:25,-15,10,30 --ts jpeg-lossless || return 1
    gen "$d/a/b/c/normal" 32 --shuffle || return 1
    "$GEN" --out "$d/mr" --size 64 --slices 4 --seed 33 --modality MR --jobs 1 -q || return 1
    echo "a report, not DICOM" >"$d/r\303\251sum\303\251 notes.txt"
    : >"$d/empty file"
    mkdir -p "$d/empty folder/deeper"
    echo hidden >"$d/.DS_Store"
}

test_cron_form() {
    fresh_db cron
    make_drop "$tmp/drop" || return 1
    watch "$tmp/drop" --stable-age 0 || { why "expected exit 0"; return 1; }
    grep -q "^hemoscan watch $tmp/drop: 3 studies read (1 hemorrhage, 1 no hemorrhage, 1 not assessable), 0 already read, 0 waiting (not stable), 0 failed, 2 loose files (2 new)" "$tmp/out" ||
        { why "summary line wrong"; return 1; }
    [ "$(grep -c '^study ' "$tmp/out")" -eq 3 ] || { why "expected one line per study"; return 1; }
    grep -q "HEMORRHAGE SUSPECTED.*bleed study" "$tmp/out" || { why "no positive line for the bleed study"; return 1; }
    [ "$(sql "SELECT count(*) FROM current_verdicts")" = 3 ] || { why "expected 3 current verdicts"; return 1; }
    [ "$(sql "SELECT mode, exit_status FROM runs")" = "watch|0" ] || { why "run not recorded as watch, 0"; return 1; }
    [ "$(sql "SELECT studies_read, hemorrhage, no_hemorrhage, not_assessable, loose_files, failed, disposal FROM watch_runs")" = "3|1|1|1|2|0|leave" ] ||
        { why "watch_runs counts wrong: $(sql 'SELECT * FROM watch_runs')"; return 1; }
    [ "$(sql "SELECT group_concat(verdict, ' ') FROM (SELECT verdict FROM loose_files ORDER BY verdict)")" = "not_dicom not_dicom" ] ||
        { why "loose files not recorded with their verdicts"; return 1; }
    # files are left in place by default
    [ "$(find "$tmp/drop" -type f | wc -l)" -eq 35 ] || { why "files were moved or lost"; return 1; }
    # the MR study is read once, by its UID, not every night
    n=$(sql "SELECT count(*) FROM current_verdicts WHERE verdict = 'not_assessable' AND study_uid IS NOT NULL")
    [ "$n" = 1 ] || { why "MR study not recorded under its UID"; return 1; }
}

test_exactly_once() {
    # second run over the same folder: nothing read again, loose files not re-recorded
    watch "$tmp/drop" --stable-age 0 || return 1
    grep -q ": 0 studies read .*, 3 already read, .* 2 loose files (0 new)" "$tmp/out" ||
        { why "second run read something again"; return 1; }
    [ "$(sql "SELECT count(*) FROM verdicts")" = 3 ] || { why "verdicts added by the second run"; return 1; }
    [ "$(sql "SELECT count(*) FROM loose_files")" = 2 ] || { why "loose files recorded twice"; return 1; }
    # the study gains instances (a second series): read again, old verdict superseded, kept
    uid=$(sql "SELECT study_uid FROM current_verdicts WHERE study_dir LIKE '%normal'")
    "$GEN" --out "$tmp/drop/late" --size 256 --slices 16 --seed 34 --study-uid "$uid" --series-number 4 --jobs 1 -q || return 1
    watch "$tmp/drop" --stable-age 0 || return 1
    grep -q ": 1 studies read .*, 2 already read" "$tmp/out" || { why "the grown study was not read again"; return 1; }
    [ "$(sql "SELECT count(*) FROM verdicts v JOIN studies s USING (study_id) WHERE s.study_uid = '$uid'")" = 2 ] ||
        { why "expected the old and the new verdict"; return 1; }
    [ "$(sql "SELECT count(*) FROM verdicts v JOIN studies s USING (study_id) WHERE s.study_uid = '$uid' AND superseded_by IS NOT NULL")" = 1 ] ||
        { why "the old verdict is not superseded"; return 1; }
    [ "$(sql "SELECT count(*) FROM series se JOIN readings r USING (reading_id) JOIN verdicts v USING (reading_id) WHERE v.superseded_by IS NULL AND r.study_id = (SELECT study_id FROM studies WHERE study_uid = '$uid')")" = 2 ] ||
        { why "the new reading does not hold both series"; return 1; }
    # --study on a folder already read by the watcher shares the check: same key
    [ "$(sql "SELECT count(*) FROM (SELECT study_id FROM verdicts WHERE superseded_by IS NULL GROUP BY study_id HAVING count(*) > 1)")" = 0 ] ||
        { why "a study has two current verdicts"; return 1; }
}

test_stable_age() {
    fresh_db stable
    rm -rf "$tmp/sdrop"
    gen "$tmp/sdrop/new" 41 || return 1
    watch "$tmp/sdrop" --stable-age 3 || return 1
    [ "$(summary 'waiting')" = 1 ] && [ "$(summary 'studies read')" = 0 ] ||
        { why "a study written just now was read before it was stable"; return 1; }
    [ "$(sql "SELECT count(*) FROM verdicts")" = 0 ] || { why "a verdict was recorded early"; return 1; }
    # moved in with an old mtime: the status change time still says "new"
    gen "$tmp/elsewhere" 42 || return 1
    touch -d '2020-01-01 00:00' "$tmp"/elsewhere/*
    sleep 3.2
    mv "$tmp/elsewhere" "$tmp/sdrop/moved"
    watch "$tmp/sdrop" --stable-age 3 || return 1
    [ "$(summary 'studies read')" = 1 ] && [ "$(summary 'waiting')" = 1 ] ||
        { why "expected the first study read and the moved-in one waiting"; return 1; }
    sleep 3.2
    watch "$tmp/sdrop" --stable-age 3 || return 1
    [ "$(summary 'studies read')" = 1 ] && [ "$(summary 'waiting')" = 0 ] ||
        { why "the moved-in study was not read once stable"; return 1; }
    [ "$(sql "SELECT count(*) FROM verdicts")" = 2 ] || { why "expected 2 verdicts"; return 1; }
}

test_done_moves() {
    fresh_db done
    make_drop "$tmp/mdrop" || return 1
    before=$(sums "$tmp/mdrop" | sha256sum)
    n_before=$(find "$tmp/mdrop" -type f ! -name '.*' | wc -l)
    watch "$tmp/mdrop" --stable-age 0 --done "$tmp/done" || return 1
    [ "$(summary 'files moved to done')" = 32 ] || { why "expected 32 study files moved"; return 1; }
    # the junk stays (no --quarantine), the studies went, nothing lost
    [ "$(sums "$tmp/mdrop" "$tmp/done" | sha256sum)" = "$before" ] || { why "files lost or changed by the move"; return 1; }
    [ -f "$tmp/done/bleed study/IM0001.dcm" ] && [ -d "$tmp/done/a/b/c/normal" ] || { why "relative paths not kept in done"; return 1; }
    [ ! -e "$tmp/mdrop/bleed study" ] && [ ! -e "$tmp/mdrop/a" ] || { why "emptied study folders not removed"; return 1; }
    [ -d "$tmp/mdrop/empty folder/deeper" ] || { why "an empty folder that was not ours was removed"; return 1; }
    [ "$(sql "SELECT count(*) FROM watch_files WHERE state = 'finished' AND action = 'done'")" = 32 ] ||
        { why "moves not journaled as finished"; return 1; }
    # the study gains an instance after its files went to done: read whole
    uid=$(sql "SELECT study_uid FROM current_verdicts WHERE study_dir LIKE '%bleed study'")
    "$GEN" --out "$tmp/mdrop/late" --size 64 --slices 1 --seed 35 --study-uid "$uid" --localizer --jobs 1 -q || return 1
    "$GEN" --out "$tmp/mdrop/late2" --size 256 --slices 16 --seed 36 --study-uid "$uid" --series-number 6 --jobs 1 -q || return 1
    watch "$tmp/mdrop" --stable-age 0 --done "$tmp/done" || return 1
    [ "$(summary 'studies read')" = 1 ] || { why "the grown study was not read"; return 1; }
    [ "$(sql "SELECT files FROM current_verdicts JOIN readings USING (reading_id) WHERE study_uid = '$uid'")" = 32 ] ||
        { why "the grown study was not read with its files from done (14 + 2 + 16)"; return 1; }
    [ "$(sql "SELECT count(*) FROM series WHERE reading_id = (SELECT reading_id FROM current_verdicts WHERE study_uid = '$uid')")" = 3 ] ||
        { why "the new reading does not hold the series from done and the two new ones"; return 1; }
    n_after=$(find "$tmp/mdrop" "$tmp/done" -type f ! -name '.*' | wc -l)
    [ "$n_after" -eq $((n_before + 18)) ] || { why "file count $n_after, expected $((n_before + 18))"; return 1; }
}

# across file systems: /dev/shm when it is another file system, and the
# test hook that copies as if it were
test_done_across_fs() {
    for how in hook shm; do
        fresh_db "xfs-$how"
        make_drop "$tmp/xdrop" || return 1
        before=$(sums "$tmp/xdrop" | sha256sum)
        if [ $how = shm ]; then
            [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$tmp")" ] || continue
            target=$(mktemp -d /dev/shm/hemoscan-done.XXXXXX) || continue
            watch "$tmp/xdrop" --stable-age 0 --done "$target"
        else
            target=$tmp/xdone
            HEMOSCAN_TEST_FORCE_COPY=1 watch "$tmp/xdrop" --stable-age 0 --done "$target"
        fi
        [ "$status" -eq 0 ] || { why "$how: exit $status"; [ $how = shm ] && rm -rf "$target"; return 1; }
        after=$(sums "$tmp/xdrop" "$target" | sha256sum)
        parts=$(find "$target" -name '*.hemoscan-part' | wc -l)
        moved=$(find "$target" -type f | wc -l)
        [ $how = shm ] && rm -rf "$target"
        [ "$after" = "$before" ] || { why "$how: files lost or changed"; return 1; }
        [ "$parts" -eq 0 ] || { why "$how: part files left"; return 1; }
        [ "$moved" -eq 32 ] || { why "$how: $moved files in done, expected 32"; return 1; }
    done
}

test_delete_and_quarantine() {
    fresh_db delete
    make_drop "$tmp/ddrop" || return 1
    watch "$tmp/ddrop" --stable-age 0 --delete --quarantine "$tmp/quar" || return 1
    [ "$(summary 'files deleted')" = 32 ] && [ "$(summary 'files quarantined')" = 2 ] ||
        { why "expected 32 deleted and 2 quarantined"; return 1; }
    [ "$(find "$tmp/ddrop" -type f ! -name '.*' | wc -l)" -eq 0 ] || { why "files left in the drop folder"; return 1; }
    f="$tmp/quar/r\303\251sum\303\251 notes.txt"
    [ -f "$f" ] && grep -q '^not_dicom' "$f.reason.txt" || { why "quarantined file or its reason missing"; return 1; }
    grep -q "was: $tmp/ddrop/" "$f.reason.txt" || { why "reason does not say where the file was"; return 1; }
    [ "$(sql "SELECT count(*) FROM current_verdicts")" = 3 ] || { why "verdicts missing"; return 1; }
    watch "$tmp/ddrop" --stable-age 0 --delete --quarantine "$tmp/quar" || return 1
    [ "$(summary 'studies read')" = 0 ] || { why "second run read something"; return 1; }
}

# A study in whose reading the watcher dies (a library's failed assert;
# HEMOSCAN_TEST_CRASH_STUDY makes hemoscan abort() there) is not read again
# while its files are unchanged: the next run records the crash, fails the
# study (stage 'crash') and reads the others; changed files are tried
# again; with --quarantine the study goes to quarantine with the reason.
# A file whose header read kills the listing (HEMOSCAN_TEST_CRASH_FILE)
# becomes a quarantined loose file, unread, and the rest is read. The run
# that finds a crash counts it as failed and exits 1.
# crash_run UID [OPTIONS...]: a watch run that dies reading study UID.
crash_run() {
    crash_uid=$1
    shift
    # an inner shell, so that its "Aborted" goes to the test's err file
    sh -c 'ulimit -c 0; HEMOSCAN_TEST_CRASH_STUDY=$0 "$@"; exit $?' "$crash_uid" \
        "$HEMOSCAN" --model "$MODEL" --db "$DB" --threads 1 --watch "$tmp/cdrop" --stable-age 0 "$@" \
        </dev/null >"$tmp/out" 2>"$tmp/err"
    status=$?
    [ $status -eq 134 ] || { why "the crashing run exited $status, not 134 (SIGABRT)"; return 1; }
    [ -s "$DB.watch-crash" ] || { why "the dying watcher left no crash note"; return 1; }
}
test_crash() {
    fresh_db crash
    rm -f "$DB.watch-crash"
    rm -rf "$tmp/cdrop" "$tmp/cquar"
    gen "$tmp/cdrop/crashing" 81 || return 1
    gen "$tmp/cdrop/fine" 82 || return 1
    uid=$(uid_of 81)
    crash_run "$uid" || return 1
    watch "$tmp/cdrop" --stable-age 0
    [ "$status" -eq 1 ] && [ "$(summary failed)" = 2 ] ||
        { why "the run after the crash: exit $status (not 1), $(summary failed) failed (not 2: the crash, the study)"; return 1; }
    grep -q "$uid (.*crashing): hemoscan (run 1) died of SIGABRT while reading this study" "$tmp/err" ||
        { why "the crash is not reported"; return 1; }
    grep -q "$uid (.*crashing): hemoscan died of SIGABRT reading these 14 files in run 1" "$tmp/err" ||
        { why "the study is not failed for the crash"; return 1; }
    [ "$(sql "SELECT crashed_run_id, recorded_by_run, phase, signal_name, file_count FROM watch_crashes WHERE study_uid = '$uid'")" = "1|2|reading|SIGABRT|14" ] ||
        { why "watch_crashes: $(sql 'SELECT * FROM watch_crashes')"; return 1; }
    [ "$(sql "SELECT count(*) FROM failures WHERE study_uid = '$uid' AND stage = 'crash'")" = 2 ] ||
        { why "expected the crash and the failed study in failures"; return 1; }
    [ "$(sql "SELECT count(*) FROM current_verdicts")" = 1 ] && [ "$(sql "SELECT count(*) FROM current_verdicts WHERE study_uid = '$uid'")" = 0 ] ||
        { why "expected a verdict for the other study only"; return 1; }
    [ ! -s "$DB.watch-crash" ] || { why "the crash note was not emptied once recorded"; return 1; }
    # unchanged: failed again, not read; one crash row still
    watch "$tmp/cdrop" --stable-age 0
    [ "$status" -eq 1 ] && grep -q "not read again until they change" "$tmp/err" ||
        { why "the unchanged study was not failed again ($status)"; return 1; }
    [ "$(sql "SELECT count(*) FROM watch_crashes")" = 1 ] || { why "a crash recorded twice"; return 1; }
    # a file rewritten: read again
    touch "$tmp/cdrop/crashing/IM0003.dcm"
    watch "$tmp/cdrop" --stable-age 0 || { why "the changed study: exit $status"; return 1; }
    [ "$(sql "SELECT count(*) FROM current_verdicts WHERE study_uid = '$uid'")" = 1 ] ||
        { why "the changed study was not read"; return 1; }
    # --quarantine: the study goes there, with the reason beside each file
    gen "$tmp/cdrop/poison" 83 || return 1
    uid=$(uid_of 83)
    crash_run "$uid" --quarantine "$tmp/cquar" || return 1
    watch "$tmp/cdrop" --stable-age 0 --quarantine "$tmp/cquar"
    [ "$status" -eq 1 ] || { why "the quarantining run exited $status, not 1"; return 1; }
    [ "$(find "$tmp/cquar/poison" -name '*.dcm' | wc -l)" -eq 14 ] && [ ! -d "$tmp/cdrop/poison" ] ||
        { why "the crashing study was not quarantined whole"; return 1; }
    grep -q "failed (crash): hemoscan died of SIGABRT reading these 14 files in run" "$tmp/cquar/poison/IM0001.dcm.reason.txt" ||
        { why "the quarantine reason does not name the crash"; return 1; }
    # a file whose header crashes the listing (HEMOSCAN_TEST_CRASH_FILE):
    # the next run reads everything else and quarantines that file unread
    gen "$tmp/cdrop/late" 84 || return 1
    echo "a file no reader survives" >"$tmp/cdrop/late/bad.dcm"
    sh -c 'ulimit -c 0; HEMOSCAN_TEST_CRASH_FILE=bad.dcm "$@"; exit $?' sh \
        "$HEMOSCAN" --model "$MODEL" --db "$DB" --threads 1 --watch "$tmp/cdrop" --stable-age 0 \
        </dev/null >"$tmp/out" 2>"$tmp/err"
    status=$?
    [ $status -eq 134 ] && [ -s "$DB.watch-crash" ] || { why "the listing crash: exit $status, or no note"; return 1; }
    watch "$tmp/cdrop" --stable-age 0 --quarantine "$tmp/cquar"
    [ "$status" -eq 1 ] && [ "$(summary failed)" = 1 ] ||
        { why "the run after the listing crash: exit $status (not 1), $(summary failed) failed (not 1)"; return 1; }
    grep -q "late/bad.dcm: hemoscan (run [0-9]*) died of SIGABRT while listing the drop folder, reading this file's header" "$tmp/err" ||
        { why "the listing crash is not reported"; return 1; }
    [ "$(sql "SELECT phase, file_count, file_bytes FROM watch_crashes WHERE file_path LIKE '%/late/bad.dcm'")" = "listing|1|26" ] ||
        { why "watch_crashes: $(sql 'SELECT * FROM watch_crashes')"; return 1; }
    [ "$(sql "SELECT verdict FROM loose_files WHERE file_path LIKE '%/late/bad.dcm'")" = crashed_reader ] ||
        { why "the file is not a loose crashed_reader"; return 1; }
    [ -f "$tmp/cquar/late/bad.dcm" ] && grep -q "^crashed_reader: hemoscan died of SIGABRT reading its header" "$tmp/cquar/late/bad.dcm.reason.txt" ||
        { why "the file is not quarantined with its reason"; return 1; }
    [ "$(sql "SELECT count(*) FROM current_verdicts WHERE study_uid = '$(uid_of 84)'")" = 1 ] ||
        { why "the study beside the file was not read"; return 1; }
}

test_usage() {
    run "$HEMOSCAN" --watch "$tmp/drop" --done "$tmp/x" --delete
    [ "$status" -eq 2 ] || { why "--done with --delete: expected 2"; return 1; }
    run "$HEMOSCAN" --follow --study "$tmp/drop"
    [ "$status" -eq 2 ] || { why "--follow without --watch: expected 2"; return 1; }
    run "$HEMOSCAN" --watch "$tmp/drop" --stable-age -1
    [ "$status" -eq 2 ] || { why "negative stable age: expected 2"; return 1; }
    run "$HEMOSCAN" --watch "$tmp/no-such-drop" --db "$tmp/u.db"
    [ "$status" -eq 1 ] && grep -q "no-such-drop" "$tmp/err" || { why "missing drop folder: expected 1 naming it"; return 1; }
    run "$HEMOSCAN" --watch "$tmp/drop" --db "$tmp/u.db" --done "$tmp/drop"
    [ "$status" -eq 1 ] && grep -q "drop folder itself" "$tmp/err" || { why "--done = drop folder accepted"; return 1; }
    "$HEMOSCAN" --help | grep -q -- "--stable-age" || { why "--help does not list the watch options"; return 1; }
}

# --review: one TIFF per study that has a decisive series, linked to its
# verdict; none again for a study read already; a review folder that
# cannot be written fails the run (exit 1) but every verdict stands, and
# each failure is recorded with stage 'review'.
test_watch_review() {
    fresh_db review
    make_drop "$tmp/rdrop" || return 1
    rm -rf "$tmp/rv"
    watch "$tmp/rdrop" --stable-age 0 --no-tta --review "$tmp/rv" || { why "expected exit 0"; return 1; }
    [ "$(find "$tmp/rv" -name '*.tif' | wc -l)" -eq 2 ] ||
        { why "expected 2 review files (the MR study has nothing to show): $(ls "$tmp/rv")"; return 1; }
    [ "$(grep -c "^study .*, review $tmp/rv/.*\.tif)\$" "$tmp/out")" -eq 2 ] ||
        { why "the study lines do not name the review files"; return 1; }
    sql "SELECT r.path || ' ' || r.sha256 FROM review_files AS r JOIN current_verdicts USING (verdict_id)" |
        while read -r f sha; do
            [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$sha" ] || { echo "checksum of $f differs"; exit 1; }
        done >"$tmp/review-check" || { why "$(cat "$tmp/review-check")"; return 1; }
    [ "$(sql "SELECT count(*) FROM review_files")" = 2 ] || { why "expected 2 review_files rows"; return 1; }
    watch "$tmp/rdrop" --stable-age 0 --no-tta --review "$tmp/rv" || return 1
    [ "$(find "$tmp/rv" -name '*.tif' | wc -l)" -eq 2 ] || { why "a study read already got new pictures"; return 1; }

    # a review folder inside the drop folder is not read as loose files
    fresh_db review-inside
    watch "$tmp/rdrop" --stable-age 0 --no-tta --review "$tmp/rdrop/pictures" || return 1
    [ "$(find "$tmp/rdrop/pictures" -name '*.tif' | wc -l)" -eq 2 ] || { why "no pictures inside the drop folder"; return 1; }
    watch "$tmp/rdrop" --stable-age 0 --no-tta --review "$tmp/rdrop/pictures" || return 1
    grep -q ", 2 loose files (0 new)" "$tmp/out" || { why "the pictures were taken for loose files: $(tail -1 "$tmp/out")"; return 1; }
    rm -rf "$tmp/rdrop/pictures"

    # a review folder that cannot be made: the run stops before reading
    # anything (the studies wait in the drop folder for a fixed setting)
    fresh_db review-bad
    : >"$tmp/rv-blocker"
    watch "$tmp/rdrop" --stable-age 0 --no-tta --review "$tmp/rv-blocker/sub"
    [ "$status" -eq 1 ] || { why "unwritable review folder: expected exit 1, got $status"; return 1; }
    grep -q "review.*$tmp/rv-blocker" "$tmp/err" || { why "the error does not name the folder: $(cat "$tmp/err")"; return 1; }
    [ ! -f "$DB" ] || [ "$(sql "SELECT count(*) FROM verdicts")" = 0 ] || { why "studies were read without their pictures"; return 1; }
}

# --review on a full file system: each study's review fails and is
# recorded with stage 'review', every verdict stands, the run exits 1, no
# temporary file is left.
test_watch_review_full() {
    small=$tmp/small-review
    mkdir -p "$small"
    mount -t tmpfs -o size=8k tmpfs "$small" || { why "cannot mount a tmpfs"; return 1; }
    fresh_db review-full
    make_drop "$tmp/fdrop" || { umount "$small"; return 1; }
    watch "$tmp/fdrop" --stable-age 0 --no-tta --review "$small"
    rc=$status
    left=$(find "$small" -type f | wc -l)
    umount "$small"
    [ $rc -eq 1 ] || { why "full review folder: expected exit 1, got $rc"; return 1; }
    [ "$left" -eq 0 ] || { why "$left files left in the full review folder"; return 1; }
    grep -q "review.*No space left on device" "$tmp/err" || { why "no clear error: $(cat "$tmp/err")"; return 1; }
    [ "$(sql "SELECT count(*) FROM current_verdicts")" = 3 ] || { why "a failed review cost a verdict"; return 1; }
    [ "$(sql "SELECT count(*) FROM failures WHERE stage = 'review'")" = 2 ] ||
        { why "review failures not recorded: $(sql 'SELECT stage, message FROM failures')"; return 1; }
    [ "$(sql "SELECT count(*) FROM review_files")" = 0 ] || { why "a review_files row for a file not written"; return 1; }
}

# --follow: reacts to new studies (in new folders too), a second watcher is
# refused with the holder's pid, SIGTERM ends it cleanly.
test_follow_and_lock() {
    fresh_db follow
    rm -rf "$tmp/fdrop"
    mkdir -p "$tmp/fdrop"
    "$HEMOSCAN" --model "$MODEL" --db "$DB" --threads 1 --watch "$tmp/fdrop" --follow \
        --stable-age 1 --done "$tmp/fdone" >"$tmp/follow.out" 2>"$tmp/follow.err" </dev/null &
    pid=$!
    wait_for "SELECT count(*) FROM runs WHERE mode = 'watch'" 1 || { kill $pid; return 1; }
    gen "$tmp/fdrop/one" 51 || { kill $pid; return 1; }
    wait_for "SELECT count(*) FROM current_verdicts" 1 || { kill $pid; return 1; }
    gen "$tmp/fdrop/new/nested/two" 52 --bleed iph:25,-15,10,30 || { kill $pid; return 1; }
    wait_for "SELECT count(*) FROM current_verdicts" 2 || { kill $pid; return 1; }
    wait_for "SELECT count(*) FROM watch_files WHERE state = 'finished'" 28 || { kill $pid; return 1; }
    # a second watcher on the same database
    watch "$tmp/fdrop" --stable-age 0
    [ "$status" -eq 5 ] || { kill $pid; why "second watcher: expected exit 5, got $status"; return 1; }
    grep -q "another hemoscan --watch (pid $pid) is processing $tmp/fdrop since" "$tmp/err" ||
        { kill $pid; why "second watcher's message does not name the first"; return 1; }
    # ... and another database on the same drop folder
    run "$HEMOSCAN" --model "$MODEL" --db "$tmp/other.db" --watch "$tmp/fdrop" --stable-age 0
    [ "$status" -eq 5 ] || { kill $pid; why "second watcher with another database: expected 5"; return 1; }
    kill -TERM $pid
    wait $pid
    rc=$?
    [ $rc -eq 0 ] || { why "--follow ended with $rc after SIGTERM"; cat "$tmp/follow.err" >>"$tmp/why"; return 1; }
    grep -q "^hemoscan watch $tmp/fdrop: 2 studies read (1 hemorrhage, 1 no hemorrhage, 0 not assessable)" "$tmp/follow.out" ||
        { why "no final summary: $(tail -1 "$tmp/follow.out")"; return 1; }
    [ "$(sql "SELECT exit_status FROM runs WHERE mode = 'watch'")" = 0 ] || { why "run not ended cleanly"; return 1; }
    [ "$(sql "SELECT passes > 1 FROM watch_runs")" = 1 ] || { why "only one pass"; return 1; }
    [ ! -s "$tmp/follow.err" ] || { why "errors: $(head -3 "$tmp/follow.err")"; return 1; }
}

# A study copied in slowly (a file every 0.4 s, stable age 2 s) under
# --follow is read once, whole.
test_slow_copy() {
    fresh_db slow
    rm -rf "$tmp/slowdrop" "$tmp/slowsrc"
    mkdir -p "$tmp/slowdrop"
    gen "$tmp/slowsrc" 61 --slices 16 || return 1
    "$HEMOSCAN" --model "$MODEL" --db "$DB" --threads 1 --watch "$tmp/slowdrop" --follow \
        --stable-age 2 >"$tmp/slow.out" 2>"$tmp/slow.err" </dev/null &
    pid=$!
    mkdir "$tmp/slowdrop/s"
    for f in "$tmp"/slowsrc/*; do
        cp "$f" "$tmp/slowdrop/s/"
        sleep 0.4
    done
    wait_for "SELECT count(*) FROM verdicts" 1 || { kill $pid; return 1; }
    sleep 2.5 # a second (wrong) reading would come within a stable age
    kill -TERM $pid
    wait $pid
    [ "$(sql "SELECT count(*) FROM readings")" = 1 ] || { why "the study was read more than once (early)"; return 1; }
    [ "$(sql "SELECT slice_count FROM series")" = 16 ] || { why "the study was read before all 16 files were there"; return 1; }
}

# storescp's hand-off, as README documents it: storescp sorts each study
# into a folder and runs hemoscan --study on it at the end of the study;
# the watcher, run over the same folder afterwards, finds it read already.
test_storescp() {
    fresh_db storescp
    rm -rf "$tmp/scp" "$tmp/send"
    mkdir -p "$tmp/scp"
    gen "$tmp/send" 71 --bleed iph:25,-15,10,30 || return 1
    start_storescp "$tmp/scp.log" --output-directory "$tmp/scp" --sort-conc-studies study --eostudy-timeout 1 \
        --exec-on-eostudy "$HEMOSCAN --model $MODEL --db $DB --threads 1 --study #p" --aetitle HEMOSCAN ||
        { why "storescp did not start: $(cat "$tmp/scp.log")"; return 1; }
    storescu --aetitle TEST --call HEMOSCAN 127.0.0.1 "$port" "$tmp"/send/*.dcm >"$tmp/scu.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] || { kill $spid; why "storescu failed: $(cat "$tmp/scu.log")"; return 1; }
    wait_for "SELECT verdict FROM current_verdicts" hemorrhage || { kill $spid; cat "$tmp/scp.log" >>"$tmp/why"; return 1; }
    kill $spid
    wait $spid 2>/dev/null
    [ "$(find "$tmp/scp" -type f | wc -l)" -eq 14 ] || { why "storescp did not store 14 files"; return 1; }
    watch "$tmp/scp" --stable-age 0 || return 1
    [ "$(summary 'already read')" = 1 ] && [ "$(summary 'studies read')" = 0 ] ||
        { why "the watcher did not recognise the study storescp's hand-off read"; return 1; }
}

# Another process holds the database's write lock: a clear message, exit 1,
# nothing moved; once it lets go, the next run reads everything.
test_db_locked() {
    fresh_db locked
    make_drop "$tmp/ldrop" || return 1
    watch "$tmp/ldrop" --stable-age 3600 # creates the database; every study waits
    [ "$(summary 'waiting')" = 3 ] || { why "setup: expected 3 waiting studies"; return 1; }
    { echo "BEGIN EXCLUSIVE; INSERT INTO runs (started_at, host, hemoscan_version) VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'x', 'y');"
      sleep 3
      echo "ROLLBACK;"; } | "$SQLITE3" "$DB" &
    holder=$!
    sleep 0.5
    before=$(sums "$tmp/ldrop" | sha256sum)
    HEMOSCAN_BUSY_TIMEOUT_MS=200 watch "$tmp/ldrop" --stable-age 0 --done "$tmp/ldone"
    rc=$status
    wait $holder
    [ $rc -eq 1 ] || { why "expected exit 1 with the database locked, got $rc"; return 1; }
    grep -q "locked" "$tmp/err" && grep -q "$DB" "$tmp/err" || { why "message does not say the database is locked"; return 1; }
    [ "$(sums "$tmp/ldrop" | sha256sum)" = "$before" ] && [ ! -e "$tmp/ldone/bleed study" ] ||
        { why "files moved although nothing could be recorded"; return 1; }
    watch "$tmp/ldrop" --stable-age 0 --done "$tmp/ldone" || { why "run after the lock went: exit $status"; return 1; }
    [ "$(summary 'studies read')" = 3 ] || { why "studies not read after the lock went"; return 1; }
}

# Full disk for the database (RLIMIT_FSIZE: writes fail with EFBIG).
test_db_full_ulimit() {
    fresh_db full
    rm -rf "$tmp/fulldone"
    make_drop "$tmp/fdb" || return 1
    before=$(sums "$tmp/fdb" | sha256sum)
    ( trap '' XFSZ; ulimit -f 16; exec "$HEMOSCAN" --model "$MODEL" --db "$DB" --threads 1 \
        --watch "$tmp/fdb" --stable-age 0 --done "$tmp/fulldone" ) </dev/null >"$tmp/out" 2>"$tmp/err"
    status=$?
    [ $status -eq 1 ] || { why "expected exit 1 on a full disk, got $status"; return 1; }
    grep -q "audit database.*$DB" "$tmp/err" || { why "message does not name the database"; return 1; }
    [ "$(sums "$tmp/fdb" "$tmp/fulldone" | sha256sum)" = "$before" ] || { why "files lost"; return 1; }
    [ ! -e "$tmp/fulldone/bleed study" ] || { why "a study moved without being recorded"; return 1; }
    watch "$tmp/fdb" --stable-age 0 --done "$tmp/fulldone" || { why "run with room: exit $status"; return 1; }
    [ "$(summary 'studies read')" = 3 ] || { why "not every study read afterwards"; return 1; }
    [ "$(sql 'PRAGMA integrity_check')" = ok ] || { why "database damaged"; return 1; }
}

# Full disk for the database and for the done folder: small tmpfs mounts.
# The done folder fills up mid-study: the moves stay journaled, the files
# stay where they are, and once there is room the next run finishes them.
test_full_tmpfs() {
    small=$tmp/small
    mkdir -p "$small"
    mount -t tmpfs -o size=160k tmpfs "$small" || { why "cannot mount a tmpfs"; return 1; }
    fresh_db tfull
    make_drop "$tmp/tdrop" || { umount "$small"; return 1; }
    before=$(sums "$tmp/tdrop" | sha256sum)
    watch "$tmp/tdrop" --stable-age 0 --done "$small/done"
    rc=$status
    pending=$(sql "SELECT count(*) FROM watch_files WHERE state = 'pending'")
    mid=$(sums "$tmp/tdrop" "$small/done" | sha256sum)
    parts=$(find "$small" -name '*.hemoscan-part' | wc -l)
    mount -o remount,size=20m "$small"
    watch "$tmp/tdrop" --stable-age 0 --done "$small/done"
    rc2=$status
    after=$(sums "$tmp/tdrop" "$small/done" | sha256sum)
    inside=$(find "$small/done" -type f | wc -l)
    umount "$small"
    [ $rc -eq 1 ] || { why "full done folder: expected exit 1, got $rc"; return 1; }
    grep -q "No space left on device" "$tmp/err" 2>/dev/null || true
    [ "$pending" -gt 0 ] || { why "no move left pending on a full done folder"; return 1; }
    [ "$mid" = "$before" ] || { why "files lost while the done folder was full"; return 1; }
    [ "$parts" -eq 0 ] || { why "a part file was left behind"; return 1; }
    [ $rc2 -eq 0 ] || { why "run with room: exit $rc2"; return 1; }
    [ "$after" = "$before" ] && [ "$inside" -eq 32 ] || { why "pending moves not finished ($inside files in done)"; return 1; }
    [ "$(sql "SELECT count(*) FROM watch_files WHERE state = 'pending'")" = 0 ] || { why "journal not finished"; return 1; }
    [ "$(sql "SELECT count(*) FROM current_verdicts")" = 3 ] || { why "expected 3 verdicts"; return 1; }
}

# As user nobody (root ignores permissions): a drop folder nobody may not
# write to, and a file nobody may not read. Clear messages, nothing lost.
test_permissions() {
    base=$tmp/perm
    mkdir -p "$base/db" "$base/drop"
    chmod 755 "$tmp" "$base"
    chown nobody "$base/db"
    make_drop "$base/drop" || return 1
    chmod -R a+rX "$base/drop"
    chmod 600 "$base/drop/a/b/c/normal/"* # unreadable for nobody
    before=$(sums "$base/drop" | sha256sum)
    setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/nonexistent \
        "$HEMOSCAN" --model "$MODEL" --db "$base/db/audit.db" --threads 1 --watch "$base/drop" \
        --stable-age 0 --done "$base/db/done" </dev/null >"$tmp/out" 2>"$tmp/err"
    status=$?
    [ $status -eq 1 ] || { why "expected exit 1, got $status"; return 1; }
    grep -q "Permission denied" "$tmp/err" || { why "no permission message"; return 1; }
    grep -q "normal" "$tmp/err" || { why "the unreadable files are not named"; return 1; }
    [ "$(sums "$base/drop" "$base/db/done" | sha256sum)" = "$before" ] || { why "files lost"; return 1; }
    DB=$base/db/audit.db
    [ "$(sql "SELECT count(*) FROM verdicts v JOIN readings r USING (reading_id) WHERE r.study_dir LIKE '%normal%'")" = 0 ] ||
        { why "the unreadable study got a verdict"; return 1; }
    [ "$(sql "SELECT count(*) FROM watch_files WHERE state = 'pending'")" -gt 0 ] ||
        { why "the refused moves are not kept pending"; return 1; }
}

# start_sink OUT SECONDS: tests/syslog_sink at /dev/log in the background
# (pid in spid), writing to OUT; waits until the socket is there.
start_sink() {
    "${HEMOSCAN_BUILDDIR:-.}/tests/syslog_sink" /dev/log "$1" "$2" &
    spid=$!
    i=0
    while [ ! -S /dev/log ] && [ $i -lt 200 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    [ -S /dev/log ] || { kill $spid 2>/dev/null; why "the syslog stand-in did not start"; return 1; }
}

# --syslog: the summary line reaches syslog (facility daemon, priority info
# for a run without failures, ident hemoscan). CI machines run no syslog
# daemon, so tests/syslog_sink stands in for it at /dev/log.
test_syslog() {
    fresh_db syslog
    make_drop "$tmp/sdrop" || return 1
    : >"$tmp/syslog.txt"
    start_sink "$tmp/syslog.txt" 120 || return 1
    watch "$tmp/sdrop" --stable-age 0 --syslog
    rc=$status
    # the sink ends by itself on the summary line; give it 3 s, no more
    i=0
    while kill -0 $spid 2>/dev/null && [ $i -lt 60 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    kill $spid 2>/dev/null
    wait $spid
    sink=$?
    rm -f /dev/log
    [ $rc -eq 0 ] || { why "expected exit 0, got $rc"; return 1; }
    [ $sink -eq 0 ] || { why "the summary line never reached syslog: $(cat "$tmp/syslog.txt")"; return 1; }
    grep -q "^<30>.*hemoscan\[[0-9]*\]: hemoscan watch $tmp/sdrop: 3 studies read" "$tmp/syslog.txt" ||
        { why "syslog got: $(cat "$tmp/syslog.txt")"; return 1; }
    # a positive goes above the summary and errors: LOG_CRIT (daemon: <26>)
    grep -q "^<26>.*hemoscan\[[0-9]*\]: HEMORRHAGE SUSPECTED: accession .*, folder $tmp/sdrop/bleed study: study score" "$tmp/syslog.txt" ||
        { why "no positive at LOG_CRIT: $(cat "$tmp/syslog.txt")"; return 1; }
    [ "$(grep -c '^<26>' "$tmp/syslog.txt")" -eq 1 ] || { why "expected one LOG_CRIT line"; return 1; }
}

# --study --syslog (the storescp hand-off's form): the positive at
# LOG_CRIT, a failed --on-positive at LOG_ERR.
test_study_syslog() {
    fresh_db ssyslog
    [ -d "$tmp/sdrop/bleed study" ] || make_drop "$tmp/sdrop" || return 1
    : >"$tmp/syslog2.txt"
    start_sink "$tmp/syslog2.txt" 60 || return 1
    run "$HEMOSCAN" --model "$MODEL" --db "$DB" --threads 1 --study -q --syslog --on-positive "exit 3" \
        "$tmp/sdrop/bleed study"
    rc=$status
    i=0
    while [ "$(grep -c '^<2[67]>' "$tmp/syslog2.txt")" -lt 2 ] && [ $i -lt 60 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    { kill $spid && wait $spid; } 2>/dev/null
    rm -f /dev/log
    [ $rc -eq 1 ] || { why "expected exit 1 (the command failed), got $rc"; return 1; }
    grep -q "^<26>.*: HEMORRHAGE SUSPECTED: .*verdict id 1\$" "$tmp/syslog2.txt" ||
        { why "no positive at LOG_CRIT: $(cat "$tmp/syslog2.txt")"; return 1; }
    grep -q "^<27>.*: --on-positive for study .*exited with status 3" "$tmp/syslog2.txt" ||
        { why "the failed command is not at LOG_ERR: $(cat "$tmp/syslog2.txt")"; return 1; }
}

# --watch -q: the positive's one line and nothing else; --on-positive runs
# once, for the bleed study, while its files are still in the drop folder.
test_watch_quiet_positive() {
    fresh_db wquiet
    make_drop "$tmp/qdrop" || return 1
    watch "$tmp/qdrop" --stable-age 0 -q --on-positive \
        "ls \"\$HEMOSCAN_STUDY_DIR\" | wc -l >>'$tmp/wfiles.txt'; echo \"\$HEMOSCAN_VERDICT_ID\" >>'$tmp/wids.txt'" \
        --done "$tmp/qdone" || { why "expected exit 0"; return 1; }
    [ "$(wc -l <"$tmp/out")" -eq 1 ] || { why "expected exactly one line on stdout"; return 1; }
    id=$(sql "SELECT verdict_id FROM current_verdicts WHERE verdict = 'hemorrhage'")
    grep -q "^HEMORRHAGE SUSPECTED: accession .*, study .*, folder $tmp/qdrop/bleed study: study score 0\.[0-9]*.*, verdict id $id\$" "$tmp/out" ||
        { why "the line does not name the bleed study and verdict $id"; return 1; }
    [ "$(cat "$tmp/wids.txt")" = "$id" ] || { why "the command ran for $(cat "$tmp/wids.txt"), expected $id"; return 1; }
    [ "$(cat "$tmp/wfiles.txt")" -eq 14 ] || { why "the study's files were gone when the command ran"; return 1; }
    [ "$(sql "SELECT outcome FROM notifications WHERE verdict_id = $id")" = ok ] || { why "not recorded"; return 1; }
}

# A negative says what was measured and that it does not rule out a bleed;
# never "confidence" (issue 20, case 7). Its stored label is 'low'.
test_negative_words() {
    fresh_db words
    watch "$tmp/drop" --stable-age 0 || return 1
    line=$(grep "no hemorrhage found" "$tmp/out")
    echo "$line" | grep -Eq ": no hemorrhage found: study score 0\.[0-9]{3}, 0\.[0-9]{3} below the threshold 0\.[0-9]{3}; a negative result does not rule out a bleed \(" ||
        { why "the negative line says: $line"; return 1; }
    ! grep -qi "confidence" "$tmp/out" || { why "the word confidence is printed"; return 1; }
    fresh_db words2
    watch "$tmp/drop" --stable-age 0 -v || return 1
    grep -q "^  verdict:    no hemorrhage found: .*; a negative result does not rule out a bleed\$" "$tmp/out" ||
        { why "the -v block does not say it"; return 1; }
    ! grep -qi "confidence" "$tmp/out" || { why "the word confidence is printed"; return 1; }
    fresh_db words3
    watch "$tmp/drop" --stable-age 0 --json || return 1
    jq -s -e '[.[] | select(.verdict == "no_hemorrhage")] | length == 1 and (.[0] | .confidence_label == "low" and .caveat == "a negative result does not rule out a bleed" and (.summary | test("below the threshold")) and .margin < 0)' "$tmp/out" >/dev/null ||
        { why "JSON of the negative: $(grep no_hemorrhage "$tmp/out" | jq -c '{confidence_label, caveat, summary, margin}')"; return 1; }
    [ "$(sql "SELECT confidence_label FROM verdicts WHERE verdict = 'no_hemorrhage'")" = low ] ||
        { why "stored label $(sql "SELECT confidence_label FROM verdicts WHERE verdict = 'no_hemorrhage'")"; return 1; }
}

# Issue 20: two studies whose StudyInstanceUIDs differ only after byte 64
# were one study: the bleed recorded under the other patient, that patient
# without a verdict. Each must get its own verdict, study row and patient.
test_long_study_uids() {
    fresh_db longuid
    d=$tmp/longuid
    rm -rf "$d"
    gen "$d/bleed" 41 --bleed iph:25,-15,10,30 || return 1
    gen "$d/normal" 42 || return 1
    u=1.2.826.0.1.3680043.2.1143.20.1234567890.1234567890.1234567890.1234567890.123456
    dcmodify -nb -q -m "(0020,000d)=${u}1" "$d"/bleed/* || { why "dcmodify failed"; return 1; }
    dcmodify -nb -q -m "(0020,000d)=${u}2" "$d"/normal/* || { why "dcmodify failed"; return 1; }
    pid_bleed=$(dcmdump -q +P 0010,0020 "$(find "$d/bleed" -type f | head -1)" | sed 's/.*\[\(.*\)\].*/\1/')
    pid_normal=$(dcmdump -q +P 0010,0020 "$(find "$d/normal" -type f | head -1)" | sed 's/.*\[\(.*\)\].*/\1/')
    [ -n "$pid_bleed" ] && [ "$pid_bleed" != "$pid_normal" ] || { why "patient IDs '$pid_bleed' '$pid_normal'"; return 1; }
    watch "$d" --stable-age 0 || { why "expected exit 0"; return 1; }
    grep -q ": 2 studies read (1 hemorrhage, 1 no hemorrhage, 0 not assessable)" "$tmp/out" ||
        { why "expected two studies read"; return 1; }
    [ "$(sql "SELECT count(*) FROM studies")" = 2 ] || { why "expected two study rows"; return 1; }
    [ "$(sql "SELECT count(DISTINCT study_uid) FROM current_verdicts WHERE study_uid LIKE '$(printf %.64s "$u")#sha256:%'")" = 2 ] ||
        { why "study keys: $(sql 'SELECT study_uid FROM studies')"; return 1; }
    [ "$(sql "SELECT patient_id FROM current_verdicts WHERE verdict = 'hemorrhage'")" = "$pid_bleed" ] ||
        { why "the bleed is not under its own patient"; return 1; }
    [ "$(sql "SELECT patient_id FROM current_verdicts WHERE verdict = 'no_hemorrhage'")" = "$pid_normal" ] ||
        { why "the other patient has no verdict of its own"; return 1; }
    [ "$(sql "SELECT count(*) FROM readings WHERE note = 'StudyInstanceUID is 81 bytes (DICOM allows 64)'")" = 2 ] ||
        { why "reading notes: $(sql 'SELECT note FROM readings')"; return 1; }
}

check "--watch (cron form): counts, database, files left in place" test_cron_form
check "--watch: exactly once; a study that gains instances supersedes" test_exactly_once
check "--watch: a negative's words never reassure" test_negative_words
check "--watch -q --on-positive: one line, the command once, files still there" test_watch_quiet_positive
check "--watch: --stable-age waits for files still arriving or just moved in" test_stable_age
check "--watch --done: moves keep every file; late instances read with done files" test_done_moves
check "--watch --done across file systems (copy, fsync, rename, unlink)" test_done_across_fs
check "--watch --delete --quarantine" test_delete_and_quarantine
check "--watch: a study the watcher died reading is not read again unchanged" test_crash
check "--watch: usage errors" test_usage
if command -v dcmodify >/dev/null 2>&1 && command -v dcmdump >/dev/null 2>&1; then
    check "--watch: StudyInstanceUIDs differing after byte 64 are two studies" test_long_study_uids
else
    skip "long StudyInstanceUIDs" "DCMTK's dcmodify and dcmdump are missing (apt-get install dcmtk)"
fi
check "--watch --review: pictures per study, linked to verdicts; unwritable folder" test_watch_review
check "--watch --follow: inotify, lock (exit 5), SIGTERM" test_follow_and_lock
check "--watch --follow: a study copied in slowly is read once, whole" test_slow_copy
if command -v storescp >/dev/null 2>&1 && command -v storescu >/dev/null 2>&1; then
    check "storescp --exec-on-eostudy hand-off, then --watch finds it read" test_storescp
else
    skip "storescp hand-off" "DCMTK's storescp/storescu missing (apt-get install dcmtk)"
fi
check "--watch: database locked by another process" test_db_locked
check "--watch: full disk for the database (ulimit -f)" test_db_full_ulimit
mkdir -p "$tmp/probe"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=64k tmpfs "$tmp/probe" 2>/dev/null; then
    umount "$tmp/probe"
    check "--watch: full disk for the done folder (tmpfs)" test_full_tmpfs
    check "--watch --review: a full review folder fails each review, not the verdicts" test_watch_review_full
else
    skip "full done folder" "needs root and permission to mount a small tmpfs"
    skip "full review folder" "needs root and permission to mount a small tmpfs"
fi
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1 && id nobody >/dev/null 2>&1; then
    check "--watch as nobody: read-only drop folder, unreadable files" test_permissions
else
    skip "permissions" "needs root, setpriv and user nobody (root itself ignores permissions)"
fi
if [ "$(id -u)" -eq 0 ] && [ ! -e /dev/log ] && [ -x "${HEMOSCAN_BUILDDIR:-.}/tests/syslog_sink" ]; then
    check "--watch --syslog: the summary line reaches syslog, the positive above it" test_syslog
    check "--study --syslog: the positive at LOG_CRIT, a failed command at LOG_ERR" test_study_syslog
else
    skip "--syslog" "needs root and no /dev/log (a syslog daemon owns it) to stand in for the daemon"
fi
finish
