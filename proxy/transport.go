package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// backendDownFor is how long a backend that refused a connection is tried
// last (passive health): other backends of the route go first meanwhile.
const backendDownFor = 5 * time.Second

// errNoBackend is returned when every backend of a route refused the
// connection.
var errNoBackend = errors.New("no backend accepted the connection")

// newTransport returns the HTTP client gripd forwards with. Keep-alive
// pools are large because every client request becomes a backend request.
func newTransport(cfg Config, insecure bool) *http.Transport {
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil, // an edge proxy never goes through another by environment
		DialContext:           dialer.DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   1024,
		MaxConnsPerHost:       cfg.MaxConnsPerBackend,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		ResponseHeaderTimeout: cfg.BackendTimeout,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: insecure}, //nolint:gosec // only when the route says insecure
		// Bodies are passed on as the backend sent them; the client asked for
		// whatever encoding it accepts.
		DisableCompression: true,
	}
}

// backendState is the passive health of one backend.
type backendState struct {
	downUntil atomic.Int64 // unix nanoseconds; 0 = healthy
}

// transports are the two HTTP clients gripd forwards with: one checks
// TLS certificates, the other (routes marked insecure) does not. They are
// replaced as a pair when the backend limits change on a reload.
type transports struct {
	secure, insecure *http.Transport
}

func newTransports(cfg Config) *transports {
	return &transports{secure: newTransport(cfg, false), insecure: newTransport(cfg, true)}
}

// forBackend returns the client for b.
func (t *transports) forBackend(b *Backend) *http.Transport {
	if b.Insecure {
		return t.insecure
	}
	return t.secure
}

// failover is the RoundTripper that tries a route's backends in turn. The
// outbound request's URL host is chosen per attempt; the request carries
// its requestState in the context (stateKey).
type failover struct {
	clients atomic.Pointer[transports]
	obs     Observer // told about every request, once, after failover
	mu      sync.Mutex
	health  map[string]*backendState // by backend URL host
}

// setTransports installs new clients for the requests to come; requests
// under way finish on the old ones, whose idle connections are closed.
func (f *failover) setTransports(t *transports) {
	if old := f.clients.Swap(t); old != nil {
		old.secure.CloseIdleConnections()
		old.insecure.CloseIdleConnections()
	}
}

func (f *failover) state(host string) *backendState {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.health[host]
	if st == nil {
		st = &backendState{}
		f.health[host] = st
	}
	return st
}

// order lists the backends of r to try, healthy ones first, starting at
// start for round robin.
func (f *failover) order(r *Route, start int, now time.Time) []*Backend {
	n := len(r.Backends)
	healthy := make([]*Backend, 0, n)
	var down []*Backend
	for i := range n {
		b := &r.Backends[(start+i)%n]
		if f.state(b.URL.Host).downUntil.Load() > now.UnixNano() {
			down = append(down, b)
		} else {
			healthy = append(healthy, b)
		}
	}
	return append(healthy, down...)
}

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	st := stateFrom(req.Context())
	start := time.Now()
	resp, err := f.roundTrip(req, st)
	if bodyErr := st.body.failed(); err != nil && bodyErr != nil {
		err = bodyErr // the client's fault, whatever the transport says
	}
	observeBackend(req.Context(), f.obs, st.route.ID, start, resp, err)
	return resp, err
}

// roundTrip tries the backends of st.route in turn.
func (f *failover) roundTrip(req *http.Request, st *requestState) (*http.Response, error) {
	backends := f.order(st.route, st.rrStart, time.Now())
	body := &replayGuard{rc: req.Body}
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = body
	}
	var lastErr error
	clients := f.clients.Load()
	clientHost := req.Host
	for i, b := range backends {
		req.URL.Scheme = b.URL.Scheme
		req.URL.Host = b.URL.Host
		req.Host = clientHost
		if b.HostHeader != "" {
			req.Host = b.HostHeader
		}
		resp, err := sendQueued(clients.forBackend(b), req, st.queueTimeout())
		if err == nil {
			st.backend = b.URL.Host
			return resp, nil
		}
		lastErr = err
		if errors.Is(err, errBackendBusy) && !body.read.Load() {
			continue // never sent: the next backend may have room
		}
		if !isDialError(err) || body.read.Load() {
			break // the request may have reached the backend: never send it twice
		}
		f.state(b.URL.Host).downUntil.Store(time.Now().Add(backendDownFor).UnixNano())
		st.logDial(b.URL.Host, err, i < len(backends)-1)
	}
	if isDialError(lastErr) {
		return nil, errors.Join(errNoBackend, lastErr)
	}
	return nil, lastErr
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// replayGuard lets a request body be offered to the next backend after a
// connection failure (the transport closes a body on every error), and
// records whether any of it was read: a body that was is never resent.
type replayGuard struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (g *replayGuard) Read(p []byte) (int, error) {
	g.read.Store(true)
	return g.rc.Read(p)
}

// Close does nothing: the inbound request body belongs to the HTTP server,
// which closes it when the handler returns.
func (g *replayGuard) Close() error { return nil }
