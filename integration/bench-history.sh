#!/usr/bin/env bash
# The cost of history on fan-out: one gripd with embedded NATS, history off
# and on (JetStream, a temporary store), N=10,000 SSE clients on one
# channel, 200 publishes at 100/s; deliveries/s and latency percentiles.
# The runs alternate (off, on, off, on, ...) so drift on a shared machine
# hits both alike. From the repo root, after `make build` and building
# gripbench (cd ../shared/bench && go build -o bin/gripbench ./cmd/gripbench):
#   bash integration/bench-history.sh && ../shared/bench/bin/gripbench table /tmp/history.jsonl
# Knobs: N, MSGS, RATE, REPEATS, GRIPD, GRIPBENCH, OUT.
set -u
ulimit -n "$(ulimit -Hn)"
GB=${GRIPBENCH:-../shared/bench/bin/gripbench}
G=${GRIPD:-bin/gripd}
OUT=${OUT:-/tmp/history.jsonl}
N=${N:-10000}
MSGS=${MSGS:-200}
RATE=${RATE:-100}
REPEATS=${REPEATS:-3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
printf 'history: {enabled: false}\n' >"$TMP/off.yaml"
printf 'history: {enabled: true}\n' >"$TMP/on.yaml"

$GB backend -listen 127.0.0.1:27010 >/dev/null 2>&1 &
BK=$!
wait_ready() { for _ in $(seq 1 100); do curl -sf -m 1 -o /dev/null http://127.0.0.1:27001/ && return 0; sleep 0.1; done; return 1; }
run() { # label config
	$G --config "$2" --listen 127.0.0.1:27000 --control-listen 127.0.0.1:27001 --admin-listen off --log-level warn \
		--route '* 127.0.0.1:27010' --nats-embedded 127.0.0.1:27422 >"$TMP/$1.log" 2>&1 &
	local P=$!
	if wait_ready; then
		$GB fanout-sse -proxy-url http://127.0.0.1:27000 -publish-url http://127.0.0.1:27001/publish/ -pids "$P" \
			-backend 127.0.0.1:27010 -label "$1" -n "$N" -messages "$MSGS" -rate "$RATE" -json "$OUT" 2>/dev/null | cut -c1-400
	else
		echo "$1: gripd did not start"; cat "$TMP/$1.log"
	fi
	kill "$P"
	wait "$P" 2>/dev/null
}
for _ in $(seq 1 "$REPEATS"); do
	run gripd-history-off "$TMP/off.yaml"
	run gripd-history-on "$TMP/on.yaml"
done
kill "$BK"
