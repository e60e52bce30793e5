#!/bin/sh
# The conventions that are checked, not just written (README,
# "Conventions"), over every C file of the tree:
#  1. clang-format clean (the checked-in .clang-format);
#  2. one way to abort on a programming error: g_assert() for a condition,
#     g_error() when a sentence helps; never assert() (NDEBUG compiles it
#     out) nor a bare abort();
#  3. memory from GLib (g_new, g_new0, g_malloc, g_renew, g_free); never
#     malloc/calloc/realloc.  posix_memalign() (aligned I/O buffers) and
#     free() of what it or another library allocated stay.
# Prints each violation and exits 1 if there is any.  Usage:
# scripts/check-conventions.sh [file...]  (default: every tracked C file)
set -u
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
    files="$*"
else
    files=$(git ls-files '*.c' '*.h' | grep -v '^tests/fuzz/corpus')
fi
bad=0

# shellcheck disable=SC2086
if ! clang-format --dry-run --Werror $files 2>&1; then
    echo "check-conventions: not clang-format clean (fix with: make format)"
    bad=1
fi

# Code only: strip // and /* */ comments and string literals first.
strip() {
    sed -E -e 's/"([^"\\]|\\.)*"/""/g' -e 's|//.*$||' "$1" |
        awk 'BEGIN { c = 0 }
             { line = $0; out = ""
               while (length(line)) {
                   if (c) { i = index(line, "*/"); if (!i) { line = ""; break }
                            line = substr(line, i + 2); c = 0 }
                   else { i = index(line, "/*"); if (!i) { out = out line; line = ""; break }
                          out = out substr(line, 1, i - 1); line = substr(line, i + 2); c = 1 } }
               print out }'
}

for f in $files; do
    hits=$(strip "$f" | grep -nE '(^|[^_[:alnum:]])(assert|abort)[[:space:]]*\(')
    if [ -n "$hits" ]; then
        echo "$hits" | sed "s|^|$f:|; s|\$|   <- use g_assert() or g_error()|"
        bad=1
    fi
    hits=$(strip "$f" |
        grep -nE '(^|[^_[:alnum:].>])(malloc|calloc|realloc)[[:space:]]*\(')
    if [ -n "$hits" ]; then
        echo "$hits" | sed "s|^|$f:|; s|\$|   <- use g_new()/g_new0()/g_renew()|"
        bad=1
    fi
done
[ "$bad" -eq 0 ] && echo "check-conventions: $(echo "$files" | wc -w) files clean"
exit "$bad"
