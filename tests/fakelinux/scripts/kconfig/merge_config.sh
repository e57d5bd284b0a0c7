#!/bin/sh
# merge_config.sh -m -O DIR BASE FRAGMENT...: the fragments' lines after the base's, a later
# value of an option replacing an earlier one (what the kernel's script does, without Kconfig).
set -e
[ "$1" = "-m" ] && shift
[ "$1" = "-O" ] && { out=$2; shift 2; }
base=$1; shift
tmp=$(mktemp)
cat "$base" "$@" | awk '
	/^CONFIG_[A-Za-z0-9_]+=/ { split($0, kv, "="); key = kv[1] }
	/^# CONFIG_[A-Za-z0-9_]+ is not set/ { key = $2 }
	key != "" { if (!(key in seen)) order[n++] = key; seen[key] = $0; key = "" }
	END { for (i = 0; i < n; i++) print seen[order[i]] }' > "$tmp"
mv "$tmp" "$out/.config"
