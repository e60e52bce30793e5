#!/bin/sh
# Builds the libFuzzer targets with clang and runs each for a short time:
# the NBD codec, the NBD server (plain and TLS), qcow2, the option parsers
# (keyval, command line), the QMP monitor with the daemon's commands, the
# vhost-user codec and virtqueue walker, and the vhost-user-blk export.
# Usage: tests/fuzz/run.sh [seconds]   (default 30, split between the
# targets, at least 8 s each; CI calls it as is)
set -e
secs=${1:-30}
top=$(cd "$(dirname "$0")/../.." && pwd)
build="$top/build-fuzz"

# target corpus-folder, one per line.
targets="
fuzz-nbd-protocol corpus
fuzz-nbd-server corpus-server
fuzz-nbd-server-tls corpus-server-tls
fuzz-qcow2 corpus-qcow2
fuzz-keyval corpus-keyval
fuzz-qmp-monitor corpus-qmp
fuzz-vhost corpus-vhost
fuzz-vhost-server corpus-vhost-server
"

if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$top" -Dfuzzing=true -Db_lundef=false \
        -Dbuildtype=debugoptimized >/dev/null
fi
if ! ninja -C "$build" $(echo "$targets" | awk 'NF {print "tests/fuzz/" $1}') \
    >"$build/fuzz-build.log" 2>&1; then
    tail -40 "$build/fuzz-build.log"
    echo "fuzz: the targets did not build" >&2
    exit 1
fi

# Each target gets its share of the time, on a scratch copy of its corpus so
# that runs do not grow the checked-in one.
n=$(echo "$targets" | awk 'NF' | wc -l)
share=$(( (secs + n - 1) / n ))
[ "$share" -ge 8 ] || share=8
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/findings"
run() {
    target=$1 corpus=$2
    mkdir -p "$work/$target"
    cp "$top/tests/fuzz/$corpus"/* "$work/$target"/
    echo "== $target"
    "$build/tests/fuzz/$target" -max_total_time="$share" -max_len=16384 \
        -print_final_stats=1 -artifact_prefix="$work/findings/$target-" \
        "$work/$target" 2>&1 | tail -6
}
echo "$targets" | while read -r target corpus; do
    if [ -n "$target" ]; then
        run "$target" "$corpus"
    fi
done
# libFuzzer exits nonzero on a finding (crash, leak, timeout, oom), which
# the pipe hides: look for this run's artifacts instead, and keep them.
if [ -n "$(ls "$work/findings")" ]; then
    cp "$work/findings"/* "$build"/
    echo "fuzz: findings, kept in $build:" >&2
    ls "$work/findings" >&2
    exit 1
fi
echo "fuzz: no findings"
