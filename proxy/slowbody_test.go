package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gripd/gripd/internal/testutil"
)

// slowBodyBackend is a backend that reads each request's body to the end
// before answering "ok"; entered gets a value as each request arrives.
func slowBodyBackend(t *testing.T) (url string, entered chan struct{}) {
	entered = make(chan struct{}, 16)
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		w.Write([]byte("ok"))
	})
	return b.URL, entered
}

// startSlowBody opens a client connection that sends its request headers
// and the first bytes of a 100-byte body, then nothing more.
func startSlowBody(t *testing.T, f *fixture) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(f.proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprint(c, "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100\r\n\r\nfirst bytes")
	return c
}

func waitEntered(t *testing.T, entered chan struct{}, n int) {
	t.Helper()
	for range n {
		select {
		case <-entered:
		case <-time.After(time.Minute):
			t.Fatal("the backend never got the slow requests")
		}
	}
}

// Clients that trickle their request bodies hold every connection to a
// backend (backend_max_conns); a normal request next to them is not left
// waiting for as long as they like: after backend_queue_timeout it gets
// 503 with Retry-After.
func TestSlowBodiesDoNotHoldOtherRequestsWaiting(t *testing.T) {
	url, entered := slowBodyBackend(t)
	f := newFixture(t, []string{url}, fixtureOpts{route: Route{ID: "r"}, maxConns: 2,
		limits: Limits{ReadBodyTimeout: time.Hour, BackendQueueTimeout: 100 * time.Millisecond}})
	startSlowBody(t, f)
	startSlowBody(t, f)
	waitEntered(t, entered, 2) // both connections to the backend are taken

	client := &http.Client{Timeout: 30 * time.Second} // gripd without a bound waits for ever
	resp, err := client.Get(f.proxy.URL + "/normal")
	if err != nil {
		t.Fatalf("normal request next to slow bodies: %v", err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("normal request got %d (Retry-After %q) %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// A client that does not finish its request body within
// read_body_timeout is cut off with 408 and disconnected, and the
// backend connection it held serves the next request.
func TestSlowBodyTimesOutAndFreesItsBackendConnection(t *testing.T) {
	url, entered := slowBodyBackend(t)
	f := newFixture(t, []string{url}, fixtureOpts{route: Route{ID: "r"}, maxConns: 1,
		limits: Limits{ReadBodyTimeout: 300 * time.Millisecond, BackendQueueTimeout: time.Minute}})
	slow := startSlowBody(t, f)
	waitEntered(t, entered, 1)

	// A normal request waits for the one connection, which the slow
	// body gives up at its deadline.
	normal := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post(f.proxy.URL+"/normal", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Errorf("normal request: %v", err)
			close(normal)
			return
		}
		normal <- resp
	}()

	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatalf("slow client: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Fatalf("slow client got %d (close %v), want 408 and the connection closed", resp.StatusCode, resp.Close)
	}
	if resp, ok := <-normal; ok {
		if body := readAll(t, resp); resp.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("normal request got %d %q, want 200 ok", resp.StatusCode, body)
		}
	}
}

// A body that arrives in time is not affected: the deadline is lifted
// once it is read, so a long response on the same connection and the
// next request on it go through.
func TestBodyDeadlineLiftedOnceBodyRead(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.(http.Flusher).Flush()
		time.Sleep(400 * time.Millisecond) // longer than the body deadline
		w.Write([]byte("ok"))
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{route: Route{ID: "r"},
		limits: Limits{ReadBodyTimeout: 200 * time.Millisecond}})
	for i := range 2 { // the second on the kept-alive connection
		resp, err := http.Post(f.proxy.URL+"/", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if body := readAll(t, resp); resp.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("request %d got %d %q, want 200 ok", i, resp.StatusCode, body)
		}
	}
}
