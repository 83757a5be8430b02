package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// Limits of WebSocket-over-HTTP sessions, Pushpin's where it has them.
const (
	wsMaxRequestBody   = 200000  // client events batched into one request
	wsMaxReplyBody     = 1000000 // a backend reply
	wsMaxRejectBody    = 100000  // a rejection body relayed to the client
	wsMaxMessage       = 1000000 // one client message; larger → close 1009
	wsMinKeepAlive     = 20 * time.Second
	wsRetries          = 5 // after a backend connection error
	wsMaxSubscriptions = grip.MaxChannels
)

// wsHopHeaders are client handshake headers not replayed to the backend.
var wsHopHeaders = []string{
	"Connection", "Upgrade", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding",
	"Proxy-Connection", "Proxy-Authorization", "Content-Length", "Content-Type",
	"Accept", "Connection-Id", "Sec-Websocket-Extensions",
}

// wsSession is one client WebSocket relayed to a backend as
// WebSocket-over-HTTP: every burst of client activity is one POST of
// application/websocket-events, one request in flight at a time.
type wsSession struct {
	srv   *Server
	route *Route
	st    *requestState // for the failover transport (route, log)
	conn  *websocket.Conn
	cid   string
	base  http.Header // handshake headers replayed on every request
	url   string
	sub   *handoff.Subscriber
	log   zerolog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex // guards the fields below
	pending  []grip.WSEvent
	meta     map[string]string
	kaIdle   time.Duration // Keep-Alive-Interval; 0 = none
	detached bool
	gripMode bool
	prefix   string
	wake     chan struct{} // buffered 1: there is something to send
	refresh  bool          // a publish asked for a request to the backend

	// client keep-alive asked for by a keep-alive control message
	clientKA *grip.WSControl
	kaWake   chan struct{} // buffered 1: clientKA changed

	in, out atomic.Int64 // messages from and to the client, for the log
}

// serveWebSocket terminates a client WebSocket on an over_http route.
func (s *Server) serveWebSocket(w *responseLog, r *http.Request, route *Route, start time.Time) {
	st := &requestState{route: route, w: w, log: s.cfg.Log, start: start}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), stateKey{}, st))
	defer cancel()
	ws := &wsSession{
		srv: s, route: route, st: st, cid: newConnectionID(), meta: map[string]string{},
		ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), kaWake: make(chan struct{}, 1), log: s.cfg.Log,
		prefix: grip.WSMessagePrefix,
	}
	ws.base = wsBaseHeader(r)
	u := url.URL{Scheme: "http", Host: route.Backends[0].URL.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	if route.StripChars > 0 || route.ReplacePrefix != nil {
		p := route.RewritePath(r.URL.EscapedPath())
		u.RawPath, u.Path = p, unescapePath(p)
	}
	ws.url = u.String()
	host := r.Host

	// The handshake: OPEN must be answered with OPEN before the client
	// gets its 101.
	resp, events, err := ws.roundTrip([]grip.WSEvent{{Type: grip.WSOpen}}, host)
	if err != nil {
		st.log.Error().Str("route", route.ID).Err(err).Msg("WebSocket-over-HTTP: backend unreachable")
		writeText(w, http.StatusBadGateway, "Error while proxying to origin.\n")
		s.logRequest(r, st, start)
		return
	}
	if reason := wsRejection(resp, events); reason != "" {
		st.log.Info().Str("route", route.ID).Str("reason", reason).Msg("WebSocket-over-HTTP: backend rejected the connection")
		relayRejection(w, resp)
		s.logRequest(r, st, start)
		return
	}
	ws.applyReplyHeaders(resp.Header)
	subprotocol := resp.Header.Get("Sec-WebSocket-Protocol")
	h := w.Header()
	for k, vs := range resp.Header {
		if wsKeepFromReply(k) {
			h[k] = vs
		}
	}
	opts := &websocket.AcceptOptions{
		InsecureSkipVerify: true, // origins are the backend's to check, as behind Pushpin
		CompressionMode:    websocket.CompressionDisabled,
		OnPingReceived: func(_ context.Context, p []byte) bool {
			if len(p) > 0 {
				ws.queue(grip.WSEvent{Type: grip.WSPing, Content: bytes.Clone(p)})
			}
			return true
		},
	}
	if subprotocol != "" {
		opts.Subprotocols = []string{subprotocol}
	}
	conn, err := websocket.Accept(w, r, opts)
	if err != nil {
		st.log.Warn().Str("route", route.ID).Err(err).Msg("WebSocket handshake with the client failed")
		return
	}
	ws.conn = conn
	conn.SetReadLimit(wsMaxMessage)
	ws.sub = s.cfg.Hub.Subscribe(handoff.KindWebSocket, nil)
	defer s.cfg.Hub.Unsubscribe(ws.sub)

	// The OPEN reply's other events (subscribe, a welcome message...).
	end := ws.handleReply(events[1:])
	if end == "" {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); ws.readClient() }()
		go func() { defer wg.Done(); ws.deliverPublished() }()
		end = ws.backendLoop(host)
		cancel()
		conn.CloseNow()
		wg.Wait()
	}
	st.hold, st.end = "websocket", end
	st.w.status = http.StatusSwitchingProtocols
	ws.logEnd(r, start)
}

func (ws *wsSession) logEnd(r *http.Request, start time.Time) {
	ws.log.Info().Str("method", r.Method).Str("path", r.URL.Path).Str("host", r.Host).
		Str("remote", r.RemoteAddr).Int("status", http.StatusSwitchingProtocols).
		Str("route", ws.route.ID).Str("connection_id", ws.cid).Str("end", ws.st.end).
		Strs("channels", ws.sub.Channels()).Int64("messages_in", ws.in.Load()).Int64("messages_out", ws.out.Load()).
		Dur("duration", time.Since(start)).Msg("websocket")
}

// newConnectionID returns a random UUID (version 4).
func newConnectionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// wsBaseHeader is the client's handshake minus what must not be replayed.
func wsBaseHeader(r *http.Request) http.Header {
	h := r.Header.Clone()
	for _, k := range wsHopHeaders {
		h.Del(k)
	}
	for k := range h {
		if strings.HasPrefix(k, "Meta-") || strings.HasPrefix(k, "Grip-") {
			delete(h, k)
		}
	}
	return h
}

// wsKeepFromReply says whether a header of the OPEN reply goes into the
// client's 101.
func wsKeepFromReply(k string) bool {
	switch k {
	case "Content-Length", "Content-Type", "Keep-Alive-Interval", "Sec-Websocket-Extensions",
		"Sec-Websocket-Protocol", "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Date":
		return false
	}
	return !strings.HasPrefix(k, "Set-Meta-") && !strings.HasPrefix(k, "Grip-")
}

// wsRejection says why an OPEN reply is not an acceptance ("" when it is).
func wsRejection(resp *wsResponse, events []grip.WSEvent) string {
	if resp.StatusCode != http.StatusOK {
		return "status " + strconv.Itoa(resp.StatusCode)
	}
	if resp.Header.Get("Content-Type") != grip.WSEventsContentType {
		return "content type " + strconv.Quote(resp.Header.Get("Content-Type"))
	}
	if len(events) == 0 || events[0].Type != grip.WSOpen {
		return "reply does not start with OPEN"
	}
	return ""
}

// relayRejection gives the client the backend's answer instead of a 101.
func relayRejection(w http.ResponseWriter, resp *wsResponse) {
	h := w.Header()
	for k, vs := range resp.Header {
		if wsKeepFromReply(k) || k == "Content-Type" {
			h[k] = vs
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(resp.body)
}

// wsResponse is a backend reply with its body read.
type wsResponse struct {
	StatusCode int
	Header     http.Header
	body       []byte
}

// roundTrip sends one batch of events and reads the reply.
func (ws *wsSession) roundTrip(events []grip.WSEvent, host string) (*wsResponse, []grip.WSEvent, error) {
	body := grip.AppendWSEvents(nil, events...)
	req, err := http.NewRequestWithContext(ws.ctx, http.MethodPost, ws.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Host = host
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

// queue adds a client event for the next request to the backend.
func (ws *wsSession) queue(e grip.WSEvent) {
	ws.mu.Lock()
	if !ws.detached {
		ws.pending = append(ws.pending, e)
	}
	ws.mu.Unlock()
	ws.signal()
}

func (ws *wsSession) signal() {
	select {
	case ws.wake <- struct{}{}:
	default:
	}
}

// readClient turns client frames into events until the client closes or
// goes away.
func (ws *wsSession) readClient() {
	for {
		typ, data, err := ws.conn.Read(ws.ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				var ce websocket.CloseError
				errors.As(err, &ce)
				ws.queue(grip.WSEvent{Type: grip.WSClose, Content: grip.WSCloseContent(int(code), ce.Reason)})
			} else if ws.ctx.Err() == nil {
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

// takeBatch removes the events for the next request: every queued event
// up to wsMaxRequestBody bytes (at least one).
func (ws *wsSession) takeBatch() []grip.WSEvent {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	size, n := 0, 0
	for n < len(ws.pending) {
		size += len(ws.pending[n].Content) + 16
		if n > 0 && size > wsMaxRequestBody {
			break
		}
		n++
	}
	batch := ws.pending[:n:n]
	ws.pending = ws.pending[n:]
	return batch
}

// backendLoop sends client events (and keep-alives, refreshes) to the
// backend, one request at a time, and acts on the replies. It returns how
// the session ended.
func (ws *wsSession) backendLoop(host string) string {
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	for {
		ws.mu.Lock()
		ka := ws.kaIdle
		ws.mu.Unlock()
		if ka > 0 {
			idle.Reset(ka)
		} else {
			idle.Stop()
		}
		var batch []grip.WSEvent
		select {
		case <-ws.ctx.Done():
			return "closed"
		case <-ws.sub.Done():
			ws.conn.Close(websocket.StatusGoingAway, "")
			return "shutdown"
		case <-idle.C:
		case <-ws.wake:
			batch = ws.takeBatch()
			ws.mu.Lock()
			detached := ws.detached
			ws.mu.Unlock()
			if detached {
				if hasEvent(batch, grip.WSClose) || hasEvent(batch, grip.WSDisconnect) {
					return "client gone"
				}
				continue
			}
			if len(batch) == 0 && !ws.refreshWanted() {
				continue
			}
		}
		events, err := ws.sendWithRetries(batch, host)
		if err != nil {
			ws.log.Warn().Str("route", ws.route.ID).Str("connection_id", ws.cid).Err(err).Msg("WebSocket-over-HTTP request failed")
			ws.conn.Close(websocket.StatusInternalError, "backend error")
			return "backend error"
		}
		if end := ws.handleReply(events); end != "" {
			return end
		}
		if hasEvent(batch, grip.WSDisconnect) {
			return "client gone"
		}
		if hasEvent(batch, grip.WSClose) {
			return "client closed"
		}
		ws.mu.Lock()
		more := len(ws.pending) > 0
		ws.mu.Unlock()
		if more {
			ws.signal()
		}
	}
}

// refreshWanted reports (and clears) a refresh asked by a publish.
func (ws *wsSession) refreshWanted() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	r := ws.refresh
	ws.refresh = false
	return r
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
func (ws *wsSession) sendWithRetries(batch []grip.WSEvent, host string) ([]grip.WSEvent, error) {
	delay := time.Second
	for attempt := 0; ; attempt++ {
		resp, events, err := ws.roundTrip(batch, host)
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
		if len(ws.sub.Channels()) < wsMaxSubscriptions {
			hub.Join(ws.sub, c.Channel)
		}
	case "unsubscribe":
		hub.Leave(ws.sub, c.Channel)
	case "detach":
		ws.mu.Lock()
		ws.detached = true
		ws.pending = nil
		ws.mu.Unlock()
	case "set-meta":
		ws.mu.Lock()
		if c.HasValue {
			ws.meta[c.Name] = c.Value
		} else {
			delete(ws.meta, c.Name)
		}
		ws.mu.Unlock()
	case "keep-alive":
		ws.mu.Lock()
		if c.Content == nil {
			ws.clientKA = nil
		} else {
			ws.clientKA = c
		}
		ws.mu.Unlock()
		select {
		case ws.kaWake <- struct{}{}:
		default:
		}
	}
	return ""
}

// deliverPublished writes published ws-message items to the client, and
// the keep-alive messages a backend asked for.
func (ws *wsSession) deliverPublished() {
	ka := time.NewTimer(time.Hour)
	defer ka.Stop()
	for {
		ws.mu.Lock()
		c := ws.clientKA
		ws.mu.Unlock()
		if c != nil {
			ka.Reset(c.Timeout)
		} else {
			ka.Stop()
		}
		select {
		case <-ws.ctx.Done():
			return
		case <-ws.sub.Done():
			return
		case <-ws.kaWake:
		case <-ka.C:
			if c != nil && !ws.writeKeepAlive(c) {
				return
			}
		case it := <-ws.sub.C():
			if !ws.deliver(it.WSMessage) {
				return
			}
		}
	}
}

func (ws *wsSession) writeKeepAlive(c *grip.WSControl) bool {
	var err error
	switch c.MessageType {
	case "binary":
		err = ws.conn.Write(ws.ctx, websocket.MessageBinary, c.Content)
	case "ping", "pong":
		ctx, cancel := context.WithTimeout(ws.ctx, 10*time.Second)
		err = ws.conn.Ping(ctx)
		cancel()
	default:
		err = ws.conn.Write(ws.ctx, websocket.MessageText, c.Content)
	}
	return err == nil
}

// deliver writes one published ws-message. It reports false once the
// connection is done.
func (ws *wsSession) deliver(f *grip.WSMessageFormat) bool {
	switch f.Action {
	case grip.ActionClose:
		ws.queue(grip.WSEvent{Type: grip.WSClose})
		code := f.Code
		if code == 0 {
			code = int(websocket.StatusNormalClosure)
		}
		ws.conn.Close(websocket.StatusCode(code), f.Reason)
		return false
	case grip.ActionRefresh:
		ws.mu.Lock()
		ws.refresh = true
		ws.mu.Unlock()
		ws.signal()
		return true
	}
	var err error
	switch f.Type {
	case "binary":
		err = ws.conn.Write(ws.ctx, websocket.MessageBinary, f.Content)
	case "ping", "pong":
		ctx, cancel := context.WithTimeout(ws.ctx, 10*time.Second)
		err = ws.conn.Ping(ctx)
		cancel()
	default:
		err = ws.conn.Write(ws.ctx, websocket.MessageText, f.Content)
	}
	if err == nil {
		ws.out.Add(1)
	}
	return err == nil
}
