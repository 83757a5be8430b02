package proxy

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/internal/testutil"
)

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestValidRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc-123":                true,
		"!~":                     true,
		strings.Repeat("a", 128): true,
		"":                       false,
		strings.Repeat("a", 129): false,
		"has space":              false,
		"tab\t":                  false,
		"new\nline":              false,
		"caf\u00e9":              false,
		"del\x7f":                false,
		"a\x00b":                 false,
	} {
		if got := validRequestID(id); got != want {
			t.Errorf("validRequestID(%q) = %v, want %v", id, got, want)
		}
	}
	a, b := newRequestID(), newRequestID()
	if !generatedID.MatchString(a) || a == b {
		t.Errorf("newRequestID: %q, %q", a, b)
	}
}

// requestIDRun sends one request with the client headers hdr (nil values
// omitted) and returns the backend's X-Request-Id values, the response's
// and the access-log line's.
func requestIDRun(t *testing.T, hdr http.Header) (backend []string, resp []string, logged any) {
	t.Helper()
	var mu sync.Mutex
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		backend = r.Header.Values("X-Request-Id")
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	var logs testutil.Buffer
	f := newFixture(t, []string{b.URL}, fixtureOpts{log: &logs})
	req, err := http.NewRequest("GET", f.proxy.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr
	r, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, r); r.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q", r.StatusCode, body)
	}
	line := logs.WaitLogLine(t, "request")
	mu.Lock()
	defer mu.Unlock()
	return backend, r.Header.Values("X-Request-Id"), line["request_id"]
}

func TestRequestIDKept(t *testing.T) {
	id := "client-id_0123:ABC/xyz=="
	backend, resp, logged := requestIDRun(t, http.Header{"X-Request-Id": {id}})
	if len(backend) != 1 || backend[0] != id {
		t.Errorf("backend got %q, want %q", backend, id)
	}
	if len(resp) != 1 || resp[0] != id {
		t.Errorf("response has %q, want %q", resp, id)
	}
	if logged != id {
		t.Errorf("access log request_id %v, want %q", logged, id)
	}
}

func TestRequestIDGenerated(t *testing.T) {
	backend, resp, logged := requestIDRun(t, http.Header{})
	if len(backend) != 1 || !generatedID.MatchString(backend[0]) {
		t.Fatalf("backend got %q, want a generated id", backend)
	}
	if len(resp) != 1 || resp[0] != backend[0] {
		t.Errorf("response has %q, backend got %q", resp, backend[0])
	}
	if logged != backend[0] {
		t.Errorf("access log request_id %v, backend got %q", logged, backend[0])
	}
}

func TestRequestIDBadOneReplaced(t *testing.T) {
	for name, vs := range map[string][]string{
		"too long":  {strings.Repeat("x", 129)},
		"space":     {"a b"},
		"non-ascii": {"caf\u00e9"},
		"tab":       {"a\tb"},
		"two":       {"one", "two"},
	} {
		t.Run(name, func(t *testing.T) {
			backend, resp, logged := requestIDRun(t, http.Header{"X-Request-Id": vs})
			if len(backend) != 1 || !generatedID.MatchString(backend[0]) {
				t.Fatalf("backend got %q, want a generated id", backend)
			}
			if len(resp) != 1 || resp[0] != backend[0] || logged != backend[0] {
				t.Errorf("response %q, log %v, backend %q", resp, logged, backend[0])
			}
		})
	}
}

func TestRequestIDBackendEchoNotDoubled(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "backend-own")
		io.WriteString(w, "ok")
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	resp := get(t, f.proxy.URL+"/", map[string]string{"X-Request-Id": "mine"})
	readAll(t, resp)
	if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "mine" {
		t.Fatalf("response X-Request-Id %q, want [mine]", got)
	}
}

func TestRequestIDOnErrorAndNoRoute(t *testing.T) {
	f := newFixture(t, []string{closedPortURL(t)}, fixtureOpts{route: Route{Host: "known.example"}})
	for _, host := range []string{"known.example", "unknown.example"} {
		resp := get(t, f.proxy.URL+"/", map[string]string{"Host": host, "X-Request-Id": "err-id"})
		readAll(t, resp)
		if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Request-Id") != "err-id" {
			t.Errorf("%s: %d, X-Request-Id %q", host, resp.StatusCode, resp.Header.Get("X-Request-Id"))
		}
	}
}

func TestRequestIDOnHeldResponses(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Request-Id"))
		mu.Unlock()
		w.Header().Set("X-Request-Id", "backend-own")
		if r.URL.Path == "/stream" {
			w.Header().Set("Grip-Hold", "stream")
			w.Header().Set("Grip-Channel", "rs")
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, ":held\n")
			return
		}
		w.Header().Set("Grip-Hold", "response")
		w.Header().Set("Grip-Channel", "rl")
		io.WriteString(w, "timeout body")
	})
	var logs testutil.Buffer
	f := newFixture(t, []string{b.URL}, fixtureOpts{log: &logs})

	// Long-poll, answered by a publish whose headers carry their own id.
	done := make(chan *http.Response, 1)
	go func() { done <- get(t, f.proxy.URL+"/poll", map[string]string{"X-Request-Id": "poll-id"}) }()
	testutil.WaitSubscribers(t, f.hub, "rl", 1)
	f.hub.Deliver([]grip.Item{{Channel: "rl", HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionSend, Code: 200,
		Header: http.Header{"X-Request-Id": {"published"}}, Body: []byte("pub")}}})
	resp := <-done
	if body := readAll(t, resp); body != "pub" {
		t.Fatalf("long-poll got %q", body)
	}
	if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "poll-id" {
		t.Errorf("long-poll X-Request-Id %q, want [poll-id]", got)
	}

	// Stream: the id is in the headers the client gets at once, and in the
	// access line the parked stream writes when it ends.
	resp = get(t, f.proxy.URL+"/stream", map[string]string{"X-Request-Id": "stream-id"})
	if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "stream-id" {
		t.Errorf("stream X-Request-Id %q, want [stream-id]", got)
	}
	testutil.WaitSubscribers(t, f.hub, "rs", 1)
	f.hub.Deliver([]grip.Item{{Channel: "rs", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionClose}}})
	readAll(t, resp)
	testutil.WaitSubscribers(t, f.hub, "rs", 0)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), `"request_id":"stream-id"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no access line with the stream's request_id: %s", logs.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), `"request_id":"poll-id"`) {
		t.Errorf("no access line with the long-poll's request_id: %s", logs.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "poll-id" || seen[1] != "stream-id" {
		t.Errorf("backend got ids %q", seen)
	}
}

func TestRequestIDOnWebSocketOverHTTP(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(), nil))
	route := Route{Backends: []Backend{{URL: mustURL(t, b.URL), OverHTTP: true}}}
	var logs testutil.Buffer
	f := newFixture(t, nil, fixtureOpts{route: route, log: &logs})
	t.Cleanup(func() { waitSessions(t, f.hub, 0) })
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/ws", &websocket.DialOptions{HTTPHeader: http.Header{"X-Request-Id": {"ws-id"}}})
	write(t, ctx, c, websocket.MessageText, "hi")
	readMsg(t, ctx, c, websocket.MessageText, "hi")
	c.Close(websocket.StatusNormalClosure, "")
	for {
		r := b.next(t)
		if got := r.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "ws-id" {
			t.Errorf("request %v: X-Request-Id %q, want [ws-id]", r.Events, got)
		}
		if hasEvent(r.Events, grip.WSClose) {
			break
		}
	}
	line := logs.WaitLogLine(t, "websocket")
	if line["request_id"] != "ws-id" {
		t.Errorf("websocket end line request_id %v", line["request_id"])
	}
}
