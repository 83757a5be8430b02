package proxy

import (
	"net/http"
	"slices"
	"testing"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/internal/testutil"
)

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
	hist := &replayHistory{}
	hist.add(chainOf("h-lp", "1", "2", "3")...)
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
	hist := &replayHistory{}
	hist.add(chainOf("h-unknown", "5", "6")...)
	f := newFixture(t, []string{rb.url}, fixtureOpts{history: hist})
	lastIDIs(t, f, "h-unknown", "6")
	if body := readAll(t, get(t, f.proxy.URL+"/", nil)); body != "from the backend" {
		t.Fatalf("client got %q, want the re-request's answer", body)
	}
	if asked := hist.askedFor(); !slices.Equal(asked, []string{"h-unknown/old"}) {
		t.Fatalf("history asked %v", asked)
	}
}

func TestStreamCaughtUpFromHistory(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		streamAnswer(w, "h-st", "a", "</next>; rel=next", "start\n")
	})
	chain := chainOf("h-st", "a", "b", "c", "d", "e")
	hist := &replayHistory{}
	hist.add(chain[0]) // Seq 1
	f := newFixture(t, []string{rb.url}, fixtureOpts{history: hist})
	_, lr := openStream(t, f.proxy.URL+"/feed")
	lr.expect("start")
	testutil.WaitSubscribers(t, f.hub, "h-st", 1)
	// b follows the client's prev-id: in step (and the resume from
	// history, which found nothing after a, is over once it is written).
	f.hub.Deliver([]grip.Item{live(chain[1], 2)})
	lr.expect("stream b")
	// d follows c, which the client missed: history has it.
	hist.add(chain[1:4]...) // Seq 2..4
	f.hub.Deliver([]grip.Item{live(chain[3], 4)})
	lr.expect("stream c", "stream d")
	f.hub.Deliver([]grip.Item{live(chain[4], 5)})
	lr.expect("stream e")
	if n := len(rb.requests()); n != 1 {
		t.Fatalf("backend saw %d requests, want no link fetch", n)
	}
	if asked, want := hist.askedFor(), []string{"h-st/a", "h-st/b"}; !slices.Equal(asked, want) {
		t.Fatalf("history asked %v, want %v (the resume, then the catch-up)", asked, want)
	}
}
