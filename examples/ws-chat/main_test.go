package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeControl stands in for gripd's control API and records each publish.
type fakeControl struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
	status int // reply status; 0 means 200
}

func newFakeControl(t *testing.T) *fakeControl {
	f := &fakeControl{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/publish/" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("publish request: %s %s Content-Type %q, want POST /publish/ application/json",
				r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		f.bodies = append(f.bodies, string(b))
		if f.status != 0 {
			w.WriteHeader(f.status)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeControl) published() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bodies...)
}

// post sends a WebSocket-over-HTTP request to the handler and returns the
// response.
func post(t *testing.T, h http.Handler, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/websocket-events")
	req.Header.Set("Connection-Id", "test-cid")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func checkEventsReply(t *testing.T, rec *httptest.ResponseRecorder, want string) {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %q", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/websocket-events" {
		t.Errorf("Content-Type %q, want exactly application/websocket-events", ct)
	}
	if ext := rec.Header().Get("Sec-WebSocket-Extensions"); ext != "grip" {
		t.Errorf("Sec-WebSocket-Extensions %q, want grip", ext)
	}
	if got := rec.Body.String(); got != want {
		t.Errorf("body\n  %q\nwant\n  %q", got, want)
	}
}

func TestOpen(t *testing.T) {
	ctl := newFakeControl(t)
	rec := post(t, handler(ctl.URL+"/publish/"), "/chat/lobby", "OPEN\r\n")
	sub := `c:{"type":"subscribe","channel":"chat-lobby"}`
	checkEventsReply(t, rec, "OPEN\r\n"+
		"TEXT 2d\r\n"+sub+"\r\n"+
		"TEXT 12\r\nm:welcome to lobby\r\n")
	if len(sub) != 0x2d || len("m:welcome to lobby") != 0x12 {
		t.Fatal("the test's lengths are wrong")
	}
	if p := ctl.published(); len(p) != 0 {
		t.Errorf("OPEN published %q, want nothing", p)
	}
}

func TestTextPublishes(t *testing.T) {
	ctl := newFakeControl(t)
	rec := post(t, handler(ctl.URL+"/publish/"), "/chat/lobby", "TEXT 5\r\nhello\r\n")
	checkEventsReply(t, rec, "")
	p := ctl.published()
	want := `{"items":[{"channel":"chat-lobby","formats":{"ws-message":{"content":"hello"}}}]}`
	if len(p) != 1 || p[0] != want {
		t.Fatalf("published %q, want one request %q", p, want)
	}
}

// Every TEXT of a burst is published, in order, in one request; quotes and
// non-ASCII survive the JSON encoding.
func TestTextBurst(t *testing.T) {
	ctl := newFakeControl(t)
	msgs := []string{`say "hi"`, "caf\u00e9 \u2713", "three"}
	var body string
	for _, m := range msgs {
		body += string(appendEvent(nil, "TEXT", []byte(m)))
	}
	rec := post(t, handler(ctl.URL+"/publish/"), "/chat/room-2", body)
	checkEventsReply(t, rec, "")
	p := ctl.published()
	if len(p) != 1 {
		t.Fatalf("%d publish requests, want 1: %q", len(p), p)
	}
	var got struct {
		Items []struct {
			Channel string
			Formats map[string]struct{ Content string }
		}
	}
	if err := json.Unmarshal([]byte(p[0]), &got); err != nil {
		t.Fatalf("published body %q: %v", p[0], err)
	}
	if len(got.Items) != len(msgs) {
		t.Fatalf("published %d items, want %d: %s", len(got.Items), len(msgs), p[0])
	}
	for i, it := range got.Items {
		if it.Channel != "chat-room-2" || it.Formats["ws-message"].Content != msgs[i] {
			t.Errorf("item %d: channel %q content %q, want chat-room-2 %q", i, it.Channel, it.Formats["ws-message"].Content, msgs[i])
		}
	}
}

// When gripd refuses the publish, only the sender hears about it and the
// connection stays up (200).
func TestPublishFails(t *testing.T) {
	ctl := newFakeControl(t)
	ctl.status = http.StatusInternalServerError
	rec := post(t, handler(ctl.URL+"/publish/"), "/chat/lobby", "TEXT 2\r\nhi\r\n")
	msg := "m:(not delivered: the chat server could not publish)"
	checkEventsReply(t, rec, string(appendEvent(nil, "TEXT", []byte(msg))))
}

func TestCloseEchoed(t *testing.T) {
	ctl := newFakeControl(t)
	h := handler(ctl.URL + "/publish/")
	// Code 1000 with a reason: the code is echoed.
	checkEventsReply(t, post(t, h, "/chat/lobby", "CLOSE 5\r\n\x03\xe8bye\r\n"), "CLOSE 2\r\n\x03\xe8\r\n")
	// Code 4001 alone.
	checkEventsReply(t, post(t, h, "/chat/lobby", "CLOSE 2\r\n\x0f\xa1\r\n"), "CLOSE 2\r\n\x0f\xa1\r\n")
	// No code.
	checkEventsReply(t, post(t, h, "/chat/lobby", "CLOSE\r\n"), "CLOSE\r\n")
}

func TestPingDisconnectEmpty(t *testing.T) {
	ctl := newFakeControl(t)
	h := handler(ctl.URL + "/publish/")
	checkEventsReply(t, post(t, h, "/chat/lobby", "PING 4\r\nabcd\r\n"), "PONG 4\r\nabcd\r\n")
	checkEventsReply(t, post(t, h, "/chat/lobby", "PING\r\n"), "PONG\r\n")
	checkEventsReply(t, post(t, h, "/chat/lobby", "DISCONNECT\r\n"), "")
	checkEventsReply(t, post(t, h, "/chat/lobby", ""), "") // keep-alive / refresh
	if p := ctl.published(); len(p) != 0 {
		t.Errorf("published %q, want nothing", p)
	}
}

func TestMalformed(t *testing.T) {
	ctl := newFakeControl(t)
	h := handler(ctl.URL + "/publish/")
	for _, body := range []string{
		"OPEN",                 // no CRLF
		"TEXT 5\r\nhi\r\n",     // content cut short
		"TEXT zz\r\nhi\r\n",    // bad length
		"TEXT 2\r\nhiXX",       // no CRLF after the content
		"open\r\n",             // lower case type
		"\r\n",                 // empty type
		"TEXT 2\r\nhi\r\nOPEN", // a good event, then a broken one
	} {
		rec := post(t, h, "/chat/lobby", body)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("body %q: status %d, want 400", body, rec.Code)
		}
	}
	if p := ctl.published(); len(p) != 0 {
		t.Errorf("malformed bodies published %q, want nothing", p)
	}
}

func TestBadRequests(t *testing.T) {
	h := handler("http://127.0.0.1:1/publish/") // never reached
	if rec := post(t, h, "/chat/", "OPEN\r\n"); rec.Code != http.StatusNotFound {
		t.Errorf("empty room: status %d, want 404", rec.Code)
	}
	if rec := post(t, h, "/chat/a%2Fb", "OPEN\r\n"); rec.Code != http.StatusNotFound {
		t.Errorf("room with a slash: status %d, want 404", rec.Code)
	}
	req := httptest.NewRequest(http.MethodPost, "/chat/lobby", strings.NewReader("OPEN\r\n"))
	req.Header.Set("Content-Type", "text/plain")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: status %d, want 415", rec.Code)
	}
}

func TestPage(t *testing.T) {
	rec := httptest.NewRecorder()
	handler("http://127.0.0.1:1/publish/").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(rec.Body.String(), `"/chat/lobby"`) {
		t.Errorf("GET /: status %d, Content-Type %q, want 200 and an HTML page that opens /chat/lobby", rec.Code, rec.Header().Get("Content-Type"))
	}
}

func TestParseEventsRoundTrip(t *testing.T) {
	in := []event{{"OPEN", nil}, {"TEXT", []byte("")}, {"BINARY", []byte("\r\n\x00")}, {"CLOSE", []byte{3, 0xe8}}}
	var b []byte
	for _, e := range in {
		b = appendEvent(b, e.typ, e.content)
	}
	out, err := parseEvents(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d events, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].typ != in[i].typ || string(out[i].content) != string(in[i].content) || (out[i].content == nil) != (in[i].content == nil) {
			t.Errorf("event %d: got %s %q, want %s %q", i, out[i].typ, out[i].content, in[i].typ, in[i].content)
		}
	}
}
