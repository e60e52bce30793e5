#!/bin/sh
# The newcomer path: `make run` configures the build before `make check`
# has installed the test packages (libnbd-dev).  `make check` must then
# find them, not skip the libnbd client test.  Simulated without touching
# the system's packages: the first configure sees a pkg-config directory
# without libnbd.pc; then the commands `make check` runs after bootstrap
# reconfigure with everything visible.
# Usage: newcomer-test.sh <source dir>
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

pkg-config --exists libnbd || fail "libnbd-dev is not installed (scripts/bootstrap.sh test)"
mkdir "$tmp/pc"
for d in $(pkg-config --variable pc_path pkg-config | tr : ' '); do
    for f in "$d"/*.pc; do
        [ -e "$f" ] || continue
        case $(basename "$f") in
        libnbd.pc) ;;
        *) [ -e "$tmp/pc/$(basename "$f")" ] || ln -s "$f" "$tmp/pc/" ;;
        esac
    done
done

has_client_test() {
    meson introspect --tests "$tmp/build" | grep -q '"name": "nbd-clients"'
}

# `make run` on a machine without libnbd-dev yet: configured without it.
PKG_CONFIG_LIBDIR="$tmp/pc" meson setup "$tmp/build" "$src" >"$tmp/setup.log" 2>&1 ||
    { cat "$tmp/setup.log"; fail "meson setup"; }
has_client_test && fail "libnbd was visible to the first configure"

# What `make check` runs once bootstrap has installed the test packages.
cmd=$(make -s -n -C "$src" check BUILD="$tmp/build" | grep '^meson configure')
[ -n "$cmd" ] || fail "make check no longer reconfigures"
echo "make check runs: $cmd"
sh -c "$cmd"
ninja -C "$tmp/build" build.ninja >"$tmp/regen.log" 2>&1 ||
    { cat "$tmp/regen.log"; fail "reconfigure"; }
has_client_test || fail "the libnbd client test is still missing after make check's reconfigure"

# And without libnbd, make check's option is an error, not a skip.
PKG_CONFIG_LIBDIR="$tmp/pc" meson setup -Dclient_tests=enabled \
    "$tmp/build2" "$src" >"$tmp/setup2.log" 2>&1 &&
    fail "a missing libnbd was not an error with -Dclient_tests=enabled"
grep -q "libnbd" "$tmp/setup2.log" ||
    { cat "$tmp/setup2.log"; fail "the error does not name libnbd"; }
echo PASS
