#!/bin/sh
# The KUnit suites built into this kernel ran at its boot: their KTAP is in the kernel log,
# which the harness parses with the tree's own tools/testing/kunit/kunit.py (parse --json).
dmesg || exit 1
