package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Table is the route table: it picks the route for a request by host and
// path, the way Pushpin does:
//
//   - the host is compared without its port and a trailing dot
//     ("files.local." is files.local; ServeHTTP strips both),
//     case-insensitively;
//   - if the host has routes of its own, only those are considered, and
//     when none of them matches there is no route (the caller answers 502
//     "No route for host: X"); "*" routes serve only hosts that have no
//     routes at all;
//   - among the candidates the longest matching PathPrefix wins, a raw
//     prefix match on the request path (not per path segment).
//
// Line order never matters. A Table is immutable once built, so one Table
// can serve every request goroutine without locks; a reload builds a new
// Table and swaps it in.
type Table struct {
	// routes holds the table's own deep copies, in the order given.
	routes []Route
	// byHost maps a host (lower case, no port) to the indexes in routes of
	// its routes, longest PathPrefix first.
	byHost map[string][]int
	// anyHost holds the indexes of the "*" routes, longest PathPrefix first.
	anyHost []int
}

// NewTable checks routes and builds a Table from copies of them, so later
// changes to the caller's slice do not reach the table. A route without an
// ID gets DefaultRouteID; an empty Balance means failover. Errors: a route
// that fails Validate, two routes with the same ID, and two routes with the
// same host and path prefix (the error names both IDs, since one of them
// could never be chosen).
func NewTable(routes []Route) (*Table, error) {
	t := &Table{byHost: make(map[string][]int)}
	idSeen := make(map[string]bool)
	// matchSeen maps a (host, path prefix) pair to the ID of its route.
	type matchKey struct{ host, pathPrefix string }
	matchSeen := make(map[matchKey]string)

	for _, original := range routes {
		route := cloneRoute(original)
		if route.ID == "" {
			route.ID = DefaultRouteID(route.Host, route.PathPrefix)
		}
		if route.Balance == "" {
			route.Balance = BalanceFailover
		}
		if err := route.Validate(); err != nil {
			return nil, fmt.Errorf("route %q: %w", route.ID, err)
		}
		if idSeen[route.ID] {
			return nil, fmt.Errorf("route %q: duplicate route id", route.ID)
		}
		idSeen[route.ID] = true

		key := matchKey{host: tableHost(route.Host), pathPrefix: route.PathPrefix}
		if other, dup := matchSeen[key]; dup {
			return nil, fmt.Errorf("routes %q and %q both match host %q with path prefix %q",
				other, route.ID, displayHost(key.host), route.PathPrefix)
		}
		matchSeen[key] = route.ID

		index := len(t.routes)
		t.routes = append(t.routes, route)
		if key.host == "" {
			t.anyHost = append(t.anyHost, index)
		} else {
			t.byHost[key.host] = append(t.byHost[key.host], index)
		}
	}

	longestPrefixFirst := func(a, b int) int {
		return len(t.routes[b].PathPrefix) - len(t.routes[a].PathPrefix)
	}
	slices.SortStableFunc(t.anyHost, longestPrefixFirst)
	for _, indexes := range t.byHost {
		slices.SortStableFunc(indexes, longestPrefixFirst)
	}
	return t, nil
}

// Match returns the route for a request's Host header value (with or
// without port) and raw path, or false when there is none. The returned
// Route belongs to the table: read it, do not modify it.
func (t *Table) Match(host, path string) (*Route, bool) {
	candidates, ok := t.byHost[tableHost(host)]
	if !ok {
		candidates = t.anyHost
	}
	// Candidates are sorted longest prefix first, so the first match is
	// the best one.
	for _, index := range candidates {
		route := &t.routes[index]
		if strings.HasPrefix(path, route.PathPrefix) {
			return route, true
		}
	}
	return nil, false
}

// Routes returns copies of the table's routes in the order they were
// given, for logging and status pages.
func (t *Table) Routes() []Route {
	out := make([]Route, len(t.routes))
	for i, route := range t.routes {
		out[i] = cloneRoute(route)
	}
	return out
}

// Validate checks a route on its own, without looking at other routes.
// NewTable calls it for every route; a config loader can call it first to
// report a mistake next to the route's line in the file.
func (r *Route) Validate() error {
	if r.ID == "" {
		return errors.New("missing id")
	}
	if r.Host != "" && r.Host != "*" {
		if _, err := parseConditionHost(r.Host); err != nil {
			return err
		}
	}
	if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
		return fmt.Errorf(`path prefix %q must start with "/"`, r.PathPrefix)
	}
	if r.StripChars < 0 {
		return fmt.Errorf("strip chars %d is negative", r.StripChars)
	}
	switch r.Balance {
	case "", BalanceFailover, BalanceRoundRobin:
	default:
		return fmt.Errorf("balance %q: want %q or %q", r.Balance, BalanceFailover, BalanceRoundRobin)
	}
	for name, values := range r.SetHeaders {
		if !validHeaderName(name) {
			return fmt.Errorf("header %q: bad header name", name)
		}
		for _, value := range values {
			if !validHeaderValue(value) {
				return fmt.Errorf("header %q: value holds control characters", name)
			}
		}
	}
	if len(r.Backends) == 0 {
		return errors.New("no backends (need at least one)")
	}
	for i := range r.Backends {
		if err := r.Backends[i].validate(); err != nil {
			return fmt.Errorf("backend %d: %w", i+1, err)
		}
	}
	return nil
}

// validate checks that a backend can be dialled: an http or https URL with
// a valid host and an explicit port.
func (b *Backend) validate() error {
	if b.URL == nil {
		return errors.New("missing URL")
	}
	if b.URL.Scheme != "http" && b.URL.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", b.URL.String())
	}
	if _, _, err := parseHostPort(b.URL.Host); err != nil {
		return fmt.Errorf("%q: %w", b.URL.String(), err)
	}
	if b.HostHeader != "" {
		if err := validHostHeader(b.HostHeader); err != nil {
			return fmt.Errorf("host header %q: %w", b.HostHeader, err)
		}
	}
	return nil
}

// tableHost reduces a Host header value or a route's host to the form the
// table compares: no port, no IPv6 brackets, lower case. "*" becomes ""
// (any host).
func tableHost(host string) string {
	if host == "*" {
		return ""
	}
	if strings.HasPrefix(host, "[") {
		if end := strings.IndexByte(host, ']'); end > 0 {
			host = host[1:end]
		}
	} else if strings.Count(host, ":") == 1 {
		// One colon is host:port; more is a bare IPv6 address.
		host, _, _ = strings.Cut(host, ":")
	}
	return strings.ToLower(host)
}

// displayHost shows tableHost's "" (any host) as "*" in messages.
func displayHost(host string) string {
	if host == "" {
		return "*"
	}
	return host
}

// cloneRoute deep-copies a route, so the table shares no memory with the
// routes it was given or hands out.
func cloneRoute(r Route) Route {
	c := r
	if r.ReplacePrefix != nil {
		replacement := *r.ReplacePrefix
		c.ReplacePrefix = &replacement
	}
	c.SigKey = bytes.Clone(r.SigKey)
	c.SetHeaders = r.SetHeaders.Clone()
	if r.Backends != nil {
		c.Backends = make([]Backend, len(r.Backends))
		for i, b := range r.Backends {
			if b.URL != nil {
				u := *b.URL
				b.URL = &u
			}
			c.Backends[i] = b
		}
	}
	return c
}

// validHeaderName reports whether name is an HTTP token (RFC 9110), the
// only form a header name may take on the wire.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether value can be sent as a header value:
// no control characters other than tab. Go's HTTP client refuses such
// values at request time; catching them at load time names the route.
func validHeaderValue(value string) bool {
	for i := 0; i < len(value); i++ {
		c := value[i]
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
