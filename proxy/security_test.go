package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/internal/testutil"
)

// rawRequest writes req as it is to the proxy over TCP and reads the
// response.
func rawRequest(t *testing.T, f *fixture, req string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", f.proxy.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", req, err)
	}
	return resp, readAll(t, resp)
}

// clientGripHeaders are Grip-* headers as a client might spell them.
var clientGripHeaders = []string{
	"Grip-Sig: forged", "grip-sig: forged-lower", "GRIP-SIG: forged-upper",
	"Grip-Hold: stream", "gRiP-cHaNnEl: evil", "grip-last: evil; last-id=1",
	"Grip-Feature: evil", "GRIP-INSTRUCT: evil", "Grip-X-Anything: evil",
	// CGI-style backends read Grip_Sig as HTTP_GRIP_SIG too.
	"Grip_Sig: forged-underscore", "grip_hold: stream",
}

// checkNoClientGrip fails if h has a Grip-* header a client sent: any
// but gripd's own Grip-Sig and Grip-Feature.
func checkNoClientGrip(t *testing.T, what string, h http.Header) {
	t.Helper()
	for k, vs := range h {
		if lk := strings.ToLower(k); !strings.HasPrefix(lk, "grip-") && !strings.HasPrefix(lk, "grip_") {
			continue
		}
		switch http.CanonicalHeaderKey(k) {
		case "Grip-Sig":
			if len(vs) != 1 {
				t.Errorf("%s: %d Grip-Sig values %q", what, len(vs), vs)
			} else if iss, err := grip.ValidateSig(vs[0], []byte(testKey)); err != nil || iss != "test-iss" {
				t.Errorf("%s: Grip-Sig %q is not gripd's: iss %q, %v", what, vs[0], iss, err)
			}
		case "Grip-Feature":
			if len(vs) != 1 || vs[0] != grip.Feature {
				t.Errorf("%s: Grip-Feature %q", what, vs)
			}
		default:
			t.Errorf("%s: client header %s: %q reached the backend", what, k, vs)
		}
	}
}

func TestSecurityClientGripHeadersNeverReachBackend(t *testing.T) {
	var mu sync.Mutex
	var got http.Header
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	req := "GET /x HTTP/1.1\r\nHost: example.com\r\n" + strings.Join(clientGripHeaders, "\r\n") +
		"\r\nConnection: close\r\n\r\n"
	resp, body := rawRequest(t, f, req)
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	checkNoClientGrip(t, "HTTP request", got)
	if got.Get("Grip-Sig") == "" {
		t.Error("gripd's own Grip-Sig is missing")
	}
}

func TestSecurityClientGripHeadersNeverReachWebSocketBackend(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(), nil))
	f := newWSFixture(t, b, Route{})
	hdr := http.Header{}
	for _, h := range clientGripHeaders {
		k, v, _ := strings.Cut(h, ": ")
		hdr[k] = append(hdr[k], v) // as spelled: the client sends the key unchanged
	}
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/ws", &websocket.DialOptions{HTTPHeader: hdr})
	write(t, ctx, c, websocket.MessageText, "hi")
	readMsg(t, ctx, c, websocket.MessageText, "hi")
	c.Close(websocket.StatusNormalClosure, "")
	for {
		r := b.next(t)
		checkNoClientGrip(t, fmt.Sprintf("WebSocket-over-HTTP request %v", r.Events), r.Header)
		if hasEvent(r.Events, grip.WSClose) {
			break
		}
	}
}

// victim is a listener that must never get a connection from gripd.
func victim(t *testing.T) (addr string, conns *atomic.Int64) {
	t.Helper()
	conns = new(atomic.Int64)
	v := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "victim")
	}))
	v.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	v.Start()
	t.Cleanup(func() { v.CloseClientConnections(); v.Close() })
	return v.Listener.Addr().String(), conns
}

func TestSecurityNoOpenProxy(t *testing.T) {
	var mu sync.Mutex
	var hits []string
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.Method+" "+r.Host+" "+r.URL.RequestURI())
		mu.Unlock()
		io.WriteString(w, "from backend")
	})
	vaddr, vconns := victim(t)
	f := newFixture(t, []string{b.URL}, fixtureOpts{})

	for _, target := range []string{"evil.example", vaddr} {
		req := "GET http://" + target + "/secret?q=1 HTTP/1.1\r\nHost: " + target + "\r\nConnection: close\r\n\r\n"
		resp, body := rawRequest(t, f, req)
		if resp.StatusCode != 200 || body != "from backend" {
			t.Errorf("%s: got %d %q, want the backend's answer", target, resp.StatusCode, body)
		}
	}
	// CONNECT must not open a tunnel either: whatever the answer, nothing
	// reaches the victim.
	resp, body := rawRequest(t, f, "CONNECT "+vaddr+" HTTP/1.1\r\nHost: "+vaddr+"\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusMethodNotAllowed || body != "CONNECT is not supported.\n" {
		t.Errorf("CONNECT answered %d %q, want 405", resp.StatusCode, body)
	}
	mu.Lock()
	if len(hits) < 2 || hits[0] != "GET evil.example /secret?q=1" || hits[1] != "GET "+vaddr+" /secret?q=1" {
		t.Errorf("backend got %q", hits)
	}
	mu.Unlock()
	if n := vconns.Load(); n != 0 {
		t.Errorf("the victim got %d connections through gripd", n)
	}
}

func TestSecurityNoOpenProxyHostRoute(t *testing.T) {
	var hits atomic.Int64
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "from backend")
	})
	vaddr, vconns := victim(t)
	f := newFixture(t, []string{b.URL}, fixtureOpts{route: Route{Host: "app.example"}})
	vhost, _, _ := net.SplitHostPort(vaddr)
	for target, host := range map[string]string{"evil.example": "evil.example", vaddr: vhost} {
		req := "GET http://" + target + "/ HTTP/1.1\r\nHost: " + target + "\r\nConnection: close\r\n\r\n"
		resp, body := rawRequest(t, f, req)
		if resp.StatusCode != http.StatusBadGateway || body != "No route for host: "+host+"\n" {
			t.Errorf("%s: got %d %q, want 502 No route for host", target, resp.StatusCode, body)
		}
	}
	// An absolute URI names the host, not a Host header that disagrees.
	resp, body := rawRequest(t, f, "GET http://evil.example/ HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "No route for host: evil.example") {
		t.Errorf("absolute URI with the route's Host header: got %d %q", resp.StatusCode, body)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the backend got %d requests for other hosts", n)
	}
	if n := vconns.Load(); n != 0 {
		t.Errorf("the victim got %d connections through gripd", n)
	}
}

func TestSecuritySecretsNeverLogged(t *testing.T) {
	const sig, auth, cookie = "SECRET-GRIP-SIG-1f2e", "Bearer SECRET-AUTH-9a8b", "session=SECRET-COOKIE-7c6d"
	secrets := []string{"SECRET-GRIP-SIG", "SECRET-AUTH", "SECRET-COOKIE"}
	check := func(t *testing.T, logs *testutil.Buffer) {
		t.Helper()
		out := logs.String()
		if out == "" {
			t.Fatal("nothing was logged: the test would prove nothing")
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s is in the log:\n%s", s, out)
			}
		}
	}
	hdr := map[string]string{"Grip-Sig": sig, "Authorization": auth, "Cookie": cookie}

	t.Run("plain and failing", func(t *testing.T) {
		b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/bad" {
				w.Header().Set("Grip-Hold", "bogus")
			}
			io.WriteString(w, "ok")
		})
		var logs testutil.Buffer
		f := newFixture(t, []string{b.URL}, fixtureOpts{log: &logs})
		readAll(t, get(t, f.proxy.URL+"/ok", hdr))
		readAll(t, get(t, f.proxy.URL+"/bad", hdr))
		down := newFixture(t, []string{closedPortURL(t)}, fixtureOpts{log: &logs})
		readAll(t, get(t, down.proxy.URL+"/down", hdr))
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(logs.String(), `"message":"request"`) < 3 && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		check(t, &logs)
	})

	t.Run("websocket", func(t *testing.T) {
		b := newWSBackend(t, gripEcho(gripOpen(), nil))
		var logs testutil.Buffer
		route := Route{Backends: []Backend{{URL: mustURL(t, b.URL), OverHTTP: true}}}
		f := newFixture(t, nil, fixtureOpts{route: route, log: &logs})
		t.Cleanup(func() { waitSessions(t, f.hub, 0) })
		h := http.Header{}
		for k, v := range hdr {
			h.Set(k, v)
		}
		ctx := testutil.Context(t)
		c, _ := dialWS(t, ctx, f, "/ws", &websocket.DialOptions{HTTPHeader: h})
		write(t, ctx, c, websocket.MessageText, "hi")
		readMsg(t, ctx, c, websocket.MessageText, "hi")
		c.Close(websocket.StatusNormalClosure, "")
		logs.WaitLogLine(t, "websocket")
		check(t, &logs)
	})
}
