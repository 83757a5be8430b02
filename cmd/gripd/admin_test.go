package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/publish"
)

// fakeNATS is a natsLink whose state the test sets.
type fakeNATS struct{ up atomic.Bool }

func (f *fakeNATS) Connected() bool { return f.up.Load() }

// testAdmin builds the admin handler over a fresh hub and a control API
// with the local broker; nats may be nil (no NATS).
func testAdmin(t *testing.T, nats natsLink) (*admin, *handoff.Hub, *publish.ControlAPI) {
	t.Helper()
	hub := handoff.NewHub(handoff.Config{})
	t.Cleanup(hub.Close)
	api := publish.NewControlAPI(publish.ControlConfig{}, &publish.LocalBroker{Hub: hub}, zerolog.Nop())
	return newAdmin(hub, api, nats), hub, api
}

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestAdminHealthz(t *testing.T) {
	a, _, _ := testAdmin(t, nil)
	if code, body := get(t, a, "GET", "/healthz"); code != 200 || body != `{"status":"ok"}`+"\n" {
		t.Errorf("GET /healthz: %d %q", code, body)
	}
	a.Drain() // alive even while draining
	if code, _ := get(t, a, "GET", "/healthz"); code != 200 {
		t.Errorf("GET /healthz while draining: %d", code)
	}
	if code, _ := get(t, a, "POST", "/healthz"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d, want 405", code)
	}
	if code, _ := get(t, a, "GET", "/nope"); code != 404 {
		t.Errorf("GET /nope: %d, want 404", code)
	}
}

func TestAdminReadyz(t *testing.T) {
	check := func(t *testing.T, a *admin, code int, body string) {
		t.Helper()
		gotCode, gotBody := get(t, a, "GET", "/readyz")
		if gotCode != code || gotBody != body+"\n" {
			t.Errorf("GET /readyz: %d %q, want %d %q", gotCode, gotBody, code, body)
		}
	}
	t.Run("without NATS", func(t *testing.T) {
		a, _, _ := testAdmin(t, nil)
		check(t, a, 200, `{"status":"ready","nats":"off"}`)
	})
	t.Run("NATS up then down", func(t *testing.T) {
		nats := &fakeNATS{}
		nats.up.Store(true)
		a, _, _ := testAdmin(t, nats)
		check(t, a, 200, `{"status":"ready","nats":"connected"}`)
		nats.up.Store(false)
		check(t, a, 503, `{"status":"not ready","reason":"NATS not connected"}`)
		nats.up.Store(true)
		check(t, a, 200, `{"status":"ready","nats":"connected"}`)
	})
	t.Run("draining", func(t *testing.T) {
		a, _, _ := testAdmin(t, nil)
		a.Drain()
		check(t, a, 503, `{"status":"not ready","reason":"shutting down"}`)
	})
}

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

func TestAdminMetrics(t *testing.T) {
	nats := &fakeNATS{}
	nats.up.Store(true)
	a, hub, api := testAdmin(t, nats)

	code, body := get(t, a, "GET", "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, series := range []string{
		`gripd_held_connections{kind="response"} 0`,
		`gripd_held_connections{kind="stream"} 0`,
		`gripd_held_connections{kind="ws"} 0`,
		`gripd_channels 0`,
		`gripd_items_delivered_total 0`,
		`gripd_slow_subscribers_disconnected_total 0`,
		`gripd_publish_requests_total{result="ok"} 0`,
		`gripd_publish_requests_total{result="bad_request"} 0`,
		`gripd_publish_requests_total{result="unauthorized"} 0`,
		`gripd_publish_requests_total{result="failed"} 0`,
		`gripd_nats_connected 1`,
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

	// A stream held on "news", an item delivered through the control API,
	// a refused publish, and NATS gone.
	s := hub.Subscribe(handoff.KindStream, []string{"news"})
	defer hub.Unsubscribe(s)
	w := hub.Subscribe(handoff.KindWebSocket, nil)
	defer hub.Unsubscribe(w)
	hub.Deliver([]grip.Item{{Channel: "news", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte("a")}}})
	if code, _ := get(t, api, "POST", "/publish/"); code != 400 {
		t.Fatalf("empty publish: %d, want 400", code)
	}
	nats.up.Store(false)

	_, body = get(t, a, "GET", "/metrics")
	for series, want := range map[string]string{
		`gripd_held_connections{kind="stream"}`:              "1",
		`gripd_held_connections{kind="ws"}`:                  "1",
		`gripd_held_connections{kind="response"}`:            "0",
		`gripd_channels`:                                     "1",
		`gripd_items_delivered_total`:                        "1",
		`gripd_publish_requests_total{result="bad_request"}`: "1",
		`gripd_nats_connected`:                               "0",
	} {
		if got := metric(body, series); got != series+" "+want {
			t.Errorf("got %q, want %q", got, series+" "+want)
		}
	}
	if strings.Contains(body, "news") {
		t.Error("a channel name appears in the metrics")
	}
}

func TestAdminMetricsWithoutNATS(t *testing.T) {
	a, _, _ := testAdmin(t, nil)
	if _, body := get(t, a, "GET", "/metrics"); strings.Contains(body, "gripd_nats_connected") {
		t.Error("gripd_nats_connected is exported without NATS")
	}
}

func TestAdminSection(t *testing.T) {
	for yaml, want := range map[string]string{
		"":                                    DefaultAdminListen,
		"admin: {}\n":                         DefaultAdminListen,
		"admin: {listen: \"0.0.0.0:9100\"}\n": "0.0.0.0:9100",
		"admin: {listen: off}\n":              "",
		"admin: {listen: \"\"}\n":             "",
	} {
		cfg, err := ParseConfig([]byte(yaml))
		if err != nil {
			t.Errorf("%q: %v", yaml, err)
			continue
		}
		if cfg.Admin.Listen != want {
			t.Errorf("%q: admin listen %q, want %q", yaml, cfg.Admin.Listen, want)
		}
	}
	for yaml, want := range map[string]string{
		"admin:\n  listen: nope\n": "line 2: admin.listen",
		"admin:\n  port: 1\n":      `line 2: unknown key "port" in admin`,
	} {
		if _, err := ParseConfig([]byte(yaml)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to mention %q", yaml, err, want)
		}
	}
}

func TestAdminListenFlag(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"--route", "* 127.0.0.1:8000", "--admin-listen", "nope", "--check"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "--admin-listen") {
		t.Errorf("--admin-listen nope: exit %d, stderr %q", code, errOut.String())
	}
	if code := run([]string{"--route", "* 127.0.0.1:8000", "--admin-listen", "off", "--check"}, &out, &errOut); code != 0 {
		t.Errorf("--admin-listen off: exit %d, stderr %q", code, errOut.String())
	}
}
