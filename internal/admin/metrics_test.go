package admin

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/testutil"
	"github.com/gripd/gripd/proxy"
)

// metric returns the line of the metrics body that starts with series
// (name and labels), or "".
func metric(body, series string) string {
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, series+" ") {
			return line
		}
	}
	return ""
}

// scrape returns the metrics text.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	code, body := get(t, h, "GET", "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	return body
}

// checkMetrics fails for every series whose value is not the one wanted.
func checkMetrics(t *testing.T, h http.Handler, want map[string]string) {
	t.Helper()
	body := scrape(t, h)
	for series, value := range want {
		if got := metric(body, series); got != series+" "+value {
			t.Errorf("got %q, want %q", got, series+" "+value)
		}
	}
}

// waitMetric waits until series has value: the end of a hold is reported
// just after the hub lets it go, with nothing else to wait on.
func waitMetric(t *testing.T, h http.Handler, series, value string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := metric(scrape(t, h), series)
		if got == series+" "+value {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %q, want %q", got, series+" "+value)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMetricsFromCounts(t *testing.T) {
	nats := &fakeNATS{}
	nats.up.Store(true)
	f := testAdmin(t, nats)

	body := scrape(t, f.a)
	for _, series := range []string{
		`gripd_held_connections{kind="response"} 0`,
		`gripd_held_connections{kind="stream"} 0`,
		`gripd_held_connections{kind="ws"} 0`,
		`gripd_channels 0`,
		`gripd_items_received_total{format="http-response"} 0`,
		`gripd_items_received_total{format="http-stream"} 0`,
		`gripd_items_received_total{format="ws-message"} 0`,
		`gripd_items_delivered_total{format="http-response"} 0`,
		`gripd_items_delivered_total{format="http-stream"} 0`,
		`gripd_items_delivered_total{format="ws-message"} 0`,
		`gripd_deliveries_dropped_total{format="http-stream"} 0`,
		`gripd_slow_subscribers_disconnected_total 0`,
		`gripd_sequencing_total{event="duplicate"} 0`,
		`gripd_sequencing_total{event="waited"} 0`,
		`gripd_sequencing_total{event="timed_out"} 0`,
		`gripd_sequencing_total{event="overflow"} 0`,
		`gripd_publish_requests_total{result="ok"} 0`,
		`gripd_publish_requests_total{result="bad_request"} 0`,
		`gripd_publish_requests_total{result="unauthorized"} 0`,
		`gripd_publish_requests_total{result="failed"} 0`,
		`gripd_publish_requests_total{result="behind"} 0`,
		`gripd_delivery_lag_seconds 0`,
		`gripd_nats_connected 1`,
		`gripd_nats_reconnects_total 0`,
		`gripd_nats_slow_consumer_total 0`,
		`gripd_config_reloads_total{result="ok"} 0`,
		`gripd_config_reloads_total{result="failed"} 0`,
	} {
		if !strings.Contains(body, series+"\n") {
			t.Errorf("metrics lack %q", series)
		}
	}
	for _, name := range []string{"gripd_build_info{", "go_goroutines ", "process_"} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("metrics lack %s...", name)
		}
	}

	// A stream held on "news" and a WebSocket on nothing; an item with
	// both HTTP formats delivered to the stream; a refused publish; NATS
	// gone after a reconnect.
	s := f.hub.Subscribe(handoff.KindStream, []string{"news"})
	w := f.hub.Subscribe(handoff.KindWebSocket, nil)
	f.hub.Deliver([]grip.Item{{Channel: "news",
		HTTPResponse: &grip.HTTPResponseFormat{Body: []byte("a")},
		HTTPStream:   &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte("a")}}})
	if code, _ := get(t, f.api, "POST", "/publish/"); code != 400 {
		t.Fatalf("empty publish: %d, want 400", code)
	}
	nats.reconnects.Add(1)
	nats.up.Store(false)
	checkMetrics(t, f.a, map[string]string{
		`gripd_held_connections{kind="stream"}`:                "1",
		`gripd_held_connections{kind="ws"}`:                    "1",
		`gripd_held_connections{kind="response"}`:              "0",
		`gripd_channels`:                                       "1",
		`gripd_items_received_total{format="http-response"}`:   "1",
		`gripd_items_received_total{format="http-stream"}`:     "1",
		`gripd_items_delivered_total{format="http-stream"}`:    "1",
		`gripd_items_delivered_total{format="http-response"}`:  "0", // nobody held a long-poll
		`gripd_publish_requests_total{result="bad_request"}`:   "1",
		`gripd_nats_connected`:                                 "0",
		`gripd_nats_reconnects_total`:                          "1",
		`gripd_deliveries_dropped_total{format="http-stream"}`: "0",
	})

	// The stream stops reading: the items past its queue are dropped and
	// it is disconnected as slow.
	for range testQueueSize + 2 {
		f.hub.Deliver([]grip.Item{{Channel: "news", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte("b")}}})
	}
	checkMetrics(t, f.a, map[string]string{
		`gripd_items_delivered_total{format="http-stream"}`:    "2", // the queue held one more
		`gripd_deliveries_dropped_total{format="http-stream"}`: "3",
		`gripd_slow_subscribers_disconnected_total`:            "1",
	})

	// Sequencing: a repeated id is dropped, an item ahead of its
	// predecessor waits (on a channel that has a listener).
	seq := f.hub.Subscribe(handoff.KindStream, []string{"seq"})
	idItem := func(id, prev string) grip.Item {
		return grip.Item{Channel: "seq", ID: id, PrevID: prev, HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend}}
	}
	f.hub.Deliver([]grip.Item{idItem("1", ""), idItem("1", ""), idItem("3", "2")})
	checkMetrics(t, f.a, map[string]string{
		`gripd_sequencing_total{event="duplicate"}`: "1",
		`gripd_sequencing_total{event="waited"}`:    "1",
	})
	f.hub.Unsubscribe(seq)

	// Released, they are no longer counted as held.
	f.hub.Unsubscribe(s)
	f.hub.Unsubscribe(w)
	checkMetrics(t, f.a, map[string]string{
		`gripd_held_connections{kind="stream"}`: "0",
		`gripd_held_connections{kind="ws"}`:     "0",
		`gripd_channels`:                        "0",
	})
	if strings.Contains(scrape(t, f.a), "news") {
		t.Error("a channel name appears in the metrics")
	}
}

func TestMetricsWithoutNATS(t *testing.T) {
	body := scrape(t, testAdmin(t, nil).a)
	if strings.Contains(body, "gripd_nats_") {
		t.Error("NATS metrics are exported without NATS")
	}
}

func TestMetricsConfigReloads(t *testing.T) {
	f := testAdmin(t, nil)
	f.met.ConfigReloaded(true)
	f.met.ConfigReloaded(false)
	f.met.ConfigReloaded(false)
	checkMetrics(t, f.a, map[string]string{
		`gripd_config_reloads_total{result="ok"}`:     "1",
		`gripd_config_reloads_total{result="failed"}`: "2",
	})
}

// proxyFixture is a proxy.Server on one route, reporting to an admin's
// metrics.
func proxyFixture(t *testing.T, f *adminFixture, route proxy.Route) *httptest.Server {
	t.Helper()
	table, err := proxy.NewTable([]proxy.Route{route})
	if err != nil {
		t.Fatal(err)
	}
	px, err := proxy.NewServer(proxy.Config{Table: table, Hub: f.hub, Log: zerolog.Nop(), Observer: f.met.proxy})
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(px)
	t.Cleanup(func() { f.hub.Close(); ps.CloseClientConnections(); ps.Close() })
	return ps
}

// newBackend starts a backend; backendURL is its URL for a proxy.Backend.
func newBackend(t *testing.T, h http.HandlerFunc) (b *httptest.Server, backendURL *url.URL) {
	t.Helper()
	b = testutil.Backend(t, h)
	u, err := url.Parse(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	return b, u
}

// Backend requests and holds through a real proxy move the per-route
// series.
func TestMetricsThroughProxy(t *testing.T) {
	f := testAdmin(t, nil)
	_, u := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			w.Header().Set("Grip-Hold", "stream")
			w.Header().Set("Grip-Channel", "c")
			io.WriteString(w, "held\n")
			return
		}
		w.WriteHeader(http.StatusTeapot)
	})
	ps := proxyFixture(t, f, proxy.Route{ID: "api", Backends: []proxy.Backend{{URL: u}}})

	for range 2 {
		resp, err := http.Get(ps.URL + "/teapot")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	checkMetrics(t, f.a, map[string]string{
		`gripd_backend_requests_total{code="418",route="api"}`:                 "2",
		`gripd_backend_request_duration_seconds_count{route="api"}`:            "2",
		`gripd_backend_request_duration_seconds_bucket{route="api",le="+Inf"}`: "2",
		`gripd_held_connections_by_route{kind="stream",route="api"}`:           "0",
	})

	resp, err := http.Get(ps.URL + "/hold")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); line != "held\n" {
		t.Fatalf("initial body %q, %v", line, err)
	}
	checkMetrics(t, f.a, map[string]string{
		`gripd_held_connections_by_route{kind="stream",route="api"}`: "1",
		`gripd_backend_requests_total{code="200",route="api"}`:       "1",
		`gripd_backend_request_duration_seconds_count{route="api"}`:  "3",
	})
	f.hub.Deliver([]grip.Item{{Channel: "c", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionClose}}})
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	waitMetric(t, f.a, `gripd_held_connections_by_route{kind="stream",route="api"}`, "0")
}

// A WebSocket-over-HTTP session counts its requests by result, and is
// held while open.
func TestMetricsWebSocketOverHTTP(t *testing.T) {
	f := testAdmin(t, nil)
	_, u := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		events, _ := grip.ParseWSEvents(body)
		if len(events) > 0 && events[0].Type == grip.WSOpen && r.Header.Get("X-Reject") != "" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", grip.WSEventsContentType)
		if len(events) > 0 && events[0].Type == grip.WSOpen {
			w.Write(grip.AppendWSEvents(nil, grip.WSEvent{Type: grip.WSOpen}))
		}
	})
	ps := proxyFixture(t, f, proxy.Route{ID: "ws", Backends: []proxy.Backend{{URL: u, OverHTTP: true}}})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(ps.URL, "http") + "/"
	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	// The OPEN request was answered before the client got its 101; the
	// session is counted as held just after.
	checkMetrics(t, f.a, map[string]string{`gripd_websocket_over_http_requests_total{result="ok",route="ws"}`: "1"})
	waitMetric(t, f.a, `gripd_held_connections_by_route{kind="ws",route="ws"}`, "1")
	if _, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"X-Reject": {"1"}}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("rejected dial: %v", err)
	}
	checkMetrics(t, f.a, map[string]string{
		`gripd_websocket_over_http_requests_total{result="rejected",route="ws"}`: "1",
		`gripd_backend_requests_total{code="403",route="ws"}`:                    "1",
	})
	c.CloseNow()
	waitMetric(t, f.a, `gripd_held_connections_by_route{kind="ws",route="ws"}`, "0")
}

// Once a route has been seen, reporting on it allocates nothing: the
// series are looked up once, not per request.
func TestProxyMetricsDoNotAllocate(t *testing.T) {
	p := newProxyMetrics()
	route := strings.Repeat("r", 3) // not a constant: like a route ID read from config
	report := func() {
		p.HoldStarted(route, handoff.KindStream)
		p.HoldEnded(route, handoff.KindStream)
		p.BackendRequest(route, 503, "", time.Millisecond)
		p.BackendRequest(route, 0, proxy.FailureTimeout, time.Second)
		p.WebSocketOverHTTP(route, proxy.WSResultOK)
	}
	report()
	if n := testing.AllocsPerRun(100, report); n != 0 {
		t.Errorf("%v allocations per report, want 0", n)
	}
}
