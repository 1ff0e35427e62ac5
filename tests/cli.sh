#!/bin/sh
# cli.sh - tests of the hemoscan command line (POSIX sh).
#
# Run by `make check`, which sets HEMOSCAN (the binary) and HEMOSCAN_VERSION.
# By hand:  HEMOSCAN=src/hemoscan sh tests/cli.sh
# The harness (run, check, why) is tests/lib.sh.

set -u

. "$(dirname "$0")/lib.sh"

# ---- the tests -------------------------------------------------------------------

test_version() {
    run "$HEMOSCAN" --version || return 1
    first=$(sed -n 1p "$tmp/out")
    if [ -n "${HEMOSCAN_VERSION:-}" ]; then
        case "$first" in
        "hemoscan $HEMOSCAN_VERSION" | "hemoscan $HEMOSCAN_VERSION "*) return 0 ;;
        *) why "expected 'hemoscan $HEMOSCAN_VERSION', got '$first'"; return 1 ;;
        esac
    fi
    # Run by hand without the version from configure: accept any version.
    echo "$first" | grep -Eq '^hemoscan [0-9]+\.[0-9]+\.[0-9]+'
}

test_help() {
    run "$HEMOSCAN" --help || return 1
    grep -q -e '--model' "$tmp/out"
}

test_unknown_option() {
    run "$HEMOSCAN" --no-such-option
    [ "$status" -eq 2 ] || { why "expected exit status 2"; return 1; }
    grep -q -e '--no-such-option' "$tmp/err" ||
        { why "stderr does not name the option"; return 1; }
}

test_init_model() {
    run "$HEMOSCAN" --init-model "$tmp/m.hsm" --seed 7 || return 1
    [ -s "$tmp/m.hsm" ] || { why "$tmp/m.hsm was not written"; return 1; }
    run "$HEMOSCAN" --model-info "$tmp/m.hsm" || return 1
    grep -q 'channel 0: brain window center 40 HU, width 80 HU' "$tmp/out" ||
        { why "--init-model without --windows is not the CT recipe"; return 1; }
    # with --windows: the gray recipe they name
    run "$HEMOSCAN" --init-model "$tmp/gray.hsm" --windows 35/80,55/40 || return 1
    run "$HEMOSCAN" --model-info "$tmp/gray.hsm" || return 1
    grep -q 'channel 0: gray window center 35 HU, width 80 HU' "$tmp/out" &&
        grep -q 'channel 1: gray-window window center 55 HU, width 40 HU' "$tmp/out" ||
        { why "--init-model --windows did not give the gray recipe"; return 1; }
}

test_model_info() {
    [ -s "$tmp/m.hsm" ] || { why "no model file (--init-model failed)"; return 1; }
    run "$HEMOSCAN" --model-info "$tmp/m.hsm" || return 1
    grep -Eq '(^|[^0-9])265953([^0-9]|$)' "$tmp/out" ||
        { why "total parameter count 265953 not printed"; return 1; }
    sum=$(sha256sum <"$tmp/m.hsm" | cut -d ' ' -f 1)
    grep -q "$sum" "$tmp/out" ||
        { why "sha256sum of the file ($sum) not printed"; return 1; }
}

test_init_model_reproducible() {
    run "$HEMOSCAN" --init-model "$tmp/m1.hsm" --seed 7 || return 1
    run "$HEMOSCAN" --init-model "$tmp/m2.hsm" --seed 7 || return 1
    cmp -s "$tmp/m1.hsm" "$tmp/m2.hsm" ||
        { why "two --init-model runs with --seed 7 differ"; return 1; }
}

test_truncated_model() {
    [ -s "$tmp/m.hsm" ] || { why "no model file (--init-model failed)"; return 1; }
    head -c 1000 "$tmp/m.hsm" >"$tmp/truncated.hsm"
    run "$HEMOSCAN" --model-info "$tmp/truncated.hsm"
    [ "$status" -ne 0 ] || { why "a truncated model was accepted"; return 1; }
    [ "$status" -lt 126 ] || { why "crashed (exit status $status)"; return 1; }
    grep -q 'truncated\.hsm' "$tmp/err" ||
        { why "the error message does not name the file"; return 1; }
}

check "--version prints the version" test_version
check "--help exits 0 and mentions --model" test_help
check "an unknown option exits 2 and is named on stderr" test_unknown_option
check "--init-model --seed 7 writes a model" test_init_model
check "--model-info prints 265953 parameters and the file's SHA-256" test_model_info
check "--init-model is reproducible for a given seed" test_init_model_reproducible
check "--model-info refuses a truncated model and names it" test_truncated_model

finish
