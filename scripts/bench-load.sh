#!/usr/bin/env bash
# bench-load.sh: leaklab load against wrk, side by side, in the same run.
#
# Builds a hello-world Go server (net/http, its own process) and leaklab,
# then alternates wrk and 'leaklab load' against it RUNS times (who goes
# first alternates too, to cancel drift), each with CONNS connections for
# DURATION. Prints each run's requests/s and the generator's CPU time per
# request, the medians, the ratio leaklab/wrk of the median requests/s, the
# spread of the per-run ratios, and the ratio of the CPU per request (on a
# shared machine the trustworthy figure: it does not depend on how much CPU
# the other jobs left).
#
# Usage: scripts/bench-load.sh            (RUNS=5 CONNS=64 DURATION=5s)
#        RUNS=9 DURATION=10s scripts/bench-load.sh
#        WRK_THREADS=1 LEAKLAB_ARGS='--procs 2' scripts/bench-load.sh
# Needs Go and wrk (Debian: apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
CONNS=${CONNS:-64}
DURATION=${DURATION:-5s}
WRK_THREADS=${WRK_THREADS:-2}   # wrk's default
LEAKLAB_ARGS=${LEAKLAB_ARGS:-}  # e.g. --procs 2

command -v wrk >/dev/null || { echo "bench-load: wrk not found; install it (Debian: apt-get install wrk)" >&2; exit 1; }
command -v go >/dev/null || { echo "bench-load: go not found" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# The server: the smallest net/http hello world, printing its address.
mkdir -p "$work/hello"
cat >"$work/hello/main.go" <<'EOF'
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	hello := []byte("Hello, World!\n")
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(hello) }))
}
EOF
printf 'module hello\n\ngo 1.26\n' >"$work/hello/go.mod"
(cd "$work/hello" && go build -o "$work/hello-server" .)
go build -o "$work/leaklab" ./cmd/leaklab

"$work/hello-server" >"$work/addr" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.05; done
[ -s "$work/addr" ] || { echo "bench-load: hello server did not start" >&2; exit 1; }
url="http://$(cat "$work/addr")/"

# run_wrk and run_leaklab print "rps cpu_us_per_request".
TIMEFORMAT='%3U %3S'
run_wrk() {
	local out cpu
	{ time wrk -t "$WRK_THREADS" -c "$CONNS" -d "$DURATION" "$url" >"$work/wrk.out"; } 2>"$work/wrk.time"
	out=$(cat "$work/wrk.out")
	cpu=$(cat "$work/wrk.time")
	awk -v cpu="$cpu" '
		/requests in/ { n = $1 }
		/Requests\/sec:/ { rps = $2 }
		END { split(cpu, c, " "); printf "%.0f %.2f\n", rps, (c[1] + c[2]) * 1e6 / n }' <<<"$out"
}
run_leaklab() {
	local cpu
	# shellcheck disable=SC2086 # LEAKLAB_ARGS is a list of flags
	{ time "$work/leaklab" load -c "$CONNS" -d "$DURATION" $LEAKLAB_ARGS --output json "$url" >"$work/leaklab.json"; } 2>"$work/leaklab.time"
	cpu=$(cat "$work/leaklab.time")
	# Flat JSON fields: no jq needed.
	awk -v cpu="$cpu" -F'[:,]' '
		/"requests":/ { n = $2 }
		/"rps":/ { rps = $2 }
		END { split(cpu, c, " "); printf "%.0f %.2f\n", rps, (c[1] + c[2]) * 1e6 / n }' "$work/leaklab.json"
}

echo "target $url; $RUNS runs of $DURATION each, $CONNS connections, wrk -t $WRK_THREADS, leaklab load ${LEAKLAB_ARGS:-(defaults)}"
echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run_wrk >/dev/null # warm up the server
: >"$work/results"
printf '%-4s %-8s %12s %18s\n' run tool requests/s cpu_us/request
for i in $(seq "$RUNS"); do
	if ((i % 2)); then order="wrk leaklab"; else order="leaklab wrk"; fi
	for tool in $order; do
		# a process substitution's failure does not trip set -e: check the row
		read -r rps cpu < <("run_$tool") || true
		if [[ ! "${rps:-}" =~ ^[0-9.]+$ ]]; then
			echo "run $i: $tool gave no requests/s; stopping rather than take a median over a missing row" >&2
			exit 1
		fi
		printf '%-4s %-8s %12s %18s\n' "$i" "$tool" "$rps" "$cpu"
		echo "$tool $rps $cpu $i" >>"$work/results"
	done
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
wrk_rps=$(awk '$1 == "wrk" { print $2 }' "$work/results" | median)
ll_rps=$(awk '$1 == "leaklab" { print $2 }' "$work/results" | median)
wrk_cpu=$(awk '$1 == "wrk" { print $3 }' "$work/results" | median)
ll_cpu=$(awk '$1 == "leaklab" { print $3 }' "$work/results" | median)
echo
echo "median requests/s: wrk $wrk_rps, leaklab $ll_rps"
echo "median generator CPU per request: wrk ${wrk_cpu}us, leaklab ${ll_cpu}us"
awk -v a="$ll_rps" -v b="$wrk_rps" 'BEGIN { printf "ratio leaklab/wrk (median requests/s): %.2f\n", a / b }'
# The spread: each run's pair (the two tools back to back) as a ratio.
pairs=$(awk '{ rps[$4, $1] = $2 } END { for (i = 1; (i, "wrk") in rps; i++) printf "%.2f\n", rps[i, "leaklab"] / rps[i, "wrk"] }' "$work/results" | sort -n)
echo "per-run ratios leaklab/wrk: median $(median <<<"$pairs"), range $(head -1 <<<"$pairs") to $(tail -1 <<<"$pairs") ($(tr '\n' ' ' <<<"$pairs"))"
awk -v a="$ll_cpu" -v b="$wrk_cpu" 'BEGIN { printf "ratio leaklab/wrk (median CPU per request): %.2f\n", a / b }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
