#!/usr/bin/env bash
# Times 'leaklab escape' against the bare 'go build -gcflags=-m=2' it
# wraps, side by side on the same large module, and prints the ratio.
#
#   scripts/bench-escape.sh [MODULE_DIR] [PATTERN]
#
# MODULE_DIR defaults to grafana-foundation-sdk/go v0.0.22 (1,250 files of
# generated Go with no dependencies; fetched into the module cache if
# missing). Every run builds a fresh copy of the module, so both tools
# compile every package (the build cache keys on the directory) while the
# standard library comes from the cache for both. The two tools alternate,
# and which goes first alternates, so a busy neighbour on a shared machine
# hurts both alike. RUNS (default 3) sets the number of pairs.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-3}
module=${1:-}
pattern=${2:-./...}
if [ -z "$module" ]; then
	ref=github.com/grafana/grafana-foundation-sdk/go@v0.0.22
	module=$(go mod download -json "$ref" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$module" ] || { echo "cannot download $ref" >&2; exit 1; }
fi

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/leaklab" ./cmd/leaklab

# copy makes a writable copy of the module under a new path.
copy() {
	cp -r "$module" "$1"
	chmod -R u+w "$1"
}

# timed NAME DIR CMD... appends "NAME wall user+sys" to the results.
timed() {
	local name=$1 dir=$2
	shift 2
	local t
	t=$( { TIMEFORMAT='%R %U %S'; time (cd "$dir" && "$@" >/dev/null 2>&1 || true); } 2>&1 )
	echo "$name $t" | awk '{printf "%s %.2f %.2f\n", $1, $2, $3 + $4}' >>"$work/results"
	tail -n 1 "$work/results" >&2
}

echo "module: $module ($pattern), $runs runs each, $(nproc) cores" >&2
for i in $(seq "$runs"); do
	copy "$work/peer-$i"
	copy "$work/leaklab-$i"
	peer=(timed peer "$work/peer-$i" go build -o /dev/null -gcflags=-m=2 "$pattern")
	ours=(timed leaklab "$work/leaklab-$i" "$work/leaklab" escape "$pattern" --output json)
	if ((i % 2)); then "${peer[@]}"; "${ours[@]}"; else "${ours[@]}"; "${peer[@]}"; fi
	chmod -R u+w "$work/peer-$i" "$work/leaklab-$i"
	rm -rf "$work/peer-$i" "$work/leaklab-$i"
done

# Medians of wall-clock and CPU (user+sys) seconds, and the ratios.
median() { # median TOOL COLUMN
	awk -v t="$1" '$1 == t' "$work/results" | cut -d' ' -f"$2" | sort -n |
		awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
pw=$(median peer 2) pc=$(median peer 3) lw=$(median leaklab 2) lc=$(median leaklab 3)
awk -v pw="$pw" -v pc="$pc" -v lw="$lw" -v lc="$lc" 'BEGIN {
	printf "go build -gcflags=-m=2: median %.1fs wall, %.1fs CPU\n", pw, pc
	printf "leaklab escape:         median %.1fs wall, %.1fs CPU\n", lw, lc
	printf "ratio (leaklab / go build): %.2fx wall, %.2fx CPU\n", lw / pw, lc / pc
}'
