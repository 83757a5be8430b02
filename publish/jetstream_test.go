package publish

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/testutil"
)

// startJetStream starts an embedded NATS server with JetStream on a
// random port, storing in a temporary directory.
func startJetStream(t testing.TB) *server.Server {
	t.Helper()
	return testutil.StartNATSWith(t, server.Options{JetStream: true, StoreDir: t.TempDir()})
}

// newHistoryBroker is an instance with history on: its broker, hub and
// history. Its hub does not de-duplicate ids, so what the tests see is
// what JetStream did.
func newHistoryBroker(t *testing.T, url string, cfg HistoryConfig) (*NATSBroker, *handoff.Hub, *JetStreamHistory) {
	t.Helper()
	hub := handoff.NewHub(handoff.Config{Sequencing: handoff.SequenceConfig{IDTTL: -1}})
	b, err := NewNATSBroker(NATSConfig{URL: url, Linger: time.Minute}, hub, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(); hub.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := b.EnableHistory(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b, hub, h
}

func idItem(channel, id string) grip.Item {
	it := streamItem(channel, id)
	it.ID = id
	return it
}

func mustPublish(t *testing.T, b *NATSBroker, items ...grip.Item) {
	t.Helper()
	if err := b.Publish(context.Background(), items); err != nil {
		t.Fatal(err)
	}
}

// The fact behind RePublish: JetStream drops a repeated Nats-Msg-Id from
// the stream, but NATS still delivers the message to core subscribers of
// the subject the stream captures. Republished, only the stored copy
// goes out.
func TestJetStreamDuplicatesReachCoreSubscribers(t *testing.T) {
	ns := startJetStream(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "captured", Subjects: []string{"cap.*"}, Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "republished", Subjects: []string{"in.*"}, Duplicates: time.Minute,
		RePublish: &jetstream.RePublish{Source: "in.*", Destination: "out.{{wildcard(1)}}"}}); err != nil {
		t.Fatal(err)
	}
	captured, _ := nc.SubscribeSync("cap.x")
	republished, _ := nc.SubscribeSync("out.x")
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		for _, subject := range []string{"cap.x", "in.x"} {
			m := &nats.Msg{Subject: subject, Data: []byte("once"), Header: nats.Header{jetstream.MsgIDHeader: []string{"id-1"}}}
			ack, err := js.PublishMsg(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			if ack.Duplicate != (i == 1) {
				t.Fatalf("%s, publish %d: ack.Duplicate = %v", subject, i+1, ack.Duplicate)
			}
		}
	}
	// A marker after the repeats: whatever came before it has arrived.
	for _, subject := range []string{"cap.x", "in.x"} {
		if _, err := js.Publish(ctx, subject, []byte("marker")); err != nil {
			t.Fatal(err)
		}
	}
	received := func(sub *nats.Subscription) []string {
		var got []string
		for {
			m, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("%s: %v after %q", sub.Subject, err, got)
			}
			got = append(got, string(m.Data))
			if string(m.Data) == "marker" {
				return got
			}
		}
	}
	if got := strings.Join(received(captured), ","); got != "once,once,marker" {
		t.Errorf("core subscriber of the captured subject got %s; the fact this design rests on changed", got)
	}
	if got := strings.Join(received(republished), ","); got != "once,marker" {
		t.Errorf("subscriber of the republished subject got %s, want once,marker", got)
	}
}

// A publisher that repeats an item (same channel and id) reaches every
// instance's clients once; the same id on another channel is another
// item.
func TestHistoryPublishIsExactlyOnce(t *testing.T) {
	ns := startJetStream(t)
	a, _, _ := newHistoryBroker(t, ns.ClientURL(), HistoryConfig{})
	b, hubB, _ := newHistoryBroker(t, ns.ClientURL(), HistoryConfig{})
	sub := hubB.Subscribe(handoff.KindStream, []string{"c", "d"})
	defer hubB.Unsubscribe(sub)

	mustPublish(t, a, idItem("c", "1"), idItem("c", "2"))
	mustPublish(t, b, idItem("c", "2")) // the retry, through another instance
	mustPublish(t, a, idItem("d", "2"), idItem("c", "3"))
	var got []string
	var seqs []uint64
	for len(got) < 4 {
		it := recvItem(t, sub)
		got = append(got, it.Channel+it.ID)
		seqs = append(seqs, it.Seq)
	}
	if strings.Join(got, ",") != "c1,c2,d2,c3" {
		t.Fatalf("got %v, want c1,c2,d2,c3", got)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] || seqs[0] == 0 {
			t.Fatalf("live items carry history positions %v, want increasing", seqs)
		}
	}
}

func TestEnableHistoryWithoutJetStream(t *testing.T) {
	ns := testutil.StartNATS(t)
	hub := handoff.NewHub(handoff.Config{})
	defer hub.Close()
	b, err := NewNATSBroker(NATSConfig{URL: ns.ClientURL()}, hub, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = b.EnableHistory(ctx, HistoryConfig{})
	if err == nil || !strings.Contains(err.Error(), "history needs JetStream") || !strings.Contains(err.Error(), "-js") {
		t.Fatalf("err %v, want one that says history needs JetStream and how to turn it on", err)
	}
	// Publishing still works, without history.
	sub := hub.Subscribe(handoff.KindStream, []string{"c"})
	defer hub.Unsubscribe(sub)
	mustPublish(t, b, idItem("c", "1"))
	if it := recvItem(t, sub); it.ID != "1" || it.Seq != 0 {
		t.Fatalf("got %+v", it)
	}
}

func TestServerAtLeast(t *testing.T) {
	for v, want := range map[string]bool{
		"2.11.0": true, "2.15.2": true, "3.0.0": true, "2.12.0-beta.1": true,
		"2.10.24": false, "1.99.0": false, "": false, "x.y": false,
	} {
		if got := serverAtLeast(v, 2, 11); got != want {
			t.Errorf("serverAtLeast(%q) = %v", v, got)
		}
	}
}

func TestHistoryStreamName(t *testing.T) {
	for prefix, want := range map[string]string{"gripd": "gripd_history", "a.b*c": "a_b_c_history"} {
		if got := HistoryStreamName(prefix); got != want {
			t.Errorf("HistoryStreamName(%q) = %q, want %q", prefix, got, want)
		}
	}
	if got := HistorySubject("gripd", "a.b"); got != "gripd.hist."+ChannelToken("a.b") {
		t.Errorf("HistorySubject = %q", got)
	}
}
