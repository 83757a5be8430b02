package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// This file caps the client connections open at once. A connection
// counts from accept until it is closed, whoever closes it: net/http, a
// held stream that was hijacked and parked, or a WebSocket.

const (
	// connRetryAfter is the Retry-After of the 503 sent over the limit, in
	// seconds: long enough that a crowd of retrying clients does not come
	// straight back.
	connRetryAfter = 5
	// connRejectLinger bounds how long a refused connection is kept: to
	// read its request and deliver the 503.
	connRejectLinger = time.Second
	// connRejectDrain is the most of a refused client's request head, and
	// then of the rest, that is read (and dropped).
	connRejectDrain = 64 << 10
	// connMaxAnswering caps the refused connections being answered at once;
	// past it (a flood) they are closed without an answer, so refusing
	// costs no goroutines beyond this. A listener with a small limit
	// answers at most a quarter of its limit at once: each refused
	// connection holds a file descriptor while it is answered, and a
	// listener's limit is its share of them.
	connMaxAnswering = 128
	// connMinAnswering is how many refused connections even the smallest
	// listener answers at once: with one, a client that retries before the
	// last refusal's goroutine has seen it hang up would get a bare reset.
	connMinAnswering = 4
	// connRejectLogEvery is the most often the limit is logged.
	connRejectLogEvery = 10 * time.Second
)

const connBusyBody = "Too many connections; try again later.\n"

// connBusyResponse is the whole answer to a connection over the limit,
// whatever the request was.
func connBusyResponse() []byte {
	return []byte("HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Retry-After: " + strconv.Itoa(connRetryAfter) + "\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(connBusyBody)) + "\r\n" +
		"\r\n" + connBusyBody)
}

// ConnLimitListener is a net.Listener that lets at most max connections
// be open at once. A connection over the limit is answered
// "503 Service Unavailable" with Retry-After, then closed; it never waits
// for a slot. The refusals are logged at most every 10 s, with how many
// there were.
//
// The 503 is plain HTTP/1.1: wrap a listener of plain TCP, not of TLS.
type ConnLimitListener struct {
	net.Listener
	max       int64
	maxAnswer int // refused connections answered at once (connMaxAnswering, or a quarter of max)
	log       zerolog.Logger
	logEvery  time.Duration
	busy      []byte // connBusyResponse, built once

	open     atomic.Int64
	rejected atomic.Int64
	lastLog  atomic.Int64 // unix nanoseconds of the last log line
	logged   atomic.Int64 // rejected, as of the last log line

	mu        sync.Mutex
	answering map[net.Conn]struct{} // refused connections being answered
	closed    bool
	wg        sync.WaitGroup // one per answering goroutine; Close waits
}

// NewConnLimitListener wraps ln so that at most max connections are open
// at once (max < 1 means DefaultMaxConns).
func NewConnLimitListener(ln net.Listener, max int, log zerolog.Logger) *ConnLimitListener {
	if max < 1 {
		max = DefaultMaxConns
	}
	answering := min(connMaxAnswering, (max+3)/4)
	if answering < connMinAnswering {
		answering = connMinAnswering
	}
	return &ConnLimitListener{
		Listener:  ln,
		max:       int64(max),
		maxAnswer: answering,
		log:       log,
		logEvery:  connRejectLogEvery,
		busy:      connBusyResponse(),
		answering: map[net.Conn]struct{}{},
	}
}

// Accept returns the next connection within the limit, answering and
// closing the ones over it meanwhile.
func (l *ConnLimitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitedConn{Conn: conn, l: l}, nil
		}
		l.open.Add(-1)
		l.refuse(conn)
	}
}

// Close stops accepting, cuts short the 503s still being delivered, and
// waits for their goroutines.
func (l *ConnLimitListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	for conn := range l.answering {
		conn.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

// Open is the number of accepted connections not yet closed.
func (l *ConnLimitListener) Open() int64 { return l.open.Load() }

// Rejected is the number of connections refused since the start.
func (l *ConnLimitListener) Rejected() int64 { return l.rejected.Load() }

// refuse answers a connection over the limit in its own goroutine, unless
// too many are being answered already.
func (l *ConnLimitListener) refuse(conn net.Conn) {
	l.logRefusal(l.rejected.Add(1))
	l.mu.Lock()
	if l.closed || len(l.answering) >= l.maxAnswer {
		l.mu.Unlock()
		conn.Close()
		return
	}
	l.answering[conn] = struct{}{}
	l.wg.Add(1)
	l.mu.Unlock()
	go l.answerBusy(conn)
}

// answerBusy reads the request head, answers the 503 and closes, all
// within connRejectLinger.
func (l *ConnLimitListener) answerBusy(conn net.Conn) {
	defer l.wg.Done()
	defer func() {
		// The slot is free before the client can see the close, so a
		// client that reconnects at once is answered too.
		l.mu.Lock()
		delete(l.answering, conn)
		l.mu.Unlock()
		conn.Close()
	}()
	_ = conn.SetDeadline(time.Now().Add(connRejectLinger))
	// Answer only once the request is in: HTTP clients (Go's among them)
	// refuse a response that arrives before they have sent their request.
	if !readRequestHead(conn, connRejectDrain) {
		return // silent, gone, or too slow: nobody to answer
	}
	if _, err := conn.Write(l.busy); err != nil {
		return
	}
	// Half-close, then read what is left of the request until the client
	// hangs up: closing with it unread would make the kernel send a reset,
	// which can destroy the 503 before the client reads it.
	if cw, ok := conn.(closeWriter); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.CopyN(io.Discard, conn, connRejectDrain)
}

// readRequestHead reads r up to the blank line that ends a request's
// headers. It reports whether that came, or limit bytes did (a head that
// long is answered all the same).
func readRequestHead(r io.Reader, limit int) bool {
	var buf [4096]byte
	var tail []byte // the end of what was read before: a terminator may straddle reads
	for total := 0; total < limit; {
		n, err := r.Read(buf[:])
		total += n
		seen := append(tail, buf[:n]...)
		if bytes.Contains(seen, []byte("\r\n\r\n")) || bytes.Contains(seen, []byte("\n\n")) {
			return true
		}
		if err != nil {
			return false
		}
		tail = bytes.Clone(seen[max(0, len(seen)-3):])
	}
	return true
}

// logRefusal writes one line when the limit is first hit, then at most
// one per logEvery, so a flood of clients does not flood the log.
func (l *ConnLimitListener) logRefusal(total int64) {
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if last != 0 && now-last < int64(l.logEvery) {
		return
	}
	if !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn().Int64("max_client_conns", l.max).Int64("refused", total-l.logged.Swap(total)).
		Int64("refused_total", total).
		Msg("client connection limit reached: answering 503 (logged at most every " + l.logEvery.String() + ")")
}

// closeWriter is a connection that can half-close (TCP, Unix sockets).
type closeWriter interface{ CloseWrite() error }

// limitedConn gives its slot back when it is closed, once.
type limitedConn struct {
	net.Conn
	l      *ConnLimitListener
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.open.Add(-1)
	}
	return c.Conn.Close()
}

// CloseWrite passes a half-close through: net/http uses it to make sure
// a client reads an error answer (such as 431) before the connection goes.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return nil
}

// SyscallConn passes the socket through, so that the hub's writers can
// write to a parked stream without waiting (handoff/writers.go).
func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}
