#!/bin/sh
# `make run`: the main job.  Runs the dataplaned daemon with its default
# configuration once it is built; until then, the event-loop demo.
build=${1:-build}
if [ -x "$build/daemon/dataplaned" ]; then
    exec "$build/daemon/dataplaned"
fi
exec "$build/examples/event-loop-demo"
