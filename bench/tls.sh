#!/bin/bash
# NBD over TLS side by side: bench/nbd.sh --tls (see there).  dataplaned,
# nbdkit --tls=require, qemu-nbd --tls-creds and qemu-storage-daemon with
# tls-creds, the same fio nbd client (libnbd, nbds+unix URI, client
# certificates), jobs 4k random read QD32 and 256k sequential read QD8;
# figures tls-<job>-{iops,lat-mean,lat-p99,cpu-per-op}.
#
#   bench/tls.sh [--quick] [--rounds N] [--only SERVER]
#
# One command for the whole comparison: bench/run --only tls (under
# flock /tmp/dataplane-bench.lock on a shared machine).
exec "$(dirname "$0")/nbd.sh" --tls "$@"
