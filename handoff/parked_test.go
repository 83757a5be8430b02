package handoff

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gripd/gripd/grip"
)

type parkResult struct {
	end   StreamEnd
	bytes int64
	err   error
}

// parkPipe parks one end of a pipe on channel "p" and returns the other.
func parkPipe(t *testing.T, h *Hub, ka *grip.KeepAlive) (*Subscriber, net.Conn, <-chan parkResult) {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { client.Close() })
	sub := h.Subscribe(KindStream, []string{"p"})
	ended := make(chan parkResult, 1)
	h.Park(server, sub, ParkConfig{KeepAlive: ka, WriteTimeout: time.Second, OnEnd: func(e StreamEnd, n int64, err error) {
		ended <- parkResult{e, n, err}
	}})
	return sub, client, ended
}

func send(channel, content string) []grip.Item {
	return []grip.Item{{Channel: channel, HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte(content)}}}
}

func parkCloseItem(channel string) []grip.Item {
	return []grip.Item{{Channel: channel, HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionClose}}}
}

func waitParkEnd(t *testing.T, ended <-chan parkResult) parkResult {
	t.Helper()
	select {
	case r := <-ended:
		return r
	case <-time.After(2 * time.Second):
		t.Fatal("parked stream did not end")
	}
	return parkResult{}
}

func TestParkedStreamWritesChunksInOrderThenCloses(t *testing.T) {
	h := NewHub(Config{})
	_, client, ended := parkPipe(t, h, nil)
	h.Deliver(send("p", "hello"))
	h.Deliver(append(send("p", strings.Repeat("x", 20)), parkCloseItem("p")...))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	want := "5\r\nhello\r\n14\r\n" + strings.Repeat("x", 20) + "\r\n0\r\n\r\n"
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	r := waitParkEnd(t, ended)
	if r.end != EndClosed || r.bytes != int64(len(want)) {
		t.Fatalf("ended %v with %d bytes", r.end, r.bytes)
	}
	if n := h.SubscriberCount("p"); n != 0 {
		t.Fatalf("%d subscribers left", n)
	}
}

func TestParkedStreamClientGone(t *testing.T) {
	h := NewHub(Config{})
	_, client, ended := parkPipe(t, h, nil)
	client.Close()
	if r := waitParkEnd(t, ended); r.end != EndClient {
		t.Fatalf("ended %v", r.end)
	}
	if n := h.SubscriberCount("p"); n != 0 {
		t.Fatalf("%d subscribers left", n)
	}
}

func TestParkedStreamHubCloseEndsCleanly(t *testing.T) {
	h := NewHub(Config{})
	_, client, ended := parkPipe(t, h, nil)
	done := make(chan string, 1)
	go func() { b, _ := io.ReadAll(client); done <- string(b) }()
	h.Close()
	if got := <-done; got != "0\r\n\r\n" {
		t.Fatalf("got %q", got)
	}
	if r := waitParkEnd(t, ended); r.end != EndShutdown {
		t.Fatalf("ended %v", r.end)
	}
}

func TestParkedStreamSlowClientDropped(t *testing.T) {
	h := NewHub(Config{QueueSize: 2})
	_, _, ended := parkPipe(t, h, nil) // the client end is never read
	other := h.Subscribe(KindStream, []string{"p"})
	defer h.Unsubscribe(other)
	for range 10 {
		h.Deliver(send("p", "data"))
		<-other.C() // the other subscriber keeps up and gets every item
	}
	r := waitParkEnd(t, ended)
	if r.end != EndSlow && r.end != EndWrite {
		t.Fatalf("ended %v", r.end)
	}
	if other.Err() != nil {
		t.Fatalf("the reading subscriber was ended too: %v", other.Err())
	}
}

func TestParkedStreamKeepAlive(t *testing.T) {
	for _, mode := range []grip.KeepAliveMode{grip.KeepAliveIdle, grip.KeepAliveInterval} {
		t.Run(string(mode), func(t *testing.T) {
			h := NewHub(Config{})
			ka := &grip.KeepAlive{Data: []byte(":ka\n"), Timeout: 20 * time.Millisecond, Mode: mode}
			_, client, _ := parkPipe(t, h, ka)
			br := bufio.NewReader(client)
			for range 3 {
				client.SetReadDeadline(time.Now().Add(2 * time.Second))
				var chunk [9]byte
				if _, err := io.ReadFull(br, chunk[:]); err != nil || string(chunk[:]) != "4\r\n:ka\n\r\n" {
					t.Fatalf("got %q (%v)", chunk, err)
				}
			}
			h.Close()
		})
	}
}

// parkTCP parks the server end of a loopback TCP connection on channel
// "p", so the stream is written by the hub's writers without waiting and
// watched by the hub's watch, and returns the client end.
func parkTCP(t *testing.T, h *Hub, cfg ParkConfig) (*Subscriber, net.Conn, <-chan parkResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sub := h.Subscribe(KindStream, []string{"p"})
	ended := make(chan parkResult, 1)
	cfg.OnEnd = func(e StreamEnd, n int64, err error) { ended <- parkResult{e, n, err} }
	h.Park(server, sub, cfg)
	return sub, client, ended
}

func TestParkedTCPStreamWritesAndCloses(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	_, client, ended := parkTCP(t, h, ParkConfig{})
	h.Deliver(send("p", "hello"))
	h.Deliver(append(send("p", "world!"), parkCloseItem("p")...))
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if want := "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if r := waitParkEnd(t, ended); r.end != EndClosed || r.bytes != int64(len(got)) {
		t.Fatalf("ended %v with %d bytes", r.end, r.bytes)
	}
}

// The hub's watch notices a client leaving, whether it closes at once or
// sends something first (which a stream's client has no reason to do).
func TestParkedTCPStreamClientGone(t *testing.T) {
	for _, name := range []string{"close", "send then close"} {
		t.Run(name, func(t *testing.T) {
			h := NewHub(Config{})
			defer h.Close()
			_, client, ended := parkTCP(t, h, ParkConfig{})
			if name == "send then close" {
				io.WriteString(client, "GET / HTTP/1.1\r\n\r\n")
			}
			client.Close()
			if r := waitParkEnd(t, ended); r.end != EndClient {
				t.Fatalf("ended %v", r.end)
			}
			if n := h.SubscriberCount("p"); n != 0 {
				t.Fatalf("%d subscribers left", n)
			}
		})
	}
}

// A client that stops reading fills its socket; the writer hands the
// rest to the stream's own goroutine, whose write times out, and a client
// that reads on meanwhile gets everything.
func TestParkedTCPStalledClientDoesNotStallOthers(t *testing.T) {
	// The queue holds everything published, and the reader may pause for
	// seconds (a loaded machine, -race): only the stalled client's write
	// timeout can end a stream here.
	h := NewHub(Config{QueueSize: 1024})
	defer h.Close()
	_, _, stalledEnd := parkTCP(t, h, ParkConfig{WriteTimeout: 300 * time.Millisecond})
	_, reader, readerEnd := parkTCP(t, h, ParkConfig{WriteTimeout: time.Minute})
	chunk := strings.Repeat("z", 32<<10)
	const n = 400 // 12.5 MiB: far more than the stalled client's socket holds
	want := int64(n * (len(chunk) + len("8000\r\n\r\n")))
	got := make(chan int64, 1)
	go func() {
		reader.SetReadDeadline(time.Now().Add(20 * time.Second))
		m, _ := io.CopyN(io.Discard, reader, want)
		got <- m
	}()
	for range n {
		h.Deliver(send("p", chunk))
		time.Sleep(200 * time.Microsecond) // paces the publisher like a real one; not a synchronisation
	}
	if m := <-got; m != want {
		t.Fatalf("the reading client got %d of %d bytes", m, want)
	}
	if r := waitParkEnd(t, stalledEnd); r.end != EndWrite {
		t.Fatalf("stalled client ended %v", r.end)
	}
	select {
	case r := <-readerEnd:
		t.Fatalf("the reading client was ended too: %v (%v)", r.end, r.err)
	default:
	}
}
