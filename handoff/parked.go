package handoff

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gripd/gripd/grip"
)

// A parked stream is an HTTP/1.1 stream hold taken off the HTTP server
// (hijacked) once its headers and initial body are out. While it is idle
// it costs a connection, a small struct, a timer and one goroutine that
// notices the client leaving; a writer goroutine exists only while there
// is something to write. That is what lets one instance hold many more
// streams than a goroutine-per-hold design in the same memory.

// ParkConfig tunes a parked stream.
type ParkConfig struct {
	// KeepAlive, when set, is written whenever the stream has been idle
	// (or, in interval mode, every) KeepAlive.Timeout. Default none.
	KeepAlive *grip.KeepAlive
	// WriteTimeout is how long one write may take before the client is
	// dropped as stalled. Default 30s.
	WriteTimeout time.Duration
	// OnEnd, when set, is called once when the stream ends, with how it
	// ended, the body bytes written after parking, and the error if any.
	OnEnd func(end StreamEnd, bytes int64, err error)
}

type parkedStream struct {
	hub  *Hub
	sub  *Subscriber
	conn net.Conn
	cfg  ParkConfig

	running atomic.Bool // a writer goroutine is on its way or running
	ended   atomic.Bool
	kaDue   atomic.Bool // a keep-alive is due (set by the timer)
	bytes   atomic.Int64

	timerMu sync.Mutex
	kaTimer *time.Timer
}

// Park takes over conn, a hijacked HTTP/1.1 connection whose response
// headers and initial body (chunked) have been sent, and keeps writing the
// items of sub to it as chunks until a publish closes the stream, the
// client goes away, the client cannot keep up, or the hub closes. Park
// returns at once; the hub owns conn and sub from then on (no Unsubscribe
// by the caller).
func (h *Hub) Park(conn net.Conn, sub *Subscriber, cfg ParkConfig) {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	p := &parkedStream{hub: h, sub: sub, conn: conn, cfg: cfg}
	sub.SetNotify(p.wake)
	if ka := cfg.KeepAlive; ka != nil {
		p.timerMu.Lock()
		p.kaTimer = time.AfterFunc(ka.Timeout, p.keepAliveDue)
		p.timerMu.Unlock()
	}
	go p.watchClient()
	p.wake() // items queued before parking, or an end that already happened
}

// watchClient blocks in Read until the client closes the connection (or
// the stream ends and closes it). An HTTP/1.1 client sends nothing while
// its response is still coming, so anything read is discarded.
func (p *parkedStream) watchClient() {
	var buf [64]byte
	for {
		if _, err := p.conn.Read(buf[:]); err != nil {
			p.end(EndClient, nil)
			return
		}
	}
}

func (p *parkedStream) keepAliveDue() {
	p.kaDue.Store(true)
	p.wake()
}

// wake starts a writer goroutine unless one is already running.
func (p *parkedStream) wake() {
	if !p.ended.Load() && p.running.CompareAndSwap(false, true) {
		go p.writeLoop()
	}
}

// writeLoop writes what is pending, then exits; the re-check after
// clearing running closes the race with a wake that came meanwhile.
func (p *parkedStream) writeLoop() {
	for {
		if !p.writePending() {
			return
		}
		p.running.Store(false)
		if len(p.sub.queue) == 0 && !p.kaDue.Load() && p.sub.Err() == nil {
			return
		}
		if !p.running.CompareAndSwap(false, true) {
			return
		}
	}
}

// writePending writes every queued item (and a due keep-alive) in one
// vectored write. It reports false once the stream has ended.
func (p *parkedStream) writePending() bool {
	if p.ended.Load() {
		return false
	}
	var bufs net.Buffers
	closing := false
drain:
	for !closing {
		select {
		case it := <-p.sub.queue:
			// A parked stream has no next link: it is not recoverable, so
			// Take never says Recover.
			v, content := p.sub.Take(it)
			if v != Send {
				continue
			}
			if it.HTTPStream.Action == grip.ActionClose {
				closing = true
				break
			}
			if len(content) > 0 {
				bufs = append(bufs, chunkHeader(len(content)), content, crlf)
			}
		default:
			break drain
		}
	}
	if !closing {
		if err := p.sub.Err(); err != nil {
			if errors.Is(err, ErrSlow) {
				p.end(EndSlow, err)
				return false
			}
			closing = true // hub closed: end the stream cleanly
		}
	}
	ka := p.cfg.KeepAlive
	kaFired := ka != nil && p.kaDue.Swap(false)
	wroteContent := len(bufs) > 0
	// Idle mode: content counts as activity, so no keep-alive beside it.
	if kaFired && len(ka.Data) > 0 && (ka.Mode == grip.KeepAliveInterval || !wroteContent) {
		bufs = append(bufs, chunkHeader(len(ka.Data)), ka.Data, crlf)
	}
	if closing {
		bufs = append(bufs, lastChunk)
	}
	if len(bufs) > 0 {
		var n int64
		for _, b := range bufs {
			n += int64(len(b))
		}
		_ = p.conn.SetWriteDeadline(time.Now().Add(p.cfg.WriteTimeout))
		if _, err := bufs.WriteTo(p.conn); err != nil {
			p.end(EndWrite, err)
			return false
		}
		p.bytes.Add(n)
	}
	if closing {
		if err := p.sub.Err(); err != nil && !errors.Is(err, ErrSlow) {
			p.end(EndShutdown, nil)
		} else {
			p.end(EndClosed, nil)
		}
		return false
	}
	// The idle timer restarts on every send; the interval timer only when
	// it fired.
	if kaFired || (ka != nil && ka.Mode == grip.KeepAliveIdle && wroteContent) {
		p.resetKeepAlive()
	}
	return true
}

func (p *parkedStream) resetKeepAlive() {
	p.timerMu.Lock()
	if p.kaTimer != nil && !p.ended.Load() {
		p.kaTimer.Reset(p.cfg.KeepAlive.Timeout)
	}
	p.timerMu.Unlock()
}

// end finishes the stream once: unsubscribes, stops the timer, closes the
// connection and reports.
func (p *parkedStream) end(how StreamEnd, err error) {
	if !p.ended.CompareAndSwap(false, true) {
		return
	}
	p.timerMu.Lock()
	if p.kaTimer != nil {
		p.kaTimer.Stop()
	}
	p.timerMu.Unlock()
	p.hub.Unsubscribe(p.sub)
	p.conn.Close()
	if p.cfg.OnEnd != nil {
		p.cfg.OnEnd(how, p.bytes.Load(), err)
	}
}

var (
	crlf      = []byte("\r\n")
	lastChunk = []byte("0\r\n\r\n")
)

func chunkHeader(n int) []byte {
	b := strconv.AppendInt(make([]byte, 0, 10), int64(n), 16)
	return append(b, '\r', '\n')
}
