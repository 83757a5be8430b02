package testutil

import (
	"testing"
	"time"
)

// WaitTimeout bounds every wait of this package. Passing runs take far
// less; the margin is for a loaded 2-core machine under -race.
const WaitTimeout = 10 * time.Second

// pollEvery is how often WaitFor looks again.
const pollEvery = 5 * time.Millisecond

// WaitFor polls cond until it holds, and fails the test with what when it
// does not within WaitTimeout. It is for states the code under test gives
// no signal for (a hold parked, a connection dropped); where there is a
// signal, wait on the signal instead.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, WaitTimeout)
		}
		time.Sleep(pollEvery)
	}
}

// SubscriberCounter is what WaitSubscribers needs of a hub; *handoff.Hub
// has it.
type SubscriberCounter interface {
	SubscriberCount(channel string) int
}

// WaitSubscribers waits until channel has n subscribers on hub: the only
// sign that a hold is parked.
func WaitSubscribers(t testing.TB, hub SubscriberCounter, channel string, n int) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for hub.SubscriberCount(channel) != n {
		if time.Now().After(deadline) {
			t.Fatalf("channel %q: %d subscribers, want %d", channel, hub.SubscriberCount(channel), n)
		}
		time.Sleep(pollEvery)
	}
}
