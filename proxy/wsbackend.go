package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/grip"
)

// This file is the backend side of a WebSocket-over-HTTP session: batching
// client events into requests, sending them one at a time, and acting on
// the replies.

// roundTrip sends one batch of events and reads the reply.
func (ws *wsSession) roundTrip(events []grip.WSEvent) (*wsResponse, []grip.WSEvent, error) {
	resp, evs, err := ws.postEvents(events)
	ws.srv.cfg.Observer.WebSocketOverHTTP(ws.route.ID, wsResult(ws.ctx, resp, err))
	return resp, evs, err
}

// postEvents is roundTrip without the metrics.
func (ws *wsSession) postEvents(events []grip.WSEvent) (*wsResponse, []grip.WSEvent, error) {
	body := grip.AppendWSEvents(nil, events...)
	req, err := http.NewRequestWithContext(ws.ctx, http.MethodPost, ws.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Host = ws.host
	for k, vs := range ws.base {
		req.Header[k] = vs
	}
	ws.mu.Lock()
	for k, v := range ws.meta {
		req.Header.Set("Meta-"+k, v)
	}
	ws.mu.Unlock()
	req.Header.Set("Sec-WebSocket-Extensions", "grip")
	req.Header.Set("Content-Type", grip.WSEventsContentType)
	req.Header.Set("Accept", grip.WSEventsContentType)
	req.Header.Set("Connection-Id", ws.cid)
	setRequestID(req.Header, ws.st.requestID)
	// A nil value is not sent; it lets the transport resend the request on
	// a fresh connection when a pooled one turns out to be closed (a
	// backend that restarted), which it does only for idempotent requests.
	req.Header["X-Idempotency-Key"] = nil
	req.Header.Set("Grip-Feature", grip.Feature)
	for k, vs := range ws.route.SetHeaders {
		if len(vs) == 0 || vs[0] == "" {
			req.Header.Del(k)
		} else {
			req.Header[k] = vs
		}
	}
	if tok, err := ws.srv.signer(ws.route).Token(time.Now()); err == nil && tok != "" {
		req.Header.Set("Grip-Sig", tok)
	}
	resp, err := ws.srv.fo.RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	limit := int64(wsMaxReplyBody)
	if resp.StatusCode != http.StatusOK {
		limit = wsMaxRejectBody
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading backend reply: %w", err)
	}
	if int64(len(b)) > limit {
		if resp.StatusCode == http.StatusOK {
			return nil, nil, fmt.Errorf("backend reply over %d bytes", limit)
		}
		b = b[:limit]
	}
	out := &wsResponse{StatusCode: resp.StatusCode, Header: resp.Header, body: b}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != grip.WSEventsContentType {
		return out, nil, nil
	}
	evs, err := grip.ParseWSEvents(b)
	if err != nil {
		return nil, nil, fmt.Errorf("backend reply: %w", err)
	}
	return out, evs, nil
}

// applyReplyHeaders takes Set-Meta-*, Keep-Alive-Interval and the grip
// extension from a backend reply.
func (ws *wsSession) applyReplyHeaders(h http.Header) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.sub != nil { // after the handshake; accepted() passes the first meta on
		defer ws.sub.SetMeta(ws.meta)
	}
	for k, vs := range h {
		if name, ok := strings.CutPrefix(k, "Set-Meta-"); ok && name != "" {
			if len(vs) == 0 || vs[0] == "" {
				delete(ws.meta, name)
			} else {
				ws.meta[name] = vs[0]
			}
		}
	}
	if v := h.Get("Keep-Alive-Interval"); v != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs > 0 {
			ws.kaIdle = max(time.Duration(secs)*time.Second, wsMinKeepAlive)
		}
	}
	for _, ext := range h.Values("Sec-WebSocket-Extensions") {
		for _, e := range strings.Split(ext, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(e), ";")
			if strings.TrimSpace(name) != "grip" {
				continue
			}
			ws.gripMode = true
			if _, p, err := mime.ParseMediaType("x/y;" + params); err == nil {
				if pre, ok := p["message-prefix"]; ok {
					ws.prefix = pre
				}
			}
		}
	}
}

// queue adds a client event for the next request to the backend. A CLOSE
// or DISCONNECT is queued at most once, and nothing after it.
func (ws *wsSession) queue(e grip.WSEvent) {
	if ws.backend != nil {
		ws.forwardToBackend(e)
		return
	}
	ws.mu.Lock()
	final := e.Type == grip.WSClose || e.Type == grip.WSDisconnect
	if ws.detached || ws.closeSent {
		ws.mu.Unlock()
		if final && ws.isDetached() {
			ws.finish("client gone")
		}
		return
	}
	ws.closeSent = final
	ws.pending = append(ws.pending, e)
	ws.pendingN += wsEventSize(e)
	ws.mu.Unlock()
	ws.wakeSend()
}

func (ws *wsSession) isDetached() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.detached
}

// wakeSend starts the backend goroutine unless it is already running.
func (ws *wsSession) wakeSend() {
	if !ws.ended.Load() && ws.sending.CompareAndSwap(false, true) {
		go ws.sendLoop()
	}
}

func wsEventSize(e grip.WSEvent) int { return len(e.Content) + 16 }

// waitRoom blocks readClient while wsMaxPending bytes wait for the
// backend, until the send loop takes a batch or the session ends (false).
// Only reads wait: queue never blocks, so a CLOSE or DISCONNECT always
// gets through.
func (ws *wsSession) waitRoom() bool {
	for {
		ws.mu.Lock()
		if ws.pendingN < wsMaxPending {
			ws.mu.Unlock()
			return true
		}
		if ws.room == nil {
			ws.room = make(chan struct{}, 1)
		}
		room := ws.room
		ws.mu.Unlock()
		select {
		case <-room:
		case <-ws.ctx.Done(): // finish cancels it
			return false
		}
	}
}

// freed tells a waiting readClient that pending shrank; ws.mu is held.
func (ws *wsSession) freed() {
	select {
	case ws.room <- struct{}{}: // a nil room (nobody ever waited) is never ready
	default:
	}
}

// takeBatch removes the events for the next request: every queued event
// up to wsMaxRequestBody bytes (at least one).
func (ws *wsSession) takeBatch() []grip.WSEvent {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	size, n := 0, 0
	for n < len(ws.pending) {
		s := wsEventSize(ws.pending[n])
		if n > 0 && size+s > wsMaxRequestBody {
			break
		}
		size += s
		n++
	}
	batch := ws.pending[:n:n]
	ws.pending = ws.pending[n:]
	if n > 0 {
		ws.pendingN -= size
		ws.freed()
	}
	return batch
}

// nextRequest takes what the next request carries; ok is false when there
// is nothing to send.
func (ws *wsSession) nextRequest() (batch []grip.WSEvent, ok bool) {
	batch = ws.takeBatch()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	refresh, kaDue := ws.refresh, ws.kaDue
	ws.refresh, ws.kaDue = false, false
	if ws.detached {
		return nil, false // the backend side is closed: nothing more goes to it
	}
	return batch, len(batch) > 0 || refresh || kaDue
}

func (ws *wsSession) hasBackendWork() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return len(ws.pending) > 0 || ws.refresh || ws.kaDue
}

// sendLoop sends requests until there is nothing left to send, then
// ends; the re-check after clearing sending closes the race with a wake
// that came meanwhile.
func (ws *wsSession) sendLoop() {
	for !ws.ended.Load() {
		batch, ok := ws.nextRequest()
		if !ok {
			ws.sending.Store(false)
			if !ws.hasBackendWork() || !ws.sending.CompareAndSwap(false, true) {
				return
			}
			continue
		}
		events, err := ws.sendWithRetries(batch)
		if err != nil {
			if ws.ended.Load() {
				return
			}
			ws.log.Warn().Str("route", ws.route.ID).Str("connection_id", ws.cid).Err(err).Msg("WebSocket-over-HTTP request failed")
			ws.conn.Close(websocket.StatusInternalError, "backend error")
			ws.finish("backend error")
			return
		}
		if end := ws.handleReply(events); end != "" {
			ws.finish(end)
			return
		}
		switch {
		case hasEvent(batch, grip.WSDisconnect) && ws.goingAway.Load():
			ws.finish("shutdown")
		case hasEvent(batch, grip.WSDisconnect):
			ws.finish("client gone")
			return
		case hasEvent(batch, grip.WSClose):
			ws.finish("closed")
			return
		}
		ws.resetBackendKeepAlive()
	}
}

// resetBackendKeepAlive (re)starts the Keep-Alive-Interval timer: an
// empty request after that long without one.
func (ws *wsSession) resetBackendKeepAlive() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.kaIdle <= 0 || ws.ended.Load() {
		return
	}
	if ws.kaTimer == nil {
		ws.kaTimer = time.AfterFunc(ws.kaIdle, func() {
			ws.mu.Lock()
			ws.kaDue = true
			ws.mu.Unlock()
			ws.wakeSend()
		})
		return
	}
	ws.kaTimer.Reset(ws.kaIdle)
}

func hasEvent(events []grip.WSEvent, typ string) bool {
	for _, e := range events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// sendWithRetries sends a batch, retrying connection errors with backoff
// (1 s doubling) as Pushpin does; a non-200 or malformed reply is final.
func (ws *wsSession) sendWithRetries(batch []grip.WSEvent) ([]grip.WSEvent, error) {
	delay := time.Second
	for attempt := 0; ; attempt++ {
		resp, events, err := ws.roundTrip(batch)
		if err == nil {
			if reason := wsReplyProblem(resp); reason != "" {
				return nil, errors.New(reason)
			}
			ws.applyReplyHeaders(resp.Header)
			return events, nil
		}
		if attempt >= wsRetries || ws.ctx.Err() != nil || !errors.Is(err, errNoBackend) {
			return nil, err
		}
		select {
		case <-time.After(delay):
		case <-ws.ctx.Done():
			return nil, ws.ctx.Err()
		}
		delay *= 2
	}
}

func wsReplyProblem(resp *wsResponse) string {
	if resp.StatusCode != http.StatusOK {
		return "backend answered " + strconv.Itoa(resp.StatusCode)
	}
	if resp.Header.Get("Content-Type") != grip.WSEventsContentType {
		return "backend answered content type " + strconv.Quote(resp.Header.Get("Content-Type"))
	}
	return ""
}

// handleReply acts on the events of a backend reply, in order. It
// returns how the session ended, or "" to go on.
func (ws *wsSession) handleReply(events []grip.WSEvent) string {
	for _, e := range events {
		switch e.Type {
		case grip.WSText, grip.WSBinary:
			if end := ws.backendMessage(e); end != "" {
				return end
			}
		case grip.WSClose:
			code, reason, err := grip.ParseWSClose(e.Content)
			if err != nil || code == 0 {
				code = int(websocket.StatusNormalClosure)
			}
			ws.conn.Close(websocket.StatusCode(code), reason)
			return "backend closed"
		case grip.WSDisconnect, grip.WSOpen:
			ws.conn.CloseNow()
			return "backend disconnected"
		}
	}
	return ""
}

// backendMessage relays one backend message, or acts on it when it is a
// control message.
func (ws *wsSession) backendMessage(e grip.WSEvent) string {
	ws.mu.Lock()
	gripMode, prefix := ws.gripMode, ws.prefix
	ws.mu.Unlock()
	data := e.Content
	if gripMode && e.Type == grip.WSText && bytes.HasPrefix(data, []byte(grip.WSControlPrefix)) {
		return ws.control(data[len(grip.WSControlPrefix):])
	}
	if gripMode {
		// Unprefixed messages are delivered as they are: Pushpin drops them,
		// a known trap (GRIP.md).
		data = bytes.TrimPrefix(data, []byte(prefix))
	}
	typ := websocket.MessageText
	if e.Type == grip.WSBinary {
		typ = websocket.MessageBinary
	}
	if err := ws.conn.Write(ws.ctx, typ, data); err != nil {
		return "client gone"
	}
	ws.out.Add(1)
	return ""
}

// control acts on a control message from the backend.
func (ws *wsSession) control(data []byte) string {
	c, err := grip.ParseWSControl(data)
	if err != nil {
		ws.log.Warn().Str("route", ws.route.ID).Str("connection_id", ws.cid).Err(err).Msg("bad WebSocket control message from backend")
		return ""
	}
	hub := ws.srv.cfg.Hub
	switch c.Type {
	case "subscribe":
		// Refused, not fatal: the backend learns from the log, and the
		// client keeps the subscriptions it has.
		channels, limit := ws.sub.Channels(), ws.srv.limits.Load().MaxChannels
		if len(channels) >= limit && !slices.Contains(channels, c.Channel) {
			ws.log.Warn().Str("route", ws.route.ID).Str("connection_id", ws.cid).Str("channel", c.Channel).
				Int("max_channels", limit).Msg("WebSocket subscribe refused: limits.max_channels reached")
			return ""
		}
		ws.sub.SetChannelFilters(c.Channel, c.Filters)
		hub.Join(ws.sub, c.Channel)
	case "unsubscribe":
		hub.Leave(ws.sub, c.Channel)
	case "detach":
		ws.mu.Lock()
		ws.detached = true
		ws.pending, ws.pendingN = nil, 0
		ws.freed()
		ws.mu.Unlock()
	case "set-meta":
		ws.mu.Lock()
		if c.HasValue {
			ws.meta[c.Name] = c.Value
		} else {
			delete(ws.meta, c.Name)
		}
		ws.sub.SetMeta(ws.meta) // what the filters read
		ws.mu.Unlock()
	case "keep-alive":
		ws.setClientKeepAlive(c)
	}
	return ""
}
