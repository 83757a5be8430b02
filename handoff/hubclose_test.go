package handoff

import "testing"

// Close reaches a subscriber on no channel yet (a WebSocket before its
// first subscribe), and a Join after Close does not revive it.
func TestHubCloseEndsSubscriberWithoutChannels(t *testing.T) {
	h := NewHub(Config{})
	s := h.Subscribe(KindWebSocket, nil) // a WS session before any subscribe control
	h.Close()
	h.Join(s, "late") // subscribe control message after shutdown began
	select {
	case <-s.Done():
	default:
		t.Fatalf("Close did not end a subscriber with no channels; Join after Close accepted (count=%d)", h.SubscriberCount("late"))
	}
	h.Unsubscribe(s)
}
