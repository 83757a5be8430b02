package publish

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// BenchmarkPublishToSubscriber is the time from a publish through one
// instance to the item in a subscriber's queue on another, over embedded
// NATS, with history off and on: what storing and republishing adds to
// an item's way.
func BenchmarkPublishToSubscriber(b *testing.B) {
	for _, history := range []bool{false, true} {
		b.Run(fmt.Sprintf("history=%v", history), func(b *testing.B) {
			url := startJetStream(b).ClientURL()
			pub, _ := benchInstance(b, url, history)
			_, hub := benchInstance(b, url, history)
			sub := hub.Subscribe(handoff.KindStream, []string{"bench"})
			defer hub.Unsubscribe(sub)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				it := streamItem("bench", "data: x\n\n")
				it.ID = fmt.Sprint(i)
				if err := pub.Publish(ctx, []grip.Item{it}); err != nil {
					b.Fatal(err)
				}
				select {
				case <-sub.C():
				case <-time.After(5 * time.Second):
					b.Fatal("the item did not arrive")
				}
			}
		})
	}
}

// benchInstance is a broker and its hub, with history when asked.
func benchInstance(b *testing.B, url string, history bool) (*NATSBroker, *handoff.Hub) {
	b.Helper()
	hub := handoff.NewHub(handoff.Config{})
	br, err := NewNATSBroker(NATSConfig{URL: url, Linger: time.Minute}, hub, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close(); hub.Close() })
	if history {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := br.EnableHistory(ctx, HistoryConfig{}); err != nil {
			b.Fatal(err)
		}
	}
	return br, hub
}

// BenchmarkHistoryAfter is one resume's lookup on a channel of 1,000
// items, for a client that missed none, a few, or most of them.
func BenchmarkHistoryAfter(b *testing.B) {
	url := startJetStream(b).ClientURL()
	br, _ := benchInstance(b, url, true)
	h := br.history.Load()
	var items []grip.Item
	for i := 1; i <= 1000; i++ {
		it := streamItem("bench", fmt.Sprintf("id: %d\ndata: x\n\n", i))
		it.ID = fmt.Sprint(i)
		items = append(items, it)
	}
	for len(items) > 0 {
		n := min(len(items), 200)
		if err := br.Publish(context.Background(), items[:n]); err != nil {
			b.Fatal(err)
		}
		items = items[n:]
	}
	for _, missed := range []int{0, 10, 100, 900} {
		b.Run(fmt.Sprintf("missed=%d", missed), func(b *testing.B) {
			ctx := context.Background()
			for range b.N {
				p, err := h.After(ctx, "bench", fmt.Sprint(1000-missed), 1000)
				if err != nil || !p.Found || len(p.Items) != missed {
					b.Fatalf("found %v, %d items, err %v", p.Found, len(p.Items), err)
				}
			}
		})
	}
}
