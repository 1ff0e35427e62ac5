#!/bin/sh
# check-functions.sh - no function over 150 lines; those over 100 say why.
#
# Measures every function definition in the C and C++ sources under src/
# (or in the files and folders given) from the first line of its signature
# to its closing brace, then checks two limits:
#   - no function is longer than 150 lines;
#   - a function longer than 100 lines has a reason in the comment directly
#     above it (no blank line between): a line of that comment starts with
#     "Long because", e.g.
#         /* Decode one frame into out.
#          *
#          * Long because the predictor loop is one unit: splitting it would
#          * cost a call per pixel on the hot path. */
# It prints the functions over 100 lines, then a verdict, and exits 1 when
# a limit is broken (2 on a usage error). `make check-style` runs it.
#
# With --list it first prints every function, longest first:
#   LINES  FILE:LINE  NAME  (with "[reason]" when the marker is present)
#
# How a function is found: the code is formatted clang-format style, so a
# definition starts at the indentation of its scope and its body ends with
# a `}` at that same indentation. The scope is the file (column 0), or the
# inside of a namespace, an extern "C" block or a C++ struct or class
# (indented or not). A declaration is a function when the text before its
# first `{` has a parameter list and no `=` outside parentheses, so struct,
# enum and array initializers are not functions. What is skipped:
#   - comments, and the contents of string and character literals;
#   - preprocessor lines with their continuations (a macro that defines a
#     function is not measured);
#   - bare macro calls at top level such as `DEFINE_TILE(8, 1)`.
# A lambda counts as part of the function that holds it. A macro line such
# as `HS_MULTIVERSION`, or `__attribute__((...))`, above or in the
# signature is part of the signature. POSIX sh and awk only.
#
# Usage: check-functions.sh [--list] [FILE|DIR]...
set -eu

max_lines=150
reason_over=100
marker='Long because'

list=0
while [ $# -gt 0 ]; do
    case $1 in
    --list) list=1; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) echo "check-functions.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    *) break ;;
    esac
done
if [ $# -eq 0 ]; then
    top=$(cd "$(dirname "$0")/.." && pwd)
    cd "$top"
    set -- src
fi
for p in "$@"; do
    if [ ! -e "$p" ]; then
        echo "check-functions.sh: $p: no such file or folder" >&2
        exit 2
    fi
done

# Paths in this tree have no blanks, so the list can be split on them.
files=$(find "$@" -type f \( -name '*.c' -o -name '*.cc' \) | LC_ALL=C sort)
if [ -z "$files" ]; then
    echo "check-functions.sh: no .c or .cc files in $*" >&2
    exit 2
fi

# One line per function: LINES <tab> FILE <tab> LINE <tab> NAME <tab> REASON
# (1 when the comment above has the marker).
# shellcheck disable=SC2086 # $files is split on purpose (see above)
rows=$(awk -v marker="$marker" '
# strip(s): the code of one line, with comments removed and the contents of
# string and character literals blanked; in_comment carries a block comment
# over lines, and the comment text of the line is left in ctext.
function strip(s,    out, i, n, ch, nx, q) {
    out = ""
    ctext = ""
    n = length(s)
    i = 1
    while (i <= n) {
        ch = substr(s, i, 1)
        nx = substr(s, i + 1, 1)
        if (in_comment) {
            if (ch == "*" && nx == "/") {
                in_comment = 0
                i += 2
                continue
            }
            ctext = ctext ch
            i++
            continue
        }
        if (ch == "/" && nx == "*") {
            in_comment = 1
            i += 2
            continue
        }
        if (ch == "/" && nx == "/") {
            ctext = ctext substr(s, i + 2)
            break
        }
        if (ch == "\"" || ch == "\047") {
            q = ch
            out = out q
            i++
            while (i <= n) {
                ch = substr(s, i, 1)
                if (ch == "\\") {
                    i += 2
                    continue
                }
                i++
                if (ch == q)
                    break
            }
            out = out q
            continue
        }
        out = out ch
        i++
    }
    return out
}

# count(s, ch): how many times ch occurs in s.
function count(s, ch,    n, i) {
    n = 0
    for (i = 1; i <= length(s); i++)
        if (substr(s, i, 1) == ch)
            n++
    return n
}

# unattribute(s): s without __attribute__((...)) groups.
function unattribute(s,    i, j, depth, ch) {
    while ((i = index(s, "__attribute__")) > 0) {
        j = i + length("__attribute__")
        while (substr(s, j, 1) == " ")
            j++
        if (substr(s, j, 1) != "(")
            return s
        depth = 0
        for (; j <= length(s); j++) {
            ch = substr(s, j, 1)
            if (ch == "(")
                depth++
            else if (ch == ")" && --depth == 0)
                break
        }
        s = substr(s, 1, i - 1) substr(s, j + 1)
    }
    return s
}

# is_function(pre): whether the text of a declaration before its first {
# is a function signature: a parameter list, no = outside parentheses.
function is_function(pre,    i, depth, ch, seen) {
    pre = unattribute(pre)
    depth = 0
    seen = 0
    for (i = 1; i <= length(pre); i++) {
        ch = substr(pre, i, 1)
        if (ch == "(") {
            depth++
            seen = 1
        } else if (ch == ")") {
            depth--
        } else if (ch == "=" && depth == 0) {
            return 0
        }
    }
    return seen
}

# function_name(pre): the identifier before the parameter list.
function function_name(pre,    p, name) {
    pre = unattribute(pre)
    p = index(pre, "(")
    name = substr(pre, 1, p - 1)
    sub(/[ \t]+$/, "", name)
    if (match(name, /[A-Za-z_~:][A-Za-z0-9_:~]*$/))
        return substr(name, RSTART)
    return "?"
}

function report(end_line) {
    printf "%d\t%s\t%d\t%s\t%d\n", end_line - sig_start + 1, FILENAME, sig_start, fn_name, fn_reason
}

FNR == 1 {
    mode = "top"
    macro_call = 0
    in_comment = 0
    in_macro = 0
    cmt_end = -1
    cmt_reason = 0
}

{
    raw = $0
    was_comment = in_comment
    # A preprocessor line and its continuations: keep the comment state.
    if (in_macro || (!was_comment && raw ~ /^[ \t]*#/)) {
        strip(raw)
        in_macro = (raw ~ /\\$/)
        next
    }
    code = strip(raw)
    blank = (code ~ /^[ \t]*$/)
}

mode == "func" {
    # The closing brace at the indentation of the signature.
    if (!was_comment && index(raw, fn_indent "}") == 1 &&
        substr(raw, length(fn_indent) + 2) ~ /^[ \t]*(\/[\/*].*)?$/) {
        report(FNR)
        mode = "top"
        cmt_end = -1
    }
    next
}

mode == "block" {
    depth += count(code, "{") - count(code, "}")
    if (depth <= 0) {
        mode = (code ~ /;[ \t]*$/) ? "top" : "decl"
        sig = ""
    }
    next
}

# After a bare macro call: a line with { makes it a function signature
# after all (a constructor, say); anything else starts afresh.
mode == "decl" && macro_call {
    macro_call = 0
    if (code !~ /^[ \t]*{/)
        mode = "top"
}

mode == "top" {
    if (blank) {
        # A comment line (or a run of them) directly above what follows.
        if (ctext != "" || was_comment || in_comment) {
            if (cmt_end != FNR - 1)
                cmt_reason = 0
            t = ctext
            sub(/^[ \t*]+/, "", t)
            if (index(t, marker) == 1)
                cmt_reason = 1
            cmt_end = FNR
        }
        next
    }
    # The end of a namespace or of an extern "C" block.
    if (code ~ /^[ \t]*}/)
        next
    # A scope that holds declarations, read as top level: a namespace, an
    # extern "C" block, a named struct or class (C++ members defined inside).
    if (code ~ /^[ \t]*(namespace([ \t]+[A-Za-z_][A-Za-z0-9_:]*)?|extern[ \t]+""?)[ \t]*{[ \t]*$/)
        next
    if (code ~ /^[ \t]*(struct|class|union)[ \t]+[A-Za-z_][A-Za-z0-9_]*([ \t]*:[^{;]*)?[ \t]*{[ \t]*$/)
        next
    mode = "decl"
    sig = ""
    sig_start = FNR
    fn_indent = raw
    sub(/[^ \t].*$/, "", fn_indent)
    fn_reason = (cmt_end == FNR - 1) ? cmt_reason : 0
}

mode == "decl" {
    sig = sig " " code
    if (index(code, "{") > 0) {
        pre = substr(sig, 1, index(sig, "{") - 1)
        depth = count(sig, "{") - count(sig, "}")
        if (is_function(pre)) {
            fn_name = function_name(pre)
            if (depth <= 0) {
                report(FNR)
                mode = "top"
                cmt_end = -1
            } else {
                mode = "func"
            }
        } else if (depth > 0) {
            mode = "block"
        } else if (code ~ /;[ \t]*$/) {
            mode = "top"
        }
        next
    }
    if (code ~ /;[ \t]*$/) {
        mode = "top"
        cmt_end = -1
        next
    }
    # Perhaps a bare macro call at top level, such as DEFINE_CONV_TILE(8, 1).
    if (count(sig, "(") == count(sig, ")") && sig ~ /^[ \t]*[A-Z_][A-Z0-9_]*[ \t]*\(.*\)[ \t]*$/)
        macro_call = 1
    next
}

END {
    if (mode == "func")
        printf "check-functions.sh: %s: no closing brace for %s (line %d)\n", FILENAME, fn_name, sig_start > "/dev/stderr"
}
' $files)

if [ "$list" -eq 1 ]; then
    printf '%s\n' "$rows" | LC_ALL=C sort -t '	' -k1,1nr -k2,2 -k3,3n |
        awk -F '\t' '{ printf "%5d  %s:%d  %s%s\n", $1, $2, $3, $4, ($5 ? "  [reason]" : "") }'
    echo
fi

printf '%s\n' "$rows" | LC_ALL=C sort -t '	' -k1,1nr -k2,2 -k3,3n |
    awk -F '\t' -v max="$max_lines" -v over="$reason_over" -v marker="$marker" '
{
    functions++
    files[$2] = 1
    if ($1 > max) {
        printf "%s:%d: %s: %d lines, over %d\n", $2, $3, $4, $1, max
        bad++
    } else if ($1 > over && !$5) {
        printf "%s:%d: %s: %d lines, over %d with no \"%s\" line in the comment above\n", $2, $3, $4, $1, over, marker
        bad++
    } else if ($1 > over) {
        printf "%s:%d: %s: %d lines, with a reason\n", $2, $3, $4, $1
        reasoned++
    }
}
END {
    for (f in files)
        nfiles++
    printf "check-functions: %d functions in %d files; %d over %d lines with a reason, %d failing", \
        functions, nfiles, reasoned, over, bad
    printf " (limits: %d lines; over %d needs \"%s\" above)\n", max, over, marker
    exit (bad > 0)
}'
