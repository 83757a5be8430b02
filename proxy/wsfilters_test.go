package proxy

import (
	"testing"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/internal/testutil"
)

func wsItem(channel, sender, content string) grip.Item {
	return grip.Item{Channel: channel, Meta: map[string]string{"sender": sender},
		WSMessage: &grip.WSMessageFormat{Action: grip.ActionSend, Type: "text", Content: []byte(content)}}
}

func TestWebSocketFiltersReadSetMeta(t *testing.T) {
	b := newWSBackend(t, gripEcho(gripOpen(
		wsControl(`{"type":"set-meta","name":"user","value":"alice"}`),
		wsControl(`{"type":"subscribe","channel":"room","filters":["skip-self","var-subst"]}`),
		wsControl(`{"type":"subscribe","channel":"plain"}`),
	), map[string]wsReply{
		"rename": {Events: []grip.WSEvent{wsControl(`{"type":"set-meta","name":"user","value":"bob"}`), wsText("m:renamed")}},
	}))
	f := newWSFixture(t, b, Route{})
	ctx := testutil.Context(t)
	c, _ := dialWS(t, ctx, f, "/", nil)
	b.next(t) // OPEN
	testutil.WaitSubscribers(t, f.hub, "plain", 1)

	f.hub.Deliver([]grip.Item{
		wsItem("room", "alice", "my own line"),
		wsItem("room", "carol", "hi %(user)s"),
		wsItem("room", "carol", "hi %(nobody)s"), // a filter error drops it
		wsItem("plain", "alice", "unfiltered %(user)s"),
	})
	readMsg(t, ctx, c, websocket.MessageText, "hi alice")
	readMsg(t, ctx, c, websocket.MessageText, "unfiltered %(user)s")

	// set-meta later changes what the filters read.
	write(t, ctx, c, websocket.MessageText, "rename")
	readMsg(t, ctx, c, websocket.MessageText, "renamed")
	f.hub.Deliver([]grip.Item{wsItem("room", "alice", "from alice"), wsItem("room", "bob", "from bob")})
	readMsg(t, ctx, c, websocket.MessageText, "from alice")
	f.hub.Deliver([]grip.Item{wsItem("plain", "x", "end")})
	readMsg(t, ctx, c, websocket.MessageText, "end")
}
