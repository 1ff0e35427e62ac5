#!/bin/sh
# identity.sh - study identity and verdict safety end to end (POSIX sh),
# the cases of issue 20 that are about what a verdict was read from:
#   - a study delivered in two folders: the second is read with the first
#     (known from the database), and a reading that read less never
#     replaces a fuller positive (outranked, recorded, said);
#   - a corrected copy sent again with the same UIDs is read again (the
#     identity of what was read includes each file's content);
#   - a --study folder holding several studies: each read, said, and the
#     exit status the worst of them;
#   - a file of a study that cannot be read: never "no hemorrhage";
#   - the watcher: a change time in the future, a folder too deep, a path
#     too long: reported, and the first does not keep its study waiting.
#
# Run by `make check`. Needs jq and the sqlite3 shell; the permission case
# needs root, setpriv and user nobody (root itself ignores permissions).

set -u

. "$(dirname "$0")/lib.sh"

study_tools identity.sh

DB=$tmp/audit.db
study() {
    run "$HEMOSCAN" --model "$MODEL" --db "$DB" --threads 1 --study "$@"
}
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
# gen DIR SEED [OPTIONS...]: 256 x 256 (what the default model learnt), 14 slices of 5 mm.
gen() {
    out=$1
    seed=$2
    shift 2
    "$GEN" --out "$out" --size 256 --slices 14 --seed "$seed" --jobs 1 -q "$@"
}
uid_in() {
    jq -r .study_uid "$1"
}
BLEED="iph:25,-15,10,30"

# Case 2: storescp hands a study over in two folders (a second series came
# after --eostudy-timeout). The second folder is read with the first one's
# files; its reading chose the second series, read less than the first
# reading did, and so never replaces that positive.
test_two_parts() {
    fresh_db parts
    gen "$tmp/part1" 31 --bleed "$BLEED" || return 1
    study --json "$tmp/part1" || { why "part 1: exit $status"; return 1; }
    [ "$(jq -r .verdict "$tmp/out")" = hemorrhage ] || { why "part 1 is not positive"; return 1; }
    uid=$(uid_in "$tmp/out")
    gen "$tmp/part2" 41 --study-uid "$uid" --series-number 3 || return 1
    # part 2 is read with part 1's files, every series read: the bleed is seen
    study --json "$tmp/part2" || { why "part 2: exit $status"; return 1; }
    grep -q "read with 14 file(s) of it read before" "$tmp/err" || { why "part 1's files not read with part 2"; return 1; }
    jq -e '.files_found == 28 and .verdict == "hemorrhage" and ([.series[] | select(.verdict)] | length) == 2' \
        "$tmp/out" >/dev/null || { why "part 2 not read whole"; return 1; }
    [ "$(sql "SELECT verdict_id || verdict FROM current_verdicts WHERE study_uid = '$uid'")" = 2hemorrhage ] ||
        { why "the whole reading does not stand"; return 1; }
    # part 1 gone (deleted after reading): part 2 alone read less, and never
    # replaces the positive; it is recorded, outranked, and said so
    rm -r "$tmp/part1"
    study --json "$tmp/part2" || { why "part 2 alone: exit $status"; return 1; }
    [ "$(jq -r .verdict "$tmp/out")" != hemorrhage ] || { why "part 2 alone is positive: nothing to show"; return 1; }
    [ "$(sql "SELECT verdict_id FROM current_verdicts WHERE study_uid = '$uid'")" = 2 ] ||
        { why "part 2 alone replaced the positive"; return 1; }
    [ "$(sql "SELECT outranked_by || ': ' || outranked_reason FROM verdicts WHERE verdict_id = 3")" = \
        "2: read 14 of the 28 instances verdict 2 read" ] || { why "not recorded as outranked"; return 1; }
    grep -q "verdict 3 is not the study's verdict: it read 14 of the 28 instances verdict 2 read; verdict 2 (hemorrhage) stands" \
        "$tmp/err" || { why "the outranked reading is not said"; return 1; }
    # the database keeps an outranked verdict as it is
    ! "$SQLITE3" "$DB" "UPDATE verdicts SET outranked_by = NULL, outranked_reason = NULL
                        WHERE outranked_by IS NOT NULL" 2>/dev/null ||
        { why "an outranked verdict could be changed"; return 1; }
}

# Case 2 under --watch --delete: the first part is read and deleted, the
# second arrives alone; it read less and is outranked, said on stderr; the
# positive stands.
test_watch_parts_deleted() {
    fresh_db delparts
    mkdir -p "$tmp/drop-d" || return 1
    gen "$tmp/drop-d/p1" 31 --bleed "$BLEED" || return 1
    watch "$tmp/drop-d" --stable-age 0 --delete || { why "part 1: exit $status"; return 1; }
    uid=$(sql "SELECT study_uid FROM current_verdicts")
    [ "$(sql "SELECT verdict FROM current_verdicts")" = hemorrhage ] || { why "part 1 not positive"; return 1; }
    gen "$tmp/drop-d/p2" 41 --study-uid "$uid" --series-number 3 || return 1
    watch "$tmp/drop-d" --stable-age 0 --delete || { why "part 2: exit $status"; return 1; }
    [ "$(sql "SELECT verdict_id || verdict FROM current_verdicts")" = 1hemorrhage ] ||
        { why "part 2 alone replaced the positive"; return 1; }
    grep -q "verdict 2 is not the study's verdict: it read 0 of the 14 instances verdict 1 read; verdict 1 (hemorrhage) stands" \
        "$tmp/err" || { why "the outranked reading is not said"; return 1; }
}

# Case 3: the first delivery was wrong (here: a head without the bleed),
# the corrected files come again with the same UIDs. Identity is the UIDs
# and each file's content, so the corrected delivery is read, and the
# newer of two same-size copies is the one read.
test_resend() {
    fresh_db resend
    gen "$tmp/wrong" 61 || return 1
    gen "$tmp/right" 61 --bleed "$BLEED" || return 1
    # the corrected files carry the first delivery's UIDs
    for f in "$tmp/right"/*.dcm; do
        fname=$(basename "$f")
        for tag in 0020,000d 0020,000e 0008,0018; do
            v=$(dcmdump +P "$tag" "$tmp/wrong/$fname" | sed 's/.*\[\(.*\)\].*/\1/')
            dcmodify -nb -m "($tag)=$v" "$f" >/dev/null 2>&1 || { why "dcmodify failed"; return 1; }
        done
    done
    mkdir -p "$tmp/drop-r" && cp -r "$tmp/wrong" "$tmp/drop-r/first" || return 1
    watch "$tmp/drop-r" --stable-age 0 --done "$tmp/done-r" || { why "first delivery: exit $status"; return 1; }
    [ "$(sql "SELECT verdict FROM current_verdicts")" = no_hemorrhage ] || { why "first delivery not negative"; return 1; }
    sleep 1 # the second delivery is newer
    cp -r "$tmp/right" "$tmp/drop-r/again" && touch "$tmp/drop-r/again"/* || return 1
    watch "$tmp/drop-r" --stable-age 0 --done "$tmp/done-r" || { why "second delivery: exit $status"; return 1; }
    [ "$(sql "SELECT count(*) FROM verdicts")" = 2 ] || { why "the corrected delivery was not read"; return 1; }
    [ "$(sql "SELECT verdict FROM current_verdicts")" = hemorrhage ] || { why "the corrected reading does not stand"; return 1; }
    # 14 copies skipped; of those that differ, the older (first delivery's) ones
    dup="FROM skipped_files s JOIN current_verdicts USING (reading_id) WHERE s.verdict = 'duplicate'"
    n=$(sql "SELECT count(*) $dup")
    newer=$(sql "SELECT count(*) $dup AND s.reason LIKE '%it is the newer file)'")
    older=$(sql "SELECT count(*) $dup AND s.reason LIKE '%it is the newer file)' AND s.file_path LIKE '%/done-r/first/%'")
    [ "$n" = 14 ] && [ "$newer" -ge 1 ] && [ "$newer" = "$older" ] ||
        { why "the older copies are not the ones skipped: $n $newer $older"; return 1; }
    # the same files again: read already
    watch "$tmp/drop-r" --stable-age 0 --done "$tmp/done-r" || return 1
    [ "$(sql "SELECT count(*) FROM verdicts")" = 2 ] || { why "read twice"; return 1; }
}

# Case 4: a PACS export holding several studies: every one is read and
# recorded, the user is told, the exit status is the worst.
test_several_studies() {
    fresh_db several
    mkdir -p "$tmp/export" || return 1
    gen "$tmp/export/a" 31 --bleed "$BLEED" || return 1
    gen "$tmp/export/b" 32 || return 1
    "$GEN" --out "$tmp/export/c" --size 256 --slices 3 --seed 33 --jobs 1 -q || return 1
    study --json "$tmp/export"
    [ "$status" -eq 4 ] || { why "expected exit 4 (one study not assessable), got $status"; return 1; }
    grep -q "holds 3 studies; each is read and recorded on its own" "$tmp/err" || { why "not said"; return 1; }
    [ "$(jq -s 'length' "$tmp/out")" = 3 ] || { why "not three readings"; return 1; }
    [ "$(sql "SELECT count(DISTINCT study_uid) || '|' || group_concat(verdict, ',')
              FROM (SELECT * FROM current_verdicts ORDER BY verdict)")" = \
        "3|hemorrhage,no_hemorrhage,not_assessable" ] || { why "verdicts: $(sql "SELECT verdict FROM current_verdicts")"; return 1; }
    [ "$(sql "SELECT count(*) FROM skipped_files WHERE verdict = 'other_study'")" = 0 ] ||
        { why "files skipped as another study"; return 1; }
}

# Case 6: a file of the study cannot be read (a link to nothing; with
# root, a file without read permission): not assessable, never "no
# hemorrhage" from the rest.
test_unreadable_file() {
    fresh_db unreadable
    gen "$tmp/u" 32 || return 1
    study "$tmp/u" || { why "complete: exit $status"; return 1; }
    grep -q "no hemorrhage found" "$tmp/out" || { why "the complete study is not negative"; return 1; }
    ln -s "$tmp/u/gone.dcm" "$tmp/u/IM0099.dcm" || return 1
    study --json "$tmp/u"
    [ "$status" -eq 4 ] || { why "a link to nothing: expected exit 4, got $status"; return 1; }
    jq -e '.verdict == "not_assessable" and (.reason | test("1 file\\(s\\) could not be read .*IM0099"))' \
        "$tmp/out" >/dev/null || { why "not said why"; return 1; }
    rm "$tmp/u/IM0099.dcm"
    if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1 && id nobody >/dev/null 2>&1; then
        chmod 755 "$tmp" && chmod -R a+rX "$tmp/u" && chmod 600 "$tmp/u/IM0007.dcm" || return 1
        mkdir -p "$tmp/nobody" && chown nobody "$tmp/nobody" || return 1
        setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/nonexistent \
            "$HEMOSCAN" --model "$MODEL" --db "$tmp/nobody/a.db" --threads 1 --study --json "$tmp/u" \
            </dev/null >"$tmp/out" 2>"$tmp/err"
        status=$?
    else
        chmod 000 "$tmp/u/IM0007.dcm" || return 1
        study --json "$tmp/u"
    fi
    chmod 644 "$tmp/u/IM0007.dcm"
    [ "$status" -eq 4 ] || { why "no read permission: expected exit 4, got $status"; return 1; }
    jq -e '.verdict == "not_assessable" and (.reason | test("IM0007.dcm: cannot read"))' \
        "$tmp/out" >/dev/null || { why "no read permission: not said why"; return 1; }
}

# Case 6, the watcher: a file changed "in the future" is reported once and
# counts as changed when first seen (kept in the database for the next
# cron run); a folder too deep and a path too long are reported, not
# silently never seen.
test_watch_listing() {
    fresh_db listing
    drop=$tmp/drop-l
    mkdir -p "$drop" || return 1
    gen "$drop/future" 32 || return 1
    touch -d "+1 year" "$drop/future/IM0003.dcm" || return 1
    watch "$drop" --stable-age 2
    [ "$status" -eq 1 ] || { why "a future change time: expected exit 1 (reported), got $status"; return 1; }
    grep -q "IM0003.dcm: its change time (or its folder's) is [0-9]* s in the future; counted as changed when first seen" \
        "$tmp/err" || { why "the future time not reported"; return 1; }
    [ "$(sql "SELECT count(*) FROM watch_future_files")" = 1 ] || { why "not kept"; return 1; }
    sleep 3
    watch "$drop" --stable-age 2 || { why "second run: exit $status"; return 1; }
    ! grep -q "in the future" "$tmp/err" || { why "reported again"; return 1; }
    [ "$(sql "SELECT count(*) FROM current_verdicts")" = 1 ] || { why "the study still waits"; return 1; }
    # 70 folders down, and a path over 4096 bytes
    deep=$drop/deep
    i=0
    while [ $i -lt 70 ]; do deep=$deep/d; i=$((i + 1)); done
    mkdir -p "$deep" && echo x >"$deep/file" || return 1
    mkdir "$drop/long" || return 1
    (cd "$drop/long" && i=0 && while [ $i -lt 22 ]; do
        d=$(printf '%0200d' $i) && mkdir "$d" && cd "$d" || exit 1
        i=$((i + 1))
    done && echo x >file) || { why "cannot make the long path"; return 1; }
    watch "$drop" --stable-age 0
    [ "$status" -eq 1 ] || { why "deep and long: expected exit 1, got $status"; return 1; }
    grep -q "a folder more than 64 folders below the drop folder: not entered" "$tmp/err" ||
        { why "the deep folder is not reported"; return 1; }
    grep -q "a path longer than 4095 bytes (cut here): not read" "$tmp/err" ||
        { why "the long path is not reported"; return 1; }
    [ "$(sql "SELECT count(*) FROM failures WHERE stage = 'list'
              AND (message LIKE '%folders below%' OR message LIKE '%path longer%')")" -ge 2 ] ||
        { why "not recorded"; return 1; }
}

check "two parts of a study: read together; less never replaces a positive" test_two_parts
check "--watch --delete: a part read alone never replaces a positive" test_watch_parts_deleted
check "a corrected re-send with the same UIDs is read again" test_resend
check "--study: a folder with several studies reads each, says so" test_several_studies
check "--study: an unreadable file makes the study not assessable" test_unreadable_file
check "--watch: future change time, too deep, too long: reported" test_watch_listing
finish
