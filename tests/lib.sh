# lib.sh - the harness shared by the shell tests (sourced, POSIX sh).
#
# Each test is a function; `check NAME FUNCTION` runs it, counts it and on
# failure prints why plus the start of the command's output. `skip NAME
# WHY` counts a test that cannot run here (sample data absent). `finish`
# prints the "N passed, N failed, N skipped" line the test drivers read and
# exits with automake's codes (0 pass, 1 fail, 77 all skipped). Every
# command's stderr is scanned for sanitizer reports, so the sanitizer build
# catches memory errors on the failure paths too.

HEMOSCAN=${HEMOSCAN:-src/hemoscan}
if [ ! -x "$HEMOSCAN" ]; then
    echo "cli.sh: $HEMOSCAN is not an executable; build it first (make)" >&2
    exit 99 # hard error for the automake test driver, not a test failure
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hemoscan-cli.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' 0
trap 'exit 1' 1 2 15

passed=0
failed=0
skipped=0

# run CMD...: runs CMD with no stdin; leaves its stdout in $tmp/out, its
# stderr in $tmp/err and its exit status in $status; returns that status.
run() {
    "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
    status=$?
    return $status
}

# no_sanitizer_report: true unless the last command's stderr has a report
# from AddressSanitizer, LeakSanitizer or UndefinedBehaviorSanitizer.
no_sanitizer_report() {
    ! grep -Eq 'Sanitizer|runtime error:' "$tmp/err"
}

# why MESSAGE: what a failing test reports besides the command's output.
why() {
    echo "$*" >>"$tmp/why"
}

# check NAME FUNCTION: runs FUNCTION (a test), counts and reports it.
check() {
    name=$1
    status=
    : >"$tmp/why"
    if "$2" && { no_sanitizer_report || { why "sanitizer report on stderr"; false; }; }; then
        passed=$((passed + 1))
        echo "PASS: $name"
    else
        failed=$((failed + 1))
        echo "FAIL: $name (last exit status: ${status:-none})"
        sed 's/^/  /' "$tmp/why"
        for f in out err; do
            if [ -s "$tmp/$f" ]; then
                echo "  --- std$f (first 20 lines) ---"
                sed -n '1,20s/^/  /p' "$tmp/$f"
            fi
        done
    fi
}

# start_storescp LOG ARGS...: DCMTK's storescp ARGS PORT in the background
# on a free port (five random tries), output in LOG; sets port and spid.
# Returns 1 when it would not start.
start_storescp() {
    log=$1
    shift
    port=
    for try in 1 2 3 4 5; do
        p=$(( ( $(od -An -N2 -tu2 /dev/urandom) % 20000 ) + 30000 ))
        storescp "$@" "$p" >"$log" 2>&1 &
        spid=$!
        sleep 0.5
        if kill -0 $spid 2>/dev/null; then
            port=$p
            return 0
        fi
    done
    return 1
}

# skip NAME WHY: a test that cannot run here.
skip() {
    skipped=$((skipped + 1))
    echo "SKIP: $1 ($2)"
}

# finish: the closing line and exit status.
finish() {
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ] || exit 1
    [ "$passed" -gt 0 ] || exit 77
    exit 0
}

# study_tools NAME: what the DICOM tests share: GEN (the generator), DATA
# (the shared DICOM samples), MODEL (the default model) and SQLITE3; stops
# the test script (automake's hard error) when jq, the sqlite3 shell or the
# generator is missing. NAME is the script, for the message.
study_tools() {
    GEN=${HEMOSCAN_BUILDDIR:-.}/testdata/gen/hs-gen-ct
    DATA=${HEMOSCAN_SHARED_DATA:-../shared/data}/dicom
    MODEL=${HEMOSCAN_SRCDIR:-.}/models/default.hsm
    SQLITE3=${HEMOSCAN_SQLITE3:-sqlite3}
    for tool in jq "$SQLITE3"; do
        command -v "$tool" >/dev/null 2>&1 || {
            echo "$1: $tool is missing: install the Debian package (scripts/install-deps.sh)" >&2
            exit 99
        }
    done
    [ -x "$GEN" ] || { echo "$1: no generator at $GEN; run make" >&2; exit 99; }
}
