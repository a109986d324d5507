#!/usr/bin/env bash
# bench-collect.sh: does 'leaklab collect' keep up with 200 targets?
#
# Starts TARGETS sample services on loopback (PROCS processes of
# scripts/manytargets, several services per process), then runs
# 'leaklab collect' pulling heap and goroutine profiles from all of them
# every EVERY for DURATION, with retention RETAIN so the store reaches a
# steady state. Every SAMPLE seconds it prints what the collector has
# done (captures, failures, skipped rounds), the worst per-target lag
# from the collector's own /metrics, and the collector's CPU (from
# /proc) and memory (RSS from /proc, Go heap in use from /metrics); also
# the targets' CPU and the machine's load average, since on a shared
# machine whether the collector keeps up depends on the CPU it is left.
#
# Leak detection is on as in 'leaklab collect' (DETECT_WINDOW=30m, the
# default; DETECT_WINDOW=0 turns it off): every capture round is judged,
# and the summary reports how many judgements were made, their mean time
# (leaklab_leak_detection_seconds), and the collector's CPU per capture
# round judged. Run it twice, with DETECT_WINDOW=0 and without, to read
# what detection adds.
#
# For scale, in the same run, Prometheus (when installed and PEER is not
# "none") scrapes the same targets' /metrics at the same interval: a
# different job (a metrics scrape, not a profile), reported side by side
# as a CPU and memory ratio so the collector's cost can be read against
# a tool people already run for every service.
#
# Usage: scripts/bench-collect.sh                 (TARGETS=200 EVERY=10s DURATION=10m)
#        DURATION=3m RETAIN=1m scripts/bench-collect.sh
# Needs Go, curl, jq; Prometheus optional (Debian: apt-get install prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=${TARGETS:-200}
PROCS=${PROCS:-4}
EVERY=${EVERY:-10s}
DURATION=${DURATION:-10m}
RETAIN=${RETAIN:-3m}
SAMPLE=${SAMPLE:-30}
CONCURRENCY=${CONCURRENCY:-16}
TYPES=${TYPES:-heap,goroutine}
PEER=${PEER:-prometheus}
DETECT_WINDOW=${DETECT_WINDOW:-30m}
export DETECT_WINDOW

for tool in go curl jq; do
	command -v "$tool" >/dev/null || { echo "bench-collect: $tool not found" >&2; exit 1; }
done
if [ "$PEER" != none ] && ! command -v prometheus >/dev/null; then
	echo "bench-collect: prometheus not installed; running without the side-by-side scrape (apt-get install prometheus)" >&2
	PEER=none
fi

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/leaklab" ./cmd/leaklab
go build -o "$work/manytargets" ./scripts/manytargets

# The targets: PROCS processes sharing TARGETS services.
left=$TARGETS
target_pids=()
for i in $(seq 1 "$PROCS"); do
	n=$(( left / (PROCS - i + 1) ))
	left=$(( left - n ))
	"$work/manytargets" -n "$n" -out "$work/t$i.json" 2>>"$work/targets.log" &
	pids+=($!)
	target_pids+=($!)
done
deadline=$(( $(date +%s) + 120 ))
for i in $(seq 1 "$PROCS"); do
	until [ -s "$work/t$i.json" ]; do
		[ "$(date +%s)" -lt "$deadline" ] || { echo "bench-collect: targets did not start" >&2; cat "$work/targets.log" >&2; exit 1; }
		sleep 0.2
	done
done
jq -s 'add' "$work"/t*.json >"$work/targets.json"
count=$(jq '[.[].targets[]] | length' "$work/targets.json")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

peer_pid=""
if [ "$PEER" != none ]; then
	cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: $EVERY
  scrape_timeout: $EVERY
scrape_configs:
  - job_name: bench
    file_sd_configs:
      - files: ['$work/targets.json']
EOF
	prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
		--web.listen-address="127.0.0.1:$(free_port)" >"$work/prometheus.log" 2>&1 &
	peer_pid=$!
	pids+=("$peer_pid")
fi

mkdir -p "$work/home"
LEAKLAB_HOME="$work/home" "$work/leaklab" collect --targets "$work/targets.json" --every "$EVERY" \
	--for "$DURATION" --retain "$RETAIN" --concurrency "$CONCURRENCY" --type "$TYPES" \
	--detect-window "$DETECT_WINDOW" --listen 127.0.0.1:0 --quiet --output json >"$work/collect.out" 2>"$work/collect.err" &
cpid=$!
pids+=("$cpid")
until [ -s "$work/collect.out" ]; do
	kill -0 "$cpid" 2>/dev/null || { echo "bench-collect: collect exited" >&2; cat "$work/collect.err" >&2; exit 1; }
	sleep 0.2
done
url=$(head -1 "$work/collect.out" | jq -r .url)

hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
targets_ticks() { local s=0 p; for p in "${target_pids[@]}"; do s=$(( s + $(cpu_ticks "$p") )); done; echo "$s"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
metric_sum() { awk -v m="$1" '$1 ~ "^"m"[{ ]" || $1 == m {s += $2} END {printf "%.0f", s}' "$work/metrics"; }
metric_max() { awk -v m="$1" '$1 ~ "^"m"[{ ]" || $1 == m {if ($2 > x) x = $2} END {printf "%.3f", x}' "$work/metrics"; }

ntypes=$(awk -F, '{print NF}' <<<"$TYPES")
every_s=$(awk -v e="$EVERY" 'BEGIN { if (e ~ /ms$/) print substr(e,1,length(e)-2)/1000; else if (e ~ /m$/) print substr(e,1,length(e)-1)*60; else print substr(e,1,length(e)-1) }')
echo "bench-collect: $count targets, $TYPES every $EVERY for $DURATION (retain $RETAIN, concurrency $CONCURRENCY, detect window $DETECT_WINDOW), $(nproc) cores, $(date -u +%FT%TZ)"
echo "expected: $(awk -v n="$count" -v t="$ntypes" -v e="$every_s" 'BEGIN {printf "%.1f", n*t/e}') profiles/s"
printf '%6s %9s %8s %7s %8s %9s %9s %8s %8s %9s %9s %9s %6s\n' t_s captures per_s fails skipped max_lag_s cpu_%core rss_MiB heap_MiB stored peer_cpu% tgt_cpu% load1
start=$(date +%s)
last_t=$start last_c=$(cpu_ticks "$cpid") last_caps=0
last_p=0; [ -n "$peer_pid" ] && last_p=$(cpu_ticks "$peer_pid")
first_c=$last_c first_p=$last_p
last_tg=$(targets_ticks) first_tg=$last_tg
rows="$work/rows"
: >"$rows"
while kill -0 "$cpid" 2>/dev/null; do
	sleep "$SAMPLE"
	kill -0 "$cpid" 2>/dev/null || break
	curl -s --max-time 5 "$url/metrics" >"$work/metrics" || continue
	now=$(date +%s)
	c=$(cpu_ticks "$cpid")
	caps=$(metric_sum leaklab_collect_captures_total)
	fails=$(metric_sum leaklab_collect_failures_total)
	skipped=$(metric_sum leaklab_collect_skipped_rounds_total)
	lag=$(metric_max leaklab_collect_lag_seconds)
	heap=$(metric_sum go_memstats_heap_inuse_bytes)
	stored=$(metric_sum leaklab_collect_store_profiles)
	rss=$(rss_kb "$cpid")
	dt=$(( now - last_t ))
	cpu=$(awk -v a="$c" -v b="$last_c" -v hz="$hz" -v dt="$dt" 'BEGIN {printf "%.1f", 100*(a-b)/hz/dt}')
	rate=$(awk -v a="$caps" -v b="$last_caps" -v dt="$dt" 'BEGIN {printf "%.1f", (a-b)/dt}')
	peer="-"
	if [ -n "$peer_pid" ]; then
		p=$(cpu_ticks "$peer_pid")
		peer=$(awk -v a="$p" -v b="$last_p" -v hz="$hz" -v dt="$dt" 'BEGIN {printf "%.1f", 100*(a-b)/hz/dt}')
		last_p=$p
	fi
	tg=$(targets_ticks)
	tgcpu=$(awk -v a="$tg" -v b="$last_tg" -v hz="$hz" -v dt="$dt" 'BEGIN {printf "%.1f", 100*(a-b)/hz/dt}')
	printf '%6d %9d %8s %7d %8d %9s %9s %8.1f %8.1f %9d %9s %9s %6s\n' $(( now - start )) "$caps" "$rate" "$fails" "$skipped" "$lag" "$cpu" \
		"$(awk -v k="$rss" 'BEGIN {print k/1024}')" "$(awk -v b="$heap" 'BEGIN {print b/1048576}')" "$stored" "$peer" "$tgcpu" "$(cut -d' ' -f1 /proc/loadavg)"
	echo "$(( now - start )) $caps $lag $cpu $rss $heap" >>"$rows"
	judged=$(metric_sum leaklab_leak_detection_seconds_count)
	judge_s=$(awk -v m=leaklab_leak_detection_seconds_sum '$1 == m {printf "%.6f", $2}' "$work/metrics")
	last_t=$now last_c=$c last_caps=$caps last_tg=$tg
done
wait "$cpid" || { echo "bench-collect: collect failed" >&2; cat "$work/collect.err" >&2; exit 1; }
end=$(date +%s)

echo
echo "summary (collector's own report):"
tail -n +2 "$work/collect.out" | jq '{duration_seconds, captures, failures, bytes, discarded, pruned}'
elapsed=$(( end - start ))
total=$(tail -n +2 "$work/collect.out" | jq .captures)
ran=$(tail -n +2 "$work/collect.out" | jq .duration_seconds)
awk -v caps="$total" -v n="$count" -v t="$ntypes" -v e="$every_s" -v el="$ran" \
	'BEGIN {printf "kept up: %d captures in %.0fs = %.1f/s against %.1f/s scheduled (%.1f%%)\n", caps, el, caps/el, n*t/e, 100*caps/el/(n*t/e)}'
# Lag and memory, first half of the samples against the second half:
# growing lag means falling behind; growing memory after retention has
# reached its steady state means a leak.
awk '{ r[NR] = $0 } END {
	if (NR < 4) { print "too few samples for a trend; run longer"; exit }
	h = int(NR / 2)
	for (i = 1; i <= NR; i++) { split(r[i], f, " "); if (i <= h) { l1 = (f[3] > l1 ? f[3] : l1); c1 += f[4]; n1++ } else { l2 = (f[3] > l2 ? f[3] : l2); c2 += f[4]; n2++ } }
	split(r[h + 1], a, " "); split(r[NR], b, " ")
	printf "worst per-target lag: %.3fs in the first half, %.3fs in the second\n", l1, l2
	printf "collector CPU: %.1f%% of one core on average\n", (c1 + c2) / (n1 + n2)
	printf "collector RSS: %.1f MiB at %ds, %.1f MiB at %ds (Go heap in use %.1f -> %.1f MiB)\n", a[5] / 1024, a[1], b[5] / 1024, b[1], a[6] / 1048576, b[6] / 1048576
}' "$rows"
awk -v caps="$total" -v t="$ntypes" -v c="$last_c" -v c0="$first_c" -v hz="$hz" \
	'BEGIN { if (caps > 0) printf "collector CPU per capture round (capture, store%s): %.2f ms\n", (ENVIRON["DETECT_WINDOW"] != "0" ? ", identity probe, judge" : ""), 1000*(c-c0)/hz/(caps/t) }'
awk -v caps="$total" -v tg="$last_tg" -v tg0="$first_tg" -v hz="$hz" -v el="$ran" \
	'BEGIN { if (caps > 0) printf "targets: %.1f%% of one core on average, %.2f ms of CPU per profile served\n", 100*(tg-tg0)/hz/el, 1000*(tg-tg0)/hz/caps }'
if [ "$DETECT_WINDOW" != 0 ]; then
	awk -v j="${judged:-0}" -v js="${judge_s:-0}" \
		'BEGIN { if (j == 0) { print "detection: no round judged (a series is judged once it spans half the window)"; exit }
		printf "detection: %d capture rounds judged, judging alone %.2f ms each on average (leaklab_leak_detection_seconds)\n", j, 1000*js/j }'
fi
if [ -n "$peer_pid" ]; then
	p_total=$(cpu_ticks "$peer_pid")
	awk -v c="$last_c" -v c0="$first_c" -v p="$p_total" -v p0="$first_p" -v hz="$hz" -v el="$elapsed" -v pr="$(rss_kb "$peer_pid")" -v cr="$(tail -1 "$rows" | awk '{print $5}')" \
		'BEGIN {printf "side by side: collector %.1fs CPU, Prometheus (scraping /metrics of the same targets) %.1fs CPU over the run: ratio %.2f; RSS %.1f MiB vs %.1f MiB\n", (c-c0)/hz, (p-p0)/hz, ((p-p0) > 0 ? (c-c0)/(p-p0) : 0), cr/1024, pr/1024}'
fi
