package publish

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// An item put straight on <prefix>.ch.<token> whose channel field names
// another channel is refused and counted: NATS permissions are written
// for subjects, so the subject must be the item's channel.
func TestNATSItemWhoseChannelIsNotItsSubjectIsRefused(t *testing.T) {
	ns := startNATS(t)
	b, hub := newTestBroker(t, ns.ClientURL(), time.Minute)
	sub := hub.Subscribe(handoff.KindStream, []string{"open"})
	defer hub.Unsubscribe(sub)

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	item := func(channel, content string) []byte {
		data, err := grip.MarshalItem(streamItem(channel, content))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	// Claims channel "secret" on open's subject, then a good one.
	if err := nc.Publish(ChannelSubject("gripd", "open"), item("secret", "spoofed")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(ChannelSubject("gripd", "open"), item("open", "good")); err != nil {
		t.Fatal(err)
	}
	if got := recvItem(t, sub); string(got.HTTPStream.Content) != "good" || got.Channel != "open" {
		t.Fatalf("first item delivered: %q on %q, want the good one", got.HTTPStream.Content, got.Channel)
	}
	if n := b.RefusedMessages(); n != 1 {
		t.Fatalf("RefusedMessages = %d, want 1", n)
	}
}

// A publish body on <prefix>.publish larger than the control API's limit
// is refused before it is parsed, with the control API's words.
func TestNATSPublishBodyOverLimitIsRefused(t *testing.T) {
	ns := startNATS(t)
	b, _ := newTestBroker(t, ns.ClientURL(), time.Minute)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	content := strings.Repeat("x", DefaultMaxBodyBytes)
	body := []byte(`{"items":[{"channel":"c","formats":{"http-stream":{"content":"` + content + `"}}}]}`)
	msg, err := nc.Request(PublishSubject("gripd"), body, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg.Data, []byte("Request body too large.")) {
		t.Fatalf("answer %q, want Request body too large.", msg.Data)
	}
	if b.RefusedMessages() != 1 {
		t.Fatalf("RefusedMessages = %d, want 1", b.RefusedMessages())
	}
}
