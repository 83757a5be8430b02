package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/internal/testutil"
)

// clientForwarded is what a client claims: an address chain, a host and a
// scheme of its choosing, and meta for a WebSocket-over-HTTP backend.
var clientForwarded = http.Header{
	"X-Forwarded-For":   {"203.0.113.9"},
	"X-Forwarded-Host":  {"evil.example"},
	"X-Forwarded-Proto": {"https"},
	"Meta-User":         {"admin"},
	"Meta_role":         {"admin"},
}

// checkForwarded checks what a backend got: the client's chain with the
// address gripd saw appended, the Host the client asked for, the scheme
// it used, and no client meta.
func checkForwarded(t *testing.T, path string, h http.Header) {
	t.Helper()
	if got := h.Get("X-Forwarded-For"); got != "203.0.113.9, 127.0.0.1" {
		t.Errorf("%s: X-Forwarded-For %q, want the client's with 127.0.0.1 appended", path, got)
	}
	if got := h.Get("X-Forwarded-Host"); got != "app.example" {
		t.Errorf("%s: X-Forwarded-Host %q, want app.example", path, got)
	}
	if got := h.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("%s: X-Forwarded-Proto %q, want http", path, got)
	}
	for k := range h {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "meta-") || strings.HasPrefix(lk, "meta_") {
			t.Errorf("%s: backend got the client's %s", path, k)
		}
	}
}

func TestForwardedHeadersPolicyOnHTTP(t *testing.T) {
	got := make(chan http.Header, 1)
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() })
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	req, _ := http.NewRequest("GET", f.proxy.URL+"/", nil)
	req.Host = "app.example"
	for k, vs := range clientForwarded {
		req.Header[k] = vs
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	h := <-got
	h.Del("Meta-User") // plain HTTP backends get the client's headers; meta is WebSocket-over-HTTP's
	h.Del("Meta_role")
	checkForwarded(t, "HTTP", h)
}

func TestForwardedHeadersPolicyOnWebSocketOverHTTP(t *testing.T) {
	b := newWSBackend(t, gripEcho(wsReply{}, nil))
	f := newWSFixture(t, b, Route{ID: "ws"})
	ctx := testutil.Context(t)
	h := clientForwarded.Clone()
	c, _ := dialWS(t, ctx, f, "/", &websocket.DialOptions{HTTPHeader: h, Host: "app.example"})
	open := b.until(t, grip.WSOpen, "")
	checkForwarded(t, "WebSocket-over-HTTP OPEN", open.Header)
	write(t, ctx, c, websocket.MessageText, "hi")
	msg := b.until(t, grip.WSText, "hi")
	checkForwarded(t, "WebSocket-over-HTTP message", msg.Header)
}

func TestForwardedHeadersPolicyOnWebSocketPassthrough(t *testing.T) {
	got := make(chan http.Header, 1)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	t.Cleanup(func() { b.CloseClientConnections(); b.Close() })
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.proxy.URL, "http")+"/", &websocket.DialOptions{HTTPHeader: clientForwarded.Clone(), Host: "app.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	checkForwarded(t, "passthrough", <-got)
	c.Close(websocket.StatusNormalClosure, "")
	waitSessions(t, f.hub, 0)
}
