package handoff

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gripd/gripd/grip"
)

// A parked stream is an HTTP/1.1 stream hold taken off the HTTP server
// (hijacked) once its headers and initial body are out. While it is idle
// it costs a connection, a small struct and a keep-alive timer if it has
// one: the hub's writers (writers.go) write to it and the hub's watch
// (watch.go) notices its client leaving, neither with a goroutine of its
// own unless its client stops reading. That is what lets one instance
// hold many more streams than a goroutine-per-hold design in the same
// memory.

// ParkConfig tunes a parked stream.
type ParkConfig struct {
	// KeepAlive, when set, is written whenever the stream has been idle
	// (or, in interval mode, every) KeepAlive.Timeout. Default none.
	KeepAlive *grip.KeepAlive
	// WriteTimeout is how long a client may keep its socket full (not
	// reading what was sent) before it is dropped as stalled. Default 30s.
	WriteTimeout time.Duration
	// OnEnd, when set, is called once when the stream ends, with how it
	// ended, the body bytes written after parking, and the error if any.
	OnEnd func(end StreamEnd, bytes int64, err error)
}

type parkedStream struct {
	hub   *Hub
	sub   *Subscriber
	conn  net.Conn
	raw   syscall.RawConn // conn's socket, for writes that never wait; nil if it has none
	shard *writerShard
	cfg   ParkConfig

	// watched says the hub's watch (watch.go) notices the client leaving,
	// on socket watchFd; else a goroutine of the stream's own does.
	watched bool
	watchFd int32

	// busy is set while the stream is on its writer's ready list, being
	// written, or being written by a goroutine of its own (writeBacklog):
	// whoever set it owns the writing until it clears it.
	busy  atomic.Bool
	ended atomic.Bool
	kaDue atomic.Bool // a keep-alive is due (set by the timer)
	bytes atomic.Int64

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
	p := &parkedStream{hub: h, sub: sub, conn: conn, cfg: cfg, shard: h.writers.assign()}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			p.raw = raw
		}
	}
	sub.SetNotify(p.wake)
	if ka := cfg.KeepAlive; ka != nil {
		p.timerMu.Lock()
		p.kaTimer = time.AfterFunc(ka.Timeout, p.keepAliveDue)
		p.timerMu.Unlock()
	}
	if p.raw == nil || !h.watch.add(p) {
		go p.watchClient()
	}
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

// wake puts the stream on its writer's ready list unless it is there
// already or being written.
func (p *parkedStream) wake() {
	if !p.ended.Load() && p.busy.CompareAndSwap(false, true) {
		p.shard.push(p)
	}
}

// pending reports whether the stream has something for a writer.
func (p *parkedStream) pending() bool {
	return len(p.sub.queue) > 0 || p.kaDue.Load() || p.sub.Err() != nil
}

// service is what a writer does with a ready stream: send everything
// pending in one write that does not wait. What a full socket does not
// take goes to writeBacklog, which may wait for it.
func (p *parkedStream) service(sh *writerShard) {
	w := &sh.wire
	w.reset()
	closing, ok := p.collect(w)
	if !ok {
		return // ended; busy stays set, so nothing wakes it again
	}
	if w.size > 0 {
		sent, err := sh.send(p.raw)
		p.bytes.Add(int64(sent))
		if err != nil {
			p.end(EndWrite, err)
			return
		}
		if sent < w.size {
			go p.writeBacklog(w.bytes(sent), closing)
			return
		}
	}
	p.finish(closing)
}

// writeBacklog writes what the client's full socket did not take, waiting
// for it up to WriteTimeout, then hands the stream back to its writer.
func (p *parkedStream) writeBacklog(rest []byte, closing bool) {
	_ = p.conn.SetWriteDeadline(time.Now().Add(p.cfg.WriteTimeout))
	n, err := p.conn.Write(rest)
	p.bytes.Add(int64(n))
	if err != nil {
		p.end(EndWrite, err)
		return
	}
	_ = p.conn.SetWriteDeadline(time.Time{})
	p.finish(closing)
}

// finish ends a stream whose last chunk was written, or gives it back to
// the writers, checking for what came while it was being written.
func (p *parkedStream) finish(closing bool) {
	if closing {
		if err := p.sub.Err(); err != nil && !errors.Is(err, ErrSlow) {
			p.end(EndShutdown, nil)
		} else {
			p.end(EndClosed, nil)
		}
		return
	}
	p.busy.Store(false)
	if p.pending() {
		p.wake()
	}
}

// collect adds to w the chunks of every queued item and of a due
// keep-alive. closing says the stream ends after w (a publish closed it,
// or the hub did, and w ends with the last chunk); ok is false when the
// stream has ended and nothing is to be written.
func (p *parkedStream) collect(w *wire) (closing, ok bool) {
	if p.ended.Load() {
		return false, false
	}
	wrote := false
	// Only the stream's writer takes from the queue, so what is there now
	// can be taken without waiting; what comes meanwhile wakes the stream
	// again.
	for n := len(p.sub.queue); n > 0 && !closing; n-- {
		it := <-p.sub.queue
		// A parked stream has no next link: it is not recoverable, so Take
		// never says Recover.
		v, content := p.sub.Take(it)
		switch {
		case v != Send:
		case it.HTTPStream.Action == grip.ActionClose:
			closing = true
		case len(content) > 0:
			w.chunk(content)
			wrote = true
		}
	}
	if !closing {
		if err := p.sub.Err(); err != nil {
			if errors.Is(err, ErrSlow) {
				p.end(EndSlow, err)
				return false, false
			}
			closing = true // hub closed: end the stream cleanly
		}
	}
	ka := p.cfg.KeepAlive
	kaFired := ka != nil && p.kaDue.Swap(false)
	// Idle mode: content counts as activity, so no keep-alive beside it.
	if kaFired && len(ka.Data) > 0 && (ka.Mode == grip.KeepAliveInterval || !wrote) {
		w.chunk(ka.Data)
	}
	if closing {
		w.add(lastChunk)
		return true, true
	}
	// The idle timer restarts on every send; the interval timer only when
	// it fired.
	if kaFired || (ka != nil && ka.Mode == grip.KeepAliveIdle && wrote) {
		p.resetKeepAlive()
	}
	return false, true
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
	p.hub.watch.remove(p)
	p.conn.Close()
	if p.cfg.OnEnd != nil {
		p.cfg.OnEnd(how, p.bytes.Load(), err)
	}
}
