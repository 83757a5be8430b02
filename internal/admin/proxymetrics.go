package admin

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/proxy"
)

// ProxyMetrics is the proxy.Observer that keeps the per-route metrics.
// Its methods run on every request and hold: each route's series are
// looked up in the vectors once, the first time the route is seen, and
// kept in routes, so a request costs a map load and atomic adds.
//
// Labels are route IDs (from the configuration, so bounded), status codes
// and small fixed sets; never anything a client chose. Series of a route
// removed by a reload stay until restart.
type ProxyMetrics struct {
	held       *prometheus.GaugeVec
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	wsOverHTTP *prometheus.CounterVec
	links      *prometheus.CounterVec
	wsLimits   *prometheus.CounterVec

	routes sync.Map // route ID → *routeSeries

	// backendErrors counts backend requests that failed or answered 5xx,
	// all routes together, for the status page (which would otherwise
	// have to gather and sum every route's series each second).
	backendErrors atomic.Int64
}

var _ proxy.Observer = (*ProxyMetrics)(nil)

func newProxyMetrics() *ProxyMetrics {
	return &ProxyMetrics{
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gripd_held_connections_by_route",
			Help: "Connections held now, by route and kind: response (long-poll), stream or ws (WebSocket).",
		}, []string{"route", "kind"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gripd_backend_requests_total",
			Help: "Requests to backends, by route and code: the response's status code, or timeout, unreachable, busy (no backend connection came free in time), client (the client's request body failed), canceled or error when no response came.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gripd_backend_request_duration_seconds",
			Help: "Time from sending a request to a backend to its response headers (or the failure), by route.",
			// Up to the default 30 s backend timeout.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		wsOverHTTP: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gripd_websocket_over_http_requests_total",
			Help: "WebSocket-over-HTTP requests to backends, by route and result: ok, rejected (another status or content type), error or canceled.",
		}, []string{"route", "result"}),
		links: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gripd_next_links_total",
			Help: "Next links (Grip-Link rel=next) of streams, by route and result: followed, refused (a host neither in the route table nor in links.allow_hosts) or capped (too many in a row without a hold: the stream ended).",
		}, []string{"route", "result"}),
		wsLimits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gripd_websocket_limit_closes_total",
			Help: "Client WebSockets closed by a limit, by route and limit: message_timeout (1008, a message not finished within limits.ws_message_timeout) or partial_budget (1009, unfinished messages over limits.ws_partial_budget).",
		}, []string{"route", "limit"}),
	}
}

func (p *ProxyMetrics) register(reg prometheus.Registerer) {
	reg.MustRegister(p.held, p.requests, p.duration, p.wsOverHTTP, p.links, p.wsLimits)
}

// routeSeries are one route's series. Only codes grows after creation.
type routeSeries struct {
	id       string
	requests *prometheus.CounterVec
	held     [3]prometheus.Gauge           // by handoff.Kind
	failures map[string]prometheus.Counter // by proxy.Failure*; read-only
	ws       map[string]prometheus.Counter // by proxy.WSResult*; read-only
	links    map[string]prometheus.Counter // by proxy.Link*; read-only
	wsLimits map[string]prometheus.Counter // by proxy.WSLimit*; read-only
	duration prometheus.Observer
	codes    sync.Map // status code (int) → prometheus.Counter
}

// route returns the series of route id, creating them the first time.
func (p *ProxyMetrics) route(id string) *routeSeries {
	if r, ok := p.routes.Load(id); ok {
		return r.(*routeSeries)
	}
	r := &routeSeries{
		id:       id,
		requests: p.requests,
		failures: map[string]prometheus.Counter{},
		ws:       map[string]prometheus.Counter{},
		links:    map[string]prometheus.Counter{},
		wsLimits: map[string]prometheus.Counter{},
		duration: p.duration.WithLabelValues(id),
	}
	for _, k := range []handoff.Kind{handoff.KindResponse, handoff.KindStream, handoff.KindWebSocket} {
		r.held[k] = p.held.WithLabelValues(id, k.String())
	}
	for _, f := range []string{proxy.FailureTimeout, proxy.FailureUnreachable, proxy.FailureBusy, proxy.FailureClient, proxy.FailureCanceled, proxy.FailureError} {
		r.failures[f] = p.requests.WithLabelValues(id, f)
	}
	for _, res := range []string{proxy.WSResultOK, proxy.WSResultRejected, proxy.WSResultError, proxy.WSResultCanceled} {
		r.ws[res] = p.wsOverHTTP.WithLabelValues(id, res)
	}
	for _, res := range []string{proxy.LinkFollowed, proxy.LinkRefused, proxy.LinkCapped} {
		r.links[res] = p.links.WithLabelValues(id, res)
	}
	for _, l := range []string{proxy.WSLimitMessageTimeout, proxy.WSLimitPartialBudget} {
		r.wsLimits[l] = p.wsLimits.WithLabelValues(id, l)
	}
	// Another goroutine may have stored the route meanwhile: keep one. The
	// children are the vectors' own, so the loser's are the same series.
	actual, _ := p.routes.LoadOrStore(id, r)
	return actual.(*routeSeries)
}

// heldGauge is the gauge of kind; an unknown kind counts as response, as
// the hub counts it.
func (r *routeSeries) heldGauge(kind handoff.Kind) prometheus.Gauge {
	if kind < 0 || int(kind) >= len(r.held) {
		kind = handoff.KindResponse
	}
	return r.held[kind]
}

// code returns the counter of a status code, creating it the first time.
func (r *routeSeries) code(code int) prometheus.Counter {
	if c, ok := r.codes.Load(code); ok {
		return c.(prometheus.Counter)
	}
	c, _ := r.codes.LoadOrStore(code, r.requests.WithLabelValues(r.id, strconv.Itoa(code)))
	return c.(prometheus.Counter)
}

func (p *ProxyMetrics) HoldStarted(route string, kind handoff.Kind) {
	p.route(route).heldGauge(kind).Inc()
}

func (p *ProxyMetrics) HoldEnded(route string, kind handoff.Kind) {
	p.route(route).heldGauge(kind).Dec()
}

func (p *ProxyMetrics) BackendRequest(route string, code int, failure string, d time.Duration) {
	r := p.route(route)
	r.duration.Observe(d.Seconds())
	if code > 0 {
		r.code(code).Inc()
		if code >= 500 {
			p.backendErrors.Add(1)
		}
		return
	}
	if failure != proxy.FailureCanceled && failure != proxy.FailureClient { // the client's doing, not the backend's
		p.backendErrors.Add(1)
	}
	c, ok := r.failures[failure]
	if !ok {
		c = r.failures[proxy.FailureError]
	}
	c.Inc()
}

// BackendErrors reports how many backend requests failed (timeout,
// unreachable, error) or answered 5xx since start.
func (p *ProxyMetrics) BackendErrors() int64 { return p.backendErrors.Load() }

func (p *ProxyMetrics) WebSocketOverHTTP(route, result string) {
	r := p.route(route)
	c, ok := r.ws[result]
	if !ok {
		c = r.ws[proxy.WSResultError]
	}
	c.Inc()
}

func (p *ProxyMetrics) NextLink(route, result string) {
	if c, ok := p.route(route).links[result]; ok {
		c.Inc()
	}
}

func (p *ProxyMetrics) WebSocketLimit(route, limit string) {
	if c, ok := p.route(route).wsLimits[limit]; ok {
		c.Inc()
	}
}
