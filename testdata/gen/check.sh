#!/bin/sh
# check.sh - tests of hs-gen-ct, the synthetic head CT generator (POSIX sh).
#
# Every test makes a small series (128 x 128, a few slices) in a temporary
# folder and checks it with DCMTK's command-line tools, not with the
# generator's own view of what it wrote: dcmdump reads the headers,
# dcmdjpeg/dcmdjpls/dcmdrle/dcmconv decode the pixels and dcmdump +W writes
# them out raw, so pixel checks are independent of the generator.
#
# Run by `make check` (TESTS in Makefile.am). By hand, from the build
# folder:  sh testdata/gen/check.sh   (HS_GEN_CT=path overrides the binary)
# Prints PASS/FAIL per test and a final "N passed, N failed" line; exits 0
# when all pass, 1 when one fails, 77 (skip) when the DCMTK tools are
# missing, 99 when the generator has not been built.

set -u

if [ -n "${HS_GEN_CT:-}" ]; then
    GEN=$HS_GEN_CT
else
    GEN=${HEMOSCAN_BUILDDIR:-.}/testdata/gen/hs-gen-ct
fi
if [ ! -x "$GEN" ]; then
    echo "check.sh: $GEN is not an executable; build it first (make)" >&2
    exit 99
fi
for tool in dcmdump dcmconv dcmdjpeg dcmdjpls dcmdrle dcm2pnm dcmj2pnm dcml2pnm od awk cmp paste; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "check.sh: SKIP: $tool not found (Debian: apt-get install dcmtk)"
        exit 77
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hs-gen-ct.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' 0
trap 'exit 1' 1 2 15

passed=0
failed=0
N=128                            # image size used by the tests
SMALL="--size $N --slices 6 -q"  # a small series

# ---- harness ---------------------------------------------------------------------

# why MESSAGE: what a failing test reports.
why() {
    echo "$*" >>"$tmp/why"
}

# check NAME FUNCTION: runs one test and counts it.
check() {
    : >"$tmp/why"
    if "$2"; then
        passed=$((passed + 1))
        echo "PASS: $1"
    else
        failed=$((failed + 1))
        echo "FAIL: $1"
        sed 's/^/  /' "$tmp/why"
        if [ -s "$tmp/err" ]; then
            echo "  --- stderr of the last command ---"
            sed -n '1,10s/^/  /p' "$tmp/err"
        fi
    fi
}

# gen DIR ARGS...: runs the generator into $tmp/DIR (emptied first).
gen() {
    d=$tmp/$1
    shift
    rm -rf "$d"
    "$GEN" --out "$d" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
    st=$?
    [ $st -eq 0 ] || why "hs-gen-ct $* exited with $st"
    return $st
}

# tag FILE NAME: the value of a data element (first instance), as dcmdump
# prints it without brackets; empty when absent.
tag() {
    dcmdump -q -Un -s +P "$2" "$1" 2>/dev/null |
        sed -n '1{s/^([0-9a-fA-F,]*) [A-Z][A-Z] //; s/ *#.*$//; s/^\[//; s/\]$//; p;}'
}

# expect WHAT GOT WANT: compares two strings.
expect() {
    [ "$2" = "$3" ] && return 0
    why "$1: expected '$3', got '$2'"
    return 1
}

# raw FILE: decodes FILE to uncompressed little endian and prints one stored
# pixel value per line (signed or unsigned as PixelRepresentation says).
raw() {
    f=$1
    ts=$(tag "$f" TransferSyntaxUID)
    plain=$tmp/plain.dcm
    case $ts in
    1.2.840.10008.1.2.4.5* | 1.2.840.10008.1.2.4.70) dcmdjpeg "$f" "$plain" ;;
    1.2.840.10008.1.2.4.8*) dcmdjpls "$f" "$plain" ;;
    1.2.840.10008.1.2.5) dcmdrle "$f" "$plain" ;;
    *) dcmconv +te "$f" "$plain" ;;
    esac || { why "cannot decode $f ($ts)"; return 1; }
    rm -rf "$tmp/rawdir"
    mkdir "$tmp/rawdir"
    dcmdump -q +W "$tmp/rawdir" "$plain" >/dev/null 2>&1 || { why "dcmdump +W failed on $f"; return 1; }
    if [ "$(tag "$plain" BitsAllocated)" = 8 ]; then
        fmt=u1
    elif [ "$(tag "$plain" PixelRepresentation)" = 1 ]; then
        fmt=d2
    else
        fmt=u2
    fi
    # od prints several values per line; one per line for the callers
    od -An -v -t "$fmt" "$tmp/rawdir/plain.dcm.0.raw" | awk '{ for (i = 1; i <= NF; i++) print $i }'
}

# hu FILE: raw values as Hounsfield units (slope and intercept applied).
hu() {
    slope=$(tag "$1" RescaleSlope)
    icpt=$(tag "$1" RescaleIntercept)
    raw "$1" | awk -v s="${slope:-1}" -v i="${icpt:-0}" '{ print $1 * s + i }'
}

# count_box LO HI R0 R1 C0 C1: how many of the values on stdin (an N x N
# image, row by row) lie in [LO, HI] within rows R0..R1 and columns C0..C1.
count_box() {
    awk -v n=$N -v lo="$1" -v hi="$2" -v r0="$3" -v r1="$4" -v c0="$5" -v c1="$6" '
        { r = int((NR - 1) / n); c = (NR - 1) % n
          if (r >= r0 && r <= r1 && c >= c0 && c <= c1 && $1 >= lo && $1 <= hi) k++ }
        END { print k + 0 }'
}

# The head centre in an axial image of this size: column N/2, row 105/230 N.
HR=$((N * 105 / 230))
HC=$((N / 2))

# ---- command line ------------------------------------------------------------------

test_help() {
    "$GEN" --help >"$tmp/out" 2>"$tmp/err" || { why "--help failed"; return 1; }
    for opt in --out --size --fov --slices --thickness --spacing --tilt --reverse --gap --reformat \
        --seed --noise --bleed --bleed-none --contrast --storage --intercept --bits-stored \
        --padding-value --monochrome1 --window --multi-window --8bit-window --ts --quality --near \
        --study-uid --series-number --series-description --modality --localizer --derived \
        --no-instance-number --invalid-uid --no-body-part --shuffle --jobs --verbose --quiet; do
        grep -q -e "$opt" "$tmp/out" || { why "--help does not mention $opt"; return 1; }
    done
}

test_bad_usage() {
    "$GEN" --out "$tmp/x" --no-such-option >"$tmp/out" 2>"$tmp/err"
    expect "exit status for an unknown option" $? 2 || return 1
    grep -q -e --no-such-option "$tmp/err" || { why "stderr does not name the option"; return 1; }
    "$GEN" --size 128 >"$tmp/out" 2>"$tmp/err"
    expect "exit status without --out" $? 2 || return 1
    "$GEN" --out "$tmp/x" --size abc >"$tmp/out" 2>"$tmp/err"
    expect "exit status for --size abc" $? 2 || return 1
    grep -q -e "--size" "$tmp/err" || { why "stderr does not name --size"; return 1; }
    "$GEN" --out "$tmp/x" --bleed xyz:1,2,3,4 >"$tmp/out" 2>"$tmp/err"
    expect "exit status for a bad bleed" $? 2 || return 1
    # a folder that cannot be made: exit 1, and the message names it
    : >"$tmp/afile"
    "$GEN" --out "$tmp/afile/sub" --size 32 --slices 1 >"$tmp/out" 2>"$tmp/err"
    expect "exit status for an impossible --out" $? 1 || return 1
    grep -q "afile/sub" "$tmp/err" || { why "stderr does not name the folder"; return 1; }
}

test_refusals() {
    "$GEN" --out "$tmp/x" --ts jpeg2000 >"$tmp/out" 2>"$tmp/err"
    expect "exit status for --ts jpeg2000" $? 2 || return 1
    grep -q "JPEG 2000" "$tmp/err" || { why "no JPEG 2000 explanation"; return 1; }
    "$GEN" --out "$tmp/x" --ts jpeg-baseline >"$tmp/out" 2>"$tmp/err"
    expect "exit status for jpeg-baseline without --8bit-window" $? 2 || return 1
    grep -q "8-bit" "$tmp/err" || { why "no 8-bit explanation"; return 1; }
    "$GEN" --out "$tmp/x" --ts jpeg-extended --storage signed >"$tmp/out" 2>"$tmp/err"
    expect "exit status for signed jpeg-extended" $? 2 || return 1
    # signed 12 bits with intercept -1024 cannot hold bone
    "$GEN" --out "$tmp/x" --bits-stored 12 --intercept -1024 >"$tmp/out" 2>"$tmp/err"
    expect "exit status for a storage that cannot hold bone" $? 2
}

# ---- the default series ------------------------------------------------------------

test_default_series() {
    gen d $SMALL || return 1
    names=$(cd "$tmp/d" && ls | tr '\n' ' ')
    expect "files" "$names" "IM0001.dcm IM0002.dcm IM0003.dcm IM0004.dcm IM0005.dcm IM0006.dcm " || return 1
    f=$tmp/d/IM0001.dcm
    dcmdump -q "$f" >/dev/null 2>"$tmp/err" || { why "dcmdump cannot read $f"; return 1; }
    expect TransferSyntaxUID "$(tag "$f" TransferSyntaxUID)" 1.2.840.10008.1.2.1 &&
        expect SOPClassUID "$(tag "$f" SOPClassUID)" 1.2.840.10008.5.1.4.1.1.2 &&
        expect Modality "$(tag "$f" Modality)" CT &&
        expect ImageType "$(tag "$f" ImageType)" 'ORIGINAL\PRIMARY\AXIAL' &&
        expect Rows "$(tag "$f" Rows)" $N &&
        expect Columns "$(tag "$f" Columns)" $N &&
        expect SliceThickness "$(tag "$f" SliceThickness)" 5 &&
        expect BodyPartExamined "$(tag "$f" BodyPartExamined)" HEAD &&
        expect PatientName "$(tag "$f" PatientName)" 'SYNTHETIC^HEAD' &&
        expect RescaleType "$(tag "$f" RescaleType)" HU &&
        expect RescaleIntercept "$(tag "$f" RescaleIntercept)" 0 &&
        expect PixelRepresentation "$(tag "$f" PixelRepresentation)" 1 &&
        expect WindowCenter "$(tag "$f" WindowCenter)" 40 &&
        expect ImageOrientationPatient "$(tag "$f" ImageOrientationPatient)" '1\0\0\0\1\0' &&
        expect ContrastBolusAgent "$(tag "$f" ContrastBolusAgent)" "" &&
        expect GantryDetectorTilt "$(tag "$f" GantryDetectorTilt)" 0 || return 1
    # positions: x and y fixed, z up by 5 mm per instance 1..6
    seq=""
    for k in 1 2 3 4 5 6; do
        g=$tmp/d/IM000$k.dcm
        seq="$seq $(tag "$g" InstanceNumber):$(tag "$g" ImagePositionPatient)"
    done
    expect "InstanceNumber:ImagePositionPatient" "$seq" \
        ' 1:-115\-105\-7.5 2:-115\-105\-2.5 3:-115\-105\2.5 4:-115\-105\7.5 5:-115\-105\12.5 6:-115\-105\17.5'
}

test_uids() {
    gen d $SMALL || return 1
    for k in 1 2 3; do
        f=$tmp/d/IM000$k.dcm
        for t in StudyInstanceUID SeriesInstanceUID SOPInstanceUID FrameOfReferenceUID; do
            u=$(tag "$f" $t)
            echo "$u" | grep -Eq '^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$' || { why "$t '$u' is not a valid UID"; return 1; }
            [ ${#u} -le 64 ] || { why "$t '$u' is longer than 64"; return 1; }
        done
    done
    a=$(tag "$tmp/d/IM0001.dcm" SOPInstanceUID)
    b=$(tag "$tmp/d/IM0002.dcm" SOPInstanceUID)
    [ "$a" != "$b" ] || { why "two slices share SOPInstanceUID $a"; return 1; }
    expect "MediaStorageSOPInstanceUID" "$(tag "$tmp/d/IM0001.dcm" MediaStorageSOPInstanceUID)" "$a" || return 1
    case $a in 1.2.276.0.7230010.3.1.4.*) ;; *) why "SOPInstanceUID $a is not under DCMTK's instance root"; return 1 ;; esac
}

test_same_seed_same_bytes() {
    gen r1 $SMALL --seed 42 --ts jpeg-lossless --bleed iph:10,10,0,20 || return 1
    gen r2 $SMALL --seed 42 --ts jpeg-lossless --bleed iph:10,10,0,20 --jobs 1 || return 1
    for f in "$tmp"/r1/*; do
        cmp -s "$f" "$tmp/r2/${f##*/}" || { why "${f##*/} differs between two runs with the same seed"; return 1; }
    done
    gen r3 $SMALL --seed 43 --ts jpeg-lossless --bleed iph:10,10,0,20 || return 1
    if cmp -s "$tmp/r1/IM0003.dcm" "$tmp/r3/IM0003.dcm"; then
        why "seeds 42 and 43 gave the same file"
        return 1
    fi
    [ "$(tag "$tmp/r1/IM0001.dcm" StudyInstanceUID)" != "$(tag "$tmp/r3/IM0001.dcm" StudyInstanceUID)" ] ||
        { why "seeds 42 and 43 gave the same study UID"; return 1; }
}

# ---- transfer syntaxes: the pixels survive the round trip -------------------------

# ts_roundtrip NAME UID [ARGS]: the series in syntax NAME has transfer syntax
# UID and decodes to exactly the pixels of the explicit little endian one.
ts_roundtrip() {
    name=$1
    uid=$2
    shift 2
    gen ref $SMALL "$@" || return 1
    gen ts $SMALL --ts "$name" "$@" || return 1
    f=$tmp/ts/IM0003.dcm
    expect "TransferSyntaxUID of $name" "$(tag "$f" TransferSyntaxUID)" "$uid" || return 1
    expect "ImageType of $name" "$(tag "$f" ImageType)" 'ORIGINAL\PRIMARY\AXIAL' || return 1
    raw "$tmp/ref/IM0003.dcm" >"$tmp/a.txt" || return 1
    raw "$f" >"$tmp/b.txt" || return 1
    [ "$(wc -l <"$tmp/b.txt")" -eq $((N * N)) ] || { why "$name: decoded $(wc -l <"$tmp/b.txt") pixels"; return 1; }
    cmp -s "$tmp/a.txt" "$tmp/b.txt" || { why "$name: decoded pixels differ from the uncompressed ones"; return 1; }
}

test_ts_implicit() { ts_roundtrip implicit 1.2.840.10008.1.2; }
test_ts_big() { ts_roundtrip big 1.2.840.10008.1.2.2; }
test_ts_deflate() { ts_roundtrip deflate 1.2.840.10008.1.2.1.99; }
test_ts_rle() { ts_roundtrip rle 1.2.840.10008.1.2.5; }
test_ts_jpeg_lossless() { ts_roundtrip jpeg-lossless 1.2.840.10008.1.2.4.70; }
test_ts_jpeg_lossless_unsigned() { ts_roundtrip jpeg-lossless 1.2.840.10008.1.2.4.70 --storage unsigned --padding-value 0; }
test_ts_jpeg_ls() { ts_roundtrip jpeg-ls 1.2.840.10008.1.2.4.80; }
test_ts_rle_padding() { ts_roundtrip rle 1.2.840.10008.1.2.5 --padding-value -2000; }

# Lossy syntaxes: decodable, rescale kept, pixels close to the originals.
# lossy NAME UID MAXDIFF MEANDIFF [ARGS]
lossy() {
    name=$1
    uid=$2
    maxd=$3
    meand=$4
    shift 4
    gen ref $SMALL --storage unsigned "$@" || return 1
    gen ts $SMALL --ts "$name" "$@" || return 1
    f=$tmp/ts/IM0003.dcm
    expect "TransferSyntaxUID of $name" "$(tag "$f" TransferSyntaxUID)" "$uid" || return 1
    expect "LossyImageCompression" "$(tag "$f" LossyImageCompression)" 01 || return 1
    expect "RescaleIntercept" "$(tag "$f" RescaleIntercept)" -1024 || return 1
    expect "RescaleSlope" "$(tag "$f" RescaleSlope)" 1 || return 1
    hu "$tmp/ref/IM0003.dcm" >"$tmp/a.txt" || return 1
    hu "$f" >"$tmp/b.txt" || return 1
    paste "$tmp/a.txt" "$tmp/b.txt" | awk -v maxd="$maxd" -v meand="$meand" '
        { d = $1 - $2; if (d < 0) d = -d; s += d; if (d > m) m = d; n++ }
        END { printf "max %d mean %.2f\n", m, s / n; exit !(n > 0 && m <= maxd && s / n <= meand) }' \
        >"$tmp/diff.txt" || { why "$name: HU differences too large: $(cat "$tmp/diff.txt")"; return 1; }
}

test_ts_jpeg_ls_near() { lossy jpeg-ls-near 1.2.840.10008.1.2.4.81 2 2; }
test_ts_jpeg_extended() { lossy jpeg-extended 1.2.840.10008.1.2.4.51 400 6; }

test_ts_jpeg_baseline_8bit() {
    gen b8 $SMALL --ts jpeg-baseline --8bit-window 40,80 || return 1
    f=$tmp/b8/IM0003.dcm
    expect TransferSyntaxUID "$(tag "$f" TransferSyntaxUID)" 1.2.840.10008.1.2.4.50 &&
        expect SOPClassUID "$(tag "$f" SOPClassUID)" 1.2.840.10008.5.1.4.1.1.7 &&
        expect ImageType "$(tag "$f" ImageType)" 'DERIVED\SECONDARY\AXIAL' &&
        expect BitsAllocated "$(tag "$f" BitsAllocated)" 8 &&
        expect RescaleIntercept "$(tag "$f" RescaleIntercept)" 0 || return 1
    # the middle of the brain is inside the 0..80 HU window
    hu "$f" | count_box 10 70 $((HR - 3)) $((HR + 3)) $((HC - 12)) $((HC - 6)) >"$tmp/n.txt" || return 1
    [ "$(cat "$tmp/n.txt")" -ge 35 ] || { why "only $(cat "$tmp/n.txt") of 49 brain pixels in 10..70 HU"; return 1; }
}

# Debian's DCMTK renders RLE with dcm2pnm, JPEG with dcmj2pnm and JPEG-LS
# with dcml2pnm.
test_renders() {
    for pair in rle:dcm2pnm jpeg-lossless:dcmj2pnm jpeg-ls:dcml2pnm; do
        ts=${pair%%:*}
        tool=${pair#*:}
        gen p $SMALL --ts "$ts" || return 1
        rm -f "$tmp/p.pgm"
        "$tool" +Ww 40 80 "$tmp/p/IM0003.dcm" "$tmp/p.pgm" 2>"$tmp/err" || { why "$tool failed on $ts"; return 1; }
        [ -s "$tmp/p.pgm" ] || { why "$tool wrote nothing for $ts"; return 1; }
    done
}

# ---- geometry --------------------------------------------------------------------------

test_tilt() {
    gen t $SMALL --tilt 15 || return 1
    f=$tmp/t/IM0001.dcm
    expect GantryDetectorTilt "$(tag "$f" GantryDetectorTilt)" 15 || return 1
    expect ImageOrientationPatient "$(tag "$f" ImageOrientationPatient)" '1\0\0\0\0.965926\-0.258819' || return 1
    # consecutive positions: x, y fixed; the distance along the normal
    # (0, sin, cos) is the spacing, 5 mm
    for k in 1 2 3 4 5 6; do
        tag "$tmp/t/IM000$k.dcm" ImagePositionPatient
    done | tr '\\' ' ' | awk '
        NR > 1 { if ($1 != x || $2 != y) bad = 1
                 d = ($2 - y) * 0.258819 + ($3 - z) * 0.965926
                 if (d < 4.999 || d > 5.001) bad = 1 }
        { x = $1; y = $2; z = $3 }
        END { exit bad }' || { why "tilted positions are not 5 mm apart along the normal"; return 1; }
}

test_gap() {
    gen g $SMALL --gap 3 || return 1
    [ ! -e "$tmp/g/IM0003.dcm" ] || { why "IM0003.dcm exists"; return 1; }
    nums=""
    for f in "$tmp"/g/*.dcm; do nums="$nums $(tag "$f" InstanceNumber)"; done
    expect "InstanceNumbers" "$nums" " 1 2 4 5 6"
}

test_reverse() {
    gen r $SMALL --reverse || return 1
    expect "IPP of instance 1" "$(tag "$tmp/r/IM0001.dcm" ImagePositionPatient)" '-115\-105\17.5' &&
        expect "IPP of instance 6" "$(tag "$tmp/r/IM0006.dcm" ImagePositionPatient)" '-115\-105\-7.5'
}

test_spacing() {
    gen s --size $N --slices 3 -q --thickness 2.5 --spacing 3 || return 1
    expect SliceThickness "$(tag "$tmp/s/IM0001.dcm" SliceThickness)" 2.5 &&
        expect "IPP of instance 3" "$(tag "$tmp/s/IM0003.dcm" ImagePositionPatient)" '-115\-105\8'
}

test_shuffle() {
    gen s1 $SMALL --shuffle --seed 5 || return 1
    gen s2 $SMALL --shuffle --seed 5 || return 1
    n1=$(cd "$tmp/s1" && ls | tr '\n' ' ')
    n2=$(cd "$tmp/s2" && ls | tr '\n' ' ')
    expect "names of two shuffled runs" "$n2" "$n1" || return 1
    case $n1 in *IM0*) why "shuffled names still IM0...: $n1"; return 1 ;; esac
    nums=$(for f in "$tmp"/s1/*; do tag "$f" InstanceNumber; done | sort -n | tr '\n' ' ')
    expect "instance numbers" "$nums" "1 2 3 4 5 6 "
}

test_reformat_coronal() {
    gen c $SMALL --reformat coronal || return 1
    expect ImageOrientationPatient "$(tag "$tmp/c/IM0001.dcm" ImageOrientationPatient)" '1\0\0\0\0\-1' &&
        expect ImageType "$(tag "$tmp/c/IM0001.dcm" ImageType)" 'ORIGINAL\PRIMARY\REFORMATTED'
}

# ---- pixel storage ---------------------------------------------------------------------

test_unsigned() {
    gen u $SMALL --storage unsigned || return 1
    f=$tmp/u/IM0003.dcm
    expect PixelRepresentation "$(tag "$f" PixelRepresentation)" 0 &&
        expect BitsStored "$(tag "$f" BitsStored)" 12 &&
        expect HighBit "$(tag "$f" HighBit)" 11 &&
        expect RescaleIntercept "$(tag "$f" RescaleIntercept)" -1024 || return 1
    raw "$f" | awk '$1 < 0 || $1 > 4095 { bad = 1 } END { exit bad }' ||
        { why "stored values outside 0..4095"; return 1; }
}

test_signed_intercept() {
    gen si $SMALL --intercept -1024 || return 1
    f=$tmp/si/IM0003.dcm
    expect PixelRepresentation "$(tag "$f" PixelRepresentation)" 1 &&
        expect RescaleIntercept "$(tag "$f" RescaleIntercept)" -1024 || return 1
    # the same image in HU as with intercept 0
    gen s0 $SMALL || return 1
    hu "$f" >"$tmp/a.txt" || return 1
    hu "$tmp/s0/IM0003.dcm" >"$tmp/b.txt" || return 1
    cmp -s "$tmp/a.txt" "$tmp/b.txt" || { why "HU differ between intercepts 0 and -1024"; return 1; }
}

test_padding() {
    gen pd $SMALL --padding-value -2000 || return 1
    f=$tmp/pd/IM0003.dcm
    expect PixelPaddingValue "$(tag "$f" PixelPaddingValue)" -2000 || return 1
    first=$(raw "$f" | sed -n 1p)
    expect "corner pixel" "$first" -2000
}

test_monochrome1_and_windows() {
    gen m $SMALL --monochrome1 --multi-window || return 1
    f=$tmp/m/IM0001.dcm
    expect PhotometricInterpretation "$(tag "$f" PhotometricInterpretation)" MONOCHROME1 &&
        expect WindowCenter "$(tag "$f" WindowCenter)" '40\600' &&
        expect WindowWidth "$(tag "$f" WindowWidth)" '80\2800'
}

# ---- content: bleeds -----------------------------------------------------------------

# bright_count DIR FILE LO HI R0 R1 C0 C1: pixels in [LO, HI] HU in a box.
bright_count() {
    hu "$tmp/$1/$2" | count_box "$3" "$4" "$5" "$6" "$7" "$8"
}

test_bleed_iph() {
    gen none $SMALL || return 1
    gen iph $SMALL --bleed iph:0,0,2.5,20 -v || return 1
    grep -q '^IM0003.dcm .*bleed_pixels [1-9]' "$tmp/out" || { why "--verbose reports no bleed on IM0003"; return 1; }
    # a 9 x 9 pixel box (16 mm) around the head centre, inside the bleed
    box="$((HR - 4)) $((HR + 4)) $((HC - 4)) $((HC + 4))"
    # shellcheck disable=SC2086 # box is four numbers
    a=$(bright_count none IM0003.dcm 58 100 $box) || return 1
    # shellcheck disable=SC2086
    b=$(bright_count iph IM0003.dcm 58 100 $box) || return 1
    [ "$a" -le 3 ] && [ "$b" -ge 60 ] ||
        { why "pixels of 58..100 HU around the head centre: $a without bleed, $b with (want <= 3, >= 60)"; return 1; }
    # a slice 15 mm from the bleed centre is unchanged
    cmp -s "$tmp/none/IM0006.dcm" "$tmp/iph/IM0006.dcm" && return 0
    hu "$tmp/none/IM0006.dcm" >"$tmp/a.txt"
    hu "$tmp/iph/IM0006.dcm" >"$tmp/b.txt"
    cmp -s "$tmp/a.txt" "$tmp/b.txt" || { why "a slice 15 mm above a 20 mm bleed changed"; return 1; }
}

test_bleed_sdh() {
    gen none $SMALL || return 1
    gen sdh $SMALL --bleed sdh:-60,0,2.5,10 || return 1
    # the patient's right is the image's left half
    a=$(bright_count none IM0003.dcm 55 90 0 $((N - 1)) 0 $((HC - 1))) || return 1
    b=$(bright_count sdh IM0003.dcm 55 90 0 $((N - 1)) 0 $((HC - 1))) || return 1
    [ "$b" -ge $((a + 60)) ] || { why "pixels of 55..90 HU on the right: $a without bleed, $b with"; return 1; }
    c=$(bright_count sdh IM0003.dcm 55 90 0 $((N - 1)) $((HC + 1)) $((N - 1))) || return 1
    d=$(bright_count none IM0003.dcm 55 90 0 $((N - 1)) $((HC + 1)) $((N - 1))) || return 1
    expect "pixels of 55..90 HU on the left (no bleed there)" "$c" "$d"
}

test_bleed_sah() {
    gen none $SMALL || return 1
    gen sah $SMALL --bleed sah:55,-10,2.5,35 -v || return 1
    grep -q '^IM0003.dcm .*bleed_pixels [1-9]' "$tmp/out" || { why "--verbose reports no bleed on IM0003"; return 1; }
    a=$(bright_count none IM0003.dcm 45 70 0 $((N - 1)) $((HC + 1)) $((N - 1))) || return 1
    b=$(bright_count sah IM0003.dcm 45 70 0 $((N - 1)) $((HC + 1)) $((N - 1))) || return 1
    [ "$b" -ge $((a + 25)) ] || { why "pixels of 45..70 HU on the left: $a without bleed, $b with"; return 1; }
}

# ---- header variants --------------------------------------------------------------------

test_localizer() {
    gen l $SMALL --localizer || return 1
    f=$tmp/l/LOC0001.dcm
    [ -f "$f" ] || { why "no LOC0001.dcm"; return 1; }
    expect ImageType "$(tag "$f" ImageType)" 'ORIGINAL\PRIMARY\LOCALIZER' &&
        expect ImageOrientationPatient "$(tag "$f" ImageOrientationPatient)" '0\1\0\0\0\-1' &&
        expect "StudyInstanceUID" "$(tag "$f" StudyInstanceUID)" "$(tag "$tmp/l/IM0001.dcm" StudyInstanceUID)" &&
        expect SeriesNumber "$(tag "$f" SeriesNumber)" 1 || return 1
    [ "$(tag "$f" SeriesInstanceUID)" != "$(tag "$tmp/l/IM0001.dcm" SeriesInstanceUID)" ] ||
        { why "the localizer shares the axial series UID"; return 1; }
}

test_modality_mr() {
    gen mr $SMALL --modality MR || return 1
    f=$tmp/mr/IM0001.dcm
    expect Modality "$(tag "$f" Modality)" MR &&
        expect SOPClassUID "$(tag "$f" SOPClassUID)" 1.2.840.10008.5.1.4.1.1.4 &&
        expect RescaleIntercept "$(tag "$f" RescaleIntercept)" ""
}

test_header_options() {
    gen h $SMALL --no-instance-number --derived --contrast --series-description "TEST SERIES" \
        --series-number 7 --no-body-part || return 1
    f=$tmp/h/IM0002.dcm
    expect InstanceNumber "$(tag "$f" InstanceNumber)" "" &&
        expect ImageType "$(tag "$f" ImageType)" 'DERIVED\SECONDARY\AXIAL' &&
        expect SeriesDescription "$(tag "$f" SeriesDescription)" "TEST SERIES" &&
        expect SeriesNumber "$(tag "$f" SeriesNumber)" 7 &&
        expect BodyPartExamined "$(tag "$f" BodyPartExamined)" "" &&
        [ -n "$(tag "$f" ContrastBolusAgent)" ] || { why "ContrastBolusAgent missing with --contrast"; return 1; }
}

test_invalid_uid() {
    gen iu $SMALL --invalid-uid || return 1
    u=$(tag "$tmp/iu/IM0001.dcm" SOPInstanceUID)
    echo "$u" | grep -Eq '\.0[0-9]' || { why "SOPInstanceUID $u has no leading-zero component"; return 1; }
}

test_study_uid() {
    gen a1 $SMALL --seed 1 || return 1
    study=$(tag "$tmp/a1/IM0001.dcm" StudyInstanceUID)
    gen a2 $SMALL --seed 2 --study-uid "$study" --series-number 3 --thickness 2.5 || return 1
    f=$tmp/a2/IM0001.dcm
    expect StudyInstanceUID "$(tag "$f" StudyInstanceUID)" "$study" &&
        expect PatientID "$(tag "$f" PatientID)" "$(tag "$tmp/a1/IM0001.dcm" PatientID)" || return 1
    [ "$(tag "$f" SeriesInstanceUID)" != "$(tag "$tmp/a1/IM0001.dcm" SeriesInstanceUID)" ] ||
        { why "the second series has the first one's UID"; return 1; }
    "$GEN" --out "$tmp/x" --study-uid 1.2.abc >"$tmp/out" 2>"$tmp/err"
    expect "exit status for a malformed --study-uid" $? 2
}

# ---- run --------------------------------------------------------------------------------

check "--help documents every option" test_help
check "bad usage exits 2, an unwritable folder 1; both named" test_bad_usage
check "JPEG 2000, 8-bit baseline and impossible storages are refused" test_refusals
check "default series: files, header, positions" test_default_series
check "UIDs are valid, distinct, under DCMTK's root" test_uids
check "same seed gives identical bytes, another seed differs" test_same_seed_same_bytes
check "implicit little endian round trip" test_ts_implicit
check "explicit big endian round trip" test_ts_big
check "deflate round trip" test_ts_deflate
check "RLE round trip" test_ts_rle
check "RLE round trip with padding" test_ts_rle_padding
check "JPEG lossless (signed) round trip" test_ts_jpeg_lossless
check "JPEG lossless (unsigned) round trip" test_ts_jpeg_lossless_unsigned
check "JPEG-LS lossless round trip" test_ts_jpeg_ls
check "JPEG-LS near-lossless within NEAR" test_ts_jpeg_ls_near
check "JPEG extended (12 bit lossy) close to the original" test_ts_jpeg_extended
check "JPEG baseline as 8-bit windowed secondary capture" test_ts_jpeg_baseline_8bit
check "dcm2pnm/dcmj2pnm/dcml2pnm render RLE, JPEG, JPEG-LS" test_renders
check "--tilt: GantryDetectorTilt, orientation, positions" test_tilt
check "--gap leaves a slice out" test_gap
check "--reverse puts the first instance at the top" test_reverse
check "--thickness and --spacing" test_spacing
check "--shuffle: random but reproducible names" test_shuffle
check "--reformat coronal" test_reformat_coronal
check "--storage unsigned: 12-bit, intercept -1024" test_unsigned
check "--intercept -1024 keeps the HU" test_signed_intercept
check "--padding-value outside the scan circle" test_padding
check "--monochrome1 and --multi-window" test_monochrome1_and_windows
check "--bleed iph raises HU at the bleed only" test_bleed_iph
check "--bleed sdh on the right side only" test_bleed_sdh
check "--bleed sah brightens sulci" test_bleed_sah
check "--localizer writes a scout in the same study" test_localizer
check "--modality MR" test_modality_mr
check "header options" test_header_options
check "--invalid-uid" test_invalid_uid
check "--study-uid joins an existing study" test_study_uid

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
