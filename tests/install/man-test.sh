#!/bin/sh
# The dataplaned(8) man page, as built from docs/dataplaned.md: it renders,
# and it covers every option of `dataplaned --help`, every QMP command of
# the dispatch table (daemon/qmp-commands.c), the signals and the exit
# status.  (tests/install checks that `man dataplaned` finds it installed.)
# Usage: man-test.sh <dataplaned> <dataplaned.8> <source dir>
set -eu
daemon=$1
page=$2
src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

[ -s "$page" ] || fail "no man page at $page"
MANWIDTH=80 man -l "$page" 2>"$tmp/warn" | col -b >"$tmp/page.txt"
[ -s "$tmp/page.txt" ] || fail "man -l renders nothing"
! grep -q . "$tmp/warn" || { cat "$tmp/warn"; fail "man warns"; }
for section in NAME SYNOPSIS DESCRIPTION OPTIONS SIGNALS "EXIT STATUS"; do
    grep -q "^$section\$" "$tmp/page.txt" || fail "no $section section"
done

missing=""
# Rendered text breaks words at hyphens across lines: join lines first.
tr '\n' ' ' <"$tmp/page.txt" | sed 's/‐ *//g; s/- \{2,\}/-/g' >"$tmp/flat.txt"
for opt in $("$daemon" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
    grep -qF -- "$opt" "$tmp/flat.txt" || missing="$missing $opt"
done
for cmd in $(sed -n 's/^ *{"\([a-z_-]*\)", qmp_cmd_.*/\1/p' \
    "$src/daemon/qmp-commands.c"); do
    grep -qF -- "$cmd" "$tmp/flat.txt" || missing="$missing $cmd"
done
for word in SIGTERM SIGINT SIGHUP SIGPIPE; do
    grep -qF "$word" "$tmp/flat.txt" || missing="$missing $word"
done
[ -z "$missing" ] || fail "the man page does not mention:$missing"
echo "options, QMP commands, signals and exit status all in dataplaned(8)"
echo PASS
