#!/bin/sh
# Install the Debian packages dataplane needs, only those missing.
# Idempotent and silent when nothing is missing.
# Usage: scripts/bootstrap.sh [build|run|test|bench]
#   build  compilers, meson, the libraries, scdoc (the man page)
#   run    build + the clients `make run` suggests (nbdinfo, qemu-io)
#   test   build + run + everything the tests drive
#   bench  test + the benchmarks' peers
set -e

build_pkgs="gcc make meson ninja-build pkg-config libglib2.0-dev liburing-dev libjansson-dev scdoc zlib1g-dev libzstd-dev librbd-dev libgnutls28-dev"
run_pkgs="libnbd-bin qemu-utils"
test_pkgs="libnbd-dev python3-libnbd qemu-system-common qemu-system-x86 busybox-static fio python3 clang clang-format libclang-rt-14-dev ceph-mon ceph-osd ceph-common gnutls-bin"
bench_pkgs="nbdkit qemu-system-common libuv1-dev libevent-dev gnuplot-nox qemu-block-extra"

case "${1:-build}" in
build) want="$build_pkgs" ;;
run) want="$build_pkgs $run_pkgs" ;;
test) want="$build_pkgs $run_pkgs $test_pkgs" ;;
bench) want="$build_pkgs $run_pkgs $test_pkgs $bench_pkgs" ;;
*) echo "bootstrap.sh: unknown set '$1' (build, run, test or bench)" >&2; exit 1 ;;
esac

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "bootstrap.sh: missing packages:$missing (run as root, or install them)" >&2
    exit 1
fi
echo "bootstrap.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends $missing >/dev/null
