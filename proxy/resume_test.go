package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/testutil"
)

// replayHistory is a handoff.History over a slice, in publish order,
// each item given the next Seq. When gate is set, lookups wait for it to
// close: meanwhile the test publishes live items.
type replayHistory struct {
	mu      sync.Mutex
	items   []grip.Item
	gate    chan struct{}
	lookups int
	asked   []string // channel/lastID of every After
}

func (h *replayHistory) add(items ...grip.Item) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, it := range items {
		it.Seq = uint64(len(h.items) + 1)
		h.items = append(h.items, it)
	}
}

func (h *replayHistory) wait(ctx context.Context, channel string) ([]grip.Item, error) {
	if h.gate != nil {
		select {
		case <-h.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lookups++
	var out []grip.Item
	for _, it := range h.items {
		if it.Channel == channel {
			out = append(out, it)
		}
	}
	return out, nil
}

// askedFor returns the channel/lastID of every After so far.
func (h *replayHistory) askedFor() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.asked)
}

func (h *replayHistory) After(ctx context.Context, channel, lastID string, limit int) (handoff.HistoryPage, error) {
	h.mu.Lock()
	h.asked = append(h.asked, channel+"/"+lastID)
	h.mu.Unlock()
	items, err := h.wait(ctx, channel)
	if err != nil || len(items) == 0 {
		return handoff.HistoryPage{Empty: true}, err
	}
	i := slices.IndexFunc(items, func(it grip.Item) bool { return it.ID == lastID })
	if i < 0 {
		return handoff.HistoryPage{}, nil
	}
	p := fakePage(items[i+1:], items[i].Seq, limit)
	p.Found, p.At = true, items[i].Seq
	return p, nil
}

func (h *replayHistory) AfterSeq(ctx context.Context, channel string, seq uint64, limit int) (handoff.HistoryPage, error) {
	items, err := h.wait(ctx, channel)
	if err != nil {
		return handoff.HistoryPage{}, err
	}
	i := slices.IndexFunc(items, func(it grip.Item) bool { return it.Seq > seq })
	if i < 0 {
		i = len(items)
	}
	return fakePage(items[i:], seq, limit), nil
}

func fakePage(after []grip.Item, from uint64, limit int) handoff.HistoryPage {
	p := handoff.HistoryPage{Through: from}
	if len(after) > limit {
		after, p.More = after[:limit], true
	}
	p.Items = after
	if len(after) > 0 {
		p.Through = after[len(after)-1].Seq
	}
	return p
}

// sseItem is an item as a publisher following the README's contract
// sends it: its id also in the SSE id field; a long-poll gets the id as
// its body.
func sseItem(channel, id string) grip.Item {
	return grip.Item{Channel: channel, ID: id,
		HTTPStream:   &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte("id: " + id + "\ndata: " + channel + id + "\n\n")},
		HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionSend, Code: 200, Body: []byte(channel + id)}}
}

// live is an item as it reaches an instance from history's republish:
// with its place in history.
func live(it grip.Item, seq uint64) grip.Item {
	it.Seq = seq
	return it
}

func events(channel string, ids ...string) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString("id: " + id + "\ndata: " + channel + id + "\n\n")
	}
	return b.String()
}

// historyFixture is a proxy with history in front of one backend; log
// collects its log lines.
type historyFixture struct {
	hub   *handoff.Hub
	proxy *httptest.Server
	log   *testutil.Buffer
}

func newHistoryFixture(t *testing.T, backend string, hist handoff.History) *historyFixture {
	t.Helper()
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	table, err := NewTable([]Route{{Backends: []Backend{{URL: u}}}})
	if err != nil {
		t.Fatal(err)
	}
	hub := handoff.NewHub(handoff.Config{})
	logs := &testutil.Buffer{}
	srv, err := NewServer(Config{Table: table, Hub: hub, DialTimeout: time.Second,
		Log: zerolog.New(logs).Level(zerolog.DebugLevel), History: hist, HistoryTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(srv)
	t.Cleanup(func() {
		hub.Close()
		ps.CloseClientConnections()
		ps.Close()
		srv.CloseIdleConnections()
	})
	return &historyFixture{hub: hub, proxy: ps, log: logs}
}

// readStream reads a held stream to its end (a published close).
func readStream(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("stream did not end cleanly: %v (read %q)", err, b)
	}
	return string(b)
}

func closeItem(channel string) grip.Item {
	return grip.Item{Channel: channel, HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionClose}}
}

// A client back with Last-Event-ID gets the items after it from history,
// in order, then live ones: those the instance was still delivering from
// before its position or that history already gave are not sent again.
// History is read while live items arrive, as it would be under load.
func TestResumeStreamWithLastEventID(t *testing.T) {
	hist := &replayHistory{gate: make(chan struct{})}
	for _, id := range []string{"1", "2", "3", "4", "5"} {
		hist.add(sseItem("c", id))
	}
	f := newHistoryFixture(t, testutil.StreamBackend(t, "c", nil).URL, hist)
	done := make(chan *http.Response, 1)
	go func() { done <- get(t, f.proxy.URL+"/events", map[string]string{"Last-Event-ID": "2"}) }()
	testutil.WaitSubscribers(t, f.hub, "c", 1)
	// Live, while history is being read: 2 and 4 lag behind (this
	// instance still delivering what the client saw elsewhere, and what
	// history will replay), 6 is new.
	f.hub.Deliver([]grip.Item{live(sseItem("c", "2"), 2), live(sseItem("c", "4"), 4), live(sseItem("c", "6"), 6)})
	close(hist.gate)
	f.hub.Deliver([]grip.Item{live(sseItem("c", "5"), 5), live(sseItem("c", "7"), 7), closeItem("c")})
	resp := <-done
	if got, want := readStream(t, resp), ":held\n\n"+events("c", "3", "4", "5", "6", "7"); got != want {
		t.Fatalf("client got\n%q\nwant\n%q", got, want)
	}
}

// The lastEventId query parameter does what the header does, and the
// position of an id on one channel places the client on the others of
// the stream too.
func TestResumeStreamWithLastEventIDQueryOnTwoChannels(t *testing.T) {
	hist := &replayHistory{}
	hist.add(sseItem("a", "1"), sseItem("b", "x1"), sseItem("a", "2"), sseItem("b", "x2"))
	b := testutil.StreamBackend(t, "a", http.Header{"Grip-Channel": {"a", "b"}})
	f := newHistoryFixture(t, b.URL, hist)
	done := make(chan *http.Response, 1)
	go func() { done <- get(t, f.proxy.URL+"/events?lastEventId=1", nil) }()
	testutil.WaitSubscribers(t, f.hub, "b", 1)
	f.hub.Deliver([]grip.Item{live(sseItem("b", "x3"), 5), closeItem("a")})
	resp := <-done
	// "1" is a's first item (position 1): b's x1 came after it.
	if got, want := readStream(t, resp), ":held\n\n"+events("b", "x1")+events("a", "2")+events("b", "x2", "x3"); got != want {
		t.Fatalf("client got\n%q\nwant\n%q", got, want)
	}
}

// A Last-Event-ID that history does not hold: nothing is replayed, the
// stream goes on live, and the gap is reported for the backend to fill.
func TestResumeStreamUnknownIDFallsBack(t *testing.T) {
	hist := &replayHistory{}
	hist.add(sseItem("c", "5"))
	f := newHistoryFixture(t, testutil.StreamBackend(t, "c", nil).URL, hist)
	done := make(chan *http.Response, 1)
	go func() { done <- get(t, f.proxy.URL+"/", map[string]string{"Last-Event-ID": "aged-out"}) }()
	testutil.WaitSubscribers(t, f.hub, "c", 1)
	f.hub.Deliver([]grip.Item{live(sseItem("c", "6"), 2), closeItem("c")})
	resp := <-done
	if got, want := readStream(t, resp), ":held\n\n"+events("c", "6"); got != want {
		t.Fatalf("client got %q, want %q", got, want)
	}
	if log := f.log.String(); !strings.Contains(log, "history cannot give") || !strings.Contains(log, "position not in history") {
		t.Fatalf("the fallback was not logged:\n%s", log)
	}
}

// Without Last-Event-ID or prev-id, history is not consulted.
func TestStreamWithoutPositionSkipsHistory(t *testing.T) {
	hist := &replayHistory{}
	hist.add(sseItem("c", "1"))
	f := newHistoryFixture(t, testutil.StreamBackend(t, "c", nil).URL, hist)
	done := make(chan *http.Response, 1)
	go func() { done <- get(t, f.proxy.URL+"/", nil) }()
	testutil.WaitSubscribers(t, f.hub, "c", 1)
	f.hub.Deliver([]grip.Item{live(sseItem("c", "2"), 2), closeItem("c")})
	if got, want := readStream(t, <-done), ":held\n\n"+events("c", "2"); got != want {
		t.Fatalf("client got %q, want %q", got, want)
	}
	if hist.lookups != 0 {
		t.Fatalf("%d history lookups", hist.lookups)
	}
}

// A stream hold whose channel prev-id is behind, on an instance that
// does not know the channel's last id, gets the items after it from
// history, and its chain follows on from the last of them: its next link
// is not fetched.
func TestResumeStreamWithPrevID(t *testing.T) {
	hist := &replayHistory{}
	for _, id := range []string{"1", "2", "3"} {
		hist.add(sseItem("c", id))
	}
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Grip-Hold", "stream")
		w.Header().Set("Grip-Channel", "c; prev-id=1")
		w.Header().Set("Grip-Link", "</next>; rel=next")
		io.WriteString(w, ":held\n\n")
	})
	f := newHistoryFixture(t, rb.url, hist)
	done := make(chan *http.Response, 1)
	go func() { done <- get(t, f.proxy.URL+"/", nil) }()
	testutil.WaitSubscribers(t, f.hub, "c", 1)
	next := live(sseItem("c", "4"), 4)
	next.PrevID = "3"
	end := closeItem("c")
	end.PrevID = "4" // in the chain, or it would be a gap to recover
	f.hub.Deliver([]grip.Item{next, end})
	if got, want := readStream(t, <-done), ":held\n\n"+events("c", "2", "3", "4"); got != want {
		t.Fatalf("client got %q, want %q", got, want)
	}
	if n := len(rb.requests()); n != 1 {
		t.Fatalf("backend saw %d requests, want 1 (no link fetch)", n)
	}
}

// A stream with a next link whose prev-id history does not hold
// recovers through its link, with Grip-Last.
func TestResumeStreamUnknownPrevIDFetchesLink(t *testing.T) {
	hist := &replayHistory{}
	hist.add(sseItem("c", "7"))
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			w.Header().Set("Grip-Hold", "stream")
			w.Header().Set("Grip-Channel", "c; prev-id=aged-out")
			w.Header().Set("Grip-Link", "</next>; rel=next")
			io.WriteString(w, ":held\n\n")
			return
		}
		io.WriteString(w, "caught up by the backend\n") // no hold, no link: the stream is complete
	})
	f := newHistoryFixture(t, rb.url, hist)
	resp := get(t, f.proxy.URL+"/", nil)
	if got := readStream(t, resp); got != ":held\n\ncaught up by the backend\n" {
		t.Fatalf("client got %q", got)
	}
	reqs := rb.requests()
	if len(reqs) != 2 || reqs[1].path != "/next" || !slices.Equal(reqs[1].gripLast, []string{"c; last-id=aged-out"}) {
		t.Fatalf("requests %+v, want the link fetched with Grip-Last c; last-id=aged-out", reqs)
	}
}

// A long-poll whose prev-id is behind is answered at once with the next
// item from history; the backend is asked once.
func TestLongPollAnsweredFromHistory(t *testing.T) {
	hist := &replayHistory{}
	for _, id := range []string{"1", "2", "3"} {
		hist.add(sseItem("lp", id))
	}
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) { holdAnswer(w, "lp", "1") })
	f := newHistoryFixture(t, rb.url, hist)
	resp := get(t, f.proxy.URL+"/poll", nil)
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "lp2" {
		t.Fatalf("client got %d %q, want 200 lp2 (the item after prev-id 1)", resp.StatusCode, body)
	}
	if n := len(rb.requests()); n != 1 {
		t.Fatalf("backend saw %d requests, want 1", n)
	}
}

// A long-poll whose prev-id is the last in history waits for the next
// item; a lagging live copy of its own last item is not taken for a break
// in its chain (which would re-request the backend).
func TestLongPollUpToDateWaits(t *testing.T) {
	hist := &replayHistory{}
	hist.add(sseItem("lp", "1"), sseItem("lp", "2"))
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) { holdAnswer(w, "lp", "2") })
	f := newHistoryFixture(t, rb.url, hist)
	done := make(chan *http.Response, 1)
	go func() { done <- get(t, f.proxy.URL+"/poll", nil) }()
	testutil.WaitSubscribers(t, f.hub, "lp", 1)
	lagging := live(sseItem("lp", "2"), 2)
	lagging.PrevID = "1"
	next := live(sseItem("lp", "3"), 3)
	next.PrevID = "2"
	f.hub.Deliver([]grip.Item{lagging, next})
	resp := <-done
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "lp3" {
		t.Fatalf("client got %d %q, want 200 lp3", resp.StatusCode, body)
	}
	if n := len(rb.requests()); n != 1 {
		t.Fatalf("backend saw %d requests, want 1", n)
	}
}

// A long-poll whose prev-id history does not hold falls back on the
// backend: it is re-requested with Grip-Last.
func TestLongPollUnknownPrevIDIsReRequested(t *testing.T) {
	hist := &replayHistory{}
	hist.add(sseItem("lp", "7"))
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			holdAnswer(w, "lp", "aged-out")
			return
		}
		io.WriteString(w, "the backend's own catch-up\n")
	})
	f := newHistoryFixture(t, rb.url, hist)
	resp := get(t, f.proxy.URL+"/poll", nil)
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "the backend's own catch-up\n" {
		t.Fatalf("client got %d %q", resp.StatusCode, body)
	}
	reqs := rb.requests()
	if len(reqs) != 2 || !slices.Equal(reqs[1].gripLast, []string{"lp; last-id=aged-out"}) {
		t.Fatalf("requests %+v, want a re-request with Grip-Last lp; last-id=aged-out", reqs)
	}
}

// A history that fails to answer leaves the hold as it would be without
// history, and says so in the log.
func TestHistoryFailureHoldsWithoutReplay(t *testing.T) {
	hist := &replayHistory{gate: make(chan struct{})} // never opens: lookups time out
	b := testutil.StreamBackend(t, "c", nil)
	u, _ := url.Parse(b.URL)
	table, err := NewTable([]Route{{Backends: []Backend{{URL: u}}}})
	if err != nil {
		t.Fatal(err)
	}
	hub := handoff.NewHub(handoff.Config{})
	logs := &testutil.Buffer{}
	srv, err := NewServer(Config{Table: table, Hub: hub, Log: zerolog.New(logs), History: hist, HistoryTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(srv)
	defer func() { hub.Close(); ps.CloseClientConnections(); ps.Close(); srv.CloseIdleConnections() }()
	resp := get(t, ps.URL+"/", map[string]string{"Last-Event-ID": "1"})
	br := bufio.NewReader(resp.Body)
	if held, _ := br.ReadString('\n'); held != ":held\n" {
		t.Fatalf("initial body %q", held)
	}
	testutil.WaitSubscribers(t, hub, "c", 1)
	hub.Deliver([]grip.Item{live(sseItem("c", "2"), 2), closeItem("c")})
	rest, err := io.ReadAll(br)
	resp.Body.Close()
	if err != nil || string(rest) != "\n"+events("c", "2") {
		t.Fatalf("rest %q err %v", rest, err)
	}
	if !strings.Contains(logs.String(), "history lookup failed") {
		t.Fatalf("log:\n%s", logs.String())
	}
}
