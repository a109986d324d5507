#!/usr/bin/env bash
# Benchmark: 'leaklab diff' against 'go tool pprof -top -diff_base' on the
# same synthetic pair of heap profiles (200,000 distinct stacks each by
# default), side by side in one run. Prints each run's wall time, CPU time
# and peak RSS, the medians, and the ratios. The profiles are generated
# here (profiles/internal/synthprofile) into a temporary directory and
# removed afterwards; nothing is committed.
#
#   scripts/bench-diff.sh                 # 3 runs of each tool
#   RUNS=5 STACKS=200000 scripts/bench-diff.sh
#
# Needs Go, awk and GNU time (/usr/bin/time, Debian package "time").
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
STACKS=${STACKS:-200000}
DEPTH=${DEPTH:-20}
TIME=/usr/bin/time
if ! "$TIME" -f %e true 2>/dev/null; then
	echo "bench-diff: needs GNU time at $TIME (apt-get install time)" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/leaklab" ./cmd/leaklab
go build -o "$work/synthprofile" ./profiles/internal/synthprofile

echo "generating a pair of heap profiles with $STACKS distinct stacks…" >&2
"$work/synthprofile" -stacks "$STACKS" -depth "$DEPTH" -base "$work/base.pb.gz" -current "$work/current.pb.gz"
ls -l "$work/base.pb.gz" "$work/current.pb.gz" | awk '{n = split($NF, p, "/"); printf "  %s  %.1f MB\n", p[n], $5 / 1e6}' >&2

# Both tools print to /dev/null; GNU time writes "wall user sys maxrss_kb".
measure() { # label, command...
	local label=$1
	shift
	"$TIME" -f "%e %U %S %M" -o "$work/t" "$@" >/dev/null 2>"$work/err" || {
		echo "bench-diff: $label failed:" >&2
		cat "$work/err" >&2
		exit 1
	}
	tail -1 "$work/t" | awk -v l="$label" -v r="$run" \
		'{printf "%-8s run %d: wall %6.2f s  cpu %6.2f s  peak RSS %7.1f MiB\n", l, r, $1, $2 + $3, $4 / 1024}' >&2
	tail -1 "$work/t" | awk '{print $1, $2 + $3, $4}' >>"$work/$label.txt"
}

export LEAKLAB_HOME="$work/home"
for run in $(seq 1 "$RUNS"); do
	# Alternate which tool goes first, so neither always gets the warm cache.
	if ((run % 2)); then
		measure pprof go tool pprof -top -diff_base "$work/base.pb.gz" "$work/current.pb.gz"
		measure leaklab "$work/leaklab" diff "$work/base.pb.gz" "$work/current.pb.gz"
	else
		measure leaklab "$work/leaklab" diff "$work/base.pb.gz" "$work/current.pb.gz"
		measure pprof go tool pprof -top -diff_base "$work/base.pb.gz" "$work/current.pb.gz"
	fi
done

# Both tools agree on the largest growth: leaklab's top function has the
# same flat delta in pprof's output (in bytes).
top=$("$work/leaklab" diff "$work/base.pb.gz" "$work/current.pb.gz" --top 1 --output json |
	awk -F'"' '/^ *"function": / {print $4; exit}')
delta=$("$work/leaklab" diff "$work/base.pb.gz" "$work/current.pb.gz" --top 1 --output json |
	awk -F': ' '/^ *"delta": / {gsub(/,/, "", $2); print $2; exit}')
pflat=$(go tool pprof -top -unit=B -nodecount=1000000 -nodefraction=0 -edgefraction=0 -diff_base "$work/base.pb.gz" "$work/current.pb.gz" 2>/dev/null |
	awk -v f="$top" '$6 == f {sub(/B$/, "", $1); print $1; exit}')
if [ "$pflat" != "$delta" ]; then
	echo "bench-diff: the tools disagree: leaklab's top row $top has delta $delta, pprof's flat is '$pflat'" >&2
	exit 1
fi

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
col() { awk -v c="$2" '{print $c}' "$work/$1.txt" | median; }
pw=$(col pprof 1) pc=$(col pprof 2) pr=$(col pprof 3)
lw=$(col leaklab 1) lc=$(col leaklab 2) lr=$(col leaklab 3)
echo
echo "medians of $RUNS runs ($(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)):"
awk -v pw="$pw" -v pc="$pc" -v pr="$pr" -v lw="$lw" -v lc="$lc" -v lr="$lr" 'BEGIN {
	printf "  go tool pprof -top -diff_base: wall %6.2f s  cpu %6.2f s  peak RSS %7.1f MiB\n", pw, pc, pr / 1024
	printf "  leaklab diff:                  wall %6.2f s  cpu %6.2f s  peak RSS %7.1f MiB\n", lw, lc, lr / 1024
	printf "  leaklab is %.1fx faster (wall), uses %.1fx less CPU, and %.3f of pprof'"'"'s peak memory\n", pw / lw, pc / lc, lr / pr
}'
echo "  both report $top growing by $delta bytes (flat)"
