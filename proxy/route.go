package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// Balance says how a route with several backends picks one.
type Balance string

const (
	// BalanceFailover tries the backends in order, the next one only when
	// the previous refused the connection (Pushpin's only mode; the default).
	BalanceFailover Balance = "failover"
	// BalanceRoundRobin starts each request at the next backend in turn,
	// still failing over to the others on connect errors.
	BalanceRoundRobin Balance = "round_robin"
)

// Route is one entry of the route table: which requests it takes, how it
// rewrites them, and where it sends them.
type Route struct {
	// ID names the route in logs and metrics. Default: DefaultRouteID,
	// "host,path_prefix" ("*" for any host, no ",path_prefix" without one).
	ID string
	// Host is the exact request host (without port) this route is for; ""
	// or "*" means any host. Host-specific routes always win over "*".
	Host string
	// PathPrefix is matched against the raw request path (not per segment);
	// the longest matching prefix wins. Default "" (every path).
	PathPrefix string
	// StripChars drops this many leading characters of the path before
	// forwarding (Pushpin path_rem=N; YAML rewrite.strip_prefix sets it to
	// len(PathPrefix)). Default 0.
	StripChars int
	// ReplacePrefix, when set, replaces PathPrefix with this value before
	// forwarding (Pushpin replace_beg=X; YAML rewrite.replace_prefix).
	ReplacePrefix *string
	// Backends are tried as Balance says. At least one.
	Backends []Backend
	// Balance is failover (default) or round_robin.
	Balance Balance
	// NoGrip makes the route a plain reverse proxy: no Grip-Sig, no
	// Grip-Feature, and GRIP instructions in responses are passed through
	// untouched. Default false.
	NoGrip bool
	// SigIss and SigKey override the server-wide Grip-Sig issuer and key
	// for this route. Default "" (use the server's).
	SigIss string
	SigKey []byte
	// SetHeaders are set on (or, with an empty value, removed from) every
	// request forwarded on this route. Default none.
	SetHeaders http.Header
	// AutoCrossOrigin adds the CORS headers a response lacks to every
	// answer on this route, as Pushpin's aco does (see cors.go). Default
	// false.
	AutoCrossOrigin bool
}

// Backend is one target of a route.
type Backend struct {
	// URL holds the scheme (http or https) and host:port; its path is unused.
	URL *url.URL
	// Insecure skips TLS certificate checks for an https backend. Default false.
	Insecure bool
	// HostHeader, when set, replaces the client's Host header on requests
	// to this backend (Pushpin's host=). Default "" (the client's Host).
	HostHeader string
	// OverHTTP turns WebSocket clients into WebSocket-over-HTTP requests to
	// this backend (Pushpin's over_http). Default false.
	OverHTTP bool
}

// RewritePath applies the route's path rewrite to a raw request path.
func (r *Route) RewritePath(path string) string {
	if r.ReplacePrefix != nil && strings.HasPrefix(path, r.PathPrefix) {
		path = *r.ReplacePrefix + path[len(r.PathPrefix):]
	}
	if r.StripChars > 0 {
		if r.StripChars >= len(path) {
			path = ""
		} else {
			path = path[r.StripChars:]
		}
	}
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	return path
}
