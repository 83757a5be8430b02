package proxy

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/gripd/gripd/grip"
)

// fakeHistory keeps the items of each channel in order.
type fakeHistory struct {
	mu    sync.Mutex
	items map[string][]grip.Item
	asked []string // channel/after of every Since
}

func (h *fakeHistory) Since(_ context.Context, channel, after string) ([]grip.Item, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked = append(h.asked, channel+"/"+after)
	for i, it := range h.items[channel] {
		if it.ID == after {
			return h.items[channel][i+1:], true, nil
		}
	}
	return nil, false, nil
}

func chainOf(channel string, ids ...string) []grip.Item {
	var out []grip.Item
	prev := ""
	for _, id := range ids {
		it := respItemID(channel, id, prev, "response "+id)
		it.HTTPStream = &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte("stream " + id + "\n")}
		out = append(out, it)
		prev = id
	}
	return out
}

func TestLongPollCaughtUpFromHistory(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		holdAnswer(w, "h-lp", "1")
	})
	hist := &fakeHistory{items: map[string][]grip.Item{"h-lp": chainOf("h-lp", "1", "2", "3")}}
	f := newFixture(t, []string{rb.url}, fixtureOpts{history: hist})
	lastIDIs(t, f, "h-lp", "3")
	resp := get(t, f.proxy.URL+"/", nil)
	if body := readAll(t, resp); body != "response 2" {
		t.Fatalf("client got %q, want the item after its prev-id, from history", body)
	}
	if n := len(rb.requests()); n != 1 {
		t.Fatalf("backend saw %d requests, want 1 (no re-request)", n)
	}
}

func TestLongPollHistoryCannotTell(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			holdAnswer(w, "h-unknown", "old")
			return
		}
		w.Write([]byte("from the backend"))
	})
	hist := &fakeHistory{items: map[string][]grip.Item{"h-unknown": chainOf("h-unknown", "5", "6")}}
	f := newFixture(t, []string{rb.url}, fixtureOpts{history: hist})
	lastIDIs(t, f, "h-unknown", "6")
	if body := readAll(t, get(t, f.proxy.URL+"/", nil)); body != "from the backend" {
		t.Fatalf("client got %q, want the re-request's answer", body)
	}
	if len(hist.asked) != 1 || hist.asked[0] != "h-unknown/old" {
		t.Fatalf("history asked %v", hist.asked)
	}
}

func TestStreamCaughtUpFromHistory(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		streamAnswer(w, "h-st", "a", "</next>; rel=next", "start\n")
	})
	hist := &fakeHistory{items: map[string][]grip.Item{"h-st": chainOf("h-st", "a", "b", "c")}}
	f := newFixture(t, []string{rb.url}, fixtureOpts{history: hist})
	_, lr := openStream(t, f.proxy.URL+"/feed")
	lr.expect("start")
	waitSubscribers(t, f.hub, "h-st", 1)
	// c follows b, which the client missed: history has it.
	c := chainOf("h-st", "a", "b", "c")[2]
	f.hub.Deliver([]grip.Item{c})
	lr.expect("stream b", "stream c")
	f.hub.Deliver([]grip.Item{streamItemID("h-st", "d", "c", "stream d\n")})
	lr.expect("stream d")
	if n := len(rb.requests()); n != 1 {
		t.Fatalf("backend saw %d requests, want no link fetch", n)
	}
}
