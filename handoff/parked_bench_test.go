package handoff

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gripd/gripd/grip"
)

// The whole delivery path to parked streams, measured over real loopback
// TCP: Hub.Deliver, the writers, the kernel, until every client has read
// every byte. The clients live in a process of their own (the test binary
// run again as TestParkedClients): a parked stream and its client take an
// fd each, and with this box's limit of 20,000 fds per process 10,000
// streams and their clients do not fit in one. It also keeps the clients'
// CPU and allocations out of the figures, as a real load generator would.

// benchEvent is a typical SSE event, ~100 bytes.
var benchEvent = "event: tick\ndata: {\"seq\":12345,\"channel\":\"fan\",\"payload\":\"" + strings.Repeat("x", 40) + "\"}\n\n"

// chunkLen is how many bytes a parked stream writes for one item of
// content.
func chunkLen(content string) int64 {
	return int64(len(strconv.FormatInt(int64(len(content)), 16)) + 2 + len(content) + 2)
}

// BenchmarkParkedFanout publishes to n parked streams on one channel and
// waits until every client has read every byte. An op is one Deliver of
// batch items; the figures per delivery (one item reaching one client)
// are ns/delivery (wall clock), cpu-ns/delivery (this process's user and
// system CPU: the gripd side, not the clients), allocs/delivery and
// B/delivery (heap allocations of this process), and writes/delivery
// (write system calls: below 1 when a write carries several items). MB/s
// counts the bytes the clients read.
//
// batch=1 waits for every item before the next, so each delivery is a
// write of its own; batch=16 publishes 16 items at once, which the
// writers may send in fewer writes.
//
// 100,000 streams cannot be parked in one process here (see above); the
// stand-in at that size is BenchmarkDeliverFanout/subs=100000, the hub's
// part alone.
func BenchmarkParkedFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			h := NewHub(Config{})
			cl := startParkedClients(b, h, n)
			for _, batch := range []int{1, 16} {
				b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
					benchParked(b, h, cl, batch)
				})
			}
			cl.stop(b, h)
		})
	}
}

func benchParked(b *testing.B, h *Hub, cl *parkedClients, batch int) {
	items := make([]grip.Item, batch)
	for i := range items {
		items[i] = streamItem("fan", benchEvent)
	}
	perOp := int64(batch) * int64(cl.n) * chunkLen(benchEvent)
	publish := func() {
		h.Deliver(items)
		cl.await(b, perOp)
	}
	publish() // warm up: the writers' buffers grow to their size here

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

	deliveries := float64(ops) * float64(batch) * float64(cl.n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/deliveries, "allocs/delivery")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/deliveries, "B/delivery")
	if countWrites {
		// Less the one order per op to the client process.
		b.ReportMetric(float64(writes1-writes0-int64(ops))/deliveries, "writes/delivery")
	}
	if st := h.Stats(); st.Slow != 0 {
		b.Fatalf("%d subscribers were ended as slow; the numbers are meaningless", st.Slow)
	}
	if ended := cl.ended.Load(); ended != 0 {
		b.Fatalf("%d parked streams ended during the benchmark", ended)
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

// parkedClients is the client process of a benchmark and its n parked
// streams. The benchmark tells it, on one pipe, how many bytes its
// clients should have read in all by now; it answers on another once they
// have.
type parkedClients struct {
	n       int
	cmd     *exec.Cmd
	orders  *os.File // to the clients: the total to wait for
	answers *os.File // from the clients: "ok"
	want    int64    // the total of the last order
	buf     [32]byte

	ended    atomic.Int64  // parked streams that ended
	allEnded chan struct{} // closed when all n have
	bytes    atomic.Int64  // what the ended ones wrote
}

// clientsEnv tells the test binary that it is run as the client process:
// "address n".
const clientsEnv = "GRIPD_PARKED_CLIENTS"

// startParkedClients starts the client process, parks the n connections
// it makes on channel "fan" of h, and waits until they are all parked.
func startParkedClients(b *testing.B, h *Hub, n int) *parkedClients {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ordersR, ordersW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	answersR, answersW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	cl := &parkedClients{n: n, orders: ordersW, answers: answersR, allEnded: make(chan struct{})}
	cl.cmd = exec.Command(exe, "-test.run=^TestParkedClients$", "-test.count=1")
	cl.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", clientsEnv, ln.Addr(), n))
	cl.cmd.ExtraFiles = []*os.File{ordersR, answersW} // fds 3 and 4
	cl.cmd.Stderr = os.Stderr
	if err := cl.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ordersR.Close()
	answersW.Close()

	// Bounded, in case the client process fails before it has connected.
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Minute))
	for range n {
		conn, err := ln.Accept()
		if err != nil {
			cl.kill()
			b.Fatal(err)
		}
		sub := h.Subscribe(KindStream, []string{"fan"})
		h.Park(conn, sub, ParkConfig{OnEnd: func(_ StreamEnd, bytes int64, _ error) {
			cl.bytes.Add(bytes)
			if cl.ended.Add(1) == int64(n) {
				close(cl.allEnded)
			}
		}})
	}
	cl.await(b, 0) // every client is connected and reading
	return cl
}

// await waits until the clients have read more bytes in all.
func (cl *parkedClients) await(b *testing.B, more int64) {
	cl.want += more
	order := append(strconv.AppendInt(cl.buf[:0], cl.want, 10), '\n')
	if _, err := cl.orders.Write(order); err != nil {
		cl.kill()
		b.Fatal(err)
	}
	_ = cl.answers.SetReadDeadline(time.Now().Add(time.Minute))
	got := 0
	for got < 3 { // "ok\n"
		k, err := cl.answers.Read(cl.buf[got:3])
		if err != nil {
			cl.kill()
			b.Fatalf("the clients did not read %d bytes: %v", cl.want, err)
		}
		got += k
	}
}

// stop closes the hub, which ends every parked stream, and waits for the
// client process to see its connections close and exit.
func (cl *parkedClients) stop(b *testing.B, h *Hub) {
	h.Close()
	cl.orders.Close()
	if err := cl.cmd.Wait(); err != nil {
		b.Errorf("client process: %v", err)
	}
	cl.answers.Close()
	select {
	case <-cl.allEnded:
	case <-time.After(10 * time.Second):
		b.Fatalf("%d of %d parked streams ended after the hub closed", cl.ended.Load(), cl.n)
	}
	// Every stream ends with the last chunk once the hub closes.
	if want := cl.want + int64(cl.n)*int64(len(lastChunk)); cl.bytes.Load() != want {
		b.Errorf("parked streams wrote %d bytes, want %d", cl.bytes.Load(), want)
	}
}

func (cl *parkedClients) kill() {
	_ = cl.cmd.Process.Kill()
	_ = cl.cmd.Wait()
}

// TestParkedClients is not a test: it is the client process of
// BenchmarkParkedFanout. It connects n clients, reads everything they
// are sent, and answers each order (a total of bytes) once they have
// read that much; when the orders end, it waits for the server to close
// every connection.
func TestParkedClients(t *testing.T) {
	spec := os.Getenv(clientsEnv)
	if spec == "" {
		t.Skip("the client process of BenchmarkParkedFanout")
	}
	addr, count, _ := strings.Cut(spec, " ")
	n, err := strconv.Atoi(count)
	if err != nil {
		t.Fatal(err)
	}
	orders, answers := os.NewFile(3, "orders"), os.NewFile(4, "answers")
	defer answers.Close()

	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}

	var (
		total   atomic.Int64
		target  atomic.Int64
		reached = make(chan struct{}, 1)
		wg      sync.WaitGroup
	)
	target.Store(1 << 62)
	for _, c := range conns {
		wg.Go(func() {
			var buf [2048]byte
			for {
				k, err := c.Read(buf[:])
				if total.Add(int64(k)) >= target.Load() {
					select {
					case reached <- struct{}{}:
					default:
					}
				}
				if err != nil {
					return // the server closed the stream
				}
			}
		})
	}

	sc := bufio.NewScanner(orders)
	for sc.Scan() {
		want, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		target.Store(want)
		for total.Load() < want {
			<-reached
		}
		if _, err := answers.WriteString("ok\n"); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// TestParkedDeliveryAllocatesNothing publishes plain http-stream items to
// a few parked loopback streams and counts the heap allocations of the
// whole path (Deliver, the writers, the write) until the clients have read
// every byte: there must be none, whatever the number of subscribers.
func TestParkedDeliveryAllocatesNothing(t *testing.T) {
	for name, cfg := range map[string]ParkConfig{
		"plain": {},
		// The idle timer is reset on every send.
		"keep-alive": {KeepAlive: &grip.KeepAlive{Data: []byte(":\n\n"), Timeout: time.Hour, Mode: grip.KeepAliveIdle}},
	} {
		t.Run(name, func(t *testing.T) {
			const n = 8
			h := NewHub(Config{})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()

			var (
				total   atomic.Int64
				target  atomic.Int64
				reached = make(chan struct{}, 1)
				readers sync.WaitGroup
				ended   sync.WaitGroup
			)
			target.Store(1 << 62)
			for range n {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				readers.Go(func() {
					var buf [2048]byte
					for {
						k, err := c.Read(buf[:])
						if total.Add(int64(k)) >= target.Load() {
							select {
							case reached <- struct{}{}:
							default:
							}
						}
						if err != nil {
							return
						}
					}
				})
				s, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				ended.Add(1)
				cfg := cfg
				cfg.OnEnd = func(StreamEnd, int64, error) { ended.Done() }
				h.Park(s, h.Subscribe(KindStream, []string{"fan"}), cfg)
			}
			defer func() {
				h.Close()
				ended.Wait()
				readers.Wait()
			}()

			items := []grip.Item{streamItem("fan", benchEvent)}
			perItem, want := n*chunkLen(benchEvent), int64(0)
			deliver := func() {
				want += perItem
				target.Store(want)
				h.Deliver(items)
				for total.Load() < want {
					<-reached
				}
			}
			for range 10 { // the writers' buffers grow to their size here
				deliver()
			}
			if allocs := testing.AllocsPerRun(200, deliver); allocs != 0 {
				t.Errorf("%v allocations per item delivered to %d parked streams, want 0", allocs, n)
			}
			if st := h.Stats(); st.Slow != 0 || st.Streams != n {
				t.Fatalf("streams were ended during the test: %+v", st)
			}
		})
	}
}
