#!/usr/bin/env bash
# Runs gripd in front of the example backend (examples/sse-feed) and prints
# commands to try with curl in another terminal. Ctrl-C stops both.
#
#   ./examples/demo.sh                 # or: make demo
#   DEMO_SELFTEST=1 ./examples/demo.sh # runs the clients and publishes itself,
#                                      # prints what the clients got, exits 0 on success
#
# Ports (environment): DEMO_PORT (clients, default 7999), DEMO_CONTROL_PORT
# (control API, default 5561), DEMO_BACKEND_PORT (the backend, default 8000).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PORT=${DEMO_PORT:-7999}
CONTROL_PORT=${DEMO_CONTROL_PORT:-5561}
BACKEND_PORT=${DEMO_BACKEND_PORT:-8000}
SELFTEST=${DEMO_SELFTEST:-0}

die() {
  echo "demo: $*" >&2
  exit 1
}

command -v curl >/dev/null 2>&1 || die "needs curl"
for p in "$PORT" "$CONTROL_PORT" "$BACKEND_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p is in use; stop what listens there or set DEMO_PORT / DEMO_CONTROL_PORT / DEMO_BACKEND_PORT"
  fi
done

if [ ! -x bin/gripd ]; then
  echo "demo: building bin/gripd" >&2
  go build -o bin/gripd ./cmd/gripd
fi
echo "demo: building bin/sse-feed" >&2
go build -o bin/sse-feed ./examples/sse-feed

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gripd-demo.XXXXXX")
PIDS=()
# all_alive: whether every process started so far is still running.
all_alive() {
  local pid
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do
    kill -0 "$pid" 2>/dev/null || return 1
  done
}
# cleanup stops what this script started, by PID: TERM, then KILL after 5 s.
cleanup() {
  local pid alive
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=0
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping"; exit 0' INT TERM HUP

# In the selftest the logs go to files (shown if something fails);
# otherwise to this terminal.
if [ "$SELFTEST" = 1 ]; then
  BACKEND_LOG=$WORK/backend.log GRIPD_LOG=$WORK/gripd.log
else
  BACKEND_LOG=/dev/stderr GRIPD_LOG=/dev/stderr
fi
show_logs() {
  if [ "$SELFTEST" = 1 ]; then
    echo "--- backend log"; cat "$BACKEND_LOG"
    echo "--- gripd log"; cat "$GRIPD_LOG"
  fi >&2
}

bin/sse-feed -listen "127.0.0.1:$BACKEND_PORT" >>"$BACKEND_LOG" 2>&1 </dev/null &
PIDS+=($!)
bin/gripd --listen ":$PORT" --control-listen "127.0.0.1:$CONTROL_PORT" \
  --route "* 127.0.0.1:$BACKEND_PORT" --log-format console >>"$GRIPD_LOG" 2>&1 </dev/null &
PIDS+=($!)

# Wait (at most 10 s) until gripd proxies to the backend and the control
# API answers.
ready=0
for _ in $(seq 1 100); do
  all_alive || { show_logs; die "a process exited at startup (see its log above)"; }
  if curl -sf -m 1 -o /dev/null "http://127.0.0.1:$PORT/hello" &&
    curl -sf -m 1 -o /dev/null "http://127.0.0.1:$CONTROL_PORT/"; then
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || { show_logs; die "gripd or the backend did not answer within 10 s"; }

# How to reach the control API from `gripd publish`: its default is
# http://127.0.0.1:5561, so --url is only needed on another port.
URL_FLAG=""
[ "$CONTROL_PORT" = 5561 ] || URL_FLAG="--url http://127.0.0.1:$CONTROL_PORT "

if [ "$SELFTEST" != 1 ]; then
  cat <<EOF

gripd is running: clients on :$PORT, control API on 127.0.0.1:$CONTROL_PORT,
in front of the example backend on 127.0.0.1:$BACKEND_PORT (examples/sse-feed).
Try these in another terminal:

  curl -N 'http://localhost:$PORT/feed?channel=news'   # an SSE stream, held open
  curl 'http://localhost:$PORT/poll?channel=news'      # a long-poll (answers on publish or after 20 s)
  curl http://localhost:$PORT/hello                    # plain proxying

Publish to channel "news"; both clients above get it:

  ./bin/gripd publish ${URL_FLAG}news \$'data: hello\n'
      # publish adds a newline, so streams get "data: hello\n\n": a complete SSE event
  curl -d '{"items":[{"channel":"news","formats":{"http-stream":{"content":"data: hi\n\n"},"http-response":{"body":"{\"messages\":[\"hi\"]}\n"}}}]}' \\
      http://localhost:$CONTROL_PORT/publish/
      # Pushpin's publish JSON: an SSE event for streams, a JSON body for long-polls
  ./bin/gripd publish ${URL_FLAG}--close news
      # ends the streams

Ctrl-C stops gripd and the backend.

EOF
  # Until Ctrl-C, or until one of the two exits.
  while all_alive; do sleep 1; done
  echo "demo: gripd or the backend exited; stopping" >&2
  exit 1
fi

# ---- DEMO_SELFTEST=1: be the clients and the publisher, bounded to ~10 s.
CHANNEL=selftest-$$
fail() {
  show_logs
  echo "--- stream client got:"; cat "$WORK/stream.out" 2>/dev/null || true
  echo "--- long-poll client got:"; cat "$WORK/poll.out" 2>/dev/null || true
  die "selftest FAILED: $*"
}
# wait_for FILE TEXT TENTHS: wait until FILE contains TEXT.
wait_for() {
  for _ in $(seq 1 "$3"); do
    grep -qF -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
publish_json() {
  curl -sf -m 5 -o /dev/null -d "$1" "http://127.0.0.1:$CONTROL_PORT/publish/"
}

echo "demo: selftest on channel $CHANNEL"
curl -sN -m 10 "http://127.0.0.1:$PORT/feed?channel=$CHANNEL" >"$WORK/stream.out" &
STREAM_PID=$!
PIDS+=("$STREAM_PID")
curl -s -m 10 "http://127.0.0.1:$PORT/poll?channel=$CHANNEL" >"$WORK/poll.out" &
POLL_PID=$!
PIDS+=("$POLL_PID")

# The stream is subscribed once its first bytes arrive. The long-poll shows
# nothing until it is answered, so wait for the backend to have seen it,
# and give gripd a moment to subscribe.
wait_for "$WORK/stream.out" ": connected" 30 || fail "the stream did not start"
wait_for "$BACKEND_LOG" "long-poll on channel \"$CHANNEL\"" 30 || fail "the long-poll did not reach the backend"
sleep 0.3

# 1. With curl, Pushpin's JSON: an SSE event for streams, a JSON body for
#    long-polls. Published again (long-poll format only) if the long-poll
#    was not yet subscribed.
publish_json '{"items":[{"channel":"'"$CHANNEL"'","formats":{"http-stream":{"content":"data: hello from curl\n\n"},"http-response":{"body":"{\"messages\":[\"hello from curl\"]}\n"}}}]}' ||
  fail "publishing with curl failed"
for _ in 1 2 3; do
  wait_for "$WORK/poll.out" "messages" 10 && break
  publish_json '{"items":[{"channel":"'"$CHANNEL"'","formats":{"http-response":{"body":"{\"messages\":[\"hello from curl\"]}\n"}}}]}' ||
    fail "publishing with curl failed"
done
wait "$POLL_PID" || fail "the long-poll client failed"

# 2. With gripd publish: it adds a newline, so this is "data: ...\n\n".
bin/gripd publish --url "http://127.0.0.1:$CONTROL_PORT" "$CHANNEL" $'data: hello from gripd publish\n' >/dev/null ||
  fail "gripd publish failed"
wait_for "$WORK/stream.out" "data: hello from gripd publish" 30 || fail "the stream did not get the second message"

# 3. Close the stream, so its client ends.
bin/gripd publish --url "http://127.0.0.1:$CONTROL_PORT" --close "$CHANNEL" >/dev/null || fail "gripd publish --close failed"
wait "$STREAM_PID" || fail "the stream client did not end cleanly after --close"

echo "--- stream client (curl -N .../feed?channel=$CHANNEL) got:"
cat "$WORK/stream.out"
echo "--- long-poll client (curl .../poll?channel=$CHANNEL) got:"
cat "$WORK/poll.out"
echo "--- plain request (curl .../hello) got:"
curl -sf -m 5 "http://127.0.0.1:$PORT/hello" || fail "plain request failed"

expected_stream=$': connected\n\ndata: hello from curl\n\ndata: hello from gripd publish\n\n'
[ "$(cat "$WORK/stream.out"; echo x)" = "${expected_stream}x" ] || fail "unexpected stream content"
[ "$(cat "$WORK/poll.out")" = '{"messages":["hello from curl"]}' ] || fail "unexpected long-poll content"
echo "demo: selftest passed"
