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
	one := FormatCounts{HTTPStream: 1}
	want = Stats{Subscribers: 2, Channels: 1, Delivered: 1, Responses: 1, Streams: 1, Received: one, DeliveredByFormat: one}
	if got := h.Stats(); got != want {
		t.Fatalf("after unsubscribing: got %+v, want %+v", got, want)
	}

	h.Unsubscribe(r)
	h.Unsubscribe(s2)
	want = Stats{Delivered: 1, Received: one, DeliveredByFormat: one}
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

// Items count by format: received once per format they carry, delivered
// once per subscriber that took them, by the format it took.
func TestStatsCountItemsByFormat(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	r := h.Subscribe(KindResponse, []string{"a"})
	defer h.Unsubscribe(r)
	s1 := h.Subscribe(KindStream, []string{"a"})
	defer h.Unsubscribe(s1)
	s2 := h.Subscribe(KindStream, []string{"a"})
	defer h.Unsubscribe(s2)
	w := h.Subscribe(KindWebSocket, []string{"b"})
	defer h.Unsubscribe(w)

	h.Deliver([]grip.Item{
		{Channel: "a", // both HTTP formats: one response and two streams take it
			HTTPResponse: &grip.HTTPResponseFormat{Body: []byte("x")},
			HTTPStream:   &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte("x")}},
		{Channel: "b", WSMessage: &grip.WSMessageFormat{Content: []byte("y")}},
		{Channel: "nobody", WSMessage: &grip.WSMessageFormat{Content: []byte("z")}},
	})
	st := h.Stats()
	if want := (FormatCounts{HTTPResponse: 1, HTTPStream: 1, WSMessage: 2}); st.Received != want {
		t.Errorf("Received = %+v, want %+v", st.Received, want)
	}
	if want := (FormatCounts{HTTPResponse: 1, HTTPStream: 2, WSMessage: 1}); st.DeliveredByFormat != want {
		t.Errorf("DeliveredByFormat = %+v, want %+v", st.DeliveredByFormat, want)
	}
	if st.Delivered != 4 || st.Dropped != (FormatCounts{}) {
		t.Errorf("Delivered = %d, Dropped = %+v; want 4 and none", st.Delivered, st.Dropped)
	}
}
