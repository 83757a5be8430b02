package publish

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gripd/gripd/grip"
)

func idsOf(items []grip.Item) string {
	var s []string
	for _, it := range items {
		s = append(s, it.ID)
	}
	return strings.Join(s, ",")
}

func lookupCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHistoryAfter(t *testing.T) {
	ns := startJetStream(t)
	b, _, h := newHistoryBroker(t, ns.ClientURL(), HistoryConfig{})
	channel := "room 1.*" // an encoded subject token
	for i := 1; i <= 5; i++ {
		mustPublish(t, b, idItem(channel, fmt.Sprint(i)))
	}
	mustPublish(t, b, idItem(channel, "3")) // a repeat: stored once
	ctx := lookupCtx(t)

	p, err := h.After(ctx, channel, "2", 100)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Found || idsOf(p.Items) != "3,4,5" || p.More {
		t.Fatalf("after 2: found %v items %q more %v", p.Found, idsOf(p.Items), p.More)
	}
	if p.Items[0].Channel != channel || string(p.Items[0].HTTPStream.Content) != "3" {
		t.Fatalf("item %+v", p.Items[0])
	}
	if p.At == 0 || p.Items[0].Seq <= p.At || p.Through != p.Items[2].Seq {
		t.Fatalf("positions: at %d, items %d..%d, through %d", p.At, p.Items[0].Seq, p.Items[2].Seq, p.Through)
	}

	p, err = h.After(ctx, channel, "5", 100)
	if err != nil || !p.Found || len(p.Items) != 0 || p.Through != p.At {
		t.Fatalf("after the last: %+v %v", p, err)
	}
	p, err = h.After(ctx, channel, "1", 2)
	if err != nil || idsOf(p.Items) != "2,3" || !p.More {
		t.Fatalf("after 1, at most 2: %q more %v err %v", idsOf(p.Items), p.More, err)
	}
	p, err = h.AfterSeq(ctx, channel, p.Through, 2)
	if err != nil || idsOf(p.Items) != "4,5" || p.More || p.Found {
		t.Fatalf("after a position: %q more %v found %v err %v", idsOf(p.Items), p.More, p.Found, err)
	}
	// The proxy's catch-up.
	items, ok, err := h.Since(ctx, channel, "3")
	if err != nil || !ok || idsOf(items) != "4,5" {
		t.Fatalf("since 3: %q ok %v err %v", idsOf(items), ok, err)
	}
	if _, ok, err := h.Since(ctx, channel, "unknown"); err != nil || ok {
		t.Fatalf("since an unknown id: ok %v err %v", ok, err)
	}

	p, err = h.After(ctx, channel, "unknown", 100)
	if err != nil || p.Found || p.Empty || len(p.Items) != 0 {
		t.Fatalf("unknown id: %+v %v", p, err)
	}
	p, err = h.After(ctx, "quiet", "1", 100)
	if err != nil || p.Found || !p.Empty {
		t.Fatalf("a channel without history: %+v %v", p, err)
	}
}

// History keeps the last MaxItemsPerChannel items of each channel: an id
// trimmed away is no longer found.
func TestHistoryTrimsPerChannel(t *testing.T) {
	ns := startJetStream(t)
	b, _, h := newHistoryBroker(t, ns.ClientURL(), HistoryConfig{MaxItemsPerChannel: 3})
	for i := 1; i <= 6; i++ {
		mustPublish(t, b, idItem("a", fmt.Sprint(i)), idItem("b", fmt.Sprint(i)))
	}
	ctx := lookupCtx(t)
	for _, ch := range []string{"a", "b"} {
		p, err := h.After(ctx, ch, "3", 100)
		if err != nil || p.Found {
			t.Fatalf("%s after a trimmed id: %+v %v", ch, p, err)
		}
		p, err = h.After(ctx, ch, "4", 100)
		if err != nil || !p.Found || idsOf(p.Items) != "5,6" {
			t.Fatalf("%s after 4: %q found %v err %v", ch, idsOf(p.Items), p.Found, err)
		}
	}
}

// An id far back, among other channels' items, is found by the widening
// windows; so is one near the end.
func TestHistoryAfterSearchesBack(t *testing.T) {
	ns := startJetStream(t)
	b, _, h := newHistoryBroker(t, ns.ClientURL(), HistoryConfig{})
	var items []grip.Item
	for i := 1; i <= 400; i++ {
		items = append(items, idItem("a", fmt.Sprint(i)))
		for j := range 3 {
			items = append(items, idItem("b", fmt.Sprintf("%d.%d", i, j)))
		}
		if len(items) >= 200 {
			mustPublish(t, b, items...)
			items = items[:0]
		}
	}
	ctx := lookupCtx(t)
	for _, from := range []int{1, 7, 250, 399} {
		p, err := h.After(ctx, "a", fmt.Sprint(from), 1000)
		if err != nil || !p.Found || len(p.Items) != 400-from {
			t.Fatalf("after %d: found %v, %d items, err %v", from, p.Found, len(p.Items), err)
		}
		for i, it := range p.Items {
			if it.ID != fmt.Sprint(from+1+i) {
				t.Fatalf("after %d: item %d is %q", from, i, it.ID)
			}
		}
	}
	if p, err := h.After(ctx, "a", "401", 1000); err != nil || p.Found {
		t.Fatalf("an id never published: %+v %v", p.Found, err)
	}
}
