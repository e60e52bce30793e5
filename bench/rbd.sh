#!/bin/bash
# rbd over NBD: dataplaned vs qemu-storage-daemon, with rbd bench as the
# ceiling, on a one-node Ceph cluster started for the run.  See bench/rbd.py.
#
#   bench/rbd.sh [--quick] [--rounds N] [--only IMPL]
set -u
cd "$(dirname "$0")/.."
exec python3 bench/rbd.py "$@"
