package proxy

import (
	"errors"
	"io"
	"slices"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// A client WebSocket message is held in memory until its last frame
// arrives, up to limits.max_ws_message. A client that starts messages and
// never finishes them would pin that much per connection for ever, so an
// unfinished message has a deadline (limits.ws_message_timeout, from its
// first frame) and all connections' unfinished messages together share one
// budget (limits.ws_partial_budget). Past either the connection is closed,
// 1008 (policy violation) for the deadline and 1009 (message too big) for
// the budget, and counted.

const (
	// DefaultWSMessageTimeout is long enough for a 1 MB message at well
	// under 1 Mbit/s.
	DefaultWSMessageTimeout = 30 * time.Second
	// DefaultWSPartialBudget lets 64 clients send a 1 MB message at the
	// very same moment; a message is counted only while it is arriving.
	DefaultWSPartialBudget = 64 << 20
)

// The limits that close a WebSocket, as Observer.WebSocketLimit reports them.
const (
	WSLimitMessageTimeout = "message_timeout" // a message not finished within limits.ws_message_timeout
	WSLimitPartialBudget  = "partial_budget"  // unfinished messages over limits.ws_partial_budget
)

// errPartialBudget is the error of a message that would take the
// process's unfinished messages over limits.ws_partial_budget.
var errPartialBudget = errors.New("unfinished WebSocket messages over limits.ws_partial_budget")

// partialBudget counts the bytes held by unfinished client WebSocket
// messages, all connections together.
type partialBudget struct{ held atomic.Int64 }

// take reserves n bytes, or reports false when that would pass limit.
func (b *partialBudget) take(n, limit int64) bool {
	if b.held.Add(n) > limit {
		b.held.Add(-n)
		return false
	}
	return true
}

func (b *partialBudget) give(n int64) { b.held.Add(-n) }

// readMessage reads the client's next message. Waiting for a message has
// no deadline; once its first frame is in, the rest must come within
// limits.ws_message_timeout and fit in limits.ws_partial_budget, or the
// connection is closed and the error says why.
func (ws *wsSession) readMessage() (websocket.MessageType, []byte, error) {
	typ, r, err := ws.conn.Reader(ws.ctx)
	if err != nil {
		return 0, nil, err
	}
	limits := ws.srv.limits.Load()
	var timedOut atomic.Bool
	timer := time.AfterFunc(limits.WSMessageTimeout, func() {
		timedOut.Store(true)
		ws.srv.cfg.Observer.WebSocketLimit(ws.route.ID, WSLimitMessageTimeout)
		ws.conn.Close(websocket.StatusPolicyViolation, "message not finished in time")
	})
	defer timer.Stop()

	budget := &ws.srv.partial
	var buf []byte
	defer func() { budget.give(int64(cap(buf))) }()
	for {
		if len(buf) == cap(buf) {
			old := cap(buf)
			buf = slices.Grow(buf, max(512, old))
			if !budget.take(int64(cap(buf)-old), limits.WSPartialBudget) {
				// Given back before the close handshake, which may wait.
				budget.give(int64(old))
				buf = nil
				ws.srv.cfg.Observer.WebSocketLimit(ws.route.ID, WSLimitPartialBudget)
				ws.conn.Close(websocket.StatusMessageTooBig, "server busy: message too big for now")
				return 0, nil, errPartialBudget
			}
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if !timer.Stop() && timedOut.Load() {
				break // the deadline passed as it ended: the close is under way
			}
			return typ, buf, nil
		}
		if err != nil {
			if timedOut.Load() {
				break
			}
			return 0, nil, err
		}
	}
	return 0, nil, errors.New("WebSocket message not finished within limits.ws_message_timeout")
}
