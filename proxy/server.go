package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// Defaults of Config. They are the defaults of gripd's configuration too
// (internal/config refers to them), so each is written here once.
const (
	// DefaultSigIss is the Grip-Sig issuer claim when none is set.
	DefaultSigIss = "gripd"
	// DefaultBackendTimeout is how long a backend may take to send its
	// response headers.
	DefaultBackendTimeout = 30 * time.Second
	// DefaultDialTimeout is how long a connection to a backend may take.
	DefaultDialTimeout = 5 * time.Second
	// DefaultMaxConnsPerBackend caps the connections to one backend.
	DefaultMaxConnsPerBackend = 4096
)

// Config is what a Server needs. Zero values take their defaults.
type Config struct {
	// Table is the route table. Required.
	Table *Table
	// Hub parks held connections. Required.
	Hub *handoff.Hub
	// SigIss and SigKey sign Grip-Sig for routes that set neither. With no
	// key, no Grip-Sig is sent. Defaults: "gripd", none.
	SigIss string
	SigKey []byte
	// BackendTimeout is how long to wait for a backend's response headers
	// before answering 504. Default 30s.
	BackendTimeout time.Duration
	// MaxConnsPerBackend caps the connections to one backend; requests
	// beyond it wait for one to come free. Default 4096.
	MaxConnsPerBackend int
	// DialTimeout is how long to wait for a backend connection (and TLS
	// handshake) before trying the next backend. Default 5s.
	DialTimeout time.Duration
	// WriteTimeout is how long one write to a held stream may take before
	// the client is dropped as stalled. Default 30s.
	WriteTimeout time.Duration
	// Limits are checked at request time (see Limits); SetLimits swaps
	// them while the server runs. Zero fields take their defaults.
	Limits Limits
	// Log receives one line per client request and the errors.
	Log zerolog.Logger
	// Observer is told about holds and backend requests, for metrics
	// (see metrics.go). Default none.
	Observer Observer
	// LinkRetryDelay is the first pause before fetching a failed next link
	// again; it doubles with each retry (5 at most). Default 1s, as in
	// Pushpin.
	LinkRetryDelay time.Duration
	// History, when set, catches up connections that missed items before
	// their backend is asked (history.go), and replays what they missed
	// to connections that resume (resume.go). Default none.
	History handoff.History
	// HistoryLimit caps the items taken from one channel's history for one
	// connection (a catch-up or a replay): a connection that missed more
	// is recovered through its backend. Default 1000.
	HistoryLimit int
	// HistoryTimeout bounds the history lookups of one catch-up or resume.
	// Default 5s.
	HistoryTimeout time.Duration
	// LinkHosts are the hosts, "host" (any port) or "host:port", that an
	// absolute next link may name besides those of the route table; such a
	// link is fetched as it is, unsigned. A link to any other host is
	// refused and logged, and the stream ends. Default none.
	LinkHosts []string
}

// Server forwards client requests to backends and acts on GRIP
// instructions in their responses. It is an http.Handler.
type Server struct {
	cfg     Config
	table   atomic.Pointer[Table]
	limits  atomic.Pointer[Limits]
	rp      *httputil.ReverseProxy
	fo      *failover
	signing atomic.Pointer[signing]
	rr      sync.Map // route ID -> *atomic.Uint64 (round-robin counters)
	// timeout is the backend timeout in nanoseconds (SetBackendLimits).
	timeout atomic.Int64
	// recoveries paces re-requests and link fetches (rerequest.go).
	recoveries *rate.Limiter
	// partial counts the bytes of unfinished client WebSocket messages
	// (wsread.go).
	partial partialBudget
}

// signing is the server-wide Grip-Sig issuer and key, with the signers
// made from them per route. A reload replaces the whole value, so a
// route never signs with a mix of old and new settings.
type signing struct {
	iss     string
	key     []byte
	byRoute sync.Map // route ID -> *grip.Signer
}

// NewServer returns a Server for cfg.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Table == nil || cfg.Hub == nil {
		return nil, errors.New("proxy: Config needs a Table and a Hub")
	}
	if cfg.SigIss == "" {
		cfg.SigIss = DefaultSigIss
	}
	if cfg.BackendTimeout <= 0 {
		cfg.BackendTimeout = DefaultBackendTimeout
	}
	if cfg.MaxConnsPerBackend <= 0 {
		cfg.MaxConnsPerBackend = DefaultMaxConnsPerBackend
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.LinkRetryDelay <= 0 {
		cfg.LinkRetryDelay = time.Second
	}
	s := &Server{cfg: cfg, recoveries: newRecoveryPace()}
	s.table.Store(cfg.Table)
	s.signing.Store(&signing{iss: cfg.SigIss, key: cfg.SigKey})
	s.timeout.Store(int64(cfg.BackendTimeout))
	s.fo = &failover{health: map[string]*backendState{}, obs: cfg.Observer}
	s.fo.setTransports(newTransports(cfg))
	s.SetLimits(cfg.Limits)
	s.rp = &httputil.ReverseProxy{
		Rewrite:        s.rewrite,
		Transport:      s.fo,
		ModifyResponse: s.modifyResponse,
		ErrorHandler:   s.errorHandler,
		BufferPool:     newBufferPool(),
		// SSE and unknown-length responses are flushed at once; others at
		// least this often, so a slowly trickling download still moves.
		FlushInterval: 100 * time.Millisecond,
	}
	return s, nil
}

// SetTable swaps the route table; requests under way keep the old one,
// and held connections are not touched. Routes may carry keys of their
// own, so the per-route signers are made afresh.
func (s *Server) SetTable(t *Table) {
	old := s.signing.Load()
	s.table.Store(t)
	s.signing.Store(&signing{iss: old.iss, key: old.key})
}

// SetSigning replaces the server-wide Grip-Sig issuer and key (iss ""
// means DefaultSigIss; no key means no Grip-Sig) for the requests to come.
func (s *Server) SetSigning(iss string, key []byte) {
	if iss == "" {
		iss = DefaultSigIss
	}
	s.signing.Store(&signing{iss: iss, key: key})
}

// SetBackendLimits replaces the backend timeout and the cap on
// connections per backend (zero keeps the default) for the requests to
// come. Requests under way finish with the old settings; for a moment old
// and new connections together may pass the new cap.
func (s *Server) SetBackendLimits(timeout time.Duration, maxConns int) {
	cfg := s.cfg
	if timeout > 0 {
		cfg.BackendTimeout = timeout
	}
	if maxConns > 0 {
		cfg.MaxConnsPerBackend = maxConns
	}
	s.timeout.Store(int64(cfg.BackendTimeout))
	s.fo.setTransports(newTransports(cfg))
}

// CloseIdleConnections closes the idle keep-alive connections to
// backends (at shutdown, and in tests).
func (s *Server) CloseIdleConnections() {
	c := s.fo.clients.Load()
	c.secure.CloseIdleConnections()
	c.insecure.CloseIdleConnections()
}

// backendTimeout is how long a backend may take to answer.
func (s *Server) backendTimeout() time.Duration { return time.Duration(s.timeout.Load()) }

// requestState travels in the request context from ServeHTTP through the
// reverse proxy's hooks, and ends up in the access log line.
type requestState struct {
	route   *Route
	w       *responseLog
	rrStart int
	backend string
	hold    grip.HoldMode
	chans   []grip.Channel
	end     string // how a hold ended
	parked  bool   // a parked stream owns the connection and logs at its end
	start   time.Time
	log     zerolog.Logger
	// requestID is the X-Request-Id sent to the backend and the client.
	requestID string
	// limits are the ones in force when the request came in.
	limits *Limits
	// recovery tracks the re-requests of a long-poll (rerequest.go).
	recovery recovery
	// body is the client's request body; nil when there is none.
	body *clientBody
}

// queueTimeout is how long the request may wait for a backend connection.
func (st *requestState) queueTimeout() time.Duration {
	if st.limits == nil {
		return DefaultBackendQueueTimeout
	}
	return st.limits.BackendQueueTimeout
}

type stateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	return ctx.Value(stateKey{}).(*requestState)
}

// logDial logs a backend that refused the connection. Only when another
// backend is left to try does the line say so: a route's only (or last)
// backend failing ends in a 502, logged as "no backend reachable".
func (st *requestState) logDial(host string, err error, another bool) {
	msg := "backend refused the connection"
	if another {
		msg += "; trying the next"
	}
	st.log.Warn().Str("route", st.route.ID).Str("backend", host).Err(err).Msg(msg)
}

// ServeHTTP routes, forwards and logs one client request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	lw := &responseLog{ResponseWriter: w}
	id := requestID(r)
	setRequestID(lw.Header(), id) // every answer carries it, errors too
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	// "files.local." is files.local (a fully qualified name): it must not
	// slip past files.local's routes to the "*" ones.
	host = strings.TrimSuffix(host, ".")
	if r.Method == http.MethodConnect {
		// gripd is a reverse proxy: it never opens tunnels.
		lw.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		writeText(lw, http.StatusMethodNotAllowed, "CONNECT is not supported.\n")
		s.logRequest(r, &requestState{w: lw}, start)
		return
	}
	if !s.normalizeRequestPath(r) {
		writeText(lw, http.StatusBadRequest, "Ambiguous request path: encoded separators around dot segments.\n")
		s.logRequest(r, &requestState{w: lw, requestID: id, end: "ambiguous path"}, start)
		return
	}
	route, ok := s.table.Load().Match(host, r.URL.EscapedPath())
	if !ok {
		writeText(lw, http.StatusBadGateway, "No route for host: "+host+"\n")
		s.logRequest(r, &requestState{w: lw, requestID: id}, start)
		return
	}
	if route.AutoCrossOrigin && !isWebSocketUpgrade(r) {
		lw.corsRequest = r.Header // every answer on the route gets CORS headers
	}
	if isWebSocketUpgrade(r) {
		switch {
		case route.Backends[0].OverHTTP:
			s.serveWebSocket(lw, r, route, start)
			return
		case !route.NoGrip:
			s.servePassthroughWebSocket(lw, r, route, start)
			return
		}
		// no_grip routes relay the upgrade untouched, below.
	}
	limits := s.limits.Load()
	st := &requestState{route: route, w: lw, log: s.cfg.Log, start: start, requestID: id, limits: limits}
	st.body = newClientBody(w, r, limits.ReadBodyTimeout)
	if !limitRequestBody(w, r, limits.MaxRequestBody) {
		st.end = "request body too large"
		writeBodyTooLarge(lw, limits.MaxRequestBody)
		s.logRequest(r, st, start)
		return
	}
	if route.Balance == BalanceRoundRobin && len(route.Backends) > 1 {
		c, _ := s.rr.LoadOrStore(route.ID, new(atomic.Uint64))
		st.rrStart = int(c.(*atomic.Uint64).Add(1) % uint64(len(route.Backends)))
	}
	ctx := context.WithValue(r.Context(), stateKey{}, st)
	defer s.logAborted(r, st, start)
	s.serveWithRerequests(lw, r.WithContext(ctx), st)
	s.logRequest(r, st, start)
}

// logAborted writes the access-log line of a request whose response was
// cut off mid-body: the reverse proxy then panics with
// http.ErrAbortHandler (the server drops the connection, so the client
// cannot take a cut body for a whole one), which would skip the line.
// Deferred; it panics on.
func (s *Server) logAborted(r *http.Request, st *requestState, start time.Time) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		if r.Context().Err() != nil {
			st.end = "client gone"
		} else {
			st.end = "backend broke off the body"
			st.log.Warn().Str("route", st.route.ID).Str("backend", st.backend).Msg("backend broke off its response body; the client's connection is cut")
		}
		s.logRequest(r, st, start)
	}
	panic(v)
}

// normalizeRequestPath puts r's path in its normalized form
// (normalizePath), which the route is chosen on and the backend gets. It
// reports false for an ambiguous path, to be refused.
func (s *Server) normalizeRequestPath(r *http.Request) bool {
	escaped := r.URL.EscapedPath()
	norm, ok := normalizePath(escaped)
	if !ok {
		return false
	}
	if norm != escaped {
		r.URL.Path, r.URL.RawPath = unescapePath(norm), norm
	}
	return true
}

// stripClientGripHeaders removes the Grip-* headers a client sent, and
// their Grip_* spellings too: CGI-style backends map both to HTTP_GRIP_*,
// so a client could otherwise smuggle a Grip-Sig past the proxy.
func stripClientGripHeaders(h http.Header) {
	grip.StripGripHeaders(h)
	for k := range h {
		if len(k) >= 5 && strings.EqualFold(k[:5], "grip_") {
			delete(h, k)
		}
	}
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func (s *Server) signer(r *Route) *grip.Signer {
	sg := s.signing.Load()
	if v, ok := sg.byRoute.Load(r.ID); ok {
		return v.(*grip.Signer)
	}
	iss, key := sg.iss, sg.key
	if r.SigIss != "" {
		iss = r.SigIss
	}
	if len(r.SigKey) > 0 {
		key = r.SigKey
	}
	v, _ := sg.byRoute.LoadOrStore(r.ID, grip.NewSigner(iss, key))
	return v.(*grip.Signer)
}

// rewrite builds the backend request from the client's.
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	st := stateFrom(pr.In.Context())
	route := st.route
	out := pr.Out
	// The backend is picked by the failover transport; these are placeholders.
	out.URL.Scheme = route.Backends[0].URL.Scheme
	out.URL.Host = route.Backends[0].URL.Host
	if route.StripChars > 0 || route.ReplacePrefix != nil {
		path := route.RewritePath(pr.In.URL.EscapedPath())
		out.URL.RawPath = path
		out.URL.Path = unescapePath(path)
	}
	out.Host = pr.In.Host
	setForwardedHeaders(out.Header, pr.In)
	setRequestID(out.Header, st.requestID)
	for k, vs := range route.SetHeaders {
		if len(vs) == 0 || vs[0] == "" {
			out.Header.Del(k)
		} else {
			out.Header[k] = vs
		}
	}
	if route.NoGrip {
		return
	}
	// Grip-* headers are the backend's to trust; never a client's.
	stripClientGripHeaders(out.Header)
	addGripLast(out.Header, st.recovery.gripLast) // a re-request's
	tok, err := s.signer(route).Token(time.Now())
	if err != nil {
		st.log.Error().Err(err).Str("route", route.ID).Msg("cannot sign Grip-Sig")
	} else if tok != "" {
		out.Header.Set("Grip-Sig", tok)
	}
	out.Header.Set("Grip-Feature", grip.Feature)
}

// errHandled tells the error handler that modifyResponse has already
// answered the client (a GRIP hold or an instruction error).
var errHandled = errors.New("response handled by GRIP")

func (s *Server) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	if bodyErr := st.body.failed(); bodyErr != nil {
		// Whatever the transport reports (a failed body read also cancels
		// the request's context), the client's body is what failed.
		err = bodyErr
	}
	switch {
	case errors.Is(err, errHandled):
		return
	case errors.As(err, new(*http.MaxBytesError)):
		// A chunked body passed the limit while it was being forwarded.
		st.end = "request body too large"
		if st.w.status == 0 {
			writeBodyTooLarge(w, st.limits.MaxRequestBody)
		}
	case errors.As(err, new(*clientBodyError)):
		// The client's fault: a body sent too slowly or malformed.
		st.log.Info().Str("route", st.route.ID).Str("remote", r.RemoteAddr).Err(err).Msg("client request body failed")
		if errors.Is(err, errReadBodyTimeout) {
			st.end = "request body timeout"
			if st.w.status == 0 {
				w.Header().Set("Connection", "close")
				writeText(w, http.StatusRequestTimeout, "Request body not received in time.\n")
			}
		} else {
			st.end = "bad request body"
			if st.w.status == 0 {
				w.Header().Set("Connection", "close")
				writeText(w, http.StatusBadRequest, "Malformed request body.\n")
			}
		}
	case errors.Is(err, errBackendBusy):
		st.end = "backend busy"
		st.log.Warn().Str("route", st.route.ID).Err(err).Msg("no backend connection came free in time")
		w.Header().Set("Retry-After", backendBusyRetryAfter)
		writeText(w, http.StatusServiceUnavailable, "Backend busy, try again.\n")
	case r.Context().Err() != nil:
		st.end = "client gone"
		st.w.status = statusClientClosed
		return
	case errors.Is(err, errNoBackend):
		st.log.Error().Str("route", st.route.ID).Err(err).Msg("no backend reachable")
		writeText(w, http.StatusBadGateway, "Error while proxying to origin.\n")
	case isTimeout(err):
		st.log.Error().Str("route", st.route.ID).Str("backend", st.backend).Err(err).Msg("backend timed out")
		writeText(w, http.StatusGatewayTimeout, "Backend timed out.\n")
	default:
		st.log.Error().Str("route", st.route.ID).Str("backend", st.backend).Err(err).Msg("proxying to backend failed")
		if st.w.status == 0 {
			writeText(w, http.StatusBadGateway, "Error while proxying to origin.\n")
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// statusClientClosed is logged (never sent) when the client went away
// before it was answered, as nginx does.
const statusClientClosed = 499

func writeText(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// accessEntry is one access-log line. It is a plain value so that a
// parked stream can log when it ends without keeping the request alive.
type accessEntry struct {
	method, path, host, remote string
	route, backend, end        string
	requestID                  string
	hold                       grip.HoldMode
	channels                   []grip.Channel
	status                     int
	bytes                      int64
	start                      time.Time
}

func newAccessEntry(r *http.Request, st *requestState, start time.Time) accessEntry {
	e := accessEntry{
		method: r.Method, path: r.URL.Path, host: r.Host, remote: r.RemoteAddr,
		backend: st.backend, end: st.end, hold: st.hold, channels: st.chans,
		status: st.w.status, bytes: st.w.bytes, start: start, requestID: st.requestID,
	}
	if st.route != nil {
		e.route = st.route.ID
	}
	return e
}

func (s *Server) logRequest(r *http.Request, st *requestState, start time.Time) {
	if st.parked {
		return // the parked stream logs when it ends
	}
	s.logAccess(newAccessEntry(r, st, start))
}

func (s *Server) logAccess(e accessEntry) {
	status := e.status
	if status == 0 {
		status = http.StatusOK
	}
	lvl := zerolog.InfoLevel
	if status >= 500 && status != statusClientClosed {
		lvl = zerolog.WarnLevel
	}
	ev := s.cfg.Log.WithLevel(lvl)
	if !ev.Enabled() {
		return
	}
	ev = ev.Str("method", e.method).Str("path", e.path).Str("host", e.host).
		Str("remote", e.remote).Int("status", status).Int64("bytes", e.bytes).
		Dur("duration", time.Since(e.start))
	if e.requestID != "" {
		ev = ev.Str("request_id", e.requestID)
	}
	if e.route != "" {
		ev = ev.Str("route", e.route)
	}
	if e.backend != "" {
		ev = ev.Str("backend", e.backend)
	}
	if e.hold != grip.HoldNone {
		names := make([]string, len(e.channels))
		for i, c := range e.channels {
			names[i] = c.Name
		}
		ev = ev.Str("hold", string(e.hold)).Str("channels", strings.Join(names, ","))
	}
	if e.end != "" {
		ev = ev.Str("end", e.end)
	}
	ev.Msg("request")
}
