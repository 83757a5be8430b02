package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/publish"
)

// fakeNATS is a NATS whose state the test sets. It answers no
// cluster requests.
type fakeNATS struct {
	up         atomic.Bool
	reconnects atomic.Int64
}

func (f *fakeNATS) Connected() bool      { return f.up.Load() }
func (f *fakeNATS) Reconnects() int64    { return f.reconnects.Load() }
func (f *fakeNATS) SlowConsumers() int64 { return 0 }

func (f *fakeNATS) RefusedMessages() int64 { return 0 }

func (f *fakeNATS) ClusterChannels(context.Context, int) (publish.ClusterChannels, error) {
	return publish.ClusterChannels{}, errors.New("NATS is not connected (fake)")
}

func (f *fakeNATS) ClusterChannel(context.Context, string, int) (publish.ClusterChannels, error) {
	return publish.ClusterChannels{}, errors.New("NATS is not connected (fake)")
}

// adminFixture is an admin handler and what it reads.
type adminFixture struct {
	a   *Handler
	hub *handoff.Hub
	api *publish.ControlAPI
	met *Metrics
}

// testVersion is the version the tests' instances report.
const testVersion = "v1.2.3-test"

// testQueueSize is the hub's queue per subscriber in admin tests: small,
// so a test can overflow it.
const testQueueSize = 2

// testAdmin builds the admin handler over a fresh hub and a control API
// with the local broker; nats may be nil (no NATS).
func testAdmin(t *testing.T, nats NATS) *adminFixture {
	t.Helper()
	hub := handoff.NewHub(handoff.Config{QueueSize: testQueueSize})
	t.Cleanup(hub.Close)
	api := publish.NewControlAPI(publish.ControlConfig{}, &publish.LocalBroker{Hub: hub}, zerolog.Nop())
	// httptest.NewRequest's requests name example.com.
	parts := Parts{Hub: hub, API: api, NATS: nats, Version: testVersion, Hosts: []string{"example.com"}}
	met := NewMetrics(parts)
	return &adminFixture{a: New(parts, met), hub: hub, api: api, met: met}
}

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestAdminHealthz(t *testing.T) {
	a := testAdmin(t, nil).a
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
	check := func(t *testing.T, a *Handler, code int, body string) {
		t.Helper()
		gotCode, gotBody := get(t, a, "GET", "/readyz")
		if gotCode != code || gotBody != body+"\n" {
			t.Errorf("GET /readyz: %d %q, want %d %q", gotCode, gotBody, code, body)
		}
	}
	t.Run("without NATS", func(t *testing.T) {
		a := testAdmin(t, nil).a
		check(t, a, 200, `{"status":"ready","nats":"off"}`)
	})
	t.Run("NATS up then down", func(t *testing.T) {
		nats := &fakeNATS{}
		nats.up.Store(true)
		a := testAdmin(t, nats).a
		check(t, a, 200, `{"status":"ready","nats":"connected"}`)
		nats.up.Store(false)
		check(t, a, 503, `{"status":"not ready","reason":"NATS not connected"}`)
		nats.up.Store(true)
		check(t, a, 200, `{"status":"ready","nats":"connected"}`)
	})
	t.Run("draining", func(t *testing.T) {
		a := testAdmin(t, nil).a
		a.Drain()
		check(t, a, 503, `{"status":"not ready","reason":"shutting down"}`)
	})
}

// TestAdminPprof: the profiler answers on the admin listener (heap with
// ?gc=1 is what the churn test uses to see memory come back).
func TestAdminPprof(t *testing.T) {
	a := testAdmin(t, nil).a
	if code, body := get(t, a, "GET", "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/: %d %.80q", code, body)
	}
	if code, _ := get(t, a, "GET", "/debug/pprof/heap?gc=1&debug=1"); code != 200 {
		t.Errorf("GET /debug/pprof/heap: %d", code)
	}
}

// TestAdminPprofHidesCommandLine: the command line may carry --sig-key.
func TestAdminPprofHidesCommandLine(t *testing.T) {
	a := testAdmin(t, nil).a
	if code, body := get(t, a, "GET", "/debug/pprof/cmdline"); code == 200 {
		t.Errorf("GET /debug/pprof/cmdline: 200 %.80q, want it refused", body)
	}
}

// A request naming a host other than an IP address, localhost or a
// configured name is refused: a web page cannot read the admin listener
// through DNS rebinding.
func TestAdminAnswersOnlyKnownHosts(t *testing.T) {
	a := testAdmin(t, nil).a // Hosts: example.com
	for host, want := range map[string]int{
		"127.0.0.1:5563": 200, "[::1]:5563": 200, "10.1.2.3": 200, "localhost:5563": 200, "LOCALHOST": 200,
		"example.com": 200, "Example.COM.:5563": 200, "": 200,
		"attacker.example:5563": 421, "localhost.attacker.example": 421, "127.0.0.1.nip.io": 421,
	} {
		req := httptest.NewRequest("GET", "/channels", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q: %d, want %d", host, rec.Code, want)
		}
	}
}
