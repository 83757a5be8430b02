package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/proxy"
)

// fastStatus makes the fixture's status feed sample every few
// milliseconds, so a test sees several samples without waiting seconds.
// Call it before anyone watches.
func fastStatus(f *adminFixture) { f.a.status.every = 5 * time.Millisecond }

func TestStatusPage(t *testing.T) {
	a := testAdmin(t, nil).a
	for _, tc := range []struct{ path, contentType, contains string }{
		{"/", "text/html; charset=utf-8", `<script src="/status/status.js">`},
		{"/status/status.js", "text/javascript; charset=utf-8", `new EventSource("/status/events")`},
		{"/status/status.css", "text/css; charset=utf-8", `.chart svg`},
	} {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		resp := rec.Result()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", tc.path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != tc.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, ct, tc.contentType)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
	}
	// The page loads nothing from elsewhere: no CDN, nothing but its own files.
	_, page := get(t, a, "GET", "/")
	for _, bad := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(page, bad) {
			t.Errorf("the status page refers to %q; it must only load its own files", bad)
		}
	}
	for _, path := range []string{"/index.html", "/status/", "/status/nope.js"} {
		if code, _ := get(t, a, "GET", path); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	if code, _ := get(t, a, "POST", "/"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", code)
	}
}

// sseEvent is one Server-Sent Event as a browser would see it.
type sseEvent struct {
	event, data string
	retry       string
}

// readEvent reads the next event (up to a blank line).
func readEvent(t *testing.T, r *bufio.Reader) sseEvent {
	t.Helper()
	var e sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the event stream: %v (event so far %+v)", err, e)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return e
		}
		field, value, _ := strings.Cut(line, ": ")
		switch field {
		case "event":
			e.event = value
		case "data":
			e.data = value
		case "retry":
			e.retry = value
		default:
			t.Fatalf("unexpected line %q in the event stream", line)
		}
	}
}

// openStatusEvents GETs /status/events from a real server (the stream is
// written as it goes) and checks the headers.
func openStatusEvents(t *testing.T, a *Handler) *bufio.Reader {
	t.Helper()
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/status/events", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("GET /status/events: status %d", resp.StatusCode)
	}
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-store"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("GET /status/events: %s %q, want %q", k, got, want)
		}
	}
	return bufio.NewReader(resp.Body)
}

// The stream starts with the retry delay and an info event, then gives
// one sample per event with what the hub and the control API count.
func TestStatusEventsStream(t *testing.T) {
	f := testAdmin(t, nil)
	fastStatus(f)
	subscribe(t, f.hub, handoff.KindStream, "news")
	subscribe(t, f.hub, handoff.KindStream, "news")
	subscribe(t, f.hub, handoff.KindWebSocket, "room/1 <b>")
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, httptest.NewRequest("POST", "/publish/",
		strings.NewReader(`{"items":[{"channel":"news","formats":{"http-stream":{"content":"hi\n"}}}]}`)))
	if rec.Code != 200 {
		t.Fatalf("publish: %d %s", rec.Code, rec.Body)
	}
	f.met.proxy.BackendRequest("r", 502, "", time.Millisecond)

	r := openStatusEvents(t, f.a)
	if e := readEvent(t, r); e.retry != "2000" || e.event != "" || e.data != "" {
		t.Errorf("first event %+v, want only retry: 2000", e)
	}
	e := readEvent(t, r)
	var info statusInfo
	if err := json.Unmarshal([]byte(e.data), &info); e.event != "info" || err != nil {
		t.Fatalf("second event %+v (%v), want event: info with JSON", e, err)
	}
	if info.Version != testVersion || info.IntervalMS != 5 || info.WindowSeconds != 300 || info.GoVersion == "" {
		t.Errorf("info %+v", info)
	}

	e = readEvent(t, r)
	if e.event != "" {
		t.Fatalf("a sample has event %q, want none (EventSource's message)", e.event)
	}
	var s statusSample
	if err := json.Unmarshal([]byte(e.data), &s); err != nil {
		t.Fatalf("sample %q: %v", e.data, err)
	}
	if s.Held != (heldJSON{Stream: 2, WS: 1}) || s.Channels != 2 {
		t.Errorf("sample held %+v channels %d, want 2 streams, 1 WebSocket, 2 channels", s.Held, s.Channels)
	}
	if s.Totals != (statusTotals{Publishes: 1, Deliveries: 2, BackendErrors: 1}) {
		t.Errorf("sample totals %+v, want 1 publish, 2 deliveries, 1 backend error", s.Totals)
	}
	want := []channelJSON{{Name: "news", Stream: 2, Total: 2}, {Name: "room/1 <b>", WS: 1, Total: 1}}
	if len(s.Top) != 2 || s.Top[0] != want[0] || s.Top[1] != want[1] {
		t.Errorf("sample top %+v, want %+v", s.Top, want)
	}
	if s.Time <= 0 {
		t.Errorf("sample time %d", s.Time)
	}

	// The next samples follow one per event, and see a held connection leave.
	sub := f.hub.Subscribe(handoff.KindResponse, []string{"poll"})
	for {
		e = readEvent(t, r)
		if err := json.Unmarshal([]byte(e.data), &s); err != nil {
			t.Fatalf("sample %q: %v", e.data, err)
		}
		if s.Held.Response == 1 {
			break
		}
	}
	f.hub.Unsubscribe(sub)
	for s.Held.Response != 0 {
		e = readEvent(t, r)
		if err := json.Unmarshal([]byte(e.data), &s); err != nil {
			t.Fatalf("sample %q: %v", e.data, err)
		}
	}
}

func TestMakeSample(t *testing.T) {
	t0 := time.Unix(1000, 0)
	prev := statusReading{at: t0, publishes: 10, backendErrors: 1, stats: handoff.Stats{
		Delivered: 100, Slow: 1, Dropped: handoff.FormatCounts{HTTPStream: 2},
	}}
	cur := statusReading{at: t0.Add(2 * time.Second), publishes: 14, backendErrors: 2, stats: handoff.Stats{
		Delivered: 160, Slow: 2, Dropped: handoff.FormatCounts{HTTPStream: 4, WSMessage: 2},
		Responses: 1, Streams: 2, WebSockets: 3, Channels: 4,
	}}
	s := makeSample(prev, cur, nil)
	if s.PublishesPerSec != 2 || s.DeliveriesPerSec != 30 || s.DroppedPerSec != 2 || s.SlowPerSec != 0.5 || s.BackendErrorsPerSec != 0.5 {
		t.Errorf("rates %+v", s)
	}
	if s.Held != (heldJSON{Response: 1, Stream: 2, WS: 3}) || s.Channels != 4 || s.Time != t0.Add(2*time.Second).UnixMilli() {
		t.Errorf("sample %+v", s)
	}
	if s.Totals != (statusTotals{Publishes: 14, Deliveries: 160, Dropped: 6, Slow: 2, BackendErrors: 2}) {
		t.Errorf("totals %+v", s.Totals)
	}
	// No time between the readings, or a counter that went down: no rate.
	if s := makeSample(cur, cur, nil); s.PublishesPerSec != 0 || s.DeliveriesPerSec != 0 {
		t.Errorf("rates over no time: %+v", s)
	}
	if s := makeSample(cur, prev, nil); s.DeliveriesPerSec != 0 {
		t.Errorf("rate of a counter going down: %v", s.DeliveriesPerSec)
	}
	// JSON field names are what status.js reads.
	b, _ := json.Marshal(makeSample(prev, cur, nil))
	for _, field := range []string{`"t":`, `"held":{"response":1,"stream":2,"ws":3}`, `"channels":4`, `"publishes_per_s":2`,
		`"deliveries_per_s":30`, `"dropped_per_s":2`, `"slow_per_s":0.5`, `"backend_errors_per_s":0.5`, `"totals":{`, `"top":null`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("sample JSON %s lacks %s", b, field)
		}
	}
}

func TestBackendErrorsCount(t *testing.T) {
	p := newProxyMetrics()
	p.BackendRequest("r", 200, "", 0)
	p.BackendRequest("r", 404, "", 0)
	p.BackendRequest("r", 503, "", 0)
	p.BackendRequest("r", 0, proxy.FailureTimeout, 0)
	p.BackendRequest("r", 0, proxy.FailureUnreachable, 0)
	p.BackendRequest("r", 0, proxy.FailureCanceled, 0) // the client left: not the backend's fault
	if n := p.BackendErrors(); n != 3 {
		t.Errorf("backend errors %d, want 3 (a 503, a timeout, unreachable)", n)
	}
}

// waitSampler waits for the feed's sampler to have returned. The bound is
// only there so a sampler that never stops fails the test instead of
// hanging it.
func waitSampler(t *testing.T, f *statusFeed) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		f.running.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the status sampler is still running")
	}
}

// The sampler runs only while someone watches; a viewer who comes later
// gets the samples taken while others watched.
func TestStatusFeedSamplesOnlyWhileWatched(t *testing.T) {
	f := testAdmin(t, nil)
	fastStatus(f)
	feed := f.a.status

	history, samples, leave, err := feed.watch()
	if err != nil || len(history) != 0 {
		t.Fatalf("first watch: history %d, err %v", len(history), err)
	}
	var got [][]byte
	for len(got) < 3 {
		got = append(got, <-samples)
	}
	leave()
	leave() // twice is harmless
	waitSampler(t, feed)
	if _, ok := <-samples; ok {
		t.Error("the samples channel is still open after leave")
	}

	history, _, leave, err = feed.watch()
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	if len(history) < 3 || string(history[0]) != string(got[0]) || string(history[2]) != string(got[2]) {
		t.Errorf("a later viewer's history starts %d samples, want the 3 taken before first", len(history))
	}
}

// A viewer that stops reading is let go once its buffer is full; the
// others are not held up.
func TestStatusFeedDropsSlowViewer(t *testing.T) {
	f := testAdmin(t, nil)
	fastStatus(f)
	feed := f.a.status
	_, slow, leaveSlow, err := feed.watch()
	if err != nil {
		t.Fatal(err)
	}
	defer leaveSlow()
	_, fast, leaveFast, err := feed.watch()
	if err != nil {
		t.Fatal(err)
	}
	defer leaveFast()
	for range statusWatcherBuffer + 2 {
		<-fast
	}
	n := 0
	for range slow {
		n++
	}
	if n != statusWatcherBuffer {
		t.Errorf("the slow viewer got %d samples before it was let go, want its buffer's %d", n, statusWatcherBuffer)
	}
	if _, ok := <-fast; !ok {
		t.Error("the viewer that keeps up was let go too")
	}
}

// Close (gripd shutting down) ends the viewers' streams, stops the
// sampler and refuses new viewers.
func TestStatusFeedClose(t *testing.T) {
	f := testAdmin(t, nil)
	fastStatus(f)
	r := openStatusEvents(t, f.a)
	readEvent(t, r) // retry
	readEvent(t, r) // info
	readEvent(t, r) // a sample: the sampler runs
	f.a.Close()
	waitSampler(t, f.a.status)
	for {
		if _, err := r.ReadString('\n'); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("the stream ended with %v, want a clean end", err)
		}
	}
	if code, body := get(t, f.a, "GET", "/status/events"); code != http.StatusServiceUnavailable || !strings.Contains(body, "shut down") {
		t.Errorf("GET /status/events after Close: %d %q, want 503", code, body)
	}
}
