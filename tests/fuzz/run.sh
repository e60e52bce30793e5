#!/bin/sh
# Builds the NBD codec fuzz target with clang and runs it for a short time.
# Usage: tests/fuzz/run.sh [seconds]   (default 30; CI calls it as is)
set -e
secs=${1:-30}
top=$(cd "$(dirname "$0")/../.." && pwd)
build="$top/build-fuzz"

if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$top" -Dfuzzing=true -Db_lundef=false \
        -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C "$build" tests/fuzz/fuzz-nbd-protocol >/dev/null

# Work on a scratch copy of the corpus so that runs do not grow the
# checked-in one.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$top"/tests/fuzz/corpus/* "$work"/
"$build/tests/fuzz/fuzz-nbd-protocol" -max_total_time="$secs" \
    -max_len=16384 -print_final_stats=1 -artifact_prefix="$build/" "$work" 2>&1 | tail -20
# libFuzzer exits nonzero on a finding; the pipe hides it, so check.
! ls "$build"/crash-* "$build"/leak-* "$build"/timeout-* >/dev/null 2>&1
