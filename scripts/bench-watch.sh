#!/usr/bin/env bash
# bench-watch.sh: what being watched costs a service, side by side.
#
# Runs a sample service (fixed variant, so nothing grows) and alternates
# two kinds of run RUNS times, under the same closed-model load from
# 'leaklab load' (CONNS connections for DURATION):
#   unwatched: just the load;
#   watched:   the load while 'leaklab watch' snapshots the service at the
#              default interval (heap after a GC, goroutines, every 5s).
# Prints each run's requests/s, the medians and the throughput lost.
# Throughput on a shared machine is noisy, so it also measures the cost of
# one snapshot directly: the service's own CPU time (from /proc) over 21
# snapshots taken one a second while it is otherwise idle.
#
# Usage: scripts/bench-watch.sh     (RUNS=5 CONNS=32 DURATION=20s SERVICE=escaping-hot-path)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
CONNS=${CONNS:-32}
DURATION=${DURATION:-20s}
SERVICE=${SERVICE:-escaping-hot-path}
EVERY=${EVERY:-5s}

work=$(mktemp -d)
svc_pid=""
cleanup() {
	[ -n "$svc_pid" ] && kill "$svc_pid" 2>/dev/null && wait "$svc_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/leaklab" ./cmd/leaklab
export LEAKLAB_HOME="$work/home"

"$work/leaklab" run "$SERVICE" --fixed --addr 127.0.0.1:0 --output json --quiet >"$work/run.json" &
svc_pid=$!
for _ in $(seq 50); do [ -s "$work/run.json" ] && break; sleep 0.1; done
url=$(grep -o '"url":"http://[^"/]*"' "$work/run.json" | head -1 | cut -d'"' -f4)
path=$("$work/leaklab" services "$SERVICE" --output json | sed -n 's/.*"path": "\([^"]*\)".*/\1/p' | head -1 | sed 's/\\u0026/\&/g')
target="$url$path"
echo "service $SERVICE (fixed) at $url; load: $CONNS connections for $DURATION on $path"

rps() { sed -n 's/^  "rps": \([0-9.]*\).*/\1/p'; }
load() { "$work/leaklab" load "$target" -c "$CONNS" -d "$DURATION" --output json | rps; }

cpu_ticks() { awk '{print $14+$15}' "/proc/$svc_pid/stat"; }
hz=$(getconf CLK_TCK)
snapshot_cost() { # $1: what the snapshots are; the rest: extra watch flags
	local what=$1
	shift
	local before after
	before=$(cpu_ticks)
	"$work/leaklab" watch "$url" --every 1s --for 20s --no-store "$@" >/dev/null 2>&1 || true
	after=$(cpu_ticks)
	awk -v t=$((after - before)) -v hz="$hz" -v every="$EVERY" -v cores="$(nproc)" -v what="$what" 'BEGIN {
		per = t / hz / 21; e = every + 0
		printf "cost of a snapshot (%s): %.1f ms of the service'"'"'s CPU (idle service, 21 snapshots); at one per %ss on %d cores: %.2f%% of the CPU\n", what, per * 1000, e, cores, per / (e * cores) * 100
	}'
}
snapshot_cost "heap and goroutines, and a watch's two goroutine dumps"
snapshot_cost "without the goroutine dumps" --no-goroutine-ids

"$work/leaklab" load "$target" -c "$CONNS" -d 3s >/dev/null # warm-up

unwatched=() watched=()
for i in $(seq "$RUNS"); do
	a=$(load)
	"$work/leaklab" watch "$url" --every "$EVERY" --for "$DURATION" --no-store --output json >/dev/null 2>&1 &
	watch_pid=$!
	b=$(load)
	wait "$watch_pid" || true
	unwatched+=("$a") watched+=("$b")
	printf 'run %d: unwatched %10.0f req/s   watched %10.0f req/s\n' "$i" "$a" "$b"
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
mu=$(median "${unwatched[@]}")
mw=$(median "${watched[@]}")
awk -v u="$mu" -v w="$mw" 'BEGIN {printf "median: unwatched %.0f req/s, watched %.0f req/s: ratio %.3f, throughput lost %.1f%%\n", u, w, w/u, (1-w/u)*100}'
