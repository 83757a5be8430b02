package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/internal/testutil"
)

// These tests drive WebSocket-over-HTTP sessions end to end: a real
// WebSocket client talks to the proxy, and an httptest backend speaks
// application/websocket-events and records every request it gets.

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestWebSocketHandshake(t *testing.T) {
	open := gripOpen()
	open.Header.Set("X-Handshake", "yes")
	open.Header.Set("Set-Meta-User", "alice")
	open.Header.Set("Keep-Alive-Interval", "30")
	open.Header.Set("Sec-WebSocket-Protocol", "chat")
	b := newWSBackend(t, gripEcho(open, nil))
	f := newWSFixture(t, b, Route{})
	ctx := testutil.Context(t)

	c, resp := dialWS(t, ctx, f, "/chat/room?x=1&y=%2F", &websocket.DialOptions{
		Subprotocols: []string{"chat"},
		HTTPHeader: http.Header{
			"X-Custom":                 {"v1"},
			"Meta-User":                {"mallory"},
			"Grip-Hold":                {"stream"},
			"Grip-Channel":             {"evil"},
			"Sec-Websocket-Extensions": {"x-client-ext"},
		},
	})
	r := b.next(t)
	if r.Method != http.MethodPost || r.URI != "/chat/room?x=1&y=%2F" {
		t.Errorf("backend got %s %s", r.Method, r.URI)
	}
	if string(r.Body) != "OPEN\r\n" {
		t.Errorf("first body %q, want OPEN\\r\\n", r.Body)
	}
	h := r.Header
	for _, k := range []string{"Content-Type", "Accept"} {
		if v := h.Values(k); len(v) != 1 || v[0] != grip.WSEventsContentType {
			t.Errorf("%s: %q", k, v)
		}
	}
	if !uuidRE.MatchString(h.Get("Connection-Id")) {
		t.Errorf("Connection-Id %q is not a UUID", h.Get("Connection-Id"))
	}
	if v := h.Values("Sec-WebSocket-Extensions"); len(v) != 1 || v[0] != "grip" {
		t.Errorf("Sec-WebSocket-Extensions %q, want just grip", v)
	}
	if iss, err := grip.ValidateSig(h.Get("Grip-Sig"), []byte(testKey)); err != nil || iss != "test-iss" {
		t.Errorf("Grip-Sig: iss %q, %v", iss, err)
	}
	if h.Get("X-Custom") != "v1" || h.Get("Sec-WebSocket-Version") != "13" || h.Get("Sec-WebSocket-Key") == "" || h.Get("Sec-WebSocket-Protocol") != "chat" {
		t.Errorf("client handshake headers not replayed: %v", h)
	}
	for _, k := range []string{"Meta-User", "Grip-Hold", "Grip-Channel", "Upgrade"} {
		if v, ok := h[k]; ok {
			t.Errorf("backend got the client's %s: %q", k, v)
		}
	}
	if r.Host != f.proxy.Listener.Addr().String() {
		t.Errorf("backend got Host %q", r.Host)
	}

	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Handshake") != "yes" {
		t.Errorf("101: %d %v", resp.StatusCode, resp.Header)
	}
	for _, k := range []string{"Set-Meta-User", "Content-Type", "Sec-Websocket-Extensions", "Keep-Alive-Interval"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("client's 101 carries %s: %q", k, v)
		}
	}
	if c.Subprotocol() != "chat" {
		t.Errorf("subprotocol %q, want the backend's choice chat", c.Subprotocol())
	}

	// The OPEN reply's Set-Meta-User is sent back on the next request, with
	// the same Connection-Id.
	write(t, ctx, c, websocket.MessageText, "hi")
	readMsg(t, ctx, c, websocket.MessageText, "hi")
	r2 := b.until(t, grip.WSText, "hi")
	if r2.Header.Get("Meta-User") != "alice" {
		t.Errorf("Meta-User %q, want alice", r2.Header.Get("Meta-User"))
	}
	if r2.Header.Get("Connection-Id") != h.Get("Connection-Id") {
		t.Errorf("Connection-Id changed: %q then %q", h.Get("Connection-Id"), r2.Header.Get("Connection-Id"))
	}
}

func TestWebSocketRejection(t *testing.T) {
	cases := map[string]struct {
		reply  wsReply
		status int
		body   string
	}{
		"403": {
			reply:  wsReply{Status: http.StatusForbidden, Header: http.Header{"Content-Type": {"text/plain"}, "X-Reason": {"nope"}}, Raw: []byte("go away\n")},
			status: http.StatusForbidden, body: "go away\n",
		},
		"wrong content type": {
			reply:  wsReply{Status: http.StatusOK, Header: http.Header{"Content-Type": {"text/plain"}}, Raw: []byte("OPEN\r\n")},
			status: http.StatusOK, body: "OPEN\r\n",
		},
		"content type with a parameter": {
			reply:  wsReply{Status: http.StatusOK, Header: http.Header{"Content-Type": {grip.WSEventsContentType + "; charset=utf-8"}}, Raw: []byte("OPEN\r\n")},
			status: http.StatusOK, body: "OPEN\r\n",
		},
		"reply without OPEN": {
			reply:  wsReply{Status: http.StatusOK, Raw: []byte("TEXT 2\r\nhi\r\n")},
			status: http.StatusOK, body: "TEXT 2\r\nhi\r\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := newWSBackend(t, func(*wsReq) wsReply { return tc.reply })
			f := newWSFixture(t, b, Route{})
			c, resp, err := websocket.Dial(testutil.Context(t), wsURL(f, "/"), nil)
			if err == nil {
				c.CloseNow()
				t.Fatal("dial succeeded")
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || string(body) != tc.body {
				t.Fatalf("client got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
			for k, vs := range tc.reply.Header {
				if resp.Header.Get(k) != vs[0] {
					t.Errorf("%s: %q, want %q", k, resp.Header.Get(k), vs[0])
				}
			}
			if r := b.next(t); string(r.Body) != "OPEN\r\n" {
				t.Errorf("backend got %q", r.Body)
			}
			b.none(t)
			if n := f.hub.Stats().Subscribers; n != 0 {
				t.Errorf("%d sessions after a rejection", n)
			}
		})
	}
}

func TestWebSocketEchoInOrder(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(), nil))
	f := newWSFixture(t, b, Route{})
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/echo", nil)
	cid := b.next(t).Header.Get("Connection-Id")

	msgs := []string{"one", "two", "three"}
	for _, m := range msgs {
		write(t, ctx, c, websocket.MessageText, m)
	}
	write(t, ctx, c, websocket.MessageBinary, "\x00\x01bin")
	for _, m := range msgs {
		readMsg(t, ctx, c, websocket.MessageText, m)
	}
	readMsg(t, ctx, c, websocket.MessageBinary, "\x00\x01bin")

	// However the proxy batched them, the backend saw the four messages in
	// order, all on the same connection.
	var got []grip.WSEvent
	for len(got) < 4 {
		r := b.next(t)
		if r.Header.Get("Connection-Id") != cid {
			t.Fatalf("Connection-Id %q, want %q", r.Header.Get("Connection-Id"), cid)
		}
		if len(r.Events) == 0 {
			t.Fatalf("empty request %q", r.Body)
		}
		got = append(got, r.Events...)
	}
	want := []grip.WSEvent{wsText("one"), wsText("two"), wsText("three"), {Type: grip.WSBinary, Content: []byte("\x00\x01bin")}}
	if len(got) != len(want) {
		t.Fatalf("backend got %d events %q, want %q", len(got), got, want)
	}
	for i := range want {
		if got[i].Type != want[i].Type || !bytes.Equal(got[i].Content, want[i].Content) {
			t.Fatalf("event %d: %s %q, want %s %q", i, got[i].Type, got[i].Content, want[i].Type, want[i].Content)
		}
	}
}

func TestWebSocketControlMessages(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(wsControl(`{"type":"subscribe","channel":"c"}`)), map[string]wsReply{
		"set-meta": {
			Header: http.Header{"Set-Meta-User": {"alice"}},
			Events: []grip.WSEvent{wsControl(`{"type":"set-meta","name":"color","value":"blue"}`), wsText("m:meta set")},
		},
		"unset":  {Events: []grip.WSEvent{wsControl(`{"type":"set-meta","name":"color"}`), wsText("m:unset")}},
		"unsub":  {Events: []grip.WSEvent{wsControl(`{"type":"unsubscribe","channel":"c"}`), wsText("m:unsubscribed")}},
		"detach": {Events: []grip.WSEvent{wsControl(`{"type":"detach"}`), wsText("m:detached")}},
	}))
	f := newWSFixture(t, b, Route{})
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/", nil)
	b.next(t) // OPEN

	// subscribe: published text and binary messages arrive as such.
	testutil.WaitSubscribers(t, f.hub, "c", 1)
	f.hub.Deliver([]grip.Item{
		{Channel: "c", WSMessage: &grip.WSMessageFormat{Action: grip.ActionSend, Type: "text", Content: []byte("published")}},
		{Channel: "c", WSMessage: &grip.WSMessageFormat{Action: grip.ActionSend, Type: "binary", Content: []byte{0xff, 0x00, 0x01}}},
	})
	readMsg(t, ctx, c, websocket.MessageText, "published")
	readMsg(t, ctx, c, websocket.MessageBinary, "\xff\x00\x01")

	// set-meta and Set-Meta-*: both come back as Meta-* on later requests.
	write(t, ctx, c, websocket.MessageText, "set-meta")
	readMsg(t, ctx, c, websocket.MessageText, "meta set")
	write(t, ctx, c, websocket.MessageText, "check")
	readMsg(t, ctx, c, websocket.MessageText, "check")
	r := b.until(t, grip.WSText, "check")
	if r.Header.Get("Meta-User") != "alice" || r.Header.Get("Meta-Color") != "blue" {
		t.Errorf("Meta-User %q, Meta-Color %q; want alice, blue", r.Header.Get("Meta-User"), r.Header.Get("Meta-Color"))
	}
	write(t, ctx, c, websocket.MessageText, "unset")
	readMsg(t, ctx, c, websocket.MessageText, "unset")
	write(t, ctx, c, websocket.MessageText, "check")
	readMsg(t, ctx, c, websocket.MessageText, "check")
	r = b.until(t, grip.WSText, "check")
	if _, ok := r.Header["Meta-Color"]; ok || r.Header.Get("Meta-User") != "alice" {
		t.Errorf("after set-meta without a value: Meta-Color %q, Meta-User %q", r.Header.Get("Meta-Color"), r.Header.Get("Meta-User"))
	}

	// unsubscribe: nothing published on c reaches the client any more.
	write(t, ctx, c, websocket.MessageText, "unsub")
	readMsg(t, ctx, c, websocket.MessageText, "unsubscribed")
	testutil.WaitSubscribers(t, f.hub, "c", 0)
	f.hub.Deliver([]grip.Item{{Channel: "c", WSMessage: &grip.WSMessageFormat{Action: grip.ActionSend, Type: "text", Content: []byte("lost")}}})
	write(t, ctx, c, websocket.MessageText, "after unsubscribe")
	readMsg(t, ctx, c, websocket.MessageText, "after unsubscribe")

	// detach: later client messages, and the close, never reach the
	// backend. Had the CLOSE been queued, the session would only end once
	// the backend answered it, so the backend would have it by then.
	write(t, ctx, c, websocket.MessageText, "detach")
	readMsg(t, ctx, c, websocket.MessageText, "detached")
	b.until(t, grip.WSText, "detach")
	write(t, ctx, c, websocket.MessageText, "after detach")
	c.Close(websocket.StatusNormalClosure, "")
	waitSessions(t, f.hub, 0)
	b.none(t)
}

func TestWebSocketUnprefixedAndNonGrip(t *testing.T) {
	t.Run("grip mode delivers unprefixed messages", func(t *testing.T) {
		// Pushpin drops them; gripd delivers them as they are.
		b := newWSBackend(t, gripEcho(gripOpen(wsText("plain"), wsText("m:prefixed"), wsText("m:m:twice")), nil))
		f := newWSFixture(t, b, Route{})
		ctx := testutil.Context(t)
		c, _ := dialWS(t, ctx, f, "/", nil)
		readMsg(t, ctx, c, websocket.MessageText, "plain")
		readMsg(t, ctx, c, websocket.MessageText, "prefixed")
		readMsg(t, ctx, c, websocket.MessageText, "m:twice")
	})
	t.Run("without the grip extension", func(t *testing.T) {
		b := newWSBackend(t, gripEcho(wsReply{Events: []grip.WSEvent{
			wsControl(`{"type":"subscribe","channel":"nogrip"}`), wsText("m:hello"),
		}}, nil))
		f := newWSFixture(t, b, Route{})
		ctx := testutil.Context(t)
		c, _ := dialWS(t, ctx, f, "/", nil)
		readMsg(t, ctx, c, websocket.MessageText, `c:{"type":"subscribe","channel":"nogrip"}`)
		readMsg(t, ctx, c, websocket.MessageText, "m:hello")
		if n := f.hub.SubscriberCount("nogrip"); n != 0 {
			t.Errorf("a c: message outside GRIP mode subscribed: %d", n)
		}
		write(t, ctx, c, websocket.MessageText, "x")
		readMsg(t, ctx, c, websocket.MessageText, "m:x") // the echo's prefix stays too
	})
}

func TestWebSocketClose(t *testing.T) {
	t.Run("client closes", func(t *testing.T) {
		b := newWSBackend(t, gripEcho(gripOpen(), nil))
		f := newWSFixture(t, b, Route{})
		ctx := testutil.Context(t)
		c, _ := dialWS(t, ctx, f, "/", nil)
		cid := b.next(t).Header.Get("Connection-Id")
		if err := c.Close(4000, "client-bye"); err != nil {
			t.Fatalf("close: %v", err)
		}
		r := b.next(t)
		if want := "CLOSE c\r\n\x0f\xa0client-bye\r\n"; string(r.Body) != want || r.Header.Get("Connection-Id") != cid {
			t.Fatalf("backend got %q (cid %q), want %q", r.Body, r.Header.Get("Connection-Id"), want)
		}
		waitSessions(t, f.hub, 0)
		b.none(t) // no DISCONNECT after a clean close
	})
	t.Run("backend closes", func(t *testing.T) {
		b := newWSBackend(t, gripEcho(gripOpen(), map[string]wsReply{
			"close me": {Events: []grip.WSEvent{wsText("m:bye"), {Type: grip.WSClose, Content: grip.WSCloseContent(4001, "server-bye")}}},
		}))
		f := newWSFixture(t, b, Route{})
		ctx := testutil.Context(t)
		c, _ := dialWS(t, ctx, f, "/", nil)
		write(t, ctx, c, websocket.MessageText, "close me")
		readMsg(t, ctx, c, websocket.MessageText, "bye")
		readClose(t, ctx, c, 4001, "server-bye")
		waitSessions(t, f.hub, 0)
	})
	t.Run("publish closes", func(t *testing.T) {
		b := newWSBackend(t, gripEcho(gripOpen(wsControl(`{"type":"subscribe","channel":"c"}`)), nil))
		f := newWSFixture(t, b, Route{})
		ctx := testutil.Context(t)
		c, _ := dialWS(t, ctx, f, "/", nil)
		b.next(t) // OPEN
		testutil.WaitSubscribers(t, f.hub, "c", 1)
		f.hub.Deliver([]grip.Item{{Channel: "c", WSMessage: &grip.WSMessageFormat{Action: grip.ActionClose, Code: 4003, Reason: "pub-bye"}}})
		readClose(t, ctx, c, 4003, "pub-bye")
		if r := b.next(t); string(r.Body) != "CLOSE\r\n" {
			t.Fatalf("backend got %q, want a bare CLOSE", r.Body)
		}
		waitSessions(t, f.hub, 0)
	})
}

// TestWebSocketDrain: when gripd drains, the client gets close 1001
// (going away, so it reconnects elsewhere) and the backend a DISCONNECT.
func TestWebSocketDrain(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(), nil))
	f := newWSFixture(t, b, Route{})
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/", nil)
	cid := b.next(t).Header.Get("Connection-Id")
	go f.hub.Drain(ctx, 0)
	readClose(t, ctx, c, websocket.StatusGoingAway, "")
	r := b.next(t)
	if string(r.Body) != "DISCONNECT\r\n" || r.Header.Get("Connection-Id") != cid {
		t.Fatalf("backend got %q (cid %q), want DISCONNECT from %q", r.Body, r.Header.Get("Connection-Id"), cid)
	}
	waitSessions(t, f.hub, 0)
}

func TestWebSocketClientDisconnect(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(), nil))
	f := newWSFixture(t, b, Route{})
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/", nil)
	cid := b.next(t).Header.Get("Connection-Id")
	c.CloseNow() // no close frame: the TCP connection just goes
	r := b.next(t)
	if string(r.Body) != "DISCONNECT\r\n" || r.Header.Get("Connection-Id") != cid {
		t.Fatalf("backend got %q (cid %q), want DISCONNECT from %q", r.Body, r.Header.Get("Connection-Id"), cid)
	}
	waitSessions(t, f.hub, 0)
}

func TestWebSocketRefresh(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(wsControl(`{"type":"subscribe","channel":"c"}`)), nil))
	f := newWSFixture(t, b, Route{})
	ctx := testutil.Context(t)
	dialWS(t, ctx, f, "/", nil)
	cid := b.next(t).Header.Get("Connection-Id")
	testutil.WaitSubscribers(t, f.hub, "c", 1)
	f.hub.Deliver([]grip.Item{{Channel: "c", WSMessage: &grip.WSMessageFormat{Action: grip.ActionRefresh}}})
	r := b.next(t)
	if len(r.Body) != 0 || r.Header.Get("Connection-Id") != cid || r.Method != http.MethodPost {
		t.Fatalf("refresh: backend got %s %q (cid %q)", r.Method, r.Body, r.Header.Get("Connection-Id"))
	}
}

// Keep-Alive-Interval is raised to the 20 s floor, after which an idle
// session makes an empty request.
func TestWebSocketKeepAliveInterval(t *testing.T) {
	slowTests(t)
	open := gripOpen()
	open.Header.Set("Keep-Alive-Interval", "1")
	b := newWSBackend(t, gripEcho(open, nil))
	f := newWSFixture(t, b, Route{})
	dialWS(t, testutil.Context(t), f, "/", nil)
	b.next(t) // OPEN
	start := time.Now()
	select {
	case r := <-b.reqs:
		if d := time.Since(start); len(r.Body) != 0 || d < wsMinKeepAlive-time.Second {
			t.Fatalf("after %v: %q, want an empty request after about 20 s", d, r.Body)
		}
	case <-time.After(wsMinKeepAlive + 5*time.Second):
		t.Fatal("no keep-alive request")
	}
}

func TestWebSocketBackendFailsAfterHandshake(t *testing.T) {
	cases := map[string]wsReply{
		"connection dropped": {Hijack: true},
		"status 500":         {Status: http.StatusInternalServerError, Header: http.Header{"Content-Type": {"text/plain"}}, Raw: []byte("oops")},
		"wrong content type": {Header: http.Header{"Content-Type": {"text/plain"}}, Raw: []byte("TEXT 2\r\nhi\r\n")},
	}
	for name, rep := range cases {
		t.Run(name, func(t *testing.T) {
			b := newWSBackend(t, gripEcho(gripOpen(), map[string]wsReply{"fail": rep}))
			f := newWSFixture(t, b, Route{})
			ctx := testutil.Context(t)
			c, _ := dialWS(t, ctx, f, "/", nil)
			write(t, ctx, c, websocket.MessageText, "fail")
			readClose(t, ctx, c, websocket.StatusInternalError, "backend error")
			waitSessions(t, f.hub, 0)
		})
	}
}

// A backend that refuses connections after the handshake is retried (1 s,
// then doubling); one that is back by the first retry gets the message.
func TestWebSocketBackendRestartsWithinRetry(t *testing.T) {
	// Connection: close keeps the proxy from pooling connections to the
	// backend, so the next request after stop must dial.
	open := gripOpen()
	open.Header.Set("Connection", "close")
	b := newWSBackend(t, gripEcho(open, map[string]wsReply{
		"again": {Header: http.Header{"Connection": {"close"}}, Events: []grip.WSEvent{wsText("m:again")}},
	}))
	f := newWSFixture(t, b, Route{})
	srv := f.proxy.Config.Handler.(*Server)
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/", nil)
	cid := b.next(t).Header.Get("Connection-Id")

	b.stop()
	write(t, ctx, c, websocket.MessageText, "again")
	// The failed dial marks the backend down: the first attempt is over.
	host := mustURL(t, b.URL).Host
	deadline := time.Now().Add(5 * time.Second)
	for srv.fo.state(host).downUntil.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the proxy never tried the stopped backend")
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.restart(t)
	readMsg(t, ctx, c, websocket.MessageText, "again")
	if r := b.next(t); !r.has(grip.WSText, "again") || r.Header.Get("Connection-Id") != cid {
		t.Fatalf("backend got %q (cid %q)", r.Body, r.Header.Get("Connection-Id"))
	}
}

// A backend that stays down is retried five times (1+2+4+8+16 s), then the
// client is closed with 1011. The delays are fixed in wsbackend.go, so
// this test takes over 31 s.
func TestWebSocketBackendDownForGood(t *testing.T) {
	slowTests(t)
	b := newWSBackend(t, gripEcho(gripOpen(), nil))
	f := newWSFixture(t, b, Route{})
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	c, _ := dialWS(t, ctx, f, "/", nil)
	b.next(t)
	b.stop()
	write(t, ctx, c, websocket.MessageText, "lost")
	start := time.Now()
	readClose(t, ctx, c, websocket.StatusInternalError, "backend error")
	if d := time.Since(start); d < 31*time.Second {
		t.Errorf("gave up after %v, before the five retries", d)
	}
	waitSessions(t, f.hub, 0)
}

// Many clients through one proxy: one publish reaches them all, and once
// they are gone nothing of them is left.
func TestWebSocketManyClients(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 300
	}
	b := newWSBackend(t, gripEcho(gripOpen(wsControl(`{"type":"subscribe","channel":"many"}`)), nil))
	f := newWSFixture(t, b, Route{})
	srv := f.proxy.Config.Handler.(*Server)
	// Not testutil.Context's 10 s: a thousand handshakes under -race on a busy
	// machine can take longer than that (the waits below bound each step).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := runtime.NumGoroutine()

	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	errs := make(chan error, n)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, _, err := websocket.Dial(ctx, wsURL(f, "/many"), nil)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatalf("dial: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.hub.SubscriberCount("many") != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d clients subscribed", f.hub.SubscriberCount("many"), n)
		}
		time.Sleep(5 * time.Millisecond)
	}

	f.hub.Deliver([]grip.Item{{Channel: "many", WSMessage: &grip.WSMessageFormat{Action: grip.ActionSend, Type: "text", Content: []byte("to all")}}})
	for _, c := range conns {
		readMsg(t, ctx, c, websocket.MessageText, "to all")
	}

	for _, c := range conns {
		c.CloseNow()
	}
	waitSessions(t, f.hub, 0)
	if got := f.hub.SubscriberCount("many"); got != 0 {
		t.Fatalf("%d subscribers left on many", got)
	}
	deadline = time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+5 {
		// The DISCONNECT requests left pooled connections to the backend
		// (the transport's, not the sessions'); a connection goes back to
		// the pool a moment after its request is done, so close them each
		// time round.
		srv.CloseIdleConnections()
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before the clients connected", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A WebSocket upgrade on a route without over_http goes to a WebSocket
// backend: through the reverse proxy untouched on a no_grip route, and
// relayed message by message otherwise.
func TestWebSocketPassthroughToWebSocketBackend(t *testing.T) {
	for name, route := range map[string]Route{"no_grip": {NoGrip: true}, "grip": {}} {
		t.Run(name, func(t *testing.T) {
			gotUpgrade := make(chan string, 1)
			b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
				gotUpgrade <- r.Header.Get("Upgrade")
				c, err := websocket.Accept(w, r, nil)
				if err != nil {
					return
				}
				defer c.CloseNow()
				for {
					typ, msg, err := c.Read(context.Background())
					if err != nil {
						return
					}
					if err := c.Write(context.Background(), typ, msg); err != nil {
						return
					}
				}
			})
			f := newFixture(t, []string{b.URL}, fixtureOpts{route: route})
			ctx := testutil.Context(t)
			c, _ := dialWS(t, ctx, f, "/echo", nil)
			if up := <-gotUpgrade; !strings.EqualFold(up, "websocket") {
				t.Fatalf("backend got Upgrade %q", up)
			}
			write(t, ctx, c, websocket.MessageText, "hello")
			readMsg(t, ctx, c, websocket.MessageText, "hello")
			write(t, ctx, c, websocket.MessageBinary, "\x00bin")
			readMsg(t, ctx, c, websocket.MessageBinary, "\x00bin")
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Fatalf("close: %v", err)
			}
			waitSessions(t, f.hub, 0)
		})
	}
}
