package proxy

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/internal/testutil"
)

// seenRequest is what a recording backend saw of one request.
type seenRequest struct {
	method, path, body string
	gripLast           []string
}

// recordingBackend answers the n-th request (from 0) with answer(n, w)
// and records every request.
type recordingBackend struct {
	mu   sync.Mutex
	seen []seenRequest
	url  string
}

func newRecordingBackend(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *recordingBackend {
	rb := &recordingBackend{}
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rb.mu.Lock()
		n := len(rb.seen)
		rb.seen = append(rb.seen, seenRequest{r.Method, r.URL.RequestURI(), string(body), r.Header.Values("Grip-Last")})
		rb.mu.Unlock()
		answer(n, w, r)
	})
	rb.url = b.URL
	return rb
}

func (rb *recordingBackend) requests() []seenRequest {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return slices.Clone(rb.seen)
}

// holdAnswer answers with a response hold on channel; prev is its prev-id
// ("" for none).
func holdAnswer(w http.ResponseWriter, channel, prev string) {
	v := channel
	if prev != "" {
		v += "; prev-id=" + prev
	}
	w.Header().Set("Grip-Hold", "response")
	w.Header().Set("Grip-Channel", v)
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "timeout\n")
}

func respItemID(channel, id, prev, body string) grip.Item {
	return grip.Item{Channel: channel, ID: id, PrevID: prev,
		HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionSend, Code: 200, Body: []byte(body)}}
}

// lastIDIs makes channel's last id on the hub id, keeping a subscriber on
// it so the hub tracks it.
func lastIDIs(t *testing.T, f *fixture, channel, id string) {
	t.Helper()
	watcher := f.hub.Subscribe(0, []string{channel})
	t.Cleanup(func() { f.hub.Unsubscribe(watcher) })
	f.hub.Deliver([]grip.Item{respItemID(channel, id, "", "seen by the watcher")})
}

func TestLongPollOutOfStepIsReRequested(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			holdAnswer(w, "lp-step", "1")
			return
		}
		io.WriteString(w, "you missed 2\n")
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{})
	lastIDIs(t, f, "lp-step", "2")

	resp := post(t, f.proxy.URL+"/poll?x=1", "the request body")
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "you missed 2\n" {
		t.Fatalf("client got %d %q, want the re-request's answer", resp.StatusCode, body)
	}
	reqs := rb.requests()
	if len(reqs) != 2 {
		t.Fatalf("backend saw %d requests, want 2", len(reqs))
	}
	if len(reqs[0].gripLast) != 0 {
		t.Errorf("first request carried Grip-Last %v", reqs[0].gripLast)
	}
	again := reqs[1]
	if again.method != "POST" || again.path != "/poll?x=1" || again.body != "the request body" {
		t.Errorf("re-request %+v, want the original POST with its body", again)
	}
	if !slices.Equal(again.gripLast, []string{"lp-step; last-id=1"}) {
		t.Errorf("re-request Grip-Last %v, want [lp-step; last-id=1]", again.gripLast)
	}
}

func TestLongPollOutOfStepOnlyOnceInARow(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		holdAnswer(w, "lp-stale", "1") // always stale
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{})
	lastIDIs(t, f, "lp-stale", "2")
	done := make(chan *http.Response, 1)
	go func() { done <- get(t, f.proxy.URL+"/", nil) }()
	// One re-request, then the stale answer is held all the same (the
	// watcher is the other subscriber).
	testutil.WaitFor(t, "the second answer held", func() bool {
		return len(rb.requests()) == 2 && f.hub.SubscriberCount("lp-stale") == 2
	})
	// The hold goes on from its own prev-id.
	after1 := respItemID("lp-stale", "9", "1", "after 1")
	after1.NoSeq = true // past the hub's order, which is at 2
	f.hub.Deliver([]grip.Item{after1})
	if body := readAll(t, <-done); body != "after 1" {
		t.Fatalf("client got %q, want the item that follows its prev-id", body)
	}
	if n := len(rb.requests()); n != 2 {
		t.Fatalf("backend saw %d requests, want 2", n)
	}
}

func TestLongPollHintIsReRequested(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 0:
			holdAnswer(w, "lp-hint", "")
		case 1:
			holdAnswer(w, "lp-hint", "5") // GRIP applies again: held anew
		default:
			w.Header().Set("X-Round", "3")
			io.WriteString(w, "fresh\n")
		}
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{})
	done := make(chan *http.Response, 1)
	go func() { done <- get(t, f.proxy.URL+"/", nil) }()
	hint := grip.Item{Channel: "lp-hint", HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionHint}}

	testutil.WaitFor(t, "the first hold", func() bool { return len(rb.requests()) == 1 && f.hub.SubscriberCount("lp-hint") == 1 })
	f.hub.Deliver([]grip.Item{hint})
	testutil.WaitFor(t, "the second hold", func() bool { return len(rb.requests()) == 2 && f.hub.SubscriberCount("lp-hint") == 1 })
	f.hub.Deliver([]grip.Item{hint})
	resp := <-done
	if body := readAll(t, resp); body != "fresh\n" || resp.Header.Get("X-Round") != "3" {
		t.Fatalf("client got %q %v, want the third answer", body, resp.Header)
	}
	reqs := rb.requests()
	if len(reqs[1].gripLast) != 0 || !slices.Equal(reqs[2].gripLast, []string{"lp-hint; last-id=5"}) {
		t.Fatalf("Grip-Last of the re-requests: %v, %v; want none, then lp-hint; last-id=5", reqs[1].gripLast, reqs[2].gripLast)
	}
}

func TestLongPollItemOutOfChainIsReRequested(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			holdAnswer(w, "lp-chain", "a")
			return
		}
		io.WriteString(w, "caught up\n")
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{})
	done := make(chan *http.Response, 1)
	go func() { done <- get(t, f.proxy.URL+"/", nil) }()
	testutil.WaitSubscribers(t, f.hub, "lp-chain", 1)
	// c follows b, which this client never saw.
	f.hub.Deliver([]grip.Item{respItemID("lp-chain", "c", "b", "c")})
	if body := readAll(t, <-done); body != "caught up\n" {
		t.Fatalf("client got %q, want the re-request's answer", body)
	}
	if reqs := rb.requests(); len(reqs) != 2 || !slices.Equal(reqs[1].gripLast, []string{"lp-chain; last-id=a"}) {
		t.Fatalf("requests %+v, want a re-request with Grip-Last lp-chain; last-id=a", reqs)
	}
}

func TestLongPollFollowingItemAnswers(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		holdAnswer(w, "lp-follow", "a")
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{})
	lastIDIs(t, f, "lp-follow", "a")
	done := make(chan *http.Response, 1)
	go func() { done <- get(t, f.proxy.URL+"/", nil) }()
	testutil.WaitSubscribers(t, f.hub, "lp-follow", 2)
	f.hub.Deliver([]grip.Item{respItemID("lp-follow", "b", "a", "b")})
	if body := readAll(t, <-done); body != "b" {
		t.Fatalf("client got %q, want b", body)
	}
	if n := len(rb.requests()); n != 1 {
		t.Fatalf("backend saw %d requests, want 1", n)
	}
}

func TestLongPollRecoverReRequestsEveryHold(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Client") == "" || n < 2 {
			holdAnswer(w, "lp-rec-"+r.Header.Get("X-Client"), "")
			return
		}
		io.WriteString(w, "recovered "+r.Header.Get("X-Client"))
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{})
	done := make(chan string, 2)
	for _, c := range []string{"a", "b"} {
		go func() { done <- readAll(t, get(t, f.proxy.URL+"/", map[string]string{"X-Client": c})) }()
	}
	testutil.WaitFor(t, "both holds", func() bool {
		return f.hub.SubscriberCount("lp-rec-a") == 1 && f.hub.SubscriberCount("lp-rec-b") == 1
	})
	f.hub.Recover()
	got := []string{<-done, <-done}
	slices.Sort(got)
	if !slices.Equal(got, []string{"recovered a", "recovered b"}) {
		t.Fatalf("clients got %q", got)
	}
}

func TestLongPollBodyTooLargeToReplay(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		holdAnswer(w, "lp-big", "")
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{})
	done := make(chan *http.Response, 1)
	go func() { done <- post(t, f.proxy.URL+"/", strings.Repeat("x", grip.MaxInstructBody+1)) }()
	testutil.WaitSubscribers(t, f.hub, "lp-big", 1)
	f.hub.Deliver([]grip.Item{{Channel: "lp-big", HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionHint}}})
	resp := <-done
	if body := readAll(t, resp); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("client got %d %q, want 502", resp.StatusCode, body)
	}
}

func post(t *testing.T, u, body string) *http.Response {
	t.Helper()
	resp, err := http.DefaultTransport.RoundTrip(mustRequest(t, "POST", u, body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func mustRequest(t *testing.T, method, u, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}
