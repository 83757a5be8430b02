package publish

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/testutil"
)

// An item put straight on <prefix>.ch.<token> whose channel field names
// another channel is refused and counted: NATS permissions are written
// for subjects, so the subject must be the item's channel.
func TestNATSItemWhoseChannelIsNotItsSubjectIsRefused(t *testing.T) {
	ns := testutil.StartNATS(t)
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
	ns := testutil.StartNATS(t)
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

// nats.url clients log in with a user and password or a token.
func TestNATSBrokerCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts server.Options
		cfg  NATSConfig
	}{
		{"user and password", server.Options{Username: "gripd", Password: "pw"}, NATSConfig{User: "gripd", Password: "pw"}},
		{"token", server.Options{Authorization: "tok"}, NATSConfig{Token: "tok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := testutil.StartNATSWith(t, tc.opts)
			hub := handoff.NewHub(handoff.Config{})
			defer hub.Close()
			cfg := tc.cfg
			cfg.URL = ns.ClientURL()
			b, err := NewNATSBroker(cfg, hub, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := b.Publish(context.Background(), []grip.Item{streamItem("c", "x")}); err != nil {
				t.Fatalf("publish with credentials: %v", err)
			}
			// Without them the server refuses the connection.
			nc, err := nats.Connect(ns.ClientURL())
			if err == nil {
				nc.Close()
				t.Fatal("connected without credentials")
			}
		})
	}
}
