package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/testutil"
)

const testKey = "test-sig-key"

// fixture is a gripd proxy in front of one or more httptest backends.
type fixture struct {
	hub   *handoff.Hub
	proxy *httptest.Server
	srv   *Server
	ln    *ConnLimitListener // with fixtureOpts.listener
}

type fixtureOpts struct {
	route          Route
	backendTimeout time.Duration
	writeTimeout   time.Duration
	queueSize      int
	limits         Limits
	// listener, when set, serves clients the way gripd does: through
	// NewClientListener and NewClientServer with these limits.
	listener       *ListenerLimits
	log            io.Writer // when set, the server logs here at debug level
	observer       Observer
	linkRetryDelay time.Duration
	history        handoff.History
	maxConns       int // backend_max_conns
	linkHosts      []string
}

func newFixture(t *testing.T, backends []string, opts fixtureOpts) *fixture {
	t.Helper()
	r := opts.route
	for _, b := range backends {
		u, err := url.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		r.Backends = append(r.Backends, Backend{URL: u})
	}
	table, err := NewTable([]Route{r})
	if err != nil {
		t.Fatal(err)
	}
	hub := handoff.NewHub(handoff.Config{QueueSize: opts.queueSize})
	log := zerolog.Nop()
	if opts.log != nil {
		log = zerolog.New(opts.log).Level(zerolog.DebugLevel)
	}
	srv, err := NewServer(Config{
		Table: table, Hub: hub, SigIss: "test-iss", SigKey: []byte(testKey),
		BackendTimeout: opts.backendTimeout, WriteTimeout: opts.writeTimeout,
		DialTimeout: time.Second, Limits: opts.limits, Log: log, Observer: opts.observer, LinkRetryDelay: opts.linkRetryDelay,
		History: opts.history, MaxConnsPerBackend: opts.maxConns, LinkHosts: opts.linkHosts,
	})
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewUnstartedServer(srv)
	var ln *ConnLimitListener
	if opts.listener != nil {
		ps.Config = NewClientServer(srv, *opts.listener, nil)
		ln = NewClientListener(ps.Listener, *opts.listener, log)
		ps.Listener = ln
	}
	ps.Start()
	t.Cleanup(func() {
		hub.Close()
		ps.CloseClientConnections()
		ps.Close()
		srv.CloseIdleConnections()
	})
	return &fixture{hub: hub, proxy: ps, srv: srv, ln: ln}
}

func get(t *testing.T, u string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func streamItem(channel, content string) grip.Item {
	return grip.Item{Channel: channel, HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte(content)}}
}

func TestPassthrough(t *testing.T) {
	var got *http.Request
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Set("X-Backend", "yes")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "hello "+r.URL.RawQuery)
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	resp := get(t, f.proxy.URL+"/some/path?x=1&y=2", map[string]string{
		"Host": "example.com", "Grip-Sig": "forged", "Grip-Hold": "stream", "X-Custom": "v",
		"Connection": "X-Hop", "X-Hop": "drop me",
	})
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusTeapot || body != "hello x=1&y=2" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if c := resp.Header.Values("Set-Cookie"); len(c) != 2 {
		t.Errorf("Set-Cookie = %q, want two lines", c)
	}
	if got.Host != "example.com" || got.URL.Path != "/some/path" || got.Header.Get("X-Custom") != "v" {
		t.Errorf("backend saw host %q path %q", got.Host, got.URL.Path)
	}
	if got.Header.Get("X-Hop") != "" {
		t.Error("hop-by-hop header named in Connection reached the backend")
	}
	if got.Header.Get("Grip-Hold") != "" {
		t.Error("client Grip-Hold reached the backend")
	}
	if got.Header.Get("X-Forwarded-For") != "127.0.0.1" || got.Header.Get("X-Forwarded-Proto") != "http" || got.Header.Get("X-Forwarded-Host") != "example.com" {
		t.Errorf("X-Forwarded-*: %v", got.Header)
	}
	iss, err := grip.ValidateSig(got.Header.Get("Grip-Sig"), []byte(testKey))
	if err != nil || iss != "test-iss" {
		t.Errorf("Grip-Sig: iss %q err %v", iss, err)
	}
	if got.Header.Get("Grip-Feature") != grip.Feature {
		t.Errorf("Grip-Feature = %q", got.Header.Get("Grip-Feature"))
	}
}

func TestNoGripRoutePassesInstructionsThrough(t *testing.T) {
	var sig string
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		sig = r.Header.Get("Grip-Sig")
		w.Header().Set("Grip-Hold", "stream")
		w.Header().Set("Grip-Channel", "c")
		io.WriteString(w, "raw")
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{route: Route{NoGrip: true}})
	resp := get(t, f.proxy.URL+"/", nil)
	if body := readAll(t, resp); body != "raw" || resp.Header.Get("Grip-Hold") != "stream" {
		t.Fatalf("got %q, Grip-Hold %q", body, resp.Header.Get("Grip-Hold"))
	}
	if sig != "" {
		t.Error("no_grip route sent a Grip-Sig")
	}
}

func TestPathRewrite(t *testing.T) {
	var path string
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { path = r.URL.RequestURI() })
	repl := "/v2/"
	f := newFixture(t, []string{b.URL}, fixtureOpts{route: Route{PathPrefix: "/api/", ReplacePrefix: &repl}})
	readAll(t, get(t, f.proxy.URL+"/api/items%2F1?q=1", nil))
	if path != "/v2/items%2F1?q=1" {
		t.Fatalf("backend path %q", path)
	}
}

func TestBodiesStreamBothWays(t *testing.T) {
	release := make(chan struct{})
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		<-release // the rest waits until the client has the first part
		io.WriteString(w, "-last")
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	resp := get(t, f.proxy.URL+"/", nil)
	defer resp.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first part: %q %v", buf, err)
	}
	close(release)
	if rest, _ := io.ReadAll(resp.Body); string(rest) != "-last" {
		t.Fatalf("rest %q", rest)
	}
}

func TestEventStreamFlushedAtOnce(t *testing.T) {
	release := make(chan struct{})
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-release
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	resp := get(t, f.proxy.URL+"/", nil)
	defer resp.Body.Close()
	defer close(release)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("got %q %v", line, err)
	}
}

func closedPortURL(t *testing.T) string {
	return "http://" + testutil.FreeAddr(t)
}

// A refused connection moves on to the next backend, and the log says so
// only when there is a next one: a route whose only backend is down logs
// the refusal and "no backend reachable", and answers 502.
func TestFailoverAndAllDown(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "second") })
	var logs testutil.Buffer
	f := newFixture(t, []string{closedPortURL(t), b.URL}, fixtureOpts{log: &logs})
	for range 3 {
		if body := readAll(t, get(t, f.proxy.URL+"/", nil)); body != "second" {
			t.Fatalf("got %q", body)
		}
	}
	if !strings.Contains(logs.String(), `"message":"backend refused the connection; trying the next"`) {
		t.Errorf("a refusal with a second backend left does not say it tries the next:\n%s", logs.String())
	}

	var downLogs testutil.Buffer
	down := newFixture(t, []string{closedPortURL(t)}, fixtureOpts{log: &downLogs})
	resp := get(t, down.proxy.URL+"/", nil)
	if body := readAll(t, resp); resp.StatusCode != http.StatusBadGateway || body != "Error while proxying to origin.\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	out := downLogs.String()
	if !strings.Contains(out, `"message":"backend refused the connection"`) || !strings.Contains(out, `"message":"no backend reachable"`) {
		t.Errorf("the only backend's refusal is not logged as such:\n%s", out)
	}
	if strings.Contains(out, "trying the next") {
		t.Errorf("the only backend's refusal says it tries the next:\n%s", out)
	}
}

func TestRoundRobin(t *testing.T) {
	mk := func(name string) string {
		return testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }).URL
	}
	f := newFixture(t, []string{mk("a"), mk("b")}, fixtureOpts{route: Route{Balance: BalanceRoundRobin}})
	seen := map[string]int{}
	for range 4 {
		seen[readAll(t, get(t, f.proxy.URL+"/", nil))]++
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Fatalf("round robin spread %v", seen)
	}
}

func TestSlowBackendIs504(t *testing.T) {
	release := make(chan struct{})
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	f := newFixture(t, []string{b.URL}, fixtureOpts{backendTimeout: 100 * time.Millisecond})
	resp := get(t, f.proxy.URL+"/", nil)
	if body := readAll(t, resp); resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestNoRouteForHost(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {})
	f := newFixture(t, []string{b.URL}, fixtureOpts{route: Route{Host: "only.example"}})
	resp := get(t, f.proxy.URL+"/", map[string]string{"Host": "other.example"})
	if body := readAll(t, resp); resp.StatusCode != http.StatusBadGateway || body != "No route for host: other.example\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestMalformedInstructionIs502(t *testing.T) {
	cases := map[string]func(w http.ResponseWriter){
		"bad hold": func(w http.ResponseWriter) { w.Header().Set("Grip-Hold", "forever") },
		"bad json": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grip-instruct")
			io.WriteString(w, "{not json")
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { h(w) })
			f := newFixture(t, []string{b.URL}, fixtureOpts{})
			resp := get(t, f.proxy.URL+"/", nil)
			if body := readAll(t, resp); resp.StatusCode != http.StatusBadGateway || body != "Error while proxying to origin.\n" {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
		})
	}
}

func TestInstructWithoutHold(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grip-instruct")
		w.Header().Set("X-Outer", "dropped")
		io.WriteString(w, `{"response":{"code":201,"headers":{"X-In":"kept"},"body":"made"}}`)
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	resp := get(t, f.proxy.URL+"/", nil)
	body := readAll(t, resp)
	if resp.StatusCode != 201 || body != "made" || resp.Header.Get("X-In") != "kept" || resp.Header.Get("X-Outer") != "" {
		t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestGripHeadersWithoutHoldAreStripped(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Grip-Channel", "c")
		w.Header().Set("Grip-Status", "404 Nope")
		io.WriteString(w, "plain")
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	resp := get(t, f.proxy.URL+"/", nil)
	body := readAll(t, resp)
	if resp.StatusCode != 404 || body != "plain" || resp.Header.Get("Grip-Channel") != "" {
		t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestResponseHoldPublished(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Grip-Hold", "response")
		w.Header().Set("Grip-Channel", "lp")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Orig", "yes")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "timeout body")
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	done := make(chan *http.Response, 1)
	go func() { done <- get(t, f.proxy.URL+"/", nil) }()
	testutil.WaitSubscribers(t, f.hub, "lp", 1)
	f.hub.Deliver([]grip.Item{
		streamItem("lp", "not for long-polls"),
		{Channel: "lp", HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionSend, Code: 200,
			Header: http.Header{"Content-Type": {"application/json"}, "X-P": {"pub"}}, Body: []byte(`{"a":1}`)}},
	})
	resp := <-done
	body := readAll(t, resp)
	if resp.StatusCode != 200 || body != `{"a":1}` {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	h := resp.Header
	if h.Get("Content-Type") != "application/json" || h.Get("X-Orig") != "yes" || h.Get("X-P") != "pub" || h.Get("Content-Length") != "7" {
		t.Fatalf("headers %v", h)
	}
	testutil.WaitSubscribers(t, f.hub, "lp", 0)
}

func TestResponseHoldTimeout(t *testing.T) {
	t.Parallel()
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Grip-Hold", "response")
		w.Header().Set("Grip-Channel", "lp-timeout")
		w.Header().Set("Grip-Timeout", "1") // raised to the 5 s floor
		w.Header().Set("X-Orig", "yes")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "timed out")
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	start := time.Now()
	resp := get(t, f.proxy.URL+"/", nil)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusAccepted || body != "timed out" || resp.Header.Get("X-Orig") != "yes" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	for k := range resp.Header {
		if strings.HasPrefix(k, "Grip-") {
			t.Errorf("client saw %s", k)
		}
	}
	if d := time.Since(start); d < grip.MinTimeout {
		t.Fatalf("answered after %v, before the 5 s floor", d)
	}
}

func TestStreamHold(t *testing.T) {
	b := testutil.StreamBackend(t, "st", nil)
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	resp := get(t, f.proxy.URL+"/", nil)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Grip-Hold") != "" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	if held, _ := br.ReadString('\n'); held != ":held\n" {
		t.Fatalf("initial body %q", held)
	}
	testutil.WaitSubscribers(t, f.hub, "st", 1)
	var items []grip.Item
	var want strings.Builder
	for i := range 50 {
		msg := "data: " + strings.Repeat("x", i) + "\n\n"
		items = append(items, streamItem("st", msg))
		want.WriteString(msg)
	}
	f.hub.Deliver(items[:25])
	f.hub.Deliver(items[25:])
	f.hub.Deliver([]grip.Item{{Channel: "st", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionClose}}})
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	if string(rest) != "\n"+want.String() {
		t.Fatalf("got %q", rest)
	}
	testutil.WaitSubscribers(t, f.hub, "st", 0)
}

func TestStreamKeepAlive(t *testing.T) {
	b := testutil.StreamBackend(t, "ka", http.Header{"Grip-Keep-Alive": {`:ka\n\n; format=cstring; timeout=1`}})
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	resp := get(t, f.proxy.URL+"/", nil)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for _, want := range []string{":held\n", "\n", ":ka\n", "\n", ":ka\n"} {
		if line, err := br.ReadString('\n'); line != want {
			t.Fatalf("got %q (%v), want %q", line, err, want)
		}
	}
}

func TestStreamClientDisconnectUnsubscribes(t *testing.T) {
	b := testutil.StreamBackend(t, "gone", nil)
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	resp := get(t, f.proxy.URL+"/", nil)
	testutil.WaitSubscribers(t, f.hub, "gone", 1)
	resp.Body.Close() // drops the connection
	testutil.WaitSubscribers(t, f.hub, "gone", 0)
}

// A client that stops reading is disconnected; the others get everything.
func TestSlowStreamClientDoesNotStallOthers(t *testing.T) {
	b := testutil.StreamBackend(t, "slow", nil)
	f := newFixture(t, []string{b.URL}, fixtureOpts{queueSize: 32, writeTimeout: 500 * time.Millisecond})

	// The slow client: a raw socket that never reads after the request.
	conn, err := net.Dial("tcp", f.proxy.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	testutil.WaitSubscribers(t, f.hub, "slow", 1)

	fast := get(t, f.proxy.URL+"/", nil)
	defer fast.Body.Close()
	testutil.WaitSubscribers(t, f.hub, "slow", 2)

	chunk := strings.Repeat("z", 64*1024)
	const n = 200 // 12.5 MiB: far more than socket buffers hold
	var wg sync.WaitGroup
	wg.Add(1)
	var got int
	var readErr error
	go func() {
		defer wg.Done()
		br := bufio.NewReader(fast.Body)
		br.ReadString('\n') // ":held"
		br.ReadString('\n')
		buf := make([]byte, len(chunk))
		for got < n {
			if _, err := io.ReadFull(br, buf); err != nil {
				readErr = err
				return
			}
			got++
		}
	}()
	for range n {
		f.hub.Deliver([]grip.Item{streamItem("slow", chunk)})
		time.Sleep(time.Millisecond) // paces the publisher like a real one; not a synchronisation
	}
	wg.Wait()
	if got != n {
		t.Fatalf("fast client got %d of %d chunks (%v)", got, n, readErr)
	}
	testutil.WaitSubscribers(t, f.hub, "slow", 1) // the slow one was dropped
	if st := f.hub.Stats(); st.Slow < 1 {
		t.Fatalf("slow subscribers counted: %d", st.Slow)
	}
}

// HTTP/1.0 clients cannot take chunks, so their streams stay in the
// goroutine-per-hold loop; the body simply ends when the stream closes.
func TestStreamHoldHTTP10(t *testing.T) {
	b := testutil.StreamBackend(t, "old", nil)
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	conn, err := net.Dial("tcp", f.proxy.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	testutil.WaitSubscribers(t, f.hub, "old", 1)
	f.hub.Deliver([]grip.Item{streamItem("old", "data: 1\n\n")})
	f.hub.Deliver([]grip.Item{{Channel: "old", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionClose}}})
	raw, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(raw), "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.0 200") || strings.Contains(head, "chunked") || body != ":held\n\ndata: 1\n\n" {
		t.Fatalf("got %q", raw)
	}
	testutil.WaitSubscribers(t, f.hub, "old", 0)
}

func TestSmallChunkedBodyGetsContentLength(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Transfer-Encoding", "chunked")
		io.WriteString(w, "small")
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	resp := get(t, f.proxy.URL+"/", nil)
	if body := readAll(t, resp); body != "small" || resp.ContentLength != 5 {
		t.Fatalf("got %q with length %d", body, resp.ContentLength)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
