#!/bin/bash
# Provoke a real kernel splat with LKDTM (the lkdtm profile's kernels): CRASH is one of
# /sys/kernel/debug/provoke-crash/DIRECT's types (WARNING, BUG, ...). For kharness's own tests.
set -eu
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug
echo "provoking $CRASH" >&2
echo "$CRASH" > /sys/kernel/debug/provoke-crash/DIRECT
