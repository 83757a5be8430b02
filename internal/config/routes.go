package config

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/gripd/gripd/proxy"
)

// Routes is the route table as the proxy takes it. In the file it is the
// routes: list of RouteSpec mappings; on the command line, --route lines
// in Pushpin's syntax (proxy.ParseRouteLine). Both are checked when
// loaded, each route with its line, and then as a table (duplicate ids,
// two routes for the same host and path prefix).
type Routes []proxy.Route

// RouteSpec is one entry of routes: as written in the file.
type RouteSpec struct {
	// ID names the route in logs and metrics. Default "host,path_prefix"
	// ("*" for any host, no ",path_prefix" without one): "*" for the
	// catch-all route (proxy.DefaultRouteID).
	ID string `yaml:"id"`
	// Match is which requests take the route.
	Match RouteMatch `yaml:"match"`
	// Rewrite changes the path before forwarding.
	Rewrite RouteRewrite `yaml:"rewrite"`
	// Backends are http:// or https:// URLs with a host and an optional
	// port, no path. Required.
	Backends []string `yaml:"backends"`
	// Balance is failover (the default) or round_robin.
	Balance string `yaml:"balance"`
	// NoGrip makes the route a plain reverse proxy.
	NoGrip bool `yaml:"no_grip"`
	// Insecure skips TLS certificate checks for https backends.
	Insecure bool `yaml:"insecure"`
	// Host is the Host header sent to the backends.
	Host string `yaml:"host"`
	// WebSocket "over_http" turns client WebSockets into
	// WebSocket-over-HTTP requests.
	WebSocket string `yaml:"websocket"`
	// Headers are set on every forwarded request.
	Headers RouteHeaders `yaml:"headers"`
	// AutoCrossOrigin is Pushpin's aco: add the CORS headers a response
	// lacks.
	AutoCrossOrigin bool `yaml:"auto_cross_origin"`
}

// RouteMatch is a route's match:.
type RouteMatch struct {
	// Host is an exact host, without port, any case. Default any.
	Host string `yaml:"host"`
	// PathPrefix is a raw path prefix starting with "/". Default any.
	PathPrefix string `yaml:"path_prefix"`
}

// RouteRewrite is a route's rewrite:.
type RouteRewrite struct {
	// StripPrefix drops match.path_prefix before forwarding.
	StripPrefix bool `yaml:"strip_prefix"`
	// ReplacePrefix swaps the prefix for this; "" drops it (a pointer,
	// because an empty replacement is a real setting).
	ReplacePrefix *string `yaml:"replace_prefix"`
}

// RouteHeaders is a route's headers:.
type RouteHeaders struct {
	// Set is headers set on every forwarded request; "" removes one.
	Set map[string]string `yaml:"set"`
}

// yamlShape is what the routes: key holds in the file, for the walks of
// the tests (every key documented).
func (Routes) yamlShape() reflect.Type { return reflect.TypeFor[[]RouteSpec]() }

// decodeNode reads the routes: list, builds each route and checks the
// table.
func (r *Routes) decodeNode(node *yaml.Node, path string) error {
	var specs []RouteSpec
	if err := decode(node, reflect.ValueOf(&specs).Elem(), path, reflect.StructField{}); err != nil {
		return err
	}
	var routes Routes // nil for an empty list, as for none
	for i := range specs {
		route, err := specs[i].build(node.Content[i])
		if err != nil {
			return err
		}
		routes = append(routes, route)
	}
	if _, err := proxy.NewTable(routes); err != nil {
		return fmt.Errorf("line %d: %w", nodeLine(node.Content[firstBadRoute(routes)]), err)
	}
	*r = routes
	return nil
}

// ParseRouteLines reads --route lines (Pushpin's routes-file syntax).
func ParseRouteLines(lines []string) (Routes, error) {
	routes := make(Routes, 0, len(lines))
	for _, line := range lines {
		r, err := proxy.ParseRouteLine(line)
		if err != nil {
			return nil, fmt.Errorf("--route %q: %w", proxy.RedactRouteLine(line), err)
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// firstBadRoute returns the index of the first route that the route table
// rejects in the company of the routes before it: the one whose line an
// error about duplicates should point at. It only runs when building the
// whole table already failed.
func firstBadRoute(routes Routes) int {
	for i := range routes {
		if _, err := proxy.NewTable(routes[:i+1]); err != nil {
			return i
		}
	}
	return 0
}

// build turns one routes: entry into a proxy.Route. node is the entry's
// mapping, for line numbers. Errors name the route and its line.
func (f *RouteSpec) build(node *yaml.Node) (proxy.Route, error) {
	route := proxy.Route{
		ID:              f.ID,
		Host:            f.Match.Host,
		PathPrefix:      f.Match.PathPrefix,
		NoGrip:          f.NoGrip,
		AutoCrossOrigin: f.AutoCrossOrigin,
	}
	if route.ID == "" {
		route.ID = proxy.DefaultRouteID(route.Host, route.PathPrefix)
	}
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("line %d: route %q: %s", line, route.ID, fmt.Sprintf(format, args...))
	}
	if err := f.rewrite(&route, func(msg string) error { return fail(lineOf(node, "rewrite"), "%s", msg) }); err != nil {
		return proxy.Route{}, err
	}
	switch f.Balance {
	case "", string(proxy.BalanceFailover):
		route.Balance = proxy.BalanceFailover
	case string(proxy.BalanceRoundRobin):
		route.Balance = proxy.BalanceRoundRobin
	default:
		return proxy.Route{}, fail(lineOf(node, "balance"), "balance %q: want %s or %s",
			f.Balance, proxy.BalanceFailover, proxy.BalanceRoundRobin)
	}
	if f.WebSocket != "" && f.WebSocket != "over_http" {
		return proxy.Route{}, fail(lineOf(node, "websocket"), "websocket %q: the only value is over_http", f.WebSocket)
	}
	if len(f.Headers.Set) > 0 {
		route.SetHeaders = make(http.Header, len(f.Headers.Set))
		for name, value := range f.Headers.Set {
			route.SetHeaders.Set(name, value)
		}
	}
	if len(f.Backends) == 0 {
		return proxy.Route{}, fail(nodeLine(node), "backends: at least one backend is required")
	}
	backendNodes := valueNode(node, "backends")
	for i, raw := range f.Backends {
		u, err := parseBackendURL(raw)
		if err != nil {
			return proxy.Route{}, fail(nodeLine(backendNodes.Content[i]), "backend %q: %v", raw, err)
		}
		route.Backends = append(route.Backends, proxy.Backend{
			URL: u, Insecure: f.Insecure, HostHeader: f.Host, OverHTTP: f.WebSocket == "over_http",
		})
	}
	// What is left to check (host and path syntax, header names, the Host
	// header) is the route table's rule; run it here for the line number.
	if err := route.Validate(); err != nil {
		return proxy.Route{}, fail(nodeLine(node), "%v", err)
	}
	return route, nil
}

// rewrite sets the route's path rewrite; fail makes the error.
func (f *RouteSpec) rewrite(route *proxy.Route, fail func(string) error) error {
	if f.Rewrite.StripPrefix && f.Rewrite.ReplacePrefix != nil {
		return fail("rewrite: strip_prefix and replace_prefix cannot both be set")
	}
	if f.Rewrite.StripPrefix {
		if route.PathPrefix == "" {
			return fail("rewrite.strip_prefix needs match.path_prefix")
		}
		route.StripChars = len(route.PathPrefix)
	}
	if f.Rewrite.ReplacePrefix != nil {
		replacement := *f.Rewrite.ReplacePrefix
		route.ReplacePrefix = &replacement
	}
	return nil
}

// parseBackendURL checks a backend URL and returns it with an explicit
// port (80 for http, 443 for https when none is given), the form the
// proxy dials.
func parseBackendURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("want http://host[:port] or https://host[:port]")
	}
	switch {
	case u.Hostname() == "":
		return nil, errors.New("missing host")
	case u.User != nil:
		return nil, errors.New("credentials in a backend URL are not supported (use headers.set)")
	case u.Path != "" && u.Path != "/":
		return nil, errors.New("a backend URL has no path (use rewrite.replace_prefix)")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, errors.New("a backend URL has no query or fragment")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("bad port %q (want 1-65535)", port)
	}
	return &url.URL{Scheme: u.Scheme, Host: net.JoinHostPort(u.Hostname(), port)}, nil
}
