package proxy

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/grip"
)

// A client writing faster than a slow backend answers is pushed back
// (gripd stops reading it, so its writes block) instead of having its
// messages buffered without bound; once the backend catches up every
// message arrives, in order.
func TestWebSocketBackpressureOnSlowBackend(t *testing.T) {
	const size, total = 256 << 10, 200 // 50 MB: more than gripd's cap plus any TCP buffering
	gate, blocked := make(chan struct{}), make(chan struct{})
	var (
		mu       sync.Mutex
		got      []uint32
		once     sync.Once
		released sync.Once
	)
	b := newWSBackend(t, func(r *wsReq) wsReply {
		if r.has(grip.WSOpen, "") {
			return wsReply{Events: []grip.WSEvent{{Type: grip.WSOpen}}}
		}
		once.Do(func() { close(blocked); <-gate }) // the first batch waits for the test
		mu.Lock()
		for i, e := range r.Events {
			if e.Type == grip.WSBinary {
				got = append(got, binary.BigEndian.Uint32(e.Content))
			}
			r.Events[i].Content = nil // keep the request log small
		}
		r.Body = nil
		mu.Unlock()
		return wsReply{}
	})
	release := func() { released.Do(func() { close(gate) }) }
	t.Cleanup(release) // before the backend closes
	f := newWSFixture(t, b, Route{ID: "ws"})
	// Not testCtx's 10 s: 50 MB through gripd under -race on a busy
	// machine takes longer than that (the waits below bound each step).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A small send buffer on the client, so what TCP holds is mostly
	// gripd's receive buffer.
	var dialer net.Dialer
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetWriteBuffer(64 << 10)
		}
		return c, err
	}}}
	c, _ := dialWS(t, ctx, f, "/", &websocket.DialOptions{HTTPClient: client})
	c.SetReadLimit(-1)

	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := range total {
			msg := make([]byte, size)
			binary.BigEndian.PutUint32(msg, uint32(i))
			if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
				done <- err
				return
			}
			written.Add(1)
		}
		done <- nil
	}()

	select {
	case <-blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("backend got no message")
	}
	// (a) The client's writes stall while the backend holds its first batch.
	deadline := time.Now().Add(8 * time.Second)
	for last := int64(-1); ; {
		time.Sleep(300 * time.Millisecond)
		n := written.Load()
		if n == total {
			t.Fatalf("all %d messages (%d MB) written while the backend was stalled: gripd buffered them", total, total*size>>20)
		}
		if n == last {
			t.Logf("client stalled after %d messages (%d MB)", n, n*size>>20)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client writes never stalled (%d written)", n)
		}
		last = n
	}

	// (b) Released, the backend gets every message, in order.
	release()
	if err := <-done; err != nil {
		t.Fatalf("client write: %v", err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend got %d of %d messages", n, total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, idx := range got {
		if idx != uint32(i) {
			t.Fatalf("message %d arrived as #%d: out of order", idx, i)
		}
	}
}
