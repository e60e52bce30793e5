#!/bin/sh
# Builds the fuzz targets with clang (the NBD codec and server, the
# vhost-user codec and virtqueue walker, the vhost-user-blk export) and runs
# them for a short time.
# Usage: tests/fuzz/run.sh [seconds]   (default 30, split between the
# targets; CI calls it as is)
set -e
secs=${1:-30}
top=$(cd "$(dirname "$0")/../.." && pwd)
build="$top/build-fuzz"

if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$top" -Dfuzzing=true -Db_lundef=false \
        -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C "$build" tests/fuzz/fuzz-nbd-protocol tests/fuzz/fuzz-nbd-server \
    tests/fuzz/fuzz-vhost tests/fuzz/fuzz-vhost-server >/dev/null

# Each target gets a quarter of the time, on a scratch copy of its corpus
# so that runs do not grow the checked-in one.
share=$(( (secs + 3) / 4 ))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {
    target=$1 corpus=$2
    mkdir -p "$work/$target"
    cp "$top/tests/fuzz/$corpus"/* "$work/$target"/
    echo "== $target"
    "$build/tests/fuzz/$target" -max_total_time="$share" -max_len=16384 \
        -print_final_stats=1 -artifact_prefix="$build/$target-" \
        "$work/$target" 2>&1 | tail -6
}
run fuzz-nbd-protocol corpus
run fuzz-nbd-server corpus-server
run fuzz-vhost corpus-vhost
run fuzz-vhost-server corpus-vhost-server
# libFuzzer exits nonzero on a finding, which the pipe hides: look for
# the artifacts instead.
if ls "$build"/*crash-* "$build"/*leak-* "$build"/*timeout-* \
    >/dev/null 2>&1; then
    echo "fuzz: findings in $build" >&2
    exit 1
fi
