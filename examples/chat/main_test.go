package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// controlAPI is a stand-in for gripd's control API: it records each
// publish body and answers with status.
type controlAPI struct {
	mu     sync.Mutex
	bodies []string
	status int
}

func newControlAPI(t *testing.T, status int) (*controlAPI, string) {
	c := &controlAPI{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.bodies = append(c.bodies, string(b))
		c.mu.Unlock()
		w.WriteHeader(c.status)
		io.WriteString(w, "Published\n")
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL + "/publish/"
}

func (c *controlAPI) published() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bodies...)
}

func do(t *testing.T, h http.Handler, method, target, contentType, body string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPage(t *testing.T) {
	h := newApp("http://127.0.0.1:1/publish/").routes()
	for path, want := range map[string]string{
		"/":         `<script src="chat.js">`,
		"/chat.js":  `new EventSource(`,
		"/chat.css": `.via-ws`,
	} {
		resp := do(t, h, http.MethodGet, path, "", "")
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: status %d, body without %q", path, resp.StatusCode, want)
		}
	}
}

// The page has an icon: a browser asks for the one it links, anything else
// for /favicon.ico; neither is a 404.
func TestFavicon(t *testing.T) {
	h := newApp("http://127.0.0.1:1/publish/").routes()
	if page := readBody(t, do(t, h, http.MethodGet, "/", "", "")); !strings.Contains(page, `<link rel="icon" href="favicon.svg"`) {
		t.Errorf("the page links no favicon.svg")
	}
	for _, path := range []string{"/favicon.svg", "/favicon.ico"} {
		resp := do(t, h, http.MethodGet, path, "", "")
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "image/svg+xml" {
			t.Errorf("GET %s: status %d, Content-Type %q, want 200 image/svg+xml", path, resp.StatusCode, ct)
		}
	}
}

func TestEventsHold(t *testing.T) {
	h := newApp("http://127.0.0.1:1/publish/").routes()
	resp := do(t, h, http.MethodGet, "/events?room=team-1", "", "")
	want := map[string]string{
		"Grip-Hold":       "stream",
		"Grip-Channel":    "room:team-1",
		"Grip-Keep-Alive": `:\n\n; format=cstring; timeout=20`,
		"Content-Type":    "text/event-stream",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if body := readBody(t, resp); body != "retry: 2000\n: connected to team-1\n\n" {
		t.Errorf("initial body %q", body)
	}
}

func TestPollHold(t *testing.T) {
	h := newApp("http://127.0.0.1:1/publish/").routes()
	resp := do(t, h, http.MethodGet, "/poll", "", "") // no room: the lobby
	for k, v := range map[string]string{"Grip-Hold": "response", "Grip-Channel": "room:lobby", "Grip-Timeout": "25"} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if body := readBody(t, resp); body != "{\"messages\":[]}\n" {
		t.Errorf("timeout response body %q", body)
	}
}

func TestBadRoom(t *testing.T) {
	h := newApp("http://127.0.0.1:1/publish/").routes()
	for _, target := range []string{"/events?room=a,b", "/poll?room=a%3Bb", "/send?room=a%20b&via=sse"} {
		method := http.MethodGet
		if strings.HasPrefix(target, "/send") {
			method = http.MethodPost
		}
		if resp := do(t, h, method, target, "application/json", `{"from":"a","text":"b"}`); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s %s: status %d, want 400", method, target, resp.StatusCode)
		}
	}
}

// A message sent by an SSE or long-poll window is published once, in all
// three formats, to the room's channel.
func TestSendPublishesAllFormats(t *testing.T) {
	api, url := newControlAPI(t, http.StatusOK)
	h := newApp(url).routes()
	resp := do(t, h, http.MethodPost, "/send?room=lobby&via=poll", "application/json", `{"from":" ann ","text":"hi <b>&</b>"}`)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204; body %q", resp.StatusCode, readBody(t, resp))
	}
	bodies := api.published()
	if len(bodies) != 1 {
		t.Fatalf("%d publishes, want 1", len(bodies))
	}
	var got struct {
		Items []struct {
			Channel string `json:"channel"`
			Formats struct {
				HTTPStream   struct{ Content string } `json:"http-stream"`
				HTTPResponse struct{ Body string }    `json:"http-response"`
				WSMessage    struct{ Content string } `json:"ws-message"`
			} `json:"formats"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(bodies[0]), &got); err != nil || len(got.Items) != 1 {
		t.Fatalf("publish body %s: %v", bodies[0], err)
	}
	it := got.Items[0]
	if it.Channel != "room:lobby" {
		t.Errorf("channel %q", it.Channel)
	}
	var msg message
	if err := json.Unmarshal([]byte(it.Formats.WSMessage.Content), &msg); err != nil {
		t.Fatalf("ws-message content %q: %v", it.Formats.WSMessage.Content, err)
	}
	if msg.From != "ann" || msg.Text != "hi <b>&</b>" || msg.Via != "poll" || msg.At == "" {
		t.Errorf("message %+v", msg)
	}
	data := it.Formats.WSMessage.Content
	if want := "data: " + data + "\n\n"; it.Formats.HTTPStream.Content != want {
		t.Errorf("http-stream content %q, want %q", it.Formats.HTTPStream.Content, want)
	}
	if want := `{"messages":[` + data + "]}\n"; it.Formats.HTTPResponse.Body != want {
		t.Errorf("http-response body %q, want %q", it.Formats.HTTPResponse.Body, want)
	}
}

func TestSendRefuses(t *testing.T) {
	api, url := newControlAPI(t, http.StatusOK)
	h := newApp(url).routes()
	for _, tc := range []struct{ target, body string }{
		{"/send?room=lobby", `{"from":"a","text":"b"}`},        // no via
		{"/send?room=lobby&via=ws", `{"from":"a","text":"b"}`}, // ws windows use their socket
		{"/send?via=sse", `{"from":"","text":"b"}`},
		{"/send?via=sse", `{"from":"a","text":"   "}`},
		{"/send?via=sse", `{"from":"a","text":"` + strings.Repeat("x", 501) + `"}`},
		{"/send?via=sse", `not json`},
		{"/send?via=sse", `{"from":"a","text":"` + strings.Repeat("x", maxSendBytes) + `"}`},
	} {
		if resp := do(t, h, http.MethodPost, tc.target, "application/json", tc.body); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s %.40q: status %d, want 400", tc.target, tc.body, resp.StatusCode)
		}
	}
	if n := len(api.published()); n != 0 {
		t.Errorf("%d publishes for refused messages", n)
	}
}

func TestSendControlAPIDown(t *testing.T) {
	_, url := newControlAPI(t, http.StatusServiceUnavailable)
	h := newApp(url).routes()
	resp := do(t, h, http.MethodPost, "/send?via=sse", "application/json", `{"from":"a","text":"b"}`)
	if body := readBody(t, resp); resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "503") {
		t.Errorf("status %d body %q, want 502 naming the control API's 503", resp.StatusCode, body)
	}
}

func TestWebSocketOpen(t *testing.T) {
	h := newApp("http://127.0.0.1:1/publish/").routes()
	resp := do(t, h, http.MethodPost, "/ws?room=lobby", eventsType, "OPEN\r\n")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != eventsType || resp.Header.Get("Sec-WebSocket-Extensions") != "grip" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	sub := `c:{"type":"subscribe","channel":"room:lobby"}`
	welcome := `m:{"notice":"connected to lobby"}`
	want := "OPEN\r\n" +
		"TEXT " + hex(len(sub)) + "\r\n" + sub + "\r\n" +
		"TEXT " + hex(len(welcome)) + "\r\n" + welcome + "\r\n"
	if body := readBody(t, resp); body != want {
		t.Errorf("reply\n %q\nwant\n %q", body, want)
	}
}

func TestWebSocketText(t *testing.T) {
	api, url := newControlAPI(t, http.StatusOK)
	h := newApp(url).routes()
	msg := `{"from":"bo","text":"yo"}`
	body := "TEXT " + hex(len(msg)) + "\r\n" + msg + "\r\n" + "PING 2\r\nhi\r\n" + "TEXT 3\r\nbad\r\n"
	resp := do(t, h, http.MethodPost, "/ws?room=x", eventsType, body)
	reply := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, reply)
	}
	notice := `m:{"notice":"not sent: want JSON {\"from\": \"your name\", \"text\": \"...\"}"}`
	if want := "PONG 2\r\nhi\r\nTEXT " + hex(len(notice)) + "\r\n" + notice + "\r\n"; reply != want {
		t.Errorf("reply\n %q\nwant\n %q", reply, want)
	}
	bodies := api.published()
	if len(bodies) != 1 || !strings.Contains(bodies[0], `"channel":"room:x"`) || !strings.Contains(bodies[0], `\"via\":\"ws\"`) {
		t.Errorf("publishes %q, want one to room:x via ws", bodies)
	}
}

func TestWebSocketClose(t *testing.T) {
	h := newApp("http://127.0.0.1:1/publish/").routes()
	resp := do(t, h, http.MethodPost, "/ws", eventsType, "CLOSE 5\r\n\x03\xe8bye\r\n")
	if body := readBody(t, resp); body != "CLOSE 2\r\n\x03\xe8\r\n" {
		t.Errorf("reply %q, want the close code echoed", body)
	}
	if resp := do(t, h, http.MethodPost, "/ws", "text/plain", "OPEN\r\n"); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("plain POST to /ws: status %d, want 415", resp.StatusCode)
	}
}

func hex(n int) string { return strconv.FormatInt(int64(n), 16) }
