package proxy

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/testutil"
)

// Tests of Limits: what a client sees when each one is hit, and when it
// is not.

// onlyReader hides a reader's length, so the client sends it chunked.
type onlyReader struct{ io.Reader }

func TestRequestBodyLimit(t *testing.T) {
	const limit = 1000
	tests := []struct {
		name       string
		size       int
		chunked    bool
		wantStatus int
	}{
		{"content-length at the limit", limit, false, http.StatusOK},
		{"content-length over the limit", limit + 1, false, http.StatusRequestEntityTooLarge},
		{"chunked at the limit", limit, true, http.StatusOK},
		{"chunked over the limit", 50 * limit, true, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests, wholeBodies atomic.Int64
			b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				body, err := io.ReadAll(r.Body)
				if err == nil && len(body) == tt.size {
					wholeBodies.Add(1)
				}
				io.WriteString(w, "got "+strconv.Itoa(len(body)))
			})
			f := newFixture(t, []string{b.URL}, fixtureOpts{limits: Limits{MaxRequestBody: limit}})
			var body io.Reader = strings.NewReader(strings.Repeat("x", tt.size))
			if tt.chunked {
				body = onlyReader{body}
			}
			req, err := http.NewRequest(http.MethodPost, f.proxy.URL+"/upload", body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, resp)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, got, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusOK {
				if got != "got "+strconv.Itoa(tt.size) {
					t.Fatalf("backend answered %q", got)
				}
				return
			}
			if got != "Request body must not exceed 1000 bytes.\n" {
				t.Errorf("413 body %q", got)
			}
			// Every backend handler has returned once the backend is closed.
			b.CloseClientConnections()
			b.Close()
			if !tt.chunked && requests.Load() != 0 {
				t.Errorf("the backend was contacted for a Content-Length over the limit")
			}
			if wholeBodies.Load() != 0 {
				t.Errorf("the backend got the whole oversize body")
			}
		})
	}
}

// A WebSocket upgrade is not a body: the body limit does not touch it.
func TestRequestBodyLimitSparesWebSockets(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(), nil))
	f := newWSFixtureWith(t, b, fixtureOpts{limits: Limits{MaxRequestBody: 10}})
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/", nil)
	msg := strings.Repeat("m", 100)
	write(t, ctx, c, websocket.MessageText, msg)
	readMsg(t, ctx, c, websocket.MessageText, msg)
}

func TestInstructBodyLimit(t *testing.T) {
	const limit = 200
	instruct := func(size int) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", grip.InstructContentType)
			prefix := `{"response":{"body":"`
			io.WriteString(w, prefix+strings.Repeat("b", size-len(prefix)-3)+`"}}`)
		}
	}
	timeoutBody := func(size int) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Grip-Hold", "response")
			w.Header().Set("Grip-Channel", "never")
			w.Header().Set("Transfer-Encoding", "chunked") // not sized by sizeSmallBody
			io.WriteString(w, strings.Repeat("t", size))
		}
	}
	tests := []struct {
		name       string
		backend    func(w http.ResponseWriter)
		wantStatus int
	}{
		{"instruct body at the limit", instruct(limit), http.StatusOK},
		{"instruct body over the limit", instruct(limit + 1), http.StatusBadGateway},
		{"long-poll timeout body over the limit", timeoutBody(limit + 1), http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { tt.backend(w) })
			var logs testutil.Buffer
			f := newFixture(t, []string{b.URL}, fixtureOpts{limits: Limits{MaxInstructBody: limit}, log: &logs})
			resp := get(t, f.proxy.URL+"/", nil)
			body := readAll(t, resp)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusBadGateway {
				return
			}
			if body != "Error while proxying to origin.\n" {
				t.Errorf("body %q", body)
			}
			line := logs.WaitLogLine(t, "bad GRIP instruction from backend")
			if e, _ := line["error"].(string); !strings.Contains(e, "limits.max_instruct_body") {
				t.Errorf("log line does not name the limit: %v", line)
			}
		})
	}
}

// Channels per hold: at the limit the hold works; over it the client gets
// 502 and the log says why. SetLimits changes the limit for the next
// request.
func TestChannelsPerHoldLimit(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Grip-Hold", "stream")
		w.Header().Set("Grip-Channel", "a, b, c")
		io.WriteString(w, "held\n")
	})
	var logs testutil.Buffer
	f := newFixture(t, []string{b.URL}, fixtureOpts{limits: Limits{MaxChannels: 3}, log: &logs})

	resp := get(t, f.proxy.URL+"/", nil)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if resp.StatusCode != http.StatusOK || line != "held\n" {
		t.Fatalf("at the limit: %d %q %v", resp.StatusCode, line, err)
	}
	testutil.WaitSubscribers(t, f.hub, "c", 1)
	resp.Body.Close()

	f.srv.SetLimits(Limits{MaxChannels: 2})
	if got := f.srv.Limits().MaxChannels; got != 2 {
		t.Fatalf("Limits().MaxChannels = %d after SetLimits", got)
	}
	resp = get(t, f.proxy.URL+"/", nil)
	if resp.StatusCode != http.StatusBadGateway {
		resp.Body.Close() // a held stream would never end
		t.Fatalf("over the limit: status %d, want 502", resp.StatusCode)
	}
	if body := readAll(t, resp); body != "Error while proxying to origin.\n" {
		t.Fatalf("over the limit: body %q", body)
	}
	entry := logs.WaitLogLine(t, "bad GRIP instruction from backend")
	if e, _ := entry["error"].(string); !strings.Contains(e, "3 channels") || !strings.Contains(e, "limits.max_channels (2)") {
		t.Errorf("log line: %v", entry)
	}
}

// A WebSocket subscribe beyond the limit is refused and logged; the
// connection stays open with the subscriptions it had.
func TestChannelsPerWebSocketLimit(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(
		wsControl(`{"type":"subscribe","channel":"a"}`),
		wsControl(`{"type":"subscribe","channel":"b"}`),
		wsControl(`{"type":"subscribe","channel":"a"}`), // already in: not a new channel
		wsControl(`{"type":"subscribe","channel":"c"}`),
		wsText("m:ready"),
	), nil))
	var logs testutil.Buffer
	f := newWSFixtureWith(t, b, fixtureOpts{limits: Limits{MaxChannels: 2}, log: &logs})
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/", nil)
	readMsg(t, ctx, c, websocket.MessageText, "ready") // the subscribes before it are done

	ws := func(ch, content string) grip.Item {
		return grip.Item{Channel: ch, WSMessage: &grip.WSMessageFormat{Type: "text", Content: []byte(content)}}
	}
	f.hub.Deliver([]grip.Item{ws("c", "to c"), ws("b", "to b")})
	readMsg(t, ctx, c, websocket.MessageText, "to b")
	if n := f.hub.SubscriberCount("c"); n != 0 {
		t.Errorf("channel c has %d subscribers, want 0", n)
	}
	line := logs.WaitLogLine(t, "WebSocket subscribe refused: limits.max_channels reached")
	if line["channel"] != "c" {
		t.Errorf("log line: %v", line)
	}
	// Still open both ways.
	write(t, ctx, c, websocket.MessageText, "still here")
	readMsg(t, ctx, c, websocket.MessageText, "still here")
}

// A client message over the limit closes the client with 1009 (message
// too big) and the session ends; one at the limit goes through.
func TestWebSocketMessageLimit(t *testing.T) {
	const limit = 1000
	b := newWSBackend(t, gripEcho(gripOpen(), nil))
	f := newWSFixtureWith(t, b, fixtureOpts{limits: Limits{MaxWSMessage: limit}})
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/", nil)
	c.SetReadLimit(-1)

	atLimit := strings.Repeat("a", limit)
	write(t, ctx, c, websocket.MessageText, atLimit)
	readMsg(t, ctx, c, websocket.MessageText, atLimit)

	write(t, ctx, c, websocket.MessageBinary, strings.Repeat("o", limit+1))
	_, _, err := c.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusMessageTooBig {
		t.Fatalf("read error %v (close status %d), want close 1009", err, code)
	}
	waitSessions(t, f.hub, 0)
}

func TestLimitsDefaults(t *testing.T) {
	want := Limits{MaxRequestBody: 10 << 20, MaxInstructBody: 100000, MaxChannels: 100, MaxWSMessage: 1000000,
		ReadBodyTimeout: time.Minute, BackendQueueTimeout: 5 * time.Second, MaxLinksWithoutHold: 1000, LinkInterval: 100 * time.Millisecond,
		WSMessageTimeout: 30 * time.Second, WSPartialBudget: 64 << 20}
	if got := DefaultLimits(); got != want {
		t.Errorf("DefaultLimits() = %+v, want %+v", got, want)
	}
	// Zero fields take defaults; set ones are kept.
	if got := (Limits{MaxChannels: 7}).WithDefaults(); got.MaxChannels != 7 || got.MaxRequestBody != want.MaxRequestBody {
		t.Errorf("WithDefaults kept %+v", got)
	}
	hub := handoff.NewHub(handoff.Config{})
	defer hub.Close()
	srv, err := NewServer(Config{Table: &Table{}, Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Limits() != want {
		t.Errorf("a Server without Limits has %+v", srv.Limits())
	}
}
