package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/gripd/gripd/internal/testutil"
)

// Tests of ListenerLimits: the connection limit, and the limits net/http
// enforces for gripd's client server (431, slow headers).

const busyAnswer = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 5\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 39\r\n" +
	"\r\n" +
	"Too many connections; try again later.\n"

// waitOpen waits until the listener counts n open connections.
func waitOpen(t *testing.T, ln *ConnLimitListener, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for ln.Open() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d open connections, want %d", ln.Open(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// dialRaw sends a request on a new connection and returns everything the
// server sends until it closes.
func dialRaw(t *testing.T, addr, request string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // a hang fails, not blocks
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading the answer: %v (got %q)", err, got)
	}
	return string(got)
}

// The listener on its own: over the limit every connection gets the 503
// and is closed, the refusals are logged once, and a closed connection
// frees its slot.
func TestConnLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.Buffer
	ln := NewConnLimitListener(inner, 1, zerolog.New(&logs))
	ln.logEvery = time.Hour // every refusal below falls in one interval
	accepted := make(chan net.Conn)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- conn
		}
	}()
	defer func() {
		ln.Close()
		<-acceptDone
	}()
	addr := inner.Addr().String()

	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	serverSide := <-accepted
	if ln.Open() != 1 {
		t.Fatalf("Open() = %d, want 1", ln.Open())
	}

	for range 3 {
		if got := dialRaw(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); got != busyAnswer {
			t.Fatalf("over the limit the client got %q", got)
		}
	}
	if ln.Rejected() != 3 {
		t.Errorf("Rejected() = %d, want 3", ln.Rejected())
	}
	if n := strings.Count(logs.String(), "client connection limit reached"); n != 1 {
		t.Errorf("%d log lines for 3 refusals in one interval, want 1:\n%s", n, logs.String())
	}
	line := logs.WaitLogLine(t, "client connection limit reached: answering 503 (logged at most every 1h0m0s)")
	if line["max_client_conns"] != float64(1) || line["refused"] != float64(1) {
		t.Errorf("log line %v", line)
	}

	// A refused client that never sends its request is closed, unanswered.
	if got := dialRaw(t, addr, ""); got != "" {
		t.Errorf("a silent client got %q", got)
	}

	// Closing twice gives the slot back once.
	serverSide.Close()
	serverSide.Close()
	if ln.Open() != 0 {
		t.Fatalf("Open() = %d after the close, want 0", ln.Open())
	}
	next, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	(<-accepted).Close()
}

// Held streams occupy their slots: with both taken, the next client gets
// 503 with Retry-After; when one stream ends its slot comes free.
func TestConnLimitWithHeldStreams(t *testing.T) {
	b := testutil.StreamBackend(t, "busy", nil)
	f := newFixture(t, []string{b.URL}, fixtureOpts{listener: &ListenerLimits{MaxConns: 2}})
	first := get(t, f.proxy.URL+"/", nil)
	defer first.Body.Close()
	second := get(t, f.proxy.URL+"/", nil)
	defer second.Body.Close()
	testutil.WaitSubscribers(t, f.hub, "busy", 2)

	resp := get(t, f.proxy.URL+"/", nil)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" ||
		body != "Too many connections; try again later.\n" {
		t.Fatalf("over the limit: %d Retry-After %q %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}

	first.Body.Close() // the client hangs up: the parked stream ends
	testutil.WaitSubscribers(t, f.hub, "busy", 1)
	waitOpen(t, f.ln, 1)
	again := get(t, f.proxy.URL+"/", nil)
	defer again.Body.Close()
	if line, err := bufio.NewReader(again.Body).ReadString('\n'); again.StatusCode != http.StatusOK || line != ":held\n" {
		t.Fatalf("after a slot came free: %d %q %v", again.StatusCode, line, err)
	}
}

// A WebSocket counts until it closes.
func TestConnLimitWithWebSocket(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(), nil))
	f := newWSFixtureWith(t, b, fixtureOpts{listener: &ListenerLimits{MaxConns: 1}})
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/", nil)
	write(t, ctx, c, websocket.MessageText, "hi")
	readMsg(t, ctx, c, websocket.MessageText, "hi")

	addr := f.proxy.Listener.Addr().String()
	if got := dialRaw(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); got != busyAnswer {
		t.Fatalf("with the WebSocket open the client got %q", got)
	}
	c.Close(websocket.StatusNormalClosure, "")
	waitOpen(t, f.ln, 0)
	c2, _ := dialWS(t, ctx, f, "/", nil)
	write(t, ctx, c2, websocket.MessageText, "again")
	readMsg(t, ctx, c2, websocket.MessageText, "again")
}

// Request headers over MaxHeaderBytes are answered 431.
func TestHeaderLimit(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	f := newFixture(t, []string{b.URL}, fixtureOpts{listener: &ListenerLimits{MaxHeaderBytes: 8 << 10}})
	tests := []struct {
		name       string
		size       int
		wantStatus int
		wantBody   string
	}{
		{"under the limit", 2 << 10, http.StatusOK, "ok"},
		// net/http allows 4 KiB over MaxHeaderBytes.
		{"over the limit", 16 << 10, http.StatusRequestHeaderFieldsTooLarge, "431 Request Header Fields Too Large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, f.proxy.URL+"/", map[string]string{"X-Big": strings.Repeat("h", tt.size)})
			if body := readAll(t, resp); resp.StatusCode != tt.wantStatus || body != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

// A client that never finishes its headers is disconnected after
// ReadHeaderTimeout; one that does is served.
func TestReadHeaderTimeout(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	f := newFixture(t, []string{b.URL}, fixtureOpts{listener: &ListenerLimits{ReadHeaderTimeout: 200 * time.Millisecond}})
	addr := f.proxy.Listener.Addr().String()
	if got := dialRaw(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") {
		t.Fatalf("a complete request got %q", got)
	}
	// dialRaw fails if the connection is still open after 10 s.
	if got := dialRaw(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n"); strings.Contains(got, "200 OK") {
		t.Fatalf("an unfinished request got %q", got)
	}
}

func TestListenerLimitsDefaults(t *testing.T) {
	want := ListenerLimits{MaxConns: 50000, MaxHeaderBytes: 64 << 10, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	if got := (ListenerLimits{}).WithDefaults(); got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	srv := NewClientServer(http.NotFoundHandler(), ListenerLimits{IdleTimeout: time.Minute}, nil)
	if srv.MaxHeaderBytes != want.MaxHeaderBytes || srv.ReadHeaderTimeout != want.ReadHeaderTimeout ||
		srv.IdleTimeout != time.Minute || srv.ReadTimeout != 0 || srv.WriteTimeout != 0 {
		t.Errorf("NewClientServer: %+v", srv)
	}
}

func TestReadRequestHead(t *testing.T) {
	head := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name  string
		r     io.Reader
		limit int
		want  bool
	}{
		{"whole head", strings.NewReader(head + "body"), 1024, true},
		{"terminator split across reads", iotest.OneByteReader(strings.NewReader(head)), 1024, true},
		{"bare line feeds", strings.NewReader("GET / HTTP/1.0\n\n"), 1024, true},
		{"cut short", strings.NewReader("GET / HTTP/1.1\r\nHost: x\r\n"), 1024, false},
		{"nothing", strings.NewReader(""), 1024, false},
		{"longer than the limit", strings.NewReader(strings.Repeat("x", 10000)), 5000, true},
	}
	for _, tt := range tests {
		if got := readRequestHead(tt.r, tt.limit); got != tt.want {
			t.Errorf("%s: readRequestHead = %v, want %v", tt.name, got, tt.want)
		}
	}
}
