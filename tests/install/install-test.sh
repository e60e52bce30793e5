#!/bin/sh
# The library as a user gets it: `meson install --destdir` into a temporary
# directory, then, with nothing but pkg-config and the installed files:
#  - every installed header compiles on its own (self-contained);
#  - libdataplane.so exports exactly the functions the headers declare
#    (include/dataplane/visibility.h), and every header uses DP_API_BEGIN;
#  - the examples build against it and one runs;
#  - `man dataplaned` finds the man page.
# Usage: install-test.sh <build dir> <source dir>
set -eu
build=$1
src=$2
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet ||
    fail "meson install"
pc=$(find "$tmp/root" -name dataplane.pc)
[ -n "$pc" ] || fail "no dataplane.pc installed"
export PKG_CONFIG_PATH="$(dirname "$pc")"
cflags=$(pkg-config --cflags dataplane) || fail "pkg-config --cflags"
libs=$(pkg-config --libs dataplane) || fail "pkg-config --libs"
# The .pc file is relocatable (${pcfiledir}/..): resolve the "..".
incdir=$(cd "$(pkg-config --variable=includedir dataplane)" && pwd -P)
libdir=$(cd "$(pkg-config --variable=libdir dataplane)" && pwd -P)
[ -f "$libdir/libdataplane.so" ] || fail "no libdataplane.so in $libdir"

# 1. Each header alone, as the first include of a file.
n=0
for h in "$incdir"/dataplane/*.h; do
    name=dataplane/$(basename "$h")
    printf '#include <%s>\n' "$name" >"$tmp/one.c"
    $cc -std=gnu11 -Wall -Werror -fsyntax-only $cflags "$tmp/one.c" ||
        fail "$name does not compile on its own"
    case $name in
    dataplane/visibility.h) ;;
    *) grep -q '^DP_API_BEGIN' "$h" || fail "$name lacks DP_API_BEGIN" ;;
    esac
    n=$((n + 1))
done
echo "$n headers compile on their own"

# 2. Exported symbols == functions the headers declare (gcc -aux-info
# lists every prototype a translation unit sees, with its file).
for h in "$incdir"/dataplane/*.h; do
    printf '#include <dataplane/%s>\n' "$(basename "$h")"
done >"$tmp/all.c"
gcc -std=gnu11 -fsyntax-only -aux-info "$tmp/all.aux" $cflags "$tmp/all.c"
grep "/include/dataplane/[a-z-]*\.h:" "$tmp/all.aux" | grep -v '\bstatic\b' |
    sed 's/ *(.*//; s/.*[ *]//' | sort -u >"$tmp/declared"
nm -D --defined-only "$libdir/libdataplane.so" | awk '$2 == "T" {print $3}' |
    sort -u >"$tmp/exported"
if ! cmp -s "$tmp/declared" "$tmp/exported"; then
    echo "declared in the headers (<) vs exported by libdataplane.so (>):" >&2
    diff "$tmp/declared" "$tmp/exported" | grep '^[<>]' | head -40 >&2
    fail "the shared library's exports differ from the installed API"
fi
echo "$(wc -l <"$tmp/exported") functions exported, each declared in a header"

# 3. The examples, built from their sources with pkg-config alone.
for ex in event-loop-demo offload-checksum "echo-server echo"; do
    set -- $ex
    srcs=""
    for s in "$@"; do
        srcs="$srcs $src/examples/$s.c"
    done
    $cc -std=gnu11 -Wall -Werror $cflags $srcs -o "$tmp/$1" $libs ||
        fail "example $1 does not build against the installed library"
done
echo "the examples build"
printf 'hello\n' >"$tmp/a"
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/offload-checksum" "$tmp/a" "$tmp/a") ||
    fail "offload-checksum failed"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 2 ] || fail "offload-checksum: $out"
LD_LIBRARY_PATH="$libdir" ldd "$tmp/offload-checksum" | grep -q "$libdir/libdataplane.so" ||
    fail "offload-checksum is not linked against the installed library"
echo "offload-checksum runs on the installed libdataplane.so"

# 4. The man page: `man dataplaned` finds it under the installed prefix.
mandir=$(cd "$incdir/../share/man" && pwd -P)
MANPATH="$mandir" MANWIDTH=80 man dataplaned 2>/dev/null | col -b | grep -q '^NAME' ||
    fail "man dataplaned does not find the installed page under $mandir"
echo "man dataplaned finds the installed page"
echo PASS
