// Package admin is the admin listener's handler: what operators and
// their tools ask of a gripd instance, apart from clients and the control
// API, on a private address (loopback by default).
//
//	GET /healthz            the process answers
//	GET /readyz             it should get traffic (not draining, NATS up)
//	GET /metrics            Prometheus (metrics.go, proxymetrics.go)
//	GET /channels[/{name}]  who listens where, here or fleet-wide (channels.go)
//	GET /                   the live status page (statuspage.go), fed by
//	GET /status/events      one sample a second (statusevents.go, statusfeed.go)
//	GET /debug/pprof/...    Go's profiler
//
// It only reads state the rest of gripd keeps (Parts): the hub's counts,
// the control API's, the NATS broker's, and the proxy's through
// ProxyMetrics, the proxy.Observer it gives the proxy. Nothing here is on
// the delivery path. The daemon (internal/daemon) opens the listener and
// serves a Handler on it; tests serve one with httptest and need no
// daemon.
package admin

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/publish"
)

// Parts are what the admin listener reads. The rest of gripd keeps the
// state; admin only looks at it.
type Parts struct {
	// Hub is the instance's channel index: held connections and counts.
	Hub *handoff.Hub
	// API is the control API, whose publishes are counted.
	API *publish.ControlAPI
	// NATS is the fleet's broker; nil when the instance runs alone.
	NATS NATS
	// Version is gripd's version, for gripd_build_info and the status
	// page.
	Version string
	// Hosts are the host names, besides IP addresses and localhost, that
	// requests may name in Host (see hostAllowed); "*" allows any.
	Hosts []string
}

// NATS is what the admin listener asks of the NATS broker
// (*publish.NATSBroker); tests give a fake.
type NATS interface {
	Connected() bool
	Reconnects() int64
	SlowConsumers() int64
	RefusedMessages() int64
	ClusterChannels(ctx context.Context, expect int) (publish.ClusterChannels, error)
	ClusterChannel(ctx context.Context, name string, expect int) (publish.ClusterChannels, error)
}

// Handler is the admin listener's handler: GET /healthz (the process
// answers), GET /readyz (it should get traffic), GET /metrics
// (Prometheus, see metrics.go), GET /channels (who listens where, see
// channels.go) and GET / (the live status page, see statuspage.go, fed by
// GET /status/events, see statusevents.go). It only reads state the rest
// of gripd keeps.
type Handler struct {
	hub      *handoff.Hub
	nats     NATS // nil when NATS is not configured
	version  string
	draining atomic.Bool // set by Drain when shutdown begins
	status   *statusFeed // the status page's sampler; stopped by Close
	mux      *http.ServeMux
	hosts    map[string]bool // Parts.Hosts, lower case, without a trailing dot
}

// New returns the admin handler over p, serving met at /metrics. Close
// stops what it runs (the status page's sampler).
func New(p Parts, met *Metrics) *Handler {
	a := &Handler{hub: p.Hub, nats: p.NATS, version: p.Version, mux: http.NewServeMux(), hosts: map[string]bool{}}
	for _, h := range p.Hosts {
		a.hosts[normalHost(h)] = true
	}
	a.status = newStatusFeed(statusSources{
		hub:           p.Hub,
		publishes:     func() int64 { return p.API.PublishStats().OK },
		backendErrors: met.proxy.BackendErrors,
	})
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, probeReply{Status: "ok"})
	})
	a.mux.HandleFunc("GET /readyz", a.serveReady)
	a.mux.Handle("GET /metrics", met)
	a.mux.HandleFunc("GET /channels", a.serveChannels)
	// {name...} takes the rest of the path, so a name may hold "/".
	a.mux.HandleFunc("GET /channels/{name...}", a.serveChannel)
	a.mux.HandleFunc("GET /{$}", serveStatusAsset("index.html", "text/html; charset=utf-8"))
	a.mux.HandleFunc("GET /status/status.js", serveStatusAsset("status.js", "text/javascript; charset=utf-8"))
	a.mux.HandleFunc("GET /status/status.css", serveStatusAsset("status.css", "text/css; charset=utf-8"))
	a.mux.HandleFunc("GET /status/events", a.serveStatusEvents)
	// Go's profiler, for the 3 a.m. question "where do the memory and CPU
	// go?" (go tool pprof http://127.0.0.1:5563/debug/pprof/heap). It costs
	// nothing until asked; the admin listener is private (loopback by
	// default) because this, like /channels, is not for strangers. No
	// /debug/pprof/cmdline: the command line may carry --sig-key.
	a.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	a.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	a.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	a.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return a
}

// Close stops the status page's sampler and ends its viewers' streams.
func (a *Handler) Close() { a.status.Close() }

func (a *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.hostAllowed(r.Host) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusMisdirectedRequest)
		_, _ = io.WriteString(w, "Misdirected Request: this admin listener answers for IP addresses, localhost and admin.hosts only.\n")
		return
	}
	a.mux.ServeHTTP(w, r)
}

// hostAllowed reports whether a request naming host (its Host header) is
// answered. A web page can make a browser send requests to the admin
// listener under a name of the page's (DNS rebinding: the page's name
// resolves to 127.0.0.1 a moment later) and read /channels, /metrics or
// pprof; such a request names that host. Requests that name an IP
// address, localhost, a name in Parts.Hosts, or none (HTTP/1.0) are
// answered.
func (a *Handler) hostAllowed(host string) bool {
	if host == "" || a.hosts["*"] {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = normalHost(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if host == "localhost" || net.ParseIP(host) != nil {
		return true
	}
	return a.hosts[host]
}

// normalHost is a host name as compared: lower case, no trailing dot.
func normalHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// Drain makes /readyz answer 503 from now on, so a load balancer stops
// sending clients while held connections are being ended.
func (a *Handler) Drain() { a.draining.Store(true) }

// serveReady answers /readyz: ready unless shutting down or cut off from
// NATS (publishes would then fail and other instances' items not arrive).
func (a *Handler) serveReady(w http.ResponseWriter, r *http.Request) {
	notReady := func(reason string) {
		writeJSON(w, http.StatusServiceUnavailable, probeReply{Status: "not ready", Reason: reason})
	}
	nats := "off"
	switch {
	case a.draining.Load():
		notReady("shutting down")
		return
	case a.nats != nil && !a.nats.Connected():
		notReady("NATS not connected")
		return
	case a.nats != nil:
		nats = "connected"
	}
	writeJSON(w, http.StatusOK, probeReply{Status: "ready", NATS: nats})
}

// probeReply is the JSON body of /healthz and /readyz.
type probeReply struct {
	Status string `json:"status"`
	NATS   string `json:"nats,omitempty"`   // ready: "connected" or "off"
	Reason string `json:"reason,omitempty"` // not ready: why
}

// writeJSON writes v as a JSON reply that no cache keeps. Channel names
// keep their <, > and & as they are: the reply is JSON, not HTML.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
