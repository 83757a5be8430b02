package proxy

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// This file is the client side of a WebSocket-over-HTTP session: reading
// the client's frames, writing published messages and keep-alives, and
// ending the session.

// readClient turns client frames into events until the client closes or
// goes away. It is the one goroutine an idle session keeps. With
// wsMaxPending bytes waiting for the backend it stops reading until the
// send loop makes room (a passthrough session never waits).
func (ws *wsSession) readClient() {
	for {
		if ws.backend == nil && !ws.waitRoom() {
			return // the session ended
		}
		typ, data, err := ws.readMessage()
		if err != nil {
			switch {
			case ws.ended.Load():
			case ws.goingAway.Load():
				ws.queue(grip.WSEvent{Type: grip.WSDisconnect})
			case websocket.CloseStatus(err) != -1:
				var ce websocket.CloseError
				errors.As(err, &ce)
				ws.queue(grip.WSEvent{Type: grip.WSClose, Content: grip.WSCloseContent(int(ce.Code), ce.Reason)})
			default:
				ws.queue(grip.WSEvent{Type: grip.WSDisconnect})
			}
			return
		}
		ws.in.Add(1)
		t := grip.WSText
		if typ == websocket.MessageBinary {
			t = grip.WSBinary
		}
		ws.queue(grip.WSEvent{Type: t, Content: data})
	}
}

// wakeDeliver starts the delivery goroutine unless it is already running.
// The hub calls it after queuing an item for this session.
func (ws *wsSession) wakeDeliver() {
	if !ws.ended.Load() && ws.delivering.CompareAndSwap(false, true) {
		go ws.deliverLoop()
	}
}

// deliverLoop writes the published items queued for the session, then
// ends.
func (ws *wsSession) deliverLoop() {
	for !ws.ended.Load() && !ws.closing.Load() {
		select {
		case it := <-ws.sub.C():
			v, content := ws.sub.Take(it)
			if v != handoff.Send {
				continue // a filter dropped it
			}
			f := it.WSMessage
			if f.Action == grip.ActionSend && !bytes.Equal(content, f.Content) {
				filtered := *f
				filtered.Content = content
				f = &filtered
			}
			if !ws.deliver(f) {
				ws.conn.CloseNow() // a failed write leaves no usable connection
				ws.finish("write")
				return
			}
			continue
		default:
		}
		if err := ws.sub.Err(); err != nil {
			if errors.Is(err, handoff.ErrSlow) {
				// No close handshake: a client that does not read would make
				// it wait out its full timeout.
				ws.conn.CloseNow()
				ws.finish("slow")
			} else {
				// gripd is going away (a drain): the client hears 1001 and
				// reconnects elsewhere, the backend hears DISCONNECT (not the
				// client's echo of our close, which readClient would report
				// as a CLOSE of its own).
				ws.goingAway.Store(true)
				ws.conn.Close(websocket.StatusGoingAway, "")
				if ws.backend != nil {
					// A WebSocket backend (passthrough) is told the same way.
					ws.backend.Close(websocket.StatusGoingAway, "")
					ws.finish("shutdown")
				} else {
					// Queued at most once: a no-op when readClient already did;
					// the send loop ends the session once the backend has it.
					ws.queue(grip.WSEvent{Type: grip.WSDisconnect})
				}
			}
			return
		}
		ws.delivering.Store(false)
		if (len(ws.sub.C()) == 0 && ws.sub.Err() == nil) || !ws.delivering.CompareAndSwap(false, true) {
			return
		}
	}
}

// deliver writes one published ws-message. It reports false once the
// session is over.
func (ws *wsSession) deliver(f *grip.WSMessageFormat) bool {
	switch f.Action {
	case grip.ActionClose:
		ws.closing.Store(true) // nothing more is written to this client
		code := f.Code
		if code == 0 {
			code = int(websocket.StatusNormalClosure)
		}
		if ws.isDetached() {
			ws.conn.Close(websocket.StatusCode(code), f.Reason)
			ws.finish("closed by publish")
			return true
		}
		if ws.backend != nil {
			ws.conn.Close(websocket.StatusCode(code), f.Reason)
			ws.backend.Close(websocket.StatusNormalClosure, "")
			ws.finish("closed by publish")
			return true
		}
		ws.queue(grip.WSEvent{Type: grip.WSClose}) // a bare CLOSE upstream, as Pushpin sends
		ws.conn.Close(websocket.StatusCode(code), f.Reason)
		return true
	case grip.ActionRefresh:
		if ws.backend != nil {
			return true // nothing to refresh on a WebSocket backend
		}
		ws.mu.Lock()
		ws.refresh = true
		ws.mu.Unlock()
		ws.wakeSend()
		return true
	}
	if err := ws.write(f.Type, f.Content); err != nil {
		return false
	}
	ws.out.Add(1)
	ws.resetClientKeepAlive()
	return true
}

// write sends one message of a publish or keep-alive type to the client.
// A client that does not take it within the write timeout is dropped
// (the library closes the connection when the context expires), so a
// stalled client cannot pin the session.
func (ws *wsSession) write(typ string, content []byte) error {
	ctx, cancel := context.WithTimeout(ws.ctx, ws.srv.cfg.WriteTimeout)
	defer cancel()
	switch typ {
	case "binary":
		return ws.conn.Write(ctx, websocket.MessageBinary, content)
	case "ping", "pong":
		// The library sends pings (answering the client's own) but no
		// unsolicited pong, and waits for the pong: a ping is the closest.
		return ws.conn.Ping(ctx)
	default:
		return ws.conn.Write(ctx, websocket.MessageText, content)
	}
}

// setClientKeepAlive applies a keep-alive control message; no content
// turns keep-alive off.
func (ws *wsSession) setClientKeepAlive(c *grip.WSControl) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.clientKATimer != nil {
		ws.clientKATimer.Stop()
		ws.clientKATimer = nil
	}
	ws.clientKA = nil
	if c.Content == nil || ws.ended.Load() {
		return
	}
	ws.clientKA = c
	ws.clientKATimer = time.AfterFunc(c.Timeout, ws.clientKeepAliveDue)
}

func (ws *wsSession) clientKeepAliveDue() {
	ws.mu.Lock()
	c := ws.clientKA
	ws.mu.Unlock()
	if c == nil || ws.ended.Load() {
		return
	}
	if ws.write(c.MessageType, c.Content) != nil {
		return
	}
	ws.mu.Lock()
	if ws.clientKA == c && ws.clientKATimer != nil {
		ws.clientKATimer.Reset(c.Timeout)
	}
	ws.mu.Unlock()
}

// resetClientKeepAlive restarts an idle-mode keep-alive after a message.
func (ws *wsSession) resetClientKeepAlive() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.clientKA != nil && ws.clientKA.Mode == grip.KeepAliveIdle && ws.clientKATimer != nil {
		ws.clientKATimer.Reset(ws.clientKA.Timeout)
	}
}

// finish ends the session once: stops its timers, drops the connection,
// unsubscribes and writes the log line.
func (ws *wsSession) finish(end string) {
	ws.endOnce.Do(func() {
		ws.ended.Store(true)
		ws.cancel()
		ws.mu.Lock()
		for _, t := range []*time.Timer{ws.kaTimer, ws.clientKATimer} {
			if t != nil {
				t.Stop()
			}
		}
		ws.mu.Unlock()
		ws.conn.CloseNow()
		if ws.backend != nil {
			ws.backend.CloseNow()
		}
		ws.srv.cfg.Hub.Unsubscribe(ws.sub)
		ws.srv.cfg.Observer.HoldEnded(ws.route.ID, handoff.KindWebSocket)
		ws.entry.end = end
		ev := ws.log.Info()
		if ev.Enabled() {
			ev.Str("method", ws.entry.method).Str("path", ws.entry.path).Str("host", ws.entry.host).
				Str("remote", ws.entry.remote).Int("status", ws.entry.status).Str("route", ws.entry.route).
				Str("connection_id", ws.cid).Str("request_id", ws.entry.requestID).Str("end", end).Strs("channels", ws.sub.Channels()).
				Int64("messages_in", ws.in.Load()).Int64("messages_out", ws.out.Load()).
				Dur("duration", time.Since(ws.entry.start)).Msg("websocket")
		}
	})
}
