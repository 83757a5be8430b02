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
//
// The client talks to gripd over an in-memory pipe: a write returns only
// once gripd has read it, so what gripd read is counted in bytes, with no
// TCP buffer between, and the test waits on those counts and on the
// backend's signals, not on how fast the machine is.
func TestWebSocketBackpressureOnSlowBackend(t *testing.T) {
	const (
		size  = 256 << 10
		total = 24 // 6 MB: well past what gripd may hold
		// While the backend holds its first batch, gripd reads at most that
		// batch (one message), the pending events up to wsMaxPending plus
		// the message that crossed it, and a read buffer.
		mustRead = size + wsMaxPending
		mayRead  = 2*size + wsMaxPending + size + 64<<10
	)
	gate, blocked := make(chan struct{}), make(chan struct{})
	arrived := make(chan struct{}) // closed when the backend has every message
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
		defer mu.Unlock()
		for i, e := range r.Events {
			if e.Type == grip.WSBinary {
				got = append(got, binary.BigEndian.Uint32(e.Content))
				if len(got) == total {
					close(arrived)
				}
			}
			r.Events[i].Content = nil // keep the request log small
		}
		r.Body = nil
		return wsReply{}
	})
	release := func() { released.Do(func() { close(gate) }) }
	t.Cleanup(release) // before the backend closes
	f := newWSFixture(t, b, Route{ID: "ws"})

	ln := newPipeListener()
	hs := &http.Server{Handler: f.srv}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	// No deadline on the context: the waits below are on signals, each
	// bounded only so that a broken gripd fails instead of hanging.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	client := &http.Client{Transport: &http.Transport{DialContext: ln.dial}}
	c, _, err := websocket.Dial(ctx, "ws://gripd.test/", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	ln.resetRead() // count from here: the messages only

	done := make(chan error, 1)
	go func() {
		for i := range total {
			msg := make([]byte, size)
			binary.BigEndian.PutUint32(msg, uint32(i))
			if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()

	const stuck = time.Minute // only a broken gripd waits this long
	select {
	case <-blocked:
	case <-time.After(stuck):
		t.Fatal("backend got no message")
	}

	// (a) While the backend holds its first batch, gripd reads what it may
	// hold and then stops reading the client.
	for n := ln.read(); n < mustRead; n = ln.read() {
		select {
		case <-ln.reads:
		case err := <-done:
			t.Fatalf("client writes ended (%v) after gripd read %d bytes", err, ln.read())
		case <-time.After(stuck):
			t.Fatalf("gripd read %d bytes while the backend was stalled, want at least %d", n, mustRead)
		}
	}
	// gripd now stops; it must not read on. A gripd that buffers without
	// bound reads every message at once (the pipe is as fast as a copy);
	// a quiet spell ends the watch.
	for quiet := false; !quiet; {
		select {
		case <-ln.reads:
		case err := <-done:
			t.Fatalf("all %d messages (%d MB) written while the backend was stalled (%v): gripd buffered them", total, total*size>>20, err)
		case <-time.After(500 * time.Millisecond):
			quiet = true
		}
		if n := ln.read(); n > mayRead {
			t.Fatalf("gripd read %d bytes while the backend was stalled, want at most %d: it buffers without bound", n, mayRead)
		}
	}
	t.Logf("gripd stopped reading after %d bytes", ln.read())

	// (b) Released, the backend gets every message, in order.
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("client write: %v", err)
		}
	case <-time.After(stuck):
		t.Fatalf("client writes never finished after the backend caught up (%d bytes read)", ln.read())
	}
	select {
	case <-arrived:
	case <-time.After(stuck):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("backend got %d of %d messages", len(got), total)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, idx := range got {
		if idx != uint32(i) {
			t.Fatalf("message %d arrived as #%d: out of order", idx, i)
		}
	}
}

// pipeListener hands gripd the server ends of in-memory pipes and counts
// the bytes gripd reads from them.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	n      atomic.Int64
	reads  chan struct{} // ready after a read
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{}), reads: make(chan struct{}, 1)}
}

// dial is an http.Transport's DialContext: a new pipe whose server end
// Accept returns.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- &countedConn{Conn: server, l: l}:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr }

func (l *pipeListener) read() int64 { return l.n.Load() }
func (l *pipeListener) resetRead()  { l.n.Store(0) }

var pipeAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}

// countedConn is the server end of a pipe, with a client address like a
// TCP connection's.
type countedConn struct {
	net.Conn
	l *pipeListener
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.l.n.Add(int64(n))
		select {
		case c.l.reads <- struct{}{}:
		default:
		}
	}
	return n, err
}

func (c *countedConn) RemoteAddr() net.Addr { return pipeAddr }
func (c *countedConn) LocalAddr() net.Addr  { return pipeAddr }
