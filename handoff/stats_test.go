package handoff

import (
	"testing"

	"github.com/gripd/gripd/grip"
)

func TestStatsCountsByKind(t *testing.T) {
	h := NewHub(Config{})
	r := h.Subscribe(KindResponse, []string{"a"})
	s1 := h.Subscribe(KindStream, []string{"a", "b"})
	s2 := h.Subscribe(KindStream, nil)
	w := h.Subscribe(KindWebSocket, nil)

	want := Stats{Subscribers: 4, Channels: 2, Responses: 1, Streams: 2, WebSockets: 1}
	if got := h.Stats(); got != want {
		t.Fatalf("after subscribing: got %+v, want %+v", got, want)
	}

	h.Deliver([]grip.Item{{Channel: "a", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte("x")}}})
	if got := h.Stats().Delivered; got != 1 {
		t.Fatalf("Delivered = %d, want 1 (one stream on a)", got)
	}

	h.Unsubscribe(s1)
	h.Unsubscribe(s1) // a second call changes nothing
	h.Unsubscribe(w)
	want = Stats{Subscribers: 2, Channels: 1, Delivered: 1, Responses: 1, Streams: 1}
	if got := h.Stats(); got != want {
		t.Fatalf("after unsubscribing: got %+v, want %+v", got, want)
	}

	h.Unsubscribe(r)
	h.Unsubscribe(s2)
	want = Stats{Delivered: 1}
	if got := h.Stats(); got != want {
		t.Fatalf("at the end: got %+v, want %+v", got, want)
	}
}

func TestStatsClosedHubCountsNothing(t *testing.T) {
	h := NewHub(Config{})
	h.Close()
	s := h.Subscribe(KindWebSocket, []string{"a"})
	h.Unsubscribe(s)
	if got := h.Stats(); got != (Stats{}) {
		t.Fatalf("got %+v, want zero", got)
	}
}
