package handoff_test

import (
	"context"
	"fmt"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// sliceHistory is a History over the items of a slice, in publish order;
// an item's Seq is its place in it, counting from 1. Package publish's
// JetStreamHistory is the real one.
type sliceHistory []grip.Item

func (h sliceHistory) After(ctx context.Context, channel, lastID string, max int) (handoff.HistoryPage, error) {
	p := handoff.HistoryPage{Empty: true}
	for _, it := range h {
		if it.Channel != channel {
			continue
		}
		p.Empty = false
		if it.ID == lastID {
			q, err := h.AfterSeq(ctx, channel, it.Seq, max)
			q.Found, q.At = true, it.Seq
			return q, err
		}
	}
	return p, nil
}

func (h sliceHistory) AfterSeq(_ context.Context, channel string, seq uint64, max int) (handoff.HistoryPage, error) {
	p := handoff.HistoryPage{Through: seq}
	for _, it := range h {
		if it.Channel != channel || it.Seq <= seq {
			continue
		}
		if len(p.Items) == max {
			p.More = true
			break
		}
		p.Items = append(p.Items, it)
		p.Through = it.Seq
	}
	return p, nil
}

func sseEvent(channel, id string) grip.Item {
	return grip.Item{Channel: channel, ID: id,
		HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte("id: " + id + "\n\n")}}
}

// An SSE client comes back with Last-Event-ID "n2": its stream is
// subscribed first, then sent what history holds after n2, and the live
// items the replay covered are skipped.
func ExamplePlanReplay() {
	var history sliceHistory
	for i, id := range []string{"n1", "n2", "n3", "n4"} {
		it := sseEvent("news", id)
		it.Seq = uint64(i + 1)
		history = append(history, it)
	}
	hub := handoff.NewHub(handoff.Config{})
	defer hub.Close()
	sub := hub.Subscribe(handoff.KindStream, []string{"news"})
	defer hub.Unsubscribe(sub)

	rp, err := handoff.PlanReplay(context.Background(), history, map[string]string{"news": "n2"}, 100)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range rp.Items {
		if v, content := sub.TakeHistory(&rp.Items[i]); v == handoff.Send {
			fmt.Printf("replay %q\n", content)
		}
	}
	sub.CoverHistory(rp.Through)

	// n4 reaches this instance live only now (its feed lags); n5 is new.
	n4, n5 := history[3], sseEvent("news", "n5")
	n5.Seq = 5
	hub.Deliver([]grip.Item{n4, n5})
	for len(sub.C()) > 0 {
		if v, content := sub.Take(<-sub.C()); v == handoff.Send {
			fmt.Printf("live %q\n", content)
		}
	}
	// Output:
	// replay "id: n3\n\n"
	// replay "id: n4\n\n"
	// live "id: n5\n\n"
}
