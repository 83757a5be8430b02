package admin

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/publish"
)

// Metrics is gripd's Prometheus side, on a registry of its own (not
// Prometheus's global one). Counts other packages keep (the hub's, the
// control API's, the NATS broker's) are read at scrape time; the proxy
// reports through ProxyMetrics (proxymetrics.go); the daemon reports
// config reloads. It serves the metrics in Prometheus's text format.
type Metrics struct {
	reg   *prometheus.Registry
	proxy *ProxyMetrics // the proxy.Observer to give proxy.Config
	serve http.Handler  // the registry in Prometheus's text format

	reloadOK, reloadFailed prometheus.Counter
}

// NewMetrics registers every metric of an instance over p.
func NewMetrics(p Parts) *Metrics {
	reg := prometheus.NewRegistry()
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gripd_config_reloads_total",
		Help: "Configuration reloads, by result: ok (the new configuration is in use) or failed (the old one stays).",
	}, []string{"result"})
	m := &Metrics{
		reg:          reg,
		proxy:        newProxyMetrics(),
		reloadOK:     reloads.WithLabelValues("ok"),
		reloadFailed: reloads.WithLabelValues("failed"),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "gripd_build_info",
			Help:        "Always 1; the labels tell gripd's version and the Go release it was built with.",
			ConstLabels: prometheus.Labels{"version": p.Version, "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
		reloads,
		newStatsCollector(p.Hub, p.API, p.NATS),
	)
	m.proxy.register(reg)
	m.serve = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// ServeHTTP serves the metrics in Prometheus's text format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.serve.ServeHTTP(w, r)
}

// Proxy is the proxy.Observer that keeps the per-route metrics.
func (m *Metrics) Proxy() *ProxyMetrics { return m.proxy }

// ConfigReloaded counts one configuration reload: ok when the new
// configuration was taken, false when it was refused and the old one
// stays. The reload code calls it once per attempt.
func (m *Metrics) ConfigReloaded(ok bool) {
	if ok {
		m.reloadOK.Inc()
	} else {
		m.reloadFailed.Inc()
	}
}

// ClientConns is what the metrics read of the client listener
// (*proxy.ConnLimitListener).
type ClientConns interface {
	Open() int64
	Rejected() int64
}

// WatchClientListener adds the client listener's counts: open client
// connections (held ones included) against limits.max_client_conns, and
// the connections refused for being over it. Called once, when the
// listener exists.
func (m *Metrics) WatchClientListener(ln ClientConns, limit int) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gripd_client_connections",
			Help: "Client connections open now, held streams and WebSockets included.",
		}, func() float64 { return float64(ln.Open()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gripd_client_connections_limit",
			Help: "limits.max_client_conns: client connections beyond it are answered 503.",
		}, func() float64 { return float64(limit) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gripd_client_connections_rejected_total",
			Help: "Client connections answered 503 because limits.max_client_conns were open.",
		}, func() float64 { return float64(ln.Rejected()) }),
	)
}

// statsCollector turns the counts the hub, the control API and the NATS
// broker keep into metrics at scrape time, reading each source once per
// scrape (hub.Stats walks every shard of the channel index).
type statsCollector struct {
	hub  *handoff.Hub
	api  *publish.ControlAPI
	nats NATS // nil without NATS

	held, channels, received, delivered, dropped, slow *prometheus.Desc
	publishes, natsConnected, natsReconnects           *prometheus.Desc
	natsSlowConsumers, natsRefused, sequencing, lag    *prometheus.Desc
}

func newStatsCollector(hub *handoff.Hub, api *publish.ControlAPI, nats NATS) *statsCollector {
	return &statsCollector{
		hub: hub, api: api, nats: nats,
		held: prometheus.NewDesc("gripd_held_connections",
			"Connections held now, by kind: response (long-poll), stream or ws (WebSocket).", []string{"kind"}, nil),
		channels: prometheus.NewDesc("gripd_channels",
			"Channels with at least one held connection on this instance.", nil, nil),
		received: prometheus.NewDesc("gripd_items_received_total",
			"Published items this instance received for delivery (from its control API or NATS), by format they carry: http-response, http-stream or ws-message.", []string{"format"}, nil),
		delivered: prometheus.NewDesc("gripd_items_delivered_total",
			"Published items queued to held connections, by the format they took.", []string{"format"}, nil),
		dropped: prometheus.NewDesc("gripd_deliveries_dropped_total",
			"Published items not queued to a held connection because its queue was full (it is then disconnected as slow), by format.", []string{"format"}, nil),
		slow: prometheus.NewDesc("gripd_slow_subscribers_disconnected_total",
			"Held connections dropped because their queue of published items was full.", nil, nil),
		publishes: prometheus.NewDesc("gripd_publish_requests_total",
			"Publish requests to the control API, by result: ok, bad_request, unauthorized (401, or 403 for a web page's request while auth is off), failed (broker refused) or behind (refused while delivery ran more than control.max_delivery_lag behind).", []string{"result"}, nil),
		natsConnected: prometheus.NewDesc("gripd_nats_connected",
			"1 while the connection to NATS is up, else 0.", nil, nil),
		natsReconnects: prometheus.NewDesc("gripd_nats_reconnects_total",
			"Times the connection to NATS was lost and came back.", nil, nil),
		natsSlowConsumers: prometheus.NewDesc("gripd_nats_slow_consumer_total",
			"Times NATS dropped messages for this instance because it fell behind (its clients missed those items).", nil, nil),
		natsRefused: prometheus.NewDesc("gripd_nats_refused_total",
			"Messages from NATS this instance refused: publish bodies over the limit, items whose channel is not their subject's.", nil, nil),
		lag: prometheus.NewDesc("gripd_delivery_lag_seconds",
			"How long the oldest held stream with something to write has waited for its writer: how far delivery runs behind.", nil, nil),
		sequencing: prometheus.NewDesc("gripd_sequencing_total",
			"What id/prev-id sequencing did with published items, by event: duplicate (a repeated id, dropped), waited (came before its predecessor), timed_out (of those, sent after the wait without it), overflow (dropped: too many waiting).", []string{"event"}, nil),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.held, c.channels, c.received, c.delivered, c.dropped, c.slow, c.publishes, c.sequencing, c.lag} {
		ch <- d
	}
	if c.nats != nil {
		ch <- c.natsConnected
		ch <- c.natsReconnects
		ch <- c.natsSlowConsumers
		ch <- c.natsRefused
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	byFormat := func(d *prometheus.Desc, f handoff.FormatCounts) {
		counter(d, f.HTTPResponse, "http-response")
		counter(d, f.HTTPStream, "http-stream")
		counter(d, f.WSMessage, "ws-message")
	}

	st := c.hub.Stats()
	gauge(c.held, st.Responses, handoff.KindResponse.String())
	gauge(c.held, st.Streams, handoff.KindStream.String())
	gauge(c.held, st.WebSockets, handoff.KindWebSocket.String())
	gauge(c.channels, int64(st.Channels))
	byFormat(c.received, st.Received)
	byFormat(c.delivered, st.DeliveredByFormat)
	byFormat(c.dropped, st.Dropped)
	counter(c.slow, st.Slow)
	counter(c.sequencing, st.Sequence.Duplicates, "duplicate")
	counter(c.sequencing, st.Sequence.Waited, "waited")
	counter(c.sequencing, st.Sequence.TimedOut, "timed_out")
	counter(c.sequencing, st.Sequence.Overflow, "overflow")

	ps := c.api.PublishStats()
	counter(c.publishes, ps.OK, "ok")
	counter(c.publishes, ps.BadRequest, "bad_request")
	counter(c.publishes, ps.Unauthorized, "unauthorized")
	counter(c.publishes, ps.Failed, "failed")
	counter(c.publishes, ps.Behind, "behind")
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, c.hub.DeliveryLag().Seconds())

	if c.nats != nil {
		up := int64(0)
		if c.nats.Connected() {
			up = 1
		}
		gauge(c.natsConnected, up)
		counter(c.natsReconnects, c.nats.Reconnects())
		counter(c.natsSlowConsumers, c.nats.SlowConsumers())
		counter(c.natsRefused, c.nats.RefusedMessages())
	}
}
