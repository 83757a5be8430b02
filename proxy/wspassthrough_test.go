package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/internal/testutil"
)

// A WebSocket backend that accepts the GRIP extension subscribes the
// connection in-band; published messages then reach the client, and the
// backend's own messages arrive with the m: prefix stripped.
func TestPassthroughWebSocketWithGripExtension(t *testing.T) {
	gotExt := make(chan string, 1)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotExt <- r.Header.Get("Sec-WebSocket-Extensions")
		w.Header().Set("Sec-WebSocket-Extensions", "grip")
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		c.Write(ctx, websocket.MessageText, []byte(`c:{"type":"subscribe","channel":"pt"}`))
		c.Write(ctx, websocket.MessageText, []byte("m:ready"))
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			c.Write(ctx, typ, append([]byte("m:echo "), msg...))
		}
	}))
	t.Cleanup(func() { b.CloseClientConnections(); b.Close() })
	f := newFixture(t, []string{b.URL}, fixtureOpts{})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.proxy.URL, "http")+"/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if ext := <-gotExt; ext != "grip" {
		t.Errorf("backend was offered extensions %q, want grip", ext)
	}
	read := func(want string) {
		t.Helper()
		_, msg, err := c.Read(ctx)
		if err != nil || string(msg) != want {
			t.Fatalf("got %q (%v), want %q", msg, err, want)
		}
	}
	read("ready")
	c.Write(ctx, websocket.MessageText, []byte("hi"))
	read("echo hi")
	testutil.WaitSubscribers(t, f.hub, "pt", 1)
	f.hub.Deliver([]grip.Item{{Channel: "pt", WSMessage: &grip.WSMessageFormat{Action: grip.ActionSend, Type: "text", Content: []byte("published")}}})
	read("published")
	c.Close(websocket.StatusNormalClosure, "")
	testutil.WaitSubscribers(t, f.hub, "pt", 0)
}
