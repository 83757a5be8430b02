package proxy

import (
	"log"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// Defaults of ListenerLimits.
const (
	// DefaultMaxConns is Pushpin's client_maxconn.
	DefaultMaxConns = 50_000
	// DefaultMaxHeaderBytes is 64 KiB, not net/http's 1 MiB: enough for
	// big cookies and bearer tokens (browsers and nginx stop near 8-32
	// KiB), while 50,000 clients each sending a megabyte of headers could
	// hold 50 GB.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultReadHeaderTimeout bounds a client that sends its request
	// headers slowly (slowloris).
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout is how long a keep-alive connection may wait for
	// its next request.
	DefaultIdleTimeout = 120 * time.Second
)

// ListenerLimits are the limits of the client listener and its
// http.Server. They are read when the listener starts: changing them takes
// a restart. A zero field takes its default.
type ListenerLimits struct {
	// MaxConns is the most client connections open at once, counting held
	// streams and WebSockets until they close. A connection over it is
	// answered "503 Service Unavailable" with Retry-After: 5 and closed.
	// YAML limits.max_client_conns. Default 50,000 (Pushpin's
	// client_maxconn); gripd lowers the default to half its open-file limit
	// when that is smaller.
	MaxConns int
	// MaxHeaderBytes caps the request line and headers; a larger request
	// is answered "431 Request Header Fields Too Large" and closed (net/http
	// allows 4 KiB over it). YAML limits.max_header_bytes. Default 64 KiB.
	MaxHeaderBytes int
	// ReadHeaderTimeout is how long a client may take to send its request
	// headers; a slower one is disconnected. YAML
	// limits.read_header_timeout. Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request before it is closed. YAML limits.idle_timeout. Default
	// 120s.
	IdleTimeout time.Duration
}

// WithDefaults returns l with every zero field set to its default.
func (l ListenerLimits) WithDefaults() ListenerLimits {
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	return l
}

// NewClientListener wraps ln, the listener for clients, with the
// connection limit of l.
func NewClientListener(ln net.Listener, l ListenerLimits, log zerolog.Logger) *ConnLimitListener {
	return NewConnLimitListener(ln, l.WithDefaults().MaxConns, log)
}

// NewClientServer returns the http.Server for clients, serving h with the
// limits of l. It has no read or write timeout: bodies may stream for as
// long as they need, and held connections stay open by design.
func NewClientServer(h http.Handler, l ListenerLimits, errorLog *log.Logger) *http.Server {
	l = l.WithDefaults()
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		ErrorLog:          errorLog,
	}
}
