package proxy

import (
	"bufio"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/testutil"
)

// recorder is an Observer that hands every call to the test, in order,
// as a line such as "hold started r1 stream" or "backend r1 418".
type recorder struct{ calls chan string }

func newRecorder() *recorder { return &recorder{calls: make(chan string, 100)} }

func (r *recorder) HoldStarted(route string, kind handoff.Kind) {
	r.calls <- fmt.Sprintf("hold started %s %s", route, kind)
}

func (r *recorder) HoldEnded(route string, kind handoff.Kind) {
	r.calls <- fmt.Sprintf("hold ended %s %s", route, kind)
}

func (r *recorder) BackendRequest(route string, code int, failure string, d time.Duration) {
	if d <= 0 {
		r.calls <- fmt.Sprintf("backend %s: duration %v", route, d)
		return
	}
	if code == 0 {
		r.calls <- fmt.Sprintf("backend %s %s", route, failure)
		return
	}
	r.calls <- fmt.Sprintf("backend %s %d%s", route, code, failure)
}

func (r *recorder) WebSocketOverHTTP(route, result string) {
	r.calls <- fmt.Sprintf("ws-over-http %s %s", route, result)
}

func (r *recorder) NextLink(route, result string) {
	r.calls <- fmt.Sprintf("link %s %s", route, result)
}

func (r *recorder) WebSocketLimit(route, limit string) {
	r.calls <- fmt.Sprintf("ws limit %s %s", route, limit)
}

// expectSkipping takes calls until want, failing if none comes.
func (r *recorder) expectSkipping(t *testing.T, want string) {
	t.Helper()
	for {
		select {
		case got := <-r.calls:
			if got == want {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("observer: no %q within 5 s", want)
		}
	}
}

// expect takes the next calls and checks them.
func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-r.calls:
			if got != w {
				t.Fatalf("observer got %q, want %q", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("observer: no call within 5 s, want %q", w)
		}
	}
}

// none fails if a call is waiting.
func (r *recorder) none(t *testing.T) {
	t.Helper()
	select {
	case got := <-r.calls:
		t.Fatalf("observer got an unexpected %q", got)
	default:
	}
}

func TestObserverBackendRequests(t *testing.T) {
	obs := newRecorder()
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	f := newFixture(t, []string{closedPortURL(t), b.URL}, fixtureOpts{route: Route{ID: "r1"}, observer: obs})
	readAll(t, get(t, f.proxy.URL+"/", nil))
	obs.expect(t, "backend r1 418") // once, after failing over from the closed port
	obs.none(t)

	down := newFixture(t, []string{closedPortURL(t)}, fixtureOpts{route: Route{ID: "down"}, observer: obs})
	readAll(t, get(t, down.proxy.URL+"/", nil))
	obs.expect(t, "backend down unreachable")

	release := make(chan struct{})
	defer close(release)
	slow := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	sf := newFixture(t, []string{slow.URL}, fixtureOpts{route: Route{ID: "slow"}, observer: obs, backendTimeout: 50 * time.Millisecond})
	readAll(t, get(t, sf.proxy.URL+"/", nil))
	obs.expect(t, "backend slow timeout")
	obs.none(t)
}

func TestObserverHolds(t *testing.T) {
	obs := newRecorder()
	lp := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Grip-Hold", "response")
		w.Header().Set("Grip-Channel", "lp")
	})
	f := newFixture(t, []string{lp.URL}, fixtureOpts{route: Route{ID: "polls"}, observer: obs})
	done := make(chan *http.Response, 1)
	go func() { done <- get(t, f.proxy.URL+"/", nil) }()
	obs.expect(t, "backend polls 200", "hold started polls response")
	testutil.WaitSubscribers(t, f.hub, "lp", 1)
	f.hub.Deliver([]grip.Item{{Channel: "lp", HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionSend, Body: []byte("x")}}})
	readAll(t, <-done)
	obs.expect(t, "hold ended polls response")

	// A parked HTTP/1.1 stream ends through the hub, not the handler.
	sb := testutil.StreamBackend(t, "st", nil)
	sf := newFixture(t, []string{sb.URL}, fixtureOpts{route: Route{ID: "streams"}, observer: obs})
	resp := get(t, sf.proxy.URL+"/", nil)
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatalf("initial body %q: %v", line, err)
	}
	obs.expect(t, "backend streams 200", "hold started streams stream")
	testutil.WaitSubscribers(t, sf.hub, "st", 1)
	sf.hub.Deliver([]grip.Item{{Channel: "st", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionClose}}})
	obs.expect(t, "hold ended streams stream")
	obs.none(t)
}

func TestObserverWebSocketOverHTTP(t *testing.T) {
	obs := newRecorder()
	b := newWSBackend(t, func(r *wsReq) wsReply {
		if r.has(grip.WSOpen, "") && r.Header.Get("X-Reject") != "" {
			return wsReply{Status: http.StatusForbidden, Raw: []byte("no\n")}
		}
		return gripEcho(gripOpen(), nil)(r)
	})
	route := Route{ID: "ws", Backends: []Backend{{URL: mustURL(t, b.URL), OverHTTP: true}}}
	f := newFixture(t, nil, fixtureOpts{route: route, observer: obs})
	t.Cleanup(func() { waitSessions(t, f.hub, 0) })
	ctx := testutil.Context(t)

	c, _ := dialWS(t, ctx, f, "/", nil)
	obs.expect(t, "backend ws 200", "ws-over-http ws ok", "hold started ws ws")
	write(t, ctx, c, websocket.MessageText, "hi")
	readMsg(t, ctx, c, websocket.MessageText, "hi")
	obs.expect(t, "backend ws 200", "ws-over-http ws ok")
	c.Close(websocket.StatusNormalClosure, "")
	obs.expect(t, "backend ws 200", "ws-over-http ws ok", "hold ended ws ws")

	_, resp, err := websocket.Dial(ctx, wsURL(f, "/"), &websocket.DialOptions{HTTPHeader: http.Header{"X-Reject": {"1"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("rejected dial: %v, %v", resp, err)
	}
	obs.expect(t, "backend ws 403", "ws-over-http ws rejected")
	obs.none(t)
}

// The handshake with a WebSocket backend counts as a backend request.
func TestObserverPassthroughWebSocket(t *testing.T) {
	obs := newRecorder()
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, _, _ = c.Read(r.Context()) // until the proxy closes
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{route: Route{ID: "pt"}, observer: obs})
	t.Cleanup(func() { waitSessions(t, f.hub, 0) })
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/", nil)
	obs.expect(t, "backend pt 101", "hold started pt ws")
	c.CloseNow()
	obs.expect(t, "hold ended pt ws")
	obs.none(t)
}
