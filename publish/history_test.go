package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/testutil"
)

func idsOf(items []grip.Item) string {
	var s []string
	for _, it := range items {
		s = append(s, it.ID)
	}
	return strings.Join(s, ",")
}

func TestHistoryAfter(t *testing.T) {
	ns := startJetStream(t)
	b, _, h := newHistoryBroker(t, ns.ClientURL(), HistoryConfig{})
	channel := "room 1.*" // an encoded subject token
	for i := 1; i <= 5; i++ {
		mustPublish(t, b, idItem(channel, fmt.Sprint(i)))
	}
	mustPublish(t, b, idItem(channel, "3")) // a repeat: stored once
	ctx := testutil.Context(t)

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
	// A replay pages through After and AfterSeq.
	rp, err := handoff.PlanReplay(ctx, h, map[string]string{channel: "3"}, 1000)
	if err != nil || idsOf(rp.Items) != "4,5" || len(rp.Missing) != 0 {
		t.Fatalf("replay after 3: %q missing %v err %v", idsOf(rp.Items), rp.Missing, err)
	}
	if rp, err := handoff.PlanReplay(ctx, h, map[string]string{channel: "unknown"}, 1000); err != nil || len(rp.Missing) != 1 {
		t.Fatalf("replay after an unknown id: %+v err %v", rp, err)
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
	ctx := testutil.Context(t)
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
	ctx := testutil.Context(t)
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

// The stream keeps what the last instance to start set (EnableHistory),
// here more items per channel than this instance's MaxItemsPerChannel:
// a window holding more items than a lookup's batch is read in pages,
// and a resume returns every item after its id, in order, with no gap.
func TestHistoryAfterStreamKeepsMoreThanConfig(t *testing.T) {
	ns := startJetStream(t)
	b, _, h := newHistoryBroker(t, ns.ClientURL(), HistoryConfig{MaxItemsPerChannel: 10})
	newHistoryBroker(t, ns.ClientURL(), HistoryConfig{MaxItemsPerChannel: 1000}) // starts last
	var items []grip.Item
	for i := 1; i <= 100; i++ {
		items = append(items, idItem("a", fmt.Sprint(i)))
	}
	mustPublish(t, b, items...)
	ctx := testutil.Context(t)
	// limit 20: this instance reads at most 2*(10+20) = 60 items a
	// batch, less than the 64 items of the first window.
	const limit = 20
	for _, from := range []int{40, 50, 80, 90, 95, 99} {
		p, err := h.After(ctx, "a", fmt.Sprint(from), limit)
		if err != nil || !p.Found {
			t.Fatalf("after %d: found %v err %v", from, p.Found, err)
		}
		want := min(100-from, limit)
		if len(p.Items) != want || p.More != (100-from > limit) {
			t.Fatalf("after %d: %q more %v", from, idsOf(p.Items), p.More)
		}
		for i, it := range p.Items {
			if it.ID != fmt.Sprint(from+1+i) {
				t.Fatalf("after %d: items %q", from, idsOf(p.Items))
			}
		}
	}
	// An id with more than 2*(10+20) items after it is not looked for
	// further: not found, never a page with a gap.
	if p, err := h.After(ctx, "a", "1", limit); err != nil || p.Found || len(p.Items) != 0 {
		t.Fatalf("after 1: %+v %v", p, err)
	}
	// At most this instance's MaxItemsPerChannel, read in pages.
	rp, err := handoff.PlanReplay(ctx, h, map[string]string{"a": "92"}, 10)
	if err != nil || len(rp.Missing) != 0 || idsOf(rp.Items) != "93,94,95,96,97,98,99,100" {
		t.Fatalf("replay after 92: %q missing %v err %v", idsOf(rp.Items), rp.Missing, err)
	}
}

// Lookups that walk history are capped per instance: with every walk
// slot taken, one more waits, and fails with ErrHistoryBusy when its
// deadline passes first (the caller handles history as unavailable),
// while the cheap check of a channel's last item still answers.
func TestHistoryWalksCapped(t *testing.T) {
	ns := startJetStream(t)
	b, _, h := newHistoryBroker(t, ns.ClientURL(), HistoryConfig{})
	for i := 1; i <= 5; i++ {
		mustPublish(t, b, idItem("a", fmt.Sprint(i)))
	}
	ctx := testutil.Context(t)
	for range maxHistoryWalks {
		h.walks <- struct{}{} // maxHistoryWalks walks in flight
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := h.After(short, "a", "unknown", 100); !errors.Is(err, ErrHistoryBusy) {
		t.Fatalf("a walk beyond the cap: %v", err)
	}
	short2, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	if _, err := handoff.PlanReplay(short2, h, map[string]string{"a": "2"}, 100); !errors.Is(err, ErrHistoryBusy) {
		t.Fatalf("a replay beyond the cap: %v", err)
	}
	if p, err := h.After(ctx, "a", "5", 100); err != nil || !p.Found {
		t.Fatalf("the last item, with the walks busy: %+v %v", p, err)
	}
	<-h.walks // one walk ends
	if p, err := h.After(ctx, "a", "2", 100); err != nil || idsOf(p.Items) != "3,4,5" {
		t.Fatalf("after 2 with a free slot: %+v %v", p, err)
	}
	if len(h.walks) != maxHistoryWalks-1 {
		t.Fatalf("%d slots taken after the walk, want %d", len(h.walks), maxHistoryWalks-1)
	}
}
