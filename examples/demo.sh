#!/usr/bin/env bash
# The demo (`make demo`): the chat app (examples/chat) behind gripd, and
# gripd's live status page. Open the app in a few browser windows, each
# listening its own way (SSE, WebSocket, long-poll): a message sent in one
# appears in all of them at once. Ctrl-C stops everything this started.
#
#   ./examples/demo.sh                 # or: make demo
#   DEMO_SELFTEST=1 ./examples/demo.sh # be the clients with curl (an SSE
#                                      # stream, a long-poll, a WebSocket),
#                                      # send a message, check that all three
#                                      # got it and the status stream counts
#                                      # them; exits 0 on success
#
# Ports (environment): DEMO_PORT (clients, default 7999), DEMO_CONTROL_PORT
# (control API, default 5561), DEMO_ADMIN_PORT (admin listener with the
# status page, default 5563), DEMO_BACKEND_PORT (the chat backend, default
# 8000).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PORT=${DEMO_PORT:-7999}
CONTROL_PORT=${DEMO_CONTROL_PORT:-5561}
ADMIN_PORT=${DEMO_ADMIN_PORT:-5563}
BACKEND_PORT=${DEMO_BACKEND_PORT:-8000}
SELFTEST=${DEMO_SELFTEST:-0}

die() {
  echo "demo: $*" >&2
  exit 1
}

command -v curl >/dev/null 2>&1 || die "needs curl"
command -v go >/dev/null 2>&1 || die "needs Go 1.26 (https://go.dev/dl/) to build gripd and the chat backend"
for p in "$PORT" "$CONTROL_PORT" "$ADMIN_PORT" "$BACKEND_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p is in use; stop what listens there or set DEMO_PORT / DEMO_CONTROL_PORT / DEMO_ADMIN_PORT / DEMO_BACKEND_PORT"
  fi
done

echo "demo: building bin/gripd and bin/chat" >&2
go build -o bin/gripd ./cmd/gripd
go build -o bin/chat ./examples/chat

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
  wait 2>/dev/null || true
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

bin/chat -listen "127.0.0.1:$BACKEND_PORT" -publish-url "http://127.0.0.1:$CONTROL_PORT/publish/" \
  >>"$BACKEND_LOG" 2>&1 </dev/null &
PIDS+=($!)
# over_http: browsers' WebSockets reach the backend as WebSocket-over-HTTP.
# A short drain, so Ctrl-C does not wait 30 s for open browser windows.
bin/gripd --listen ":$PORT" --control-listen "127.0.0.1:$CONTROL_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  --route "* 127.0.0.1:$BACKEND_PORT,over_http" --drain-duration 1s --log-format console \
  >>"$GRIPD_LOG" 2>&1 </dev/null &
PIDS+=($!)

# Wait (at most 10 s) until gripd serves the chat page, the control API
# answers and the status page is up.
ready=0
for _ in $(seq 1 100); do
  all_alive || { show_logs; die "a process exited at startup (see its log above)"; }
  if curl -sf -m 1 -o /dev/null "http://127.0.0.1:$PORT/" &&
    curl -sf -m 1 -o /dev/null "http://127.0.0.1:$CONTROL_PORT/" &&
    curl -sf -m 1 -o /dev/null "http://127.0.0.1:$ADMIN_PORT/"; then
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || { show_logs; die "gripd or the backend did not answer within 10 s"; }

if [ "$SELFTEST" != 1 ]; then
  cat <<EOF

The demo is running: the chat app (examples/chat) behind gripd.

  Chat app:     http://localhost:$PORT/
                open it in two or three windows; pick SSE, WebSocket or
                long-poll in each (or ?transport=sse|ws|poll), send a message
  Status page:  http://127.0.0.1:$ADMIN_PORT/
                held connections, channels, publishes/s, deliveries/s, live

From a terminal, the same room:

  curl -N 'http://localhost:$PORT/events?room=lobby'          # SSE, held open
  curl 'http://localhost:$PORT/poll?room=lobby'               # a long-poll
  curl -d '{"from":"curl","text":"hi"}' 'http://localhost:$PORT/send?room=lobby&via=sse'
      # the backend publishes it to gripd's control API (127.0.0.1:$CONTROL_PORT),
      # in all three formats at once: see examples/chat/publish.go

gripd: clients on :$PORT, control API on 127.0.0.1:$CONTROL_PORT, admin on 127.0.0.1:$ADMIN_PORT.
Ctrl-C stops gripd and the backend.

EOF
  # Until Ctrl-C, or until one of the two exits.
  while all_alive; do sleep 1; done
  echo "demo: gripd or the backend exited; stopping" >&2
  exit 1
fi

# ---- DEMO_SELFTEST=1: be the clients, bounded to ~15 s.
ROOM=selftest-$$
fail() {
  show_logs
  for f in sse poll ws status; do
    echo "--- $f client got:"; cat -v "$WORK/$f.out" 2>/dev/null || true; echo
  done
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
# held KIND N: wait until the admin listener counts N held KIND connections
# in the room (the only outside sign that gripd has subscribed a long-poll).
held() {
  for _ in $(seq 1 50); do
    curl -s -m 1 "http://127.0.0.1:$ADMIN_PORT/channels/room:$ROOM" | grep -qF "\"$1\":$2" && return 0
    sleep 0.1
  done
  return 1
}

echo "demo: selftest in room $ROOM"
curl -sN -m 15 "http://127.0.0.1:$PORT/events?room=$ROOM" >"$WORK/sse.out" &
PIDS+=($!)
curl -s -m 15 "http://127.0.0.1:$PORT/poll?room=$ROOM" >"$WORK/poll.out" &
POLL_PID=$!
PIDS+=("$POLL_PID")
# A WebSocket by hand: curl sends the upgrade and dumps the frames it gets.
curl -sN -m 15 --http1.1 -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
  -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "http://127.0.0.1:$PORT/ws?room=$ROOM" >"$WORK/ws.out" &
PIDS+=($!)

wait_for "$WORK/sse.out" ": connected to $ROOM" 50 || fail "the SSE stream did not start"
wait_for "$WORK/ws.out" "connected to $ROOM" 50 || fail "the WebSocket did not get the backend's welcome"
held response 1 || fail "the long-poll was not held by gripd"

# The status stream counts the three: one of each kind.
curl -sN -m 3 "http://127.0.0.1:$ADMIN_PORT/status/events" >"$WORK/status.out" || true
grep -qF 'event: info' "$WORK/status.out" || fail "the status stream sent no info event"
grep -qF '"held":{"response":1,"stream":1,"ws":1}' "$WORK/status.out" ||
  fail "the status stream did not count one held connection of each kind"

MSG="hello from the selftest $$"
curl -sf -m 5 -o /dev/null -d "{\"from\":\"selftest\",\"text\":\"$MSG\"}" \
  "http://127.0.0.1:$PORT/send?room=$ROOM&via=sse" || fail "POST /send failed"
wait "$POLL_PID" || fail "the long-poll client failed"
wait_for "$WORK/sse.out" "$MSG" 50 || fail "the SSE stream did not get the message"
wait_for "$WORK/ws.out" "$MSG" 50 || fail "the WebSocket did not get the message"
grep -qF "$MSG" "$WORK/poll.out" || fail "the long-poll did not get the message"
grep -qF '"messages":[{"from":"selftest"' "$WORK/poll.out" || fail "unexpected long-poll answer"
grep -qF "data: {\"from\":\"selftest\",\"text\":\"$MSG\",\"via\":\"sse\"" "$WORK/sse.out" || fail "unexpected SSE event"

echo "--- SSE client (curl -N .../events?room=$ROOM) got:"
cat "$WORK/sse.out"
echo "--- long-poll client (curl .../poll?room=$ROOM) got:"
cat "$WORK/poll.out"
echo "--- WebSocket client (curl, raw frames) got:"
cat -v "$WORK/ws.out"
echo
echo "demo: selftest passed"
