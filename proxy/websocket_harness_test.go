// websocket_harness_test.go holds the WebSocket-over-HTTP test harness: the fake backend, its event builders, and the fixture, dial and read helpers.

package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// wsReq is one request a WebSocket-over-HTTP backend got.
type wsReq struct {
	Method, URI, Host string
	Header            http.Header
	Body              []byte
	Events            []grip.WSEvent
}

// has reports whether the request carries an event of type typ with
// content.
func (r *wsReq) has(typ, content string) bool {
	for _, e := range r.Events {
		if e.Type == typ && string(e.Content) == content {
			return true
		}
	}
	return false
}

// wsReply is a backend's answer to one request.
type wsReply struct {
	Status int         // 0 = 200
	Header http.Header // Content-Type defaults to application/websocket-events
	Events []grip.WSEvent
	Raw    []byte // when not nil, the body instead of Events
	Hijack bool   // drop the connection without an answer
}

func (r wsReply) final() bool { return r.Status != 0 || r.Raw != nil || r.Hijack }

// wsBackend is a WebSocket-over-HTTP backend. It can be stopped and
// started again on the same address; every server it ran is closed when
// the test ends, after the sessions (whose cleanup runs first).
type wsBackend struct {
	URL     string
	reqs    chan *wsReq
	handler http.HandlerFunc

	mu      sync.Mutex
	servers []*httptest.Server
}

func newWSBackend(t *testing.T, handle func(*wsReq) wsReply) *wsBackend {
	t.Helper()
	b := &wsBackend{reqs: make(chan *wsReq, 4096)}
	b.handler = func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		req := &wsReq{Method: r.Method, URI: r.URL.RequestURI(), Host: r.Host, Header: r.Header.Clone(), Body: body}
		if req.Events, err = grip.ParseWSEvents(body); err != nil {
			t.Errorf("backend got a malformed body %q: %v", body, err)
		}
		select {
		case b.reqs <- req:
		default:
			t.Errorf("backend request log full")
		}
		rep := handle(req)
		if rep.Hijack {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		for k, vs := range rep.Header {
			w.Header()[k] = vs
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", grip.WSEventsContentType)
		}
		if rep.Status == 0 {
			rep.Status = http.StatusOK
		}
		w.WriteHeader(rep.Status)
		if rep.Raw != nil {
			w.Write(rep.Raw)
		} else {
			w.Write(grip.AppendWSEvents(nil, rep.Events...))
		}
	}
	s := httptest.NewServer(b.handler)
	b.URL = s.URL
	b.servers = append(b.servers, s)
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, s := range b.servers {
			s.CloseClientConnections()
			s.Close()
		}
	})
	return b
}

// stop shuts the backend down: its address refuses connections.
func (b *wsBackend) stop() {
	b.mu.Lock()
	s := b.servers[len(b.servers)-1]
	b.mu.Unlock()
	s.CloseClientConnections()
	s.Close()
}

// restart serves the backend again on the address it had.
func (b *wsBackend) restart(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", strings.TrimPrefix(b.URL, "http://"))
	if err != nil {
		t.Fatalf("backend cannot listen again on its address: %v", err)
	}
	s := httptest.NewUnstartedServer(b.handler)
	s.Listener.Close()
	s.Listener = ln
	s.Start()
	b.mu.Lock()
	b.servers = append(b.servers, s)
	b.mu.Unlock()
}

// next waits for the backend's next request.
func (b *wsBackend) next(t *testing.T) *wsReq {
	t.Helper()
	select {
	case r := <-b.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("backend: no request within 5 s")
		return nil
	}
}

// until waits for the first request that carries an event of type typ
// with content, skipping the ones before it.
func (b *wsBackend) until(t *testing.T, typ, content string) *wsReq {
	t.Helper()
	for {
		if r := b.next(t); r.has(typ, content) {
			return r
		}
	}
}

// none fails if the backend got a request not yet taken.
func (b *wsBackend) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-b.reqs:
		t.Fatalf("backend got an unexpected request: %q", r.Body)
	default:
	}
}

func wsText(s string) grip.WSEvent { return grip.WSEvent{Type: grip.WSText, Content: []byte(s)} }

func wsControl(json string) grip.WSEvent { return wsText(grip.WSControlPrefix + json) }

// gripOpen is an OPEN reply that turns GRIP mode on, with events after
// the OPEN.
func gripOpen(events ...grip.WSEvent) wsReply {
	return wsReply{Header: http.Header{"Sec-Websocket-Extensions": {"grip"}}, Events: events}
}

// gripEcho answers OPEN with open (its events after an OPEN event),
// echoes TEXT and BINARY messages with the m: prefix, answers CLOSE with
// the same CLOSE and DISCONNECT with nothing. A client text that is a key
// of custom gets that reply instead of its echo.
func gripEcho(open wsReply, custom map[string]wsReply) func(*wsReq) wsReply {
	return func(r *wsReq) wsReply {
		out := wsReply{Header: http.Header{}}
		add := func(rep wsReply) {
			for k, vs := range rep.Header {
				out.Header[k] = vs
			}
			out.Events = append(out.Events, rep.Events...)
		}
		for _, e := range r.Events {
			switch e.Type {
			case grip.WSOpen:
				if open.final() {
					return open
				}
				out.Events = append(out.Events, grip.WSEvent{Type: grip.WSOpen})
				add(open)
			case grip.WSText:
				if rep, ok := custom[string(e.Content)]; ok {
					if rep.final() {
						return rep
					}
					add(rep)
					continue
				}
				fallthrough
			case grip.WSBinary:
				out.Events = append(out.Events, grip.WSEvent{Type: e.Type, Content: append([]byte(grip.WSMessagePrefix), e.Content...)})
			case grip.WSClose:
				out.Events = append(out.Events, grip.WSEvent{Type: grip.WSClose, Content: e.Content})
			}
		}
		return out
	}
}

// newWSFixture is a proxy whose route sends WebSocket clients to b over
// HTTP. Its cleanup waits for every session to end (clients are closed
// by then: their cleanups run first).
func newWSFixture(t *testing.T, b *wsBackend, route Route) *fixture {
	t.Helper()
	return newWSFixtureWith(t, b, fixtureOpts{route: route})
}

// newWSFixtureWith is newWSFixture with more options (opts.route is the
// route, without backends).
func newWSFixtureWith(t *testing.T, b *wsBackend, opts fixtureOpts) *fixture {
	t.Helper()
	opts.route.Backends = []Backend{{URL: mustURL(t, b.URL), OverHTTP: true}}
	f := newFixture(t, nil, opts)
	t.Cleanup(func() { waitSessions(t, f.hub, 0) })
	return f
}

// waitSessions waits until the hub has n subscriptions: every
// WebSocket session holds one from its 101 to its end.
func waitSessions(t *testing.T, hub *handoff.Hub, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for hub.Stats().Subscribers != n {
		if time.Now().After(deadline) {
			t.Errorf("%d WebSocket sessions, want %d", hub.Stats().Subscribers, n)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func wsURL(f *fixture, path string) string {
	return "ws" + strings.TrimPrefix(f.proxy.URL, "http") + path
}

// dialWS connects a client; it is dropped when the test ends.
func dialWS(t *testing.T, ctx context.Context, f *fixture, path string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response) {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, wsURL(f, path), opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, resp
}

// readMsg reads the client's next message and checks it.
func readMsg(t *testing.T, ctx context.Context, c *websocket.Conn, typ websocket.MessageType, want string) {
	t.Helper()
	gotTyp, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("client read: %v (want %q)", err, want)
	}
	if gotTyp != typ || string(msg) != want {
		t.Fatalf("client got %v %q, want %v %q", gotTyp, msg, typ, want)
	}
}

// readClose reads until the connection closes and checks the close frame.
func readClose(t *testing.T, ctx context.Context, c *websocket.Conn, code websocket.StatusCode, reason string) {
	t.Helper()
	_, msg, err := c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("client read %q, %v; want close %d", msg, err, code)
	}
	if ce.Code != code || ce.Reason != reason {
		t.Fatalf("client closed with %d %q, want %d %q", ce.Code, ce.Reason, code, reason)
	}
}

func write(t *testing.T, ctx context.Context, c *websocket.Conn, typ websocket.MessageType, msg string) {
	t.Helper()
	if err := c.Write(ctx, typ, []byte(msg)); err != nil {
		t.Fatalf("client write %q: %v", msg, err)
	}
}

// slowTests gates the tests that have to sit through Pushpin's fixed
// delays (the 20 s keep-alive floor, 31 s of retries).
func slowTests(t *testing.T) {
	if os.Getenv("GRIPD_SLOW_TESTS") == "" {
		t.Skip("waits on fixed delays of 20 s or more; set GRIPD_SLOW_TESTS=1 to run")
	}
}
