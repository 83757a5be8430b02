package handoff

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gripd/gripd/grip"
)

// fakeStream is a StreamWriter that records what is written and signals
// every Flush with a snapshot of everything written so far.
type fakeStream struct {
	mu       sync.Mutex
	writes   []string
	flushes  int
	writeErr error // returned by Write when set
	flushErr error // returned by Flush when set

	flushed chan string
}

func newFakeStream() *fakeStream {
	// Large enough that HoldStream never waits on the test; a signal that
	// does not fit is dropped, which a test sees as a missing flush.
	return &fakeStream{flushed: make(chan string, 1024)}
}

func (w *fakeStream) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.writeErr != nil {
		return 0, w.writeErr
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *fakeStream) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flushErr != nil {
		return w.flushErr
	}
	w.flushes++
	select {
	case w.flushed <- strings.Join(w.writes, ""):
	default:
	}
	return nil
}

func (w *fakeStream) written() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

// waitFlushed waits for a flush after which the stream holds exactly
// want; a flush of anything that cannot grow into want fails the test.
func (w *fakeStream) waitFlushed(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(failAfter)
	for {
		select {
		case got := <-w.flushed:
			if got == want {
				return
			}
			if !strings.HasPrefix(want, got) {
				t.Fatalf("stream holds %q, want it to become %q", got, want)
			}
		case <-deadline:
			t.Fatalf("no flush of %q within %v; written %q", want, failAfter, w.written())
		}
	}
}

// waitFlushedMatch waits for a flush after which what the stream holds
// satisfies ok, and returns it.
func (w *fakeStream) waitFlushedMatch(t *testing.T, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.After(failAfter)
	for {
		select {
		case got := <-w.flushed:
			if ok(got) {
				return got
			}
		case <-deadline:
			t.Fatalf("no flush with %s within %v; written %q", what, failAfter, w.written())
			return ""
		}
	}
}

type streamResult struct {
	end StreamEnd
	err error
}

// startHold runs HoldStream in a goroutine and returns its result channel.
func startHold(ctx context.Context, sub *Subscriber, w StreamWriter, ka *grip.KeepAlive) <-chan streamResult {
	res := make(chan streamResult, 1)
	go func() {
		end, err := HoldStream(ctx, sub, w, ka)
		res <- streamResult{end, err}
	}()
	return res
}

func waitEnd(t *testing.T, res <-chan streamResult) streamResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(failAfter):
		t.Fatalf("HoldStream did not return within %v", failAfter)
		return streamResult{}
	}
}

func TestHoldStreamWritesContentInOrder(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newFakeStream()
	res := startHold(ctx, sub, w, nil)

	h.Deliver([]grip.Item{streamItem("c", "a\n"), streamItem("c", "b\n")})
	w.waitFlushed(t, "a\nb\n")
	// Items for other channels and formats the stream does not take are
	// not written before the next content.
	h.Deliver([]grip.Item{streamItem("other", "x"), respItem("c", "y")})
	h.Deliver([]grip.Item{streamItem("c", "c\n")})
	w.waitFlushed(t, "a\nb\nc\n")

	cancel()
	if r := waitEnd(t, res); r.end != EndClient || r.err != nil {
		t.Fatalf("HoldStream = %q, %v; want %q, nil", r.end, r.err, EndClient)
	}
	if got := w.written(); strings.Join(got, "|") != "a\n|b\n|c\n" {
		t.Errorf("writes = %q, want a, b, c one write each", got)
	}
}

func TestHoldStreamCloseAction(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	// Queued before the hold starts: content, close, and content after the
	// close, which must not be written.
	h.Deliver([]grip.Item{streamItem("c", "one "), streamItem("c", "two"), closeItem("c"), streamItem("c", " late")})
	w := newFakeStream()
	r := waitEnd(t, startHold(context.Background(), sub, w, nil))
	if r.end != EndClosed || r.err != nil {
		t.Fatalf("HoldStream = %q, %v; want %q, nil", r.end, r.err, EndClosed)
	}
	if got := strings.Join(w.written(), ""); got != "one two" {
		t.Errorf("written %q, want %q", got, "one two")
	}
	select {
	case got := <-w.flushed:
		if got != "one two" {
			t.Errorf("last flush had %q", got)
		}
	default:
		t.Error("the content before the close was never flushed")
	}
}

func TestHoldStreamCloseWhileHolding(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	w := newFakeStream()
	res := startHold(context.Background(), sub, w, nil)
	h.Deliver([]grip.Item{streamItem("c", "data")})
	w.waitFlushed(t, "data")
	h.Deliver([]grip.Item{closeItem("c")})
	if r := waitEnd(t, res); r.end != EndClosed || r.err != nil {
		t.Fatalf("HoldStream = %q, %v; want %q, nil", r.end, r.err, EndClosed)
	}
}

func TestHoldStreamClientGone(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	ctx, cancel := context.WithCancel(context.Background())
	w := newFakeStream()
	res := startHold(ctx, sub, w, &grip.KeepAlive{Data: []byte("ka"), Timeout: time.Hour, Mode: grip.KeepAliveIdle})
	cancel()
	if r := waitEnd(t, res); r.end != EndClient || r.err != nil {
		t.Fatalf("HoldStream = %q, %v; want %q, nil", r.end, r.err, EndClient)
	}
	if got := w.written(); len(got) != 0 {
		t.Errorf("written %q, want nothing", got)
	}
}

func TestHoldStreamSlow(t *testing.T) {
	h := NewHub(Config{QueueSize: 2})
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	h.Deliver([]grip.Item{streamItem("c", "1"), streamItem("c", "2"), streamItem("c", "3")})
	w := newFakeStream()
	r := waitEnd(t, startHold(context.Background(), sub, w, nil))
	if r.end != EndSlow || !errors.Is(r.err, ErrSlow) {
		t.Fatalf("HoldStream = %q, %v; want %q, ErrSlow", r.end, r.err, EndSlow)
	}
	// It may or may not have written what was queued; never the item that
	// overflowed.
	if got := strings.Join(w.written(), ""); got != "" && got != "12" {
		t.Errorf("written %q, want nothing or 12", got)
	}
}

func TestHoldStreamHubClosed(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	res := startHold(context.Background(), sub, newFakeStream(), nil)
	h.Close()
	if r := waitEnd(t, res); r.end != EndShutdown || r.err != nil {
		t.Fatalf("HoldStream = %q, %v; want %q, nil", r.end, r.err, EndShutdown)
	}
}

func TestHoldStreamKeepAliveWhenIdle(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	ctx, cancel := context.WithCancel(context.Background())
	w := newFakeStream()
	res := startHold(ctx, sub, w, &grip.KeepAlive{Data: []byte(":\n"), Timeout: 20 * time.Millisecond, Mode: grip.KeepAliveIdle})
	w.waitFlushed(t, ":\n")
	w.waitFlushed(t, ":\n:\n") // and again, for as long as it stays idle
	cancel()
	if r := waitEnd(t, res); r.end != EndClient {
		t.Fatalf("HoldStream = %q, %v; want %q", r.end, r.err, EndClient)
	}
	for _, wr := range w.written() {
		if wr != ":\n" {
			t.Fatalf("writes %q, want only keep-alives", w.written())
		}
	}
}

// TestHoldStreamIdleKeepAliveRestartsOnContent checks that in idle mode a
// keep-alive never follows content sooner than the keep-alive timeout.
func TestHoldStreamIdleKeepAliveRestartsOnContent(t *testing.T) {
	const timeout = 60 * time.Millisecond
	h := NewHub(Config{})
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newFakeStream()
	res := startHold(ctx, sub, w, &grip.KeepAlive{Data: []byte("ka;"), Timeout: timeout, Mode: grip.KeepAliveIdle})
	w.waitFlushed(t, "ka;")
	// Halfway to the next keep-alive, send content: the timer restarts, so
	// the next keep-alive comes a full timeout after it, not at the old
	// time (which would be only half a timeout away). The delay only
	// places the content mid-interval; the check below holds however late
	// it runs.
	time.Sleep(timeout / 2)
	sent := time.Now()
	h.Deliver([]grip.Item{streamItem("c", "data;")})
	w.waitFlushedMatch(t, "a keep-alive after the content", func(s string) bool {
		return strings.Contains(s, "data;ka;")
	})
	if gap := time.Since(sent); gap < timeout {
		t.Errorf("keep-alive %v after content, want at least %v in idle mode", gap, timeout)
	}
	cancel()
	waitEnd(t, res)
}

// TestHoldStreamKeepAliveInterval keeps content flowing without pause: in
// interval mode keep-alives still go out, on their own schedule.
func TestHoldStreamKeepAliveInterval(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newFakeStream()
	res := startHold(ctx, sub, w, &grip.KeepAlive{Data: []byte("KA"), Timeout: 20 * time.Millisecond, Mode: grip.KeepAliveInterval})

	h.Deliver([]grip.Item{streamItem("c", "d")})
	deadline := time.After(failAfter)
	for {
		select {
		case got := <-w.flushed:
			if strings.Contains(got, "dKA") {
				cancel()
				if r := waitEnd(t, res); r.end != EndClient {
					t.Fatalf("HoldStream = %q, %v", r.end, r.err)
				}
				return
			}
			// Each flush of content triggers the next publish, so the
			// stream is never idle for more than a moment.
			h.Deliver([]grip.Item{streamItem("c", "d")})
		case <-deadline:
			t.Fatalf("no keep-alive within %v of continuous content in interval mode", failAfter)
		}
	}
}

func TestHoldStreamWriteErrors(t *testing.T) {
	boom := errors.New("connection reset")
	tests := []struct {
		name  string
		setup func(*fakeStream)
		ka    *grip.KeepAlive
		item  bool // publish an item to trigger the write
	}{
		{"write of content fails", func(w *fakeStream) { w.writeErr = boom }, nil, true},
		{"flush of content fails", func(w *fakeStream) { w.flushErr = boom }, nil, true},
		{"write of keep-alive fails", func(w *fakeStream) { w.writeErr = boom }, &grip.KeepAlive{Data: []byte("ka"), Timeout: 10 * time.Millisecond, Mode: grip.KeepAliveIdle}, false},
		{"flush of keep-alive fails", func(w *fakeStream) { w.flushErr = boom }, &grip.KeepAlive{Data: []byte("ka"), Timeout: 10 * time.Millisecond, Mode: grip.KeepAliveIdle}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHub(Config{})
			sub := h.Subscribe(KindStream, []string{"c"})
			defer h.Unsubscribe(sub)
			w := newFakeStream()
			tt.setup(w)
			if tt.item {
				h.Deliver([]grip.Item{streamItem("c", "data")})
			}
			r := waitEnd(t, startHold(context.Background(), sub, w, tt.ka))
			if r.end != EndWrite || !errors.Is(r.err, boom) {
				t.Fatalf("HoldStream = %q, %v; want %q wrapping %v", r.end, r.err, EndWrite, boom)
			}
		})
	}
}

// TestHoldStreamBatchesQueuedItems checks that items already queued are
// written before one flush, not one flush each.
func TestHoldStreamBatchesQueuedItems(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	var items []grip.Item
	var want bytes.Buffer
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		items = append(items, streamItem("c", s))
		want.WriteString(s)
	}
	h.Deliver(items)
	ctx, cancel := context.WithCancel(context.Background())
	w := newFakeStream()
	res := startHold(ctx, sub, w, nil)
	w.waitFlushed(t, want.String())
	cancel()
	waitEnd(t, res)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flushes != 1 {
		t.Errorf("%d flushes for 5 queued items, want 1", w.flushes)
	}
}
