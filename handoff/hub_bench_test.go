package handoff

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gripd/gripd/grip"
)

// BenchmarkDeliverFanout measures Deliver of one item to every subscriber
// of one channel. ns/op is per published item; ns/delivery divides that by
// the subscriber count.
//
// inline: the benchmark empties the queues itself with the timer stopped,
// so only Deliver is measured.
// goroutine: every subscriber has a goroutine reading its queue, as a held
// stream does; the time includes waiting for them all to take each batch.
//
// subs=100000 is inline only: it stands in for fan-out to 100,000 parked
// streams, which do not fit in one process here (BenchmarkParkedFanout).
func BenchmarkDeliverFanout(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("subs=%d/drain=inline", n), func(b *testing.B) { benchFanoutInline(b, n) })
		if n <= 10000 {
			b.Run(fmt.Sprintf("subs=%d/drain=goroutine", n), func(b *testing.B) { benchFanoutGoroutines(b, n) })
		}
	}
}

const fanoutBatch = 64 // items between drains; below the queue size

func fanoutSetup(b *testing.B, n int) (*Hub, []*Subscriber, []grip.Item) {
	b.Helper()
	h := NewHub(Config{QueueSize: 2 * fanoutBatch})
	subs := make([]*Subscriber, n)
	for i := range subs {
		subs[i] = h.Subscribe(KindStream, []string{"fan"})
	}
	items := []grip.Item{streamItem("fan", "data: tick\n\n")}
	return h, subs, items
}

func fanoutReport(b *testing.B, h *Hub, subs []*Subscriber) {
	b.Helper()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(subs)), "ns/delivery")
	if st := h.Stats(); st.Slow != 0 {
		b.Fatalf("%d subscribers were ended as slow; the numbers are meaningless", st.Slow)
	}
	for _, s := range subs {
		h.Unsubscribe(s)
	}
}

func benchFanoutInline(b *testing.B, n int) {
	h, subs, items := fanoutSetup(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%fanoutBatch == fanoutBatch-1 {
			b.StopTimer()
			for _, s := range subs {
				for len(s.C()) > 0 {
					<-s.C()
				}
			}
			b.StartTimer()
		}
		h.Deliver(items)
	}
	b.StopTimer()
	fanoutReport(b, h, subs)
}

func benchFanoutGoroutines(b *testing.B, n int) {
	h, subs, items := fanoutSetup(b, n)
	var (
		pending   atomic.Int64
		batchDone = make(chan struct{}, 1)
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for _, s := range subs {
		wg.Go(func() {
			for {
				select {
				case <-s.C():
					if pending.Add(-1) == 0 {
						batchDone <- struct{}{}
					}
				case <-stop:
					return
				}
			}
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		k := min(fanoutBatch, b.N-done)
		pending.Store(int64(k * n))
		for range k {
			h.Deliver(items)
		}
		<-batchDone
		done += k
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	fanoutReport(b, h, subs)
}

// BenchmarkSubscribeUnsubscribe measures one subscribe and its unsubscribe
// on a hub that already holds 10k subscribers over 1k channels.
func BenchmarkSubscribeUnsubscribe(b *testing.B) {
	h := NewHub(Config{})
	var existing []*Subscriber
	for i := range 10000 {
		existing = append(existing, h.Subscribe(KindStream, []string{fmt.Sprintf("ch%d", i%1000)}))
	}
	chans := make([][]string, 1000)
	for i := range chans {
		chans[i] = []string{fmt.Sprintf("ch%d", i)}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s := h.Subscribe(KindStream, chans[i%len(chans)])
			h.Unsubscribe(s)
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(1)) * 7919
			for pb.Next() {
				s := h.Subscribe(KindStream, chans[i%len(chans)])
				h.Unsubscribe(s)
				i++
			}
		})
	})
	for _, s := range existing {
		h.Unsubscribe(s)
	}
	if st := h.Stats(); st.Subscribers != 0 || st.Channels != 0 {
		b.Fatalf("Stats = %+v after unsubscribing all", st)
	}
}

// BenchmarkDeliverSequenced is BenchmarkDeliverFanout/subs=1000/inline
// with items that carry an id and the previous item's id: the cost of
// de-duplication and ordering on top of the fan-out.
func BenchmarkDeliverSequenced(b *testing.B) {
	h, subs, _ := fanoutSetup(b, 1000)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	items := make([]grip.Item, 1)
	b.ReportAllocs()
	b.ResetTimer()
	prev := ""
	for i := 0; i < b.N; i++ {
		if i%fanoutBatch == fanoutBatch-1 {
			b.StopTimer()
			for _, s := range subs {
				for len(s.C()) > 0 {
					<-s.C()
				}
			}
			b.StartTimer()
		}
		id := ids[i]
		items[0] = streamItem("fan", "data: tick\n\n")
		items[0].ID, items[0].PrevID = id, prev
		prev = id
		h.Deliver(items)
	}
	b.StopTimer()
	if st := h.Stats().Sequence; st.Waited != 0 || st.Duplicates != 0 {
		b.Fatalf("sequencing held or dropped items: %+v", st)
	}
	fanoutReport(b, h, subs)
}
