package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
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
// The size of a client message and the channels per connection are
// configurable: see Limits.
const (
	wsMaxRequestBody = 200000  // client events batched into one request
	wsMaxReplyBody   = 1000000 // a backend reply
	wsMaxRejectBody  = 100000  // a rejection body relayed to the client
	wsMinKeepAlive   = 20 * time.Second
	wsRetries        = 5 // after a backend connection error
	// wsMaxPending caps the client events waiting for the backend (their
	// content plus 16 bytes each): at the cap readClient stops reading, so
	// the TCP window pushes back on the client, as Pushpin's credits do.
	// A session holds at most this plus one message (limits.max_ws_message)
	// plus the batch in flight.
	wsMaxPending = 4 * wsMaxRequestBody
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
//
// Once the handshake is done the HTTP handler returns. An idle session
// then costs one goroutine, blocked reading the client; the goroutine that
// talks to the backend and the one that writes published messages are
// started when there is work and end when it is done.
type wsSession struct {
	srv   *Server
	route *Route
	st    *requestState // for the failover transport (route, log)
	conn  *websocket.Conn
	cid   string
	host  string      // the client's Host, sent to the backend
	base  http.Header // handshake headers replayed on every request
	url   string
	sub   *handoff.Subscriber
	log   zerolog.Logger
	// backend is the backend WebSocket of a passthrough route; nil for
	// WebSocket-over-HTTP.
	backend *websocket.Conn
	entry   accessEntry // the log line written when the session ends

	ctx    context.Context
	cancel context.CancelFunc

	sending    atomic.Bool // a backend goroutine is on its way or running
	delivering atomic.Bool // a delivery goroutine is on its way or running
	ended      atomic.Bool
	closing    atomic.Bool // a publish closed the client
	goingAway  atomic.Bool // gripd closed the client with 1001 (a drain)
	endOnce    sync.Once
	in, out    atomic.Int64 // messages from and to the client, for the log

	mu        sync.Mutex // guards the fields below
	pending   []grip.WSEvent
	pendingN  int           // bytes in pending, as takeBatch counts them
	room      chan struct{} // made when readClient first waits for room below wsMaxPending
	meta      map[string]string
	kaIdle    time.Duration // Keep-Alive-Interval; 0 = none
	kaDue     bool          // Keep-Alive-Interval passed: send an empty request
	kaTimer   *time.Timer
	detached  bool
	gripMode  bool
	prefix    string
	refresh   bool // a publish asked for a request to the backend
	closeSent bool // a CLOSE or DISCONNECT is queued for the backend

	// the client keep-alive a keep-alive control message asked for
	clientKA      *grip.WSControl
	clientKATimer *time.Timer
}

// newWSSession sets up the session of a client WebSocket request.
func (s *Server) newWSSession(w *responseLog, r *http.Request, route *Route, start time.Time) *wsSession {
	st := &requestState{route: route, w: w, log: s.cfg.Log, start: start, hold: "websocket", limits: s.limits.Load(),
		requestID: w.Header().Get(requestIDHeader)} // set by ServeHTTP
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), stateKey{}, st))
	return &wsSession{
		srv: s, route: route, st: st, cid: newConnectionID(), meta: map[string]string{},
		host: r.Host, ctx: ctx, cancel: cancel, log: s.cfg.Log, prefix: grip.WSMessagePrefix,
	}
}

// accepted starts an accepted session: from here on it owns conn and logs when
// it ends. The HTTP handler returns after this.
func (ws *wsSession) accepted(conn *websocket.Conn, r *http.Request) {
	ws.conn = conn
	conn.SetReadLimit(ws.srv.limits.Load().MaxWSMessage) // larger → close 1009
	ws.st.w.status = http.StatusSwitchingProtocols
	ws.st.parked = true
	ws.entry = newAccessEntry(r, ws.st, ws.st.start)
	ws.sub = ws.srv.cfg.Hub.Subscribe(handoff.KindWebSocket, nil)
	ws.mu.Lock()
	ws.sub.SetMeta(ws.meta) // the filters' subscription meta, kept in step by applyReplyHeaders and set-meta
	ws.mu.Unlock()
	ws.srv.cfg.Observer.HoldStarted(ws.route.ID, handoff.KindWebSocket)
}

// serveWebSocket terminates a client WebSocket on an over_http route.
func (s *Server) serveWebSocket(w *responseLog, r *http.Request, route *Route, start time.Time) {
	ws := s.newWSSession(w, r, route, start)
	st, cancel := ws.st, ws.cancel
	ws.base = wsBaseHeader(r)
	u := url.URL{Scheme: "http", Host: route.Backends[0].URL.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	if route.StripChars > 0 || route.ReplacePrefix != nil {
		p := route.RewritePath(r.URL.EscapedPath())
		u.RawPath, u.Path = p, unescapePath(p)
	}
	ws.url = u.String()

	// The handshake: OPEN must be answered with OPEN before the client
	// gets its 101.
	resp, events, err := ws.roundTrip([]grip.WSEvent{{Type: grip.WSOpen}})
	if errors.Is(err, errBackendBusy) {
		cancel()
		st.log.Warn().Str("route", route.ID).Err(err).Msg("WebSocket-over-HTTP: no backend connection came free in time")
		w.Header().Set("Retry-After", backendBusyRetryAfter)
		writeText(w, http.StatusServiceUnavailable, "Backend busy, try again.\n")
		s.logRequest(r, st, start)
		return
	}
	if err != nil {
		cancel()
		st.log.Error().Str("route", route.ID).Err(err).Msg("WebSocket-over-HTTP: backend unreachable")
		writeText(w, http.StatusBadGateway, "Error while proxying to origin.\n")
		s.logRequest(r, st, start)
		return
	}
	if reason := wsRejection(resp, events); reason != "" {
		cancel()
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
		cancel()
		st.log.Warn().Str("route", route.ID).Err(err).Msg("WebSocket handshake with the client failed")
		return
	}
	ws.accepted(conn, r)

	// The OPEN reply's other events (subscribe, a welcome message...).
	if end := ws.handleReply(events[1:]); end != "" {
		ws.finish(end)
		return
	}
	ws.sub.SetNotify(ws.wakeDeliver)
	ws.resetBackendKeepAlive()
	go ws.readClient()
	ws.wakeDeliver() // anything published, or an end, since Subscribe
}

// newConnectionID returns a random UUID (version 4).
func newConnectionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// wsBaseHeader is the client's handshake minus what must not be replayed,
// with the X-Forwarded-* headers every backend request gets.
func wsBaseHeader(r *http.Request) http.Header {
	h := r.Header.Clone()
	for _, k := range wsHopHeaders {
		h.Del(k)
	}
	stripClientMetaHeaders(h)
	stripClientGripHeaders(h)
	setForwardedHeaders(h, r)
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
