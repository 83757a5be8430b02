package handoff

import (
	"context"
	"time"
)

// drainTick is the shortest pause between two batches of a drain: with
// many connections, several end per tick rather than one timer per
// connection.
const drainTick = 10 * time.Millisecond

// Drain ends every subscription with ErrClosed, spread evenly over d, so
// that the clients of an instance going away reconnect elsewhere a few at
// a time rather than all in the same second. Subscriptions made while it
// runs end at once, as after Close. When ctx is done before the end (an
// operator in a hurry), the rest end at once. Drain returns when every
// subscription it found has been ended, or as soon as none is registered
// any more: connections that end on their own (their owners called
// Unsubscribe) leave the schedule, and a drain whose clients all left
// early ends early. Owners still call Unsubscribe.
// Publishes keep reaching the subscriptions not yet ended, items waiting
// in the sequencer for a predecessor included: its wait limit still
// releases them. Close, after Drain, stops the sequencer.
func (h *Hub) Drain(ctx context.Context, d time.Duration) {
	h.draining.Store(true)
	subs := h.registered()
	n := len(subs)
	if n == 0 {
		return
	}
	if d <= 0 {
		endAll(subs)
		return
	}
	tick := max(d/time.Duration(n), drainTick)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	idle := h.idleSignal()
	start := time.Now()
	ended := 0
	for ended < n {
		select {
		case <-ctx.Done():
			endAll(subs[ended:])
			return
		case <-idle:
			return // every connection has gone: nothing left to end
		case now := <-ticker.C:
			// How many should have ended by now on a straight line from
			// start to start+d; catching up after a late tick keeps the pace.
			due := n
			if elapsed := now.Sub(start); elapsed < d {
				due = int(int64(n) * int64(elapsed) / int64(d))
			}
			for ; ended < due; ended++ {
				subs[ended].end(ErrClosed)
			}
		}
	}
}

// WaitIdle returns once no subscription is registered (every owner has
// called Unsubscribe), or with ctx's error when ctx is done first: how a
// drain waits for parked streams and WebSockets to say goodbye.
func (h *Hub) WaitIdle(ctx context.Context) error {
	select {
	case <-h.idleSignal():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// idleSignal returns a channel closed once no subscription is registered
// (already closed when none is).
func (h *Hub) idleSignal() <-chan struct{} {
	h.allMu.Lock()
	defer h.allMu.Unlock()
	if len(h.all) == 0 {
		done := make(chan struct{})
		close(done)
		return done
	}
	if h.idle == nil {
		h.idle = make(chan struct{})
	}
	return h.idle
}

// signalIdle wakes the waiters of WaitIdle when the last subscription has
// gone. Called with h.allMu held.
func (h *Hub) signalIdle() {
	if len(h.all) == 0 && h.idle != nil {
		close(h.idle)
		h.idle = nil
	}
}

// registered returns every subscriber registered now, in no set order.
func (h *Hub) registered() []*Subscriber {
	h.allMu.Lock()
	defer h.allMu.Unlock()
	subs := make([]*Subscriber, 0, len(h.all))
	for s := range h.all {
		subs = append(subs, s)
	}
	return subs
}

func endAll(subs []*Subscriber) {
	for _, s := range subs {
		s.end(ErrClosed)
	}
}
