package main

import (
	"encoding/json"
	"net/http"
	"runtime"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/publish"
)

// natsLink is what the admin listener asks of the NATS broker
// (*publish.NATSBroker); tests give a fake.
type natsLink interface{ Connected() bool }

// admin is the admin listener's handler: GET /healthz (the process
// answers), GET /readyz (it should get traffic) and GET /metrics
// (Prometheus). It only reads state the rest of gripd keeps.
type admin struct {
	nats     natsLink    // nil when NATS is not configured
	draining atomic.Bool // set by Drain when shutdown begins
	mux      *http.ServeMux
}

// newAdmin returns the admin handler over hub and api. nats is nil when
// the instance runs without NATS. Metrics go to a registry of its own,
// not Prometheus's global one.
func newAdmin(hub *handoff.Hub, api *publish.ControlAPI, nats natsLink) *admin {
	a := &admin{nats: nats, mux: http.NewServeMux()}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "gripd_build_info",
			Help:        "Always 1; the labels tell gripd's version and the Go release it was built with.",
			ConstLabels: prometheus.Labels{"version": version(), "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gripd_channels",
			Help: "Channels with at least one held connection on this instance.",
		}, func() float64 { return float64(hub.Stats().Channels) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gripd_items_delivered_total",
			Help: "Published items queued to held connections.",
		}, func() float64 { return float64(hub.Stats().Delivered) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gripd_slow_subscribers_disconnected_total",
			Help: "Held connections dropped because their queue of published items was full.",
		}, func() float64 { return float64(hub.Stats().Slow) }),
	)
	held := map[string]func(handoff.Stats) int64{
		handoff.KindResponse.String():  func(s handoff.Stats) int64 { return s.Responses },
		handoff.KindStream.String():    func(s handoff.Stats) int64 { return s.Streams },
		handoff.KindWebSocket.String(): func(s handoff.Stats) int64 { return s.WebSockets },
	}
	for kind, count := range held {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "gripd_held_connections",
			Help:        "Connections held now, by kind: response (long-poll), stream or ws (WebSocket).",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(count(hub.Stats())) }))
	}
	results := map[string]func(publish.PublishStats) int64{
		"ok":           func(s publish.PublishStats) int64 { return s.OK },
		"bad_request":  func(s publish.PublishStats) int64 { return s.BadRequest },
		"unauthorized": func(s publish.PublishStats) int64 { return s.Unauthorized },
		"failed":       func(s publish.PublishStats) int64 { return s.Failed },
	}
	for result, count := range results {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "gripd_publish_requests_total",
			Help:        "Publish requests to the control API, by result: ok, bad_request, unauthorized or failed (broker refused).",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(count(api.PublishStats())) }))
	}
	if nats != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gripd_nats_connected",
			Help: "1 while the connection to NATS is up, else 0.",
		}, func() float64 {
			if nats.Connected() {
				return 1
			}
			return 0
		}))
	}

	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, probeReply{Status: "ok"})
	})
	a.mux.HandleFunc("GET /readyz", a.serveReady)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return a
}

func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Drain makes /readyz answer 503 from now on, so a load balancer stops
// sending clients while held connections are being ended.
func (a *admin) Drain() { a.draining.Store(true) }

// serveReady answers /readyz: ready unless shutting down or cut off from
// NATS (publishes would then fail and other instances' items not arrive).
func (a *admin) serveReady(w http.ResponseWriter, r *http.Request) {
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

// writeJSON writes v as a JSON reply that no cache keeps.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
