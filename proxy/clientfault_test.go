package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gripd/gripd/internal/testutil"
)

// A malformed chunked request body is the client's fault: answered 400,
// logged below error level, counted as code="client" and not as a backend
// failure, and the request has its access-log line.
func TestMalformedChunkedBodyIsAClientFault(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	})
	logs := &testutil.Buffer{}
	obs := newRecorder()
	f := newFixture(t, []string{b.URL}, fixtureOpts{route: Route{ID: "r"}, log: logs, observer: obs})
	c, err := net.Dial("tcp", strings.TrimPrefix(f.proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed chunked body answered %d, want 400", resp.StatusCode)
	}
	obs.expectSkipping(t, "backend r client")
	fault := logs.WaitLogLine(t, "client request body failed")
	if fault["level"] == "error" {
		t.Errorf("a client fault logged at error level: %v", fault)
	}
	line := logs.WaitLogLine(t, "request")
	if line["status"] != float64(400) || line["end"] != "bad request body" {
		t.Errorf("access log line %v, want status 400 and end \"bad request body\"", line)
	}
}

// A backend that breaks off its response body mid-way leaves an
// access-log line saying so, and the client's connection is cut (it must
// not take the cut body for a whole one).
func TestBackendResetMidBodyIsLogged(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, "only part")
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	logs := &testutil.Buffer{}
	f := newFixture(t, []string{b.URL}, fixtureOpts{route: Route{ID: "r"}, log: logs})
	resp, err := http.Get(f.proxy.URL + "/")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("the client got a cut body as a whole one")
	}
	line := logs.WaitLogLine(t, "request")
	if line["end"] != "backend broke off the body" {
		t.Errorf("access log line %v, want end \"backend broke off the body\"", line)
	}
}
