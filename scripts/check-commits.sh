#!/bin/sh
# check-commits.sh - the shape of commit messages, from the commit that
# made it the rule (4985093, "src: one folder per layer") to HEAD:
#
#   1. a subject of at most 72 characters, "area: what changed";
#   2. a blank second line;
#   3. a body: the why, the measurements, what was tested.
#
# Merge commits are left alone. Run by .ci/run; as a commit-msg hook
# (ln -s ../../scripts/check-commits.sh .git/hooks/commit-msg) it checks
# the message file it is given instead.
#
# Usage: scripts/check-commits.sh [MESSAGE-FILE]
set -eu

first=4985093

# check_message NAME: the message on stdin; prints what is wrong
check_message() {
    awk -v name="$1" '
        NR == 1 {
            subject = $0
            if (length(subject) > 72)
                print name ": subject of " length(subject) " characters (at most 72): " substr(subject, 1, 72) "..."
            if (subject !~ /^[A-Za-z0-9_.\/+ -]+: [^ ]/)
                print name ": subject not in the form \"area: what changed\": " subject
        }
        NR == 2 && $0 != "" { print name ": the second line is not blank" }
        NR >= 3 && $0 !~ /^[[:space:]]*$/ && $0 !~ /^#/ { body = 1 }
        END { if (!body) print name ": no body (the why, the figures, what was tested)" }'
}

if [ $# -ge 1 ]; then
    problems=$(sed '/^#/d' "$1" | check_message "commit message")
    [ -z "$problems" ] || {
        echo "$problems" >&2
        exit 1
    }
    exit 0
fi

cd "$(dirname "$0")/.."
if ! git rev-parse --verify -q "$first^{commit}" >/dev/null; then
    echo "check-commits: $first is not in this clone (shallow?): nothing checked"
    exit 0
fi
n=0
bad=0
for c in $(git rev-list --no-merges "$first^..HEAD"); do
    n=$((n + 1))
    problems=$(git log -1 --format=%B "$c" | check_message "$(git log -1 --format='%h' "$c")")
    if [ -n "$problems" ]; then
        echo "$problems"
        bad=$((bad + 1))
    fi
done
echo "check-commits: $((n - bad)) passed, $bad failed"
[ "$bad" -eq 0 ]
