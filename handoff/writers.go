package handoff

import (
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Parked streams are written by a small set of writers, one per CPU,
// instead of a goroutine per stream per wake. A stream with something to
// write is put on its writer's ready list once, however many items reach
// it before the writer gets to it; the writer then sends all of them in
// one write. On these machines a small loopback write costs ~15 µs of CPU
// whatever its size, so under load that coalescing is most of the cost of
// fan-out, and it comes without a timer: the busier the writers, the more
// items each write carries, and the time to get round every ready stream
// (the delivery lag) stays about the time it takes to write to each once.
//
// A writer never blocks on a client: it writes without waiting, and hands
// what a full socket did not take to a goroutine of that stream's own
// (parked.go), so a slow client delays nobody else.

// writerShard is one writer: a ready list and, while the list is not
// empty, one goroutine working through it.
type writerShard struct {
	mu      sync.Mutex
	ready   []*parkedStream
	spare   []*parkedStream // the list's other half, reused between batches
	running bool            // a goroutine is working through the list
	since   int64           // when the oldest stream on ready was put there (unix ns), 0 if none

	// batchSince is when the oldest stream of the batch being written was
	// put on the list (unix ns), 0 while the writer is idle: the delivery
	// lag.
	batchSince atomic.Int64

	// wire is what one stream is sent, rebuilt for every stream; only
	// the running goroutine touches it.
	wire wire
	// The state of send, kept here so that a write allocates nothing.
	iov     []unix.Iovec
	sent    int
	werr    error
	writeFn func(fd uintptr) bool // writeFD, bound once
	runFn   func()                // run, bound once: `go sh.run()` would allocate a closure each time
}

// streamWriters are the hub's writers.
type streamWriters struct {
	shards []writerShard
	next   atomic.Uint32 // round-robin assignment of new streams
}

// init makes one writer per CPU.
func (w *streamWriters) init() {
	w.shards = make([]writerShard, runtime.GOMAXPROCS(0))
	for i := range w.shards {
		w.shards[i].writeFn = w.shards[i].writeFD
		w.shards[i].runFn = w.shards[i].run
	}
}

// assign picks the writer of a new parked stream.
func (w *streamWriters) assign() *writerShard {
	return &w.shards[int(w.next.Add(1))%len(w.shards)]
}

// lag is how long the oldest stream waiting to be written has waited.
func (w *streamWriters) lag(now time.Time) time.Duration {
	oldest := int64(0)
	for i := range w.shards {
		sh := &w.shards[i]
		sh.mu.Lock()
		s := sh.since
		sh.mu.Unlock()
		if b := sh.batchSince.Load(); b != 0 && (s == 0 || b < s) {
			s = b
		}
		if s != 0 && (oldest == 0 || s < oldest) {
			oldest = s
		}
	}
	if oldest == 0 {
		return 0
	}
	return max(0, time.Duration(now.UnixNano()-oldest))
}

// push puts p on the ready list, starting the writer if it is idle. The
// caller has set p.busy, so p is on at most one list.
func (sh *writerShard) push(p *parkedStream) {
	sh.mu.Lock()
	if len(sh.ready) == 0 {
		sh.since = time.Now().UnixNano()
	}
	sh.ready = append(sh.ready, p)
	start := !sh.running
	sh.running = true
	sh.mu.Unlock()
	if start {
		go sh.runFn()
	}
}

// run writes to the ready streams, batch after batch, until the list is
// empty; a stream made ready meanwhile goes into the next batch.
func (sh *writerShard) run() {
	for {
		sh.mu.Lock()
		batch := sh.ready
		if len(batch) == 0 {
			sh.running = false
			sh.batchSince.Store(0)
			sh.mu.Unlock()
			return
		}
		sh.batchSince.Store(sh.since)
		sh.since = 0
		sh.ready, sh.spare = sh.spare[:0], nil
		sh.mu.Unlock()

		for i, p := range batch {
			batch[i] = nil
			p.service(sh)
		}
		sh.wire.trim()
		sh.mu.Lock()
		sh.spare = batch[:0]
		sh.mu.Unlock()
	}
}

// send writes sh.wire to raw without waiting: it returns how much the
// socket took, which is less than sh.wire.size when the socket is full. A
// stream without a socket of its own (raw nil) sends nothing here.
func (sh *writerShard) send(raw syscall.RawConn) (int, error) {
	if raw == nil {
		return 0, nil
	}
	sh.sent, sh.werr = 0, nil
	if err := raw.Write(sh.writeFn); err != nil {
		return sh.sent, err // the connection was closed
	}
	return sh.sent, sh.werr
}

// writeFD is the function raw.Write runs with the socket: it writes
// sh.wire until the socket is full, and always reports done, so that
// raw.Write never waits for the socket to drain.
func (sh *writerShard) writeFD(fd uintptr) bool {
	for sh.sent < sh.wire.size {
		sh.iov = sh.wire.iovecs(sh.iov[:0], sh.sent)
		n, _, errno := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&sh.iov[0])), uintptr(len(sh.iov)))
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			return true
		case errno != 0:
			sh.werr = errno
			return true
		}
		sh.sent += int(n)
	}
	return true
}
