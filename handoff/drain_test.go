package handoff

import (
	"context"
	"testing"
	"time"

	"github.com/gripd/gripd/grip"
)

func subscribeN(h *Hub, n int) []*Subscriber {
	subs := make([]*Subscriber, n)
	for i := range subs {
		subs[i] = h.Subscribe(KindStream, []string{"c"})
	}
	return subs
}

func countEnded(subs []*Subscriber) int {
	n := 0
	for _, s := range subs {
		if s.Err() != nil {
			n++
		}
	}
	return n
}

// TestHubDrainSpreadsTheEnds checks that a drain does not end everyone
// together: when the first subscriber ends, most are still live, and by
// the time Drain returns all have ended with ErrClosed.
func TestHubDrainSpreadsTheEnds(t *testing.T) {
	h := NewHub(Config{})
	subs := subscribeN(h, 20)
	returned := make(chan struct{})
	go func() {
		h.Drain(context.Background(), 2*time.Second)
		close(returned)
	}()

	first := make(chan int)
	go func() {
		cases := make(chan struct{}, len(subs))
		for _, s := range subs {
			go func() { <-s.Done(); cases <- struct{}{} }()
		}
		<-cases
		first <- countEnded(subs)
		for range len(subs) - 1 {
			<-cases
		}
	}()
	// With 20 over 2s one ends every 100ms; half would mean the pacing
	// is gone (or the machine stalled for a second).
	if n := <-first; n > len(subs)/2 {
		t.Errorf("%d of %d ended with the first; want the ends spread out", n, len(subs))
	}
	<-returned
	for i, s := range subs {
		if err := s.Err(); err != ErrClosed {
			t.Errorf("sub %d: Err = %v, want ErrClosed", i, err)
		}
		h.Unsubscribe(s)
	}
}

// TestHubDrainCancelEndsTheRestAtOnce is the second signal: the pace is
// dropped and everyone still live ends now.
func TestHubDrainCancelEndsTheRestAtOnce(t *testing.T) {
	h := NewHub(Config{})
	subs := subscribeN(h, 5)
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	go func() {
		h.Drain(ctx, time.Hour)
		close(returned)
	}()
	cancel() // an hour-long drain would end its first after 12 minutes

	<-returned
	if n := countEnded(subs); n != len(subs) {
		t.Errorf("after cancel %d of %d ended, want all", n, len(subs))
	}
}

// TestHubDrainRefusesNewSubscriptions checks that a hold arriving while
// the drain runs ends at once instead of being parked on a dying instance.
func TestHubDrainRefusesNewSubscriptions(t *testing.T) {
	h := NewHub(Config{})
	old := h.Subscribe(KindStream, []string{"c"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	returned := make(chan struct{})
	go func() {
		h.Drain(ctx, time.Hour)
		close(returned)
	}()
	for !h.draining.Load() { // Drain's first step
		time.Sleep(time.Millisecond)
	}
	late := h.Subscribe(KindStream, []string{"c"})
	assertDone(t, late, ErrClosed)
	assertLive(t, old)
	h.Deliver([]grip.Item{streamItem("c", "still delivered while draining")})
	recv(t, old)
	cancel()
	<-returned
	assertDone(t, old, ErrClosed)
	h.Unsubscribe(old)
	h.Unsubscribe(late)
}

func TestHubDrainWithoutDurationEndsAllAtOnce(t *testing.T) {
	h := NewHub(Config{})
	subs := subscribeN(h, 3)
	h.Drain(context.Background(), 0)
	if n := countEnded(subs); n != len(subs) {
		t.Errorf("%d of %d ended, want all", n, len(subs))
	}
	h.Drain(context.Background(), time.Second) // nothing left: returns at once
}

// TestHubDrainKeepsReleasingWaitingItems: while a drain runs, an item
// waiting in the sequencer for a predecessor that never comes still goes
// out after the wait limit to the subscribers not yet ended, while new
// subscriptions end at once; Close then stops the sequencer.
func TestHubDrainKeepsReleasingWaitingItems(t *testing.T) {
	h := NewHub(Config{Sequencing: SequenceConfig{Wait: 30 * time.Millisecond}})
	sub := h.Subscribe(KindStream, []string{"c"})
	h.Deliver([]grip.Item{seqItem("c", "1", "")})
	if got := drained(sub); got != "1" {
		t.Fatalf("before the drain the subscriber has %q, want 1", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	go func() {
		h.Drain(ctx, time.Hour)
		close(returned)
	}()
	for !h.draining.Load() {
		time.Sleep(time.Millisecond)
	}
	late := h.Subscribe(KindStream, []string{"c"})
	assertDone(t, late, ErrClosed)
	h.Unsubscribe(late)

	h.Deliver([]grip.Item{seqItem("c", "3", "2")})
	if got := string(recv(t, sub).HTTPStream.Content); got != "3" {
		t.Fatalf("released %q during the drain, want 3", got)
	}
	if err := sub.Err(); err != nil {
		t.Fatalf("subscriber ended (%v) before the drain reached it", err)
	}
	if st := h.Stats().Sequence; st.TimedOut != 1 {
		t.Errorf("Stats().Sequence = %+v, want 1 timed out", st)
	}

	// Waiting again, then Close: the item is dropped and the timer stopped.
	h.Deliver([]grip.Item{seqItem("c", "5", "4")})
	cancel()
	<-returned
	assertDone(t, sub, ErrClosed)
	h.Close()
	h.Unsubscribe(sub)
	sh := h.shardFor("c")
	sh.mu.Lock()
	n := len(sh.seq.waitQueue)
	stopped := sh.seq.timer == nil || !sh.seq.timer.Stop()
	sh.mu.Unlock()
	if n != 0 || !stopped {
		t.Fatalf("after Close: %d items waiting, timer stopped %v; want none and stopped", n, stopped)
	}
}

// TestHubWaitIdle: WaitIdle returns when the last owner unsubscribes, not
// before, and at once when nothing is registered.
func TestHubWaitIdle(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	if err := h.WaitIdle(context.Background()); err != nil {
		t.Fatalf("empty hub: %v", err)
	}
	subs := subscribeN(h, 2)
	done := make(chan error, 1)
	go func() { done <- h.WaitIdle(context.Background()) }()
	h.Unsubscribe(subs[0])
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h.WaitIdle(short); err == nil {
		t.Fatal("WaitIdle returned with a subscription still registered")
	}
	h.Unsubscribe(subs[1])
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitIdle did not return after the last Unsubscribe")
	}
}

// Connections that end on their own during a drain leave its schedule:
// once none is left, Drain returns, however long its window.
func TestHubDrainEndsWhenTheLastConnectionHasGone(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	subs := subscribeN(h, 3)
	returned := make(chan struct{})
	go func() {
		h.Drain(context.Background(), time.Hour)
		close(returned)
	}()
	for _, s := range subs {
		h.Unsubscribe(s) // the clients leave by themselves
	}
	select {
	case <-returned:
	case <-time.After(time.Minute): // only a drain that sits out its window waits this long
		t.Fatal("Drain still running after every connection has gone")
	}
}
