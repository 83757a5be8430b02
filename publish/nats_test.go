package publish

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/testutil"
)

func newTestBroker(t *testing.T, url string, linger time.Duration) (*NATSBroker, *handoff.Hub) {
	t.Helper()
	hub := handoff.NewHub(handoff.Config{})
	b, err := NewNATSBroker(NATSConfig{URL: url, Linger: linger}, hub, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(); hub.Close() })
	return b, hub
}

func streamItem(channel, content string) grip.Item {
	return grip.Item{Channel: channel, HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte(content)}}
}

func recvItem(t *testing.T, sub *handoff.Subscriber) *grip.Item {
	t.Helper()
	select {
	case it := <-sub.C():
		return it
	case <-time.After(5 * time.Second):
		t.Fatal("no item arrived")
	}
	return nil
}

// An item published through any instance reaches the subscribers of every
// instance exactly once, in publish order.
func TestNATSBrokerFanOut(t *testing.T) {
	ns := testutil.StartNATS(t)
	a, hubA := newTestBroker(t, ns.ClientURL(), time.Minute)
	b, hubB := newTestBroker(t, ns.ClientURL(), time.Minute)
	channel := "room.1 *>" // needs the encoded subject form
	subA := hubA.Subscribe(handoff.KindStream, []string{channel})
	defer hubA.Unsubscribe(subA)
	subB := hubB.Subscribe(handoff.KindStream, []string{channel})
	defer hubB.Unsubscribe(subB)

	ctx := context.Background()
	if err := a.Publish(ctx, []grip.Item{streamItem(channel, "1"), streamItem(channel, "2")}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, []grip.Item{streamItem(channel, "3")}); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []*handoff.Subscriber{subA, subB} {
		for _, want := range []string{"1", "2", "3"} {
			if got := string(recvItem(t, sub).HTTPStream.Content); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		select {
		case it := <-sub.C():
			t.Fatalf("extra item %q", it.HTTPStream.Content)
		case <-time.After(50 * time.Millisecond): // nothing more may come; no signal exists for "nothing"
		}
	}
}

// The publish subject takes a whole publish body; one instance of the
// queue group handles it, so it is delivered once.
func TestNATSBrokerDirectPublish(t *testing.T) {
	ns := testutil.StartNATS(t)
	_, hubA := newTestBroker(t, ns.ClientURL(), time.Minute)
	_, _ = newTestBroker(t, ns.ClientURL(), time.Minute)
	sub := hubA.Subscribe(handoff.KindStream, []string{"news"})
	defer hubA.Unsubscribe(sub)

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	reply, err := nc.Request(PublishSubject("gripd"), []byte(`{"items":[{"channel":"news","formats":{"http-stream":{"content":"hello"}}}]}`), 5*time.Second)
	if err != nil || string(reply.Data) != "Published" {
		t.Fatalf("reply %v, %v", reply, err)
	}
	if got := string(recvItem(t, sub).HTTPStream.Content); got != "hello" {
		t.Fatalf("got %q", got)
	}
	reply, err = nc.Request(PublishSubject("gripd"), []byte(`{}`), 5*time.Second)
	if err != nil || string(reply.Data) != "Invalid format: object does not contain 'items'" {
		t.Fatalf("bad body: reply %q, %v", reply.Data, err)
	}
	// A publisher may also use a channel subject with one item.
	if err := nc.Publish(ChannelSubject("gripd", "news"), []byte(`{"channel":"news","formats":{"http-stream":{"content":"direct"}}}`)); err != nil {
		t.Fatal(err)
	}
	if got := string(recvItem(t, sub).HTTPStream.Content); got != "direct" {
		t.Fatalf("got %q", got)
	}
}

// An instance is subscribed to a channel's subject only while it has
// subscribers for it, plus the linger.
func TestNATSBrokerInterest(t *testing.T) {
	ns := testutil.StartNATS(t)
	b, hub := newTestBroker(t, ns.ClientURL(), 50*time.Millisecond)
	if n := b.NATSSubscriptions(); n != 0 {
		t.Fatalf("%d subscriptions before any client", n)
	}
	s1 := hub.Subscribe(handoff.KindStream, []string{"x", "y"})
	s2 := hub.Subscribe(handoff.KindStream, []string{"x"})
	if n := b.NATSSubscriptions(); n != 2 {
		t.Fatalf("%d subscriptions, want 2", n)
	}
	hub.Unsubscribe(s1)
	hub.Unsubscribe(s2)
	if n := b.NATSSubscriptions(); n != 2 {
		t.Fatalf("%d subscriptions right after the clients left, want 2 (linger)", n)
	}
	// A client back within the linger keeps the subscription.
	s3 := hub.Subscribe(handoff.KindStream, []string{"x"})
	testutil.WaitFor(t, "one subscription left after the linger", func() bool { return b.NATSSubscriptions() == 1 })
	hub.Unsubscribe(s3)
}

// With NATS gone, a publish fails (the control API answers 503) instead
// of being acknowledged and lost.
func TestNATSBrokerPublishFailsWhileDisconnected(t *testing.T) {
	ns := testutil.StartNATS(t)
	b, _ := newTestBroker(t, ns.ClientURL(), time.Minute)
	ns.Shutdown()
	ns.WaitForShutdown()
	testutil.WaitFor(t, "the broker to see NATS gone", func() bool { return !b.Connected() })
	if err := b.Publish(context.Background(), []grip.Item{streamItem("c", "x")}); err == nil {
		t.Fatal("publish acknowledged while NATS is down")
	}
}

// Sequencing runs in each instance's hub, on what NATS brings it: every
// instance of a fleet puts the same items in the same order and drops
// the same repeats.
func TestNATSBrokerSequencingAgreesAcrossInstances(t *testing.T) {
	ns := testutil.StartNATS(t)
	a, hubA := newTestBroker(t, ns.ClientURL(), time.Minute)
	_, hubB := newTestBroker(t, ns.ClientURL(), time.Minute)
	subA := hubA.Subscribe(handoff.KindStream, []string{"seq"})
	defer hubA.Unsubscribe(subA)
	subB := hubB.Subscribe(handoff.KindStream, []string{"seq"})
	defer hubB.Unsubscribe(subB)
	item := func(id, prev string) grip.Item {
		it := streamItem("seq", id)
		it.ID, it.PrevID = id, prev
		return it
	}
	ctx := context.Background()
	// 3 overtakes 2; 1 is published twice.
	for _, batch := range [][]grip.Item{{item("1", "")}, {item("3", "2")}, {item("1", "")}, {item("2", "1")}, {item("4", "3")}} {
		if err := a.Publish(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	for name, sub := range map[string]*handoff.Subscriber{"A": subA, "B": subB} {
		for _, want := range []string{"1", "2", "3", "4"} {
			if got := string(recvItem(t, sub).HTTPStream.Content); got != want {
				t.Fatalf("instance %s: got %q, want %q", name, got, want)
			}
		}
	}
	for name, hub := range map[string]*handoff.Hub{"A": hubA, "B": hubB} {
		if st := hub.Stats().Sequence; st.Duplicates != 1 || st.Waited != 1 {
			t.Errorf("instance %s: sequencing %+v, want 1 duplicate and 1 waited", name, st)
		}
	}
}
