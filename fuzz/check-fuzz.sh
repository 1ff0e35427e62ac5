#!/bin/sh
# check-fuzz.sh - what `make check-fuzz` runs: each libFuzzer target given
# as an argument (fuzz/fuzz_dicom, fuzz/fuzz_png) for FUZZ_SECONDS, one
# after the other with one job each (CI machines have two cores), from a
# fresh seed corpus in fuzz/run/ of the build tree.
#
# Seeds: every file of $HEMOSCAN_SHARED_DATA/dicom for the DICOM target,
# about 50 small PNGs spread over $HEMOSCAN_SHARED_DATA for the PNG target,
# and fuzz/regressions/<kind>/ for both. The sample data is copied, never
# used in place: libFuzzer writes new inputs into its corpus folder, and
# nothing may be added to the shared data or the source tree. Without the
# sample data the targets start from the regression files alone.
#
# The make variables arrive through the environment (Makefile.am's
# hemoscan_env and FUZZ_SECONDS). Fails when any target stopped on a
# finding; its report and the input (fuzz/run/artifacts/) are named.
set -eu

seconds=${FUZZ_SECONDS:-60}
srcdir=${HEMOSCAN_SRCDIR:?HEMOSCAN_SRCDIR is not set; run make check-fuzz}
builddir=${HEMOSCAN_BUILDDIR:?HEMOSCAN_BUILDDIR is not set; run make check-fuzz}
data=${HEMOSCAN_SHARED_DATA:-}
run=$builddir/fuzz/run

# How many PNGs to take, and the largest one (bytes): small files mutate
# and decode fast, and a head CT picture of any size exercises the same code.
png_seeds=50
png_max_kb=120

rm -rf "$run"
mkdir -p "$run/tmp" "$run/artifacts"

# copy_seeds DIR: copies the files named on stdin into DIR, each named
# after its path below the data folder (slashes become underscores), so
# that files of the same name in different folders do not collide.
copy_seeds() {
    while IFS= read -r f; do
        rel=${f#"$data"/}
        cp "$f" "$1/$(printf '%s' "$rel" | tr / _)"
    done
}

have_data=no
if [ -n "$data" ] && [ -d "$data" ]; then
    have_data=yes
else
    echo "check-fuzz: no sample data at '${data:-../shared/data}': the fuzzers start from fuzz/regressions alone"
fi

failed=
for target in "$@"; do
    name=${target##*/}
    kind=${name#fuzz_}
    corpus=$run/$kind
    mkdir -p "$corpus"
    for f in "$srcdir/fuzz/regressions/$kind"/*; do
        if [ -f "$f" ]; then cp "$f" "$corpus/regression_${f##*/}"; fi
    done
    if [ "$have_data" = yes ]; then
        case $kind in
        dicom)
            if [ -d "$data/dicom" ]; then
                find "$data/dicom" -type f | LC_ALL=C sort | copy_seeds "$corpus"
            fi
            ;;
        png)
            find "$data" -type f -name '*.png' -size -"${png_max_kb}k" | LC_ALL=C sort >"$run/png-list"
            total=$(wc -l <"$run/png-list")
            step=$((total / png_seeds))
            [ "$step" -ge 1 ] || step=1
            awk -v step="$step" -v most="$png_seeds" 'NR % step == 0 && ++n <= most' "$run/png-list" |
                copy_seeds "$corpus"
            ;;
        esac
    fi
    seeds=$(find "$corpus" -type f | wc -l)
    log=$run/$kind.log
    echo "check-fuzz: $name for ${seconds}s from $seeds seed files (log: $log)"
    # TMPDIR: the DICOM harness's temporary file lives in the build tree.
    if TMPDIR=$run/tmp "$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$run/artifacts/$kind-" "$corpus" >"$log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" |
            sed 's/^/  /'
    else
        echo "check-fuzz: $name stopped on a finding; the end of its log:"
        tail -n 60 "$log"
        failed="$failed $name"
    fi
done
rm -rf "$run/tmp"

if [ -n "$failed" ]; then
    echo "check-fuzz: findings by$failed; the inputs are in $run/artifacts/:"
    ls -l "$run/artifacts"
    echo "check-fuzz: fix the reader, then keep each input (minimised with the target's" \
        "-minimize_crash=1 -runs=10000 INPUT) as fuzz/regressions/<dicom|png>/NAME for make check"
    exit 1
fi
echo "check-fuzz: no findings"
