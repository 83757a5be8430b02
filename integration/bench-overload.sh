#!/usr/bin/env bash
# Overload: one gripd, N=10,000 SSE clients on one channel, publishes
# offered far above what the instance can write (RATE msg/s for SECS
# seconds; the default, 100 msg/s to 10,000 clients, is a million
# deliveries/s, about three times what one instance moves on two cores).
# It shows the overload policy of docs/operations.md ("Overload") at work:
# the latency of what is delivered stays bounded, and every publish is
# either delivered to every client that kept up, or refused to its
# publisher (503, counted as pub_err here and as
# gripd_publish_requests_total{result="behind"} by gripd), or lost with a
# counted slow-client disconnect. Nothing is lost silently: the script
# prints the load generator's line and gripd's own counters side by side.
#
# From the repo root, after `make build` and building gripbench
# (cd ../shared/bench && go build -o bin/gripbench ./cmd/gripbench):
#   bash integration/bench-overload.sh
# Knobs: N, RATE, SECS, GRIPD, GRIPBENCH, OUT, GRIPD_ARGS.
set -u
ulimit -n "$(ulimit -Hn)"
GB=${GRIPBENCH:-../shared/bench/bin/gripbench}
G=${GRIPD:-bin/gripd}
OUT=${OUT:-/tmp/overload.jsonl}
N=${N:-10000}
RATE=${RATE:-100}
SECS=${SECS:-30}
TMP=$(mktemp -d)
trap 'kill "${P:-}" "${BK:-}" 2>/dev/null; rm -rf "$TMP"' EXIT

$GB backend -listen 127.0.0.1:27010 >/dev/null 2>&1 &
BK=$!
# shellcheck disable=SC2086
$G --listen 127.0.0.1:27000 --control-listen 127.0.0.1:27001 --admin-listen 127.0.0.1:27005 --log-level warn \
	--route '* 127.0.0.1:27010' ${GRIPD_ARGS:-} >"$TMP/gripd.log" 2>&1 &
P=$!
for _ in $(seq 1 100); do curl -sf -m 1 -o /dev/null http://127.0.0.1:27001/ && break; sleep 0.1; done

# The highest delivery lag seen while the load runs, sampled every 200 ms.
(
	max=0
	while kill -0 "$P" 2>/dev/null; do
		lag=$(curl -sf -m 1 http://127.0.0.1:27005/metrics | awk '/^gripd_delivery_lag_seconds /{print $2}')
		[[ -n $lag ]] && max=$(awk -v a="$max" -v b="$lag" 'BEGIN{print (b>a)?b:a}')
		echo "$max" >"$TMP/maxlag"
		sleep 0.2
	done
) &
SAMPLER=$!

$GB fanout-sse -proxy-url http://127.0.0.1:27000 -publish-url http://127.0.0.1:27001/publish/ -pids "$P" \
	-backend-pids "$BK" -label gripd-overload -tag "rate-$RATE" -n "$N" -messages $((RATE * SECS)) -rate "$RATE" \
	-pub-conc 8 -json "$OUT" 2>/dev/null | tr ' ' '\n' |
	grep -E '^(label|pub_rate|pub_err|expected|received|loss_pct|msgs_lost|msgs_partial|dropped_conns|p50_ms|p99_ms|max_ms|deliv_per_s|proxy_cpu_pct|gen_cpu_pct)=' | tr '\n' ' '
echo
echo "gripd's counters:"
curl -sf http://127.0.0.1:27005/metrics | grep -E '^gripd_(publish_requests_total|slow_subscribers_disconnected_total|deliveries_dropped_total\{format="http-stream"\}|items_delivered_total\{format="http-stream"\})' | sed 's/^/  /'
kill "$SAMPLER" 2>/dev/null
echo "  highest gripd_delivery_lag_seconds seen: $(cat "$TMP/maxlag" 2>/dev/null || echo '?')"
grep -m3 -E 'behind|slow' "$TMP/gripd.log" | cut -c1-300 | sed 's/^/  log: /'
