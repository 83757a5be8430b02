#!/usr/bin/env bash
# Fan-out through one gripd instance versus three sharing 127.0.0.1:27000
# (SO_REUSEPORT) over NATS, N=10,000 SSE clients in total. From the repo root,
# after `make build` and building ../shared/bench (cd ../shared/bench && go build -o bin/gripbench ./cmd/gripbench):
#   bash integration/bench-fleet.sh && ../shared/bench/bin/gripbench table /tmp/fleet.jsonl
set -u
ulimit -n $(ulimit -Hn)
GB=${GRIPBENCH:-../shared/bench/bin/gripbench}
G=${GRIPD:-bin/gripd}
OUT=${OUT:-/tmp/fleet.jsonl}
$GB backend -listen 127.0.0.1:27010 >/dev/null 2>&1 & BK=$!
sleep 0.5
wait_ready() { for _ in $(seq 1 100); do curl -sf -m 1 -o /dev/null http://127.0.0.1:27000/health && curl -sf -m 1 -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }
run() { # label pids...
  local label=$1; shift
  $GB fanout-sse -proxy-url http://127.0.0.1:27000 -publish-url http://127.0.0.1:27001/publish/ -pids "$(IFS=,; echo "$*")" -backend 127.0.0.1:27010 -label "$label" -n 10000 -messages 200 -rate 100 -json $OUT 2>/dev/null | cut -c1-400
}
# 1: one instance, local broker
$G --listen 127.0.0.1:27000 --control-listen 127.0.0.1:27001 --admin-listen off --log-level warn --route '* 127.0.0.1:27010' >/tmp/f1.log 2>&1 & P1=$!
wait_ready http://127.0.0.1:27001/ && run gripd-1-local $P1; kill $P1; wait $P1 2>/dev/null
# 2: one instance through embedded NATS
$G --listen 127.0.0.1:27000 --control-listen 127.0.0.1:27001 --admin-listen off --log-level warn --route '* 127.0.0.1:27010' --nats-embedded 127.0.0.1:27422 >/tmp/f2.log 2>&1 & P1=$!
wait_ready http://127.0.0.1:27001/ && run gripd-1-nats $P1; kill $P1; wait $P1 2>/dev/null
# 3: three instances sharing the port, NATS embedded in the first
$G --reuse-port --listen 127.0.0.1:27000 --control-listen 127.0.0.1:27001 --admin-listen off --log-level warn --route '* 127.0.0.1:27010' --nats-embedded 127.0.0.1:27422 >/tmp/f3a.log 2>&1 & P1=$!
sleep 0.5
$G --reuse-port --listen 127.0.0.1:27000 --control-listen 127.0.0.1:27002 --admin-listen off --log-level warn --route '* 127.0.0.1:27010' --nats nats://127.0.0.1:27422 >/tmp/f3b.log 2>&1 & P2=$!
$G --reuse-port --listen 127.0.0.1:27000 --control-listen 127.0.0.1:27003 --admin-listen off --log-level warn --route '* 127.0.0.1:27010' --nats nats://127.0.0.1:27422 >/tmp/f3c.log 2>&1 & P3=$!
wait_ready http://127.0.0.1:27003/ && run gripd-3-nats $P1 $P2 $P3
for p in $P3 $P2 $P1; do kill $p; wait $p 2>/dev/null; done
kill $BK
