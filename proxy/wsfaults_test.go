package proxy

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/internal/testutil"
)

// Regression tests for faults a review found: clients that stall, a
// detached session closed by a publish, and failover's Host header.

func waitNoSubscribers(t *testing.T, f *fixture, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for f.hub.Stats().Subscribers != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions still alive", f.hub.Stats().Subscribers)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A WebSocket client that stops reading is dropped once a write to it
// takes longer than the write timeout; it does not pin its session.
func TestWebSocketStalledClientIsDropped(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(wsControl(`{"type":"subscribe","channel":"c"}`)), nil))
	route := Route{Backends: []Backend{{URL: mustURL(t, b.URL), OverHTTP: true}}}
	f := newFixture(t, nil, fixtureOpts{route: route, queueSize: 4, writeTimeout: 500 * time.Millisecond})
	ctx := testutil.Context(t)
	dialWS(t, ctx, f, "/", nil) // never reads
	testutil.WaitSubscribers(t, f.hub, "c", 1)
	big := bytes.Repeat([]byte("x"), 256<<10)
	for range 64 { // 16 MiB: more than the socket buffers hold
		f.hub.Deliver([]grip.Item{{Channel: "c", WSMessage: &grip.WSMessageFormat{Action: grip.ActionSend, Type: "text", Content: big}}})
	}
	waitNoSubscribers(t, f, 10*time.Second)
}

// A client that does not answer a published ping within the write
// timeout is dropped, not left subscribed with a stuck writer.
func TestWebSocketUnansweredPingDropsClient(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(wsControl(`{"type":"subscribe","channel":"c"}`)), nil))
	route := Route{Backends: []Backend{{URL: mustURL(t, b.URL), OverHTTP: true}}}
	f := newFixture(t, nil, fixtureOpts{route: route, writeTimeout: 300 * time.Millisecond})
	ctx := testutil.Context(t)
	dialWS(t, ctx, f, "/", nil) // never reads, so never answers the ping
	testutil.WaitSubscribers(t, f.hub, "c", 1)
	f.hub.Deliver([]grip.Item{{Channel: "c", WSMessage: &grip.WSMessageFormat{Action: grip.ActionSend, Type: "ping"}}})
	waitNoSubscribers(t, f, 5*time.Second)
}

// After detach, a publish that closes the client still carries its code.
func TestWebSocketDetachedPublishClose(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(wsControl(`{"type":"subscribe","channel":"c"}`), wsControl(`{"type":"detach"}`)), nil))
	f := newWSFixture(t, b, Route{})
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/", nil)
	testutil.WaitSubscribers(t, f.hub, "c", 1)
	f.hub.Deliver([]grip.Item{{Channel: "c", WSMessage: &grip.WSMessageFormat{Action: grip.ActionClose, Code: 4003, Reason: "pub-bye"}}})
	readClose(t, ctx, c, 4003, "pub-bye")
}

// Failing over from a backend with host= sends the next backend the
// client's Host, not the first backend's.
func TestFailoverRestoresClientHost(t *testing.T) {
	got := make(chan string, 1)
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { got <- r.Host; io.WriteString(w, "ok") })
	route := Route{Backends: []Backend{{URL: mustURL(t, closedPortURL(t)), HostHeader: "first.internal"}, {URL: mustURL(t, b.URL)}}}
	f := newFixture(t, nil, fixtureOpts{route: route})
	readAll(t, get(t, f.proxy.URL+"/", map[string]string{"Host": "client.example"}))
	if h := <-got; h != "client.example" {
		t.Fatalf("second backend got Host %q, want client.example", h)
	}
}
