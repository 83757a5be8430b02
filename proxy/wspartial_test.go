package proxy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawWS is a client WebSocket written frame by frame, so a test can start
// a message and never finish it.
type rawWS struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialRawWS(t *testing.T, f *fixture) *rawWS {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return &rawWS{t: t, conn: conn, br: br}
}

// startMessage sends the first frame of a binary message that claims
// size bytes, and the first sent of them.
func (c *rawWS) startMessage(size, sent int) {
	c.t.Helper()
	hdr := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // FIN, binary, masked (zero key), 64-bit length
	binary.BigEndian.PutUint64(hdr[2:10], uint64(size))
	if _, err := c.conn.Write(append(hdr, make([]byte, sent)...)); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

// expectClose reads frames until a close frame and checks its code.
func (c *rawWS) expectClose(code websocket.StatusCode) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(time.Minute)) // only a broken gripd waits this long
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			c.t.Fatalf("no close frame: %v", err)
		}
		n := int(h[1] & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			io.ReadFull(c.br, l[:])
			n = int(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			io.ReadFull(c.br, l[:])
			n = int(binary.BigEndian.Uint64(l[:]))
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.br, payload); err != nil {
			c.t.Fatalf("reading a frame: %v", err)
		}
		if h[0]&0x0f != 0x8 {
			continue
		}
		if len(payload) < 2 || websocket.StatusCode(binary.BigEndian.Uint16(payload)) != code {
			c.t.Fatalf("closed with %x, want %d", payload, code)
		}
		return
	}
}

// A client that starts a WebSocket message and never finishes it is
// closed with 1008 once limits.ws_message_timeout has passed, counted.
func TestUnfinishedWebSocketMessageTimesOut(t *testing.T) {
	b := newWSBackend(t, gripEcho(wsReply{}, nil))
	obs := newRecorder()
	f := newWSFixtureWith(t, b, fixtureOpts{route: Route{ID: "ws"}, observer: obs,
		limits: Limits{WSMessageTimeout: 200 * time.Millisecond}})
	c := dialRawWS(t, f)
	c.startMessage(100000, 1000)
	c.expectClose(websocket.StatusPolicyViolation)
	obs.expectSkipping(t, "ws limit ws message_timeout")
	c.conn.Close()
}

// Unfinished messages of all connections together may hold at most
// limits.ws_partial_budget: the connection whose message would pass it is
// closed with 1009, counted, and the others go on. (gripd holds a message
// in a buffer that doubles as it grows: the first holds 64 KiB after 40,
// and 128 KiB once whole.)
func TestUnfinishedWebSocketMessagesShareOneBudget(t *testing.T) {
	b := newWSBackend(t, gripEcho(wsReply{}, nil))
	obs := newRecorder()
	f := newWSFixtureWith(t, b, fixtureOpts{route: Route{ID: "ws"}, observer: obs,
		limits: Limits{WSPartialBudget: 192 << 10, WSMessageTimeout: time.Hour}})
	first := dialRawWS(t, f)
	first.startMessage(100000, 40<<10)
	deadline := time.Now().Add(time.Minute)
	for f.srv.partial.held.Load() < 40<<10 { // gripd holds what it has read
		if time.Now().After(deadline) {
			t.Fatalf("gripd holds %d bytes of the first message", f.srv.partial.held.Load())
		}
		time.Sleep(time.Millisecond)
	}
	second := dialRawWS(t, f)
	second.startMessage(300000, 150<<10) // more than the budget leaves
	second.expectClose(websocket.StatusMessageTooBig)
	obs.expectSkipping(t, "ws limit ws partial_budget")

	// The first goes on: it finishes its message and gets the echo.
	rest := make([]byte, 100000-40<<10)
	if _, err := first.conn.Write(rest); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 2)
	first.conn.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.ReadFull(first.br, hdr); err != nil || hdr[0] != 0x82 {
		t.Fatalf("first connection: frame %x, %v; want its echo", hdr, err)
	}
	second.conn.Close()
	first.conn.Close()
}
