package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// BenchmarkProxyFanout measures fan-out through the real proxy: n HTTP/1.1
// clients held as streams by a backend answering Grip-Hold: stream (and
// so parked by the proxy), items published through the hub, until every
// client has read every byte of them. An op is one Deliver of batch
// items; ns/delivery (wall clock), cpu-ns/delivery (this process's CPU),
// allocs/delivery, B/delivery and writes/delivery (write system calls)
// are per item reaching one client. The clients are raw loopback
// connections in this process (their reads allocate nothing), so the
// time and CPU include their side of the sockets
// (BenchmarkParkedFanout in handoff keeps them apart); the fd limit of
// 20,000 per process bounds n (two fds a client).
func BenchmarkProxyFanout(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			fx := startFanoutClients(b, n)
			for _, batch := range []int{1, 16} {
				b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
					benchProxyFanout(b, fx, batch)
				})
			}
			fx.stop(b)
		})
	}
}

// fanoutEvent is a typical SSE event, ~100 bytes.
var fanoutEvent = "event: tick\ndata: {\"seq\":12345,\"channel\":\"fan\",\"payload\":\"" + strings.Repeat("x", 40) + "\"}\n\n"

func benchProxyFanout(b *testing.B, fx *fanoutClients, batch int) {
	items := make([]grip.Item, batch)
	for i := range items {
		items[i] = grip.Item{Channel: "fan", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte(fanoutEvent)}}
	}
	chunk := int64(len(strconv.FormatInt(int64(len(fanoutEvent)), 16)) + 2 + len(fanoutEvent) + 2)
	perOp := int64(batch) * int64(fx.n) * chunk
	publish := func() {
		fx.want += perOp
		fx.target.Store(fx.want)
		fx.hub.Deliver(items)
		fx.await(b)
	}
	publish() // warm up: every stream is parked and the writers' buffers grown

	b.SetBytes(perOp)
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	writes0, countWrites := writeCalls()
	runtime.ReadMemStats(&ms0)
	cpu0 := processCPU(b)
	ops := 0
	for b.Loop() {
		publish()
		ops++
	}
	cpu := processCPU(b) - cpu0
	runtime.ReadMemStats(&ms1)
	writes1, _ := writeCalls()

	deliveries := float64(ops) * float64(batch) * float64(fx.n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/deliveries, "allocs/delivery")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/deliveries, "B/delivery")
	if countWrites {
		b.ReportMetric(float64(writes1-writes0)/deliveries, "writes/delivery")
	}
	if st := fx.hub.Stats(); st.Slow != 0 || st.Streams != int64(fx.n) {
		b.Fatalf("held streams were ended during the benchmark: %+v", st)
	}
}

// processCPU is the user and system CPU this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeCalls is how many write system calls (write, writev) this process
// has made, from /proc/self/io; ok is false where that cannot be read. A
// few are the runtime's (waking its poller), not the streams'.
func writeCalls() (n int64, ok bool) {
	io, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(io)) {
		if v, found := strings.CutPrefix(line, "syscw: "); found {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// fanoutClients is a proxy in front of a stream-holding backend, and n
// raw clients held by it on channel "fan", each counting the body bytes
// it reads.
type fanoutClients struct {
	n       int
	hub     *handoff.Hub
	proxy   *httptest.Server
	backend *httptest.Server
	srv     *Server

	conns   []net.Conn
	readers sync.WaitGroup
	body    atomic.Int64  // body bytes read by all clients
	target  atomic.Int64  // what await waits for body to reach
	reached chan struct{} // a reader saw body reach target
	want    int64         // the target of the last publish
	timer   *time.Timer   // bounds await; reused, so that await allocates nothing
	bad     atomic.Int64  // clients answered other than 200
}

func startFanoutClients(b *testing.B, n int) *fanoutClients {
	b.Helper()
	fx := &fanoutClients{n: n, reached: make(chan struct{}, 1), timer: time.NewTimer(time.Hour)}
	fx.target.Store(1 << 62)
	fx.backend = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Grip-Hold", "stream")
		w.Header().Set("Grip-Channel", "fan")
		w.Header().Set("Content-Type", "text/event-stream")
	}))
	u, err := url.Parse(fx.backend.URL)
	if err != nil {
		b.Fatal(err)
	}
	table, err := NewTable([]Route{{Backends: []Backend{{URL: u}}}})
	if err != nil {
		b.Fatal(err)
	}
	fx.hub = handoff.NewHub(handoff.Config{})
	fx.srv, err = NewServer(Config{Table: table, Hub: fx.hub, SigKey: []byte(testKey), Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	fx.proxy = httptest.NewServer(fx.srv)

	// A few requests in flight at a time, so the backend is not asked
	// for thousands of connections at once.
	var (
		inFlight = make(chan struct{}, 32)
		answered sync.WaitGroup
	)
	answered.Add(n)
	addr := fx.proxy.Listener.Addr().String()
	for range n {
		inFlight <- struct{}{}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		fx.conns = append(fx.conns, c)
		if _, err := io.WriteString(c, "GET /events HTTP/1.1\r\nHost: example.com\r\n\r\n"); err != nil {
			b.Fatal(err)
		}
		fx.readers.Go(func() {
			fx.read(c, func() { <-inFlight; answered.Done() })
		})
	}
	answered.Wait()
	if bad := fx.bad.Load(); bad != 0 {
		b.Fatalf("%d clients were not answered 200", bad)
	}
	return fx
}

// read reads one client's stream until the server closes it: it checks
// the status, skips the response headers, and counts the body.
func (fx *fanoutClients) read(c net.Conn, answered func()) {
	var buf [2048]byte
	const headersEnd = "\r\n\r\n"
	matched, inBody, first := 0, false, true
	for {
		k, err := c.Read(buf[:])
		data := buf[:k]
		if !inBody && k > 0 {
			if first && !bytes.HasPrefix(data, []byte("HTTP/1.1 200 ")) {
				fx.bad.Add(1)
			}
			first = false
			for i, ch := range data {
				switch {
				case ch == headersEnd[matched]:
					matched++
				case ch == '\r':
					matched = 1
				default:
					matched = 0
				}
				if matched == len(headersEnd) {
					inBody, data = true, data[i+1:]
					answered()
					break
				}
			}
			if !inBody {
				data = nil
			}
		}
		if len(data) > 0 && fx.body.Add(int64(len(data))) >= fx.target.Load() {
			select {
			case fx.reached <- struct{}{}:
			default:
			}
		}
		if err != nil {
			if !inBody {
				fx.bad.Add(1)
				answered()
			}
			return
		}
	}
}

// await waits until the clients have read fx.want body bytes in all.
func (fx *fanoutClients) await(b *testing.B) {
	fx.timer.Reset(time.Minute)
	defer fx.timer.Stop()
	for fx.body.Load() < fx.want {
		select {
		case <-fx.reached:
		case <-fx.timer.C:
			b.Fatalf("the clients read %d body bytes, want %d", fx.body.Load(), fx.want)
		}
	}
}

// stop closes the hub, which ends every held stream, and everything else.
func (fx *fanoutClients) stop(b *testing.B) {
	fx.timer.Stop()
	fx.hub.Close()
	fx.readers.Wait() // each stream ends with its last chunk and is closed
	for _, c := range fx.conns {
		c.Close()
	}
	fx.proxy.Close()
	fx.srv.CloseIdleConnections()
	fx.backend.Close()
}
