package handoff

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gripd/gripd/grip"
)

// seqItem is a stream item with an id and prev-id; its content names it.
func seqItem(channel, id, prev string) grip.Item {
	it := streamItem(channel, id)
	it.ID, it.PrevID = id, prev
	return it
}

// drained returns the contents queued for sub now, in order. Deliver
// queues synchronously, so there is nothing to wait for.
func drained(sub *Subscriber) string {
	var got []string
	for {
		select {
		case it := <-sub.C():
			got = append(got, string(it.HTTPStream.Content))
		default:
			return strings.Join(got, ",")
		}
	}
}

// fakeClock is a settable clock for sequencing's TTLs and lingers.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClockedHub(cfg Config) (*Hub, *fakeClock) {
	h := NewHub(cfg)
	clock := &fakeClock{t: time.Unix(1000, 0)}
	h.now = clock.Now
	return h, clock
}

// TestSequencing runs publish scripts against one subscriber: each step
// delivers some items and says what the subscriber has then.
func TestSequencing(t *testing.T) {
	type step struct {
		items []grip.Item
		want  string // contents queued after this step, in order
	}
	noSeq := func(it grip.Item) grip.Item { it.NoSeq = true; return it }
	tests := []struct {
		name  string
		steps []step
		stats SequenceStats
	}{
		{"in order", []step{
			{[]grip.Item{seqItem("c", "1", ""), seqItem("c", "2", "1"), seqItem("c", "3", "2")}, "1,2,3"},
		}, SequenceStats{}},
		{"first item goes out whatever its prev-id", []step{
			{[]grip.Item{seqItem("c", "5", "4")}, "5"},
		}, SequenceStats{}},
		{"out of order: waits, released with its predecessor", []step{
			{[]grip.Item{seqItem("c", "1", "")}, "1"},
			{[]grip.Item{seqItem("c", "3", "2")}, ""},
			{[]grip.Item{seqItem("c", "2", "1")}, "2,3"},
		}, SequenceStats{Waited: 1}},
		{"a reversed burst comes out in chain order", []step{
			{[]grip.Item{seqItem("c", "1", "")}, "1"},
			{[]grip.Item{seqItem("c", "5", "4"), seqItem("c", "4", "3"), seqItem("c", "3", "2")}, ""},
			{[]grip.Item{seqItem("c", "2", "1")}, "2,3,4,5"},
		}, SequenceStats{Waited: 3}},
		{"a second item for the same prev-id is dropped", []step{
			{[]grip.Item{seqItem("c", "1", "")}, "1"},
			{[]grip.Item{seqItem("c", "3", "2"), seqItem("c", "3b", "2")}, ""},
			{[]grip.Item{seqItem("c", "2", "1")}, "2,3"},
		}, SequenceStats{Waited: 1, Overflow: 1}},
		{"repeated id dropped", []step{
			{[]grip.Item{seqItem("c", "1", ""), seqItem("c", "1", "")}, "1"},
			{[]grip.Item{seqItem("c", "2", "1"), seqItem("c", "1", "")}, "2"},
		}, SequenceStats{Duplicates: 2}},
		{"the same id on another channel is not a repeat", []step{
			{[]grip.Item{seqItem("c", "1", ""), seqItem("other", "1", "")}, "1"},
		}, SequenceStats{}},
		{"no-seq goes out at once and leaves the last id alone", []step{
			{[]grip.Item{seqItem("c", "1", "")}, "1"},
			{[]grip.Item{noSeq(seqItem("c", "x", "zzz"))}, "x"},
			{[]grip.Item{seqItem("c", "2", "1")}, "2"},
		}, SequenceStats{}},
		{"no-seq still drops a repeated id", []step{
			{[]grip.Item{noSeq(seqItem("c", "x", "")), noSeq(seqItem("c", "x", ""))}, "x"},
		}, SequenceStats{Duplicates: 1}},
		{"an item without id forgets the last id", []step{
			{[]grip.Item{seqItem("c", "1", ""), streamItem("c", "plain")}, "1,plain"},
			{[]grip.Item{seqItem("c", "9", "8")}, "9"},
		}, SequenceStats{}},
		{"an item without id still waits for its prev-id", []step{
			{[]grip.Item{seqItem("c", "1", "")}, "1"},
			{[]grip.Item{seqItem("c", "", "2")}, ""},
			{[]grip.Item{seqItem("c", "2", "1")}, "2,"},
			{[]grip.Item{seqItem("c", "4", "3")}, "4"}, // no last id any more
		}, SequenceStats{Waited: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHub(Config{})
			defer h.Close()
			sub := h.Subscribe(KindStream, []string{"c"})
			defer h.Unsubscribe(sub)
			for i, st := range tt.steps {
				h.Deliver(st.items)
				if got := drained(sub); got != st.want {
					t.Fatalf("step %d: subscriber has %q, want %q", i, got, st.want)
				}
			}
			if got := h.Stats().Sequence; got != tt.stats {
				t.Errorf("Stats().Sequence = %+v, want %+v", got, tt.stats)
			}
		})
	}
}

func TestSequencingWaitLimitReleases(t *testing.T) {
	h := NewHub(Config{Sequencing: SequenceConfig{Wait: 30 * time.Millisecond}})
	defer h.Close()
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	h.Deliver([]grip.Item{seqItem("c", "1", "")})
	h.Deliver([]grip.Item{seqItem("c", "3", "2"), seqItem("c", "4", "3")})
	if got := drained(sub); got != "1" {
		t.Fatalf("before the wait limit the subscriber has %q, want only 1", got)
	}
	// Its predecessor never comes: 3 goes out after the wait, 4 (waiting for
	// 3) right behind it.
	if got := string(recv(t, sub).HTTPStream.Content) + "," + string(recv(t, sub).HTTPStream.Content); got != "3,4" {
		t.Fatalf("released %q, want 3,4", got)
	}
	if st := h.Stats().Sequence; st.TimedOut != 1 || st.Waited != 2 {
		t.Errorf("Stats().Sequence = %+v, want 2 waited, 1 timed out", st)
	}
	// The chain goes on from 4.
	h.Deliver([]grip.Item{seqItem("c", "5", "4")})
	if got := drained(sub); got != "5" {
		t.Fatalf("after the release the subscriber has %q, want 5", got)
	}
	// Later waits re-arm the timer.
	h.Deliver([]grip.Item{seqItem("c", "7", "6")})
	if got := string(recv(t, sub).HTTPStream.Content); got != "7" {
		t.Fatalf("second release %q, want 7", got)
	}
}

func TestSequencingWaitQueueIsBounded(t *testing.T) {
	h := NewHub(Config{Sequencing: SequenceConfig{MaxWaiting: 3}})
	defer h.Close()
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	h.Deliver([]grip.Item{seqItem("c", "1", "")})
	drained(sub)
	// 2 is missing; 3..7 wait, but only three may: 6 and 7 are dropped.
	for i := 3; i <= 7; i++ {
		h.Deliver([]grip.Item{seqItem("c", fmt.Sprint(i), fmt.Sprint(i-1))})
	}
	h.Deliver([]grip.Item{seqItem("c", "2", "1")})
	if got := drained(sub); got != "2,3,4,5" {
		t.Fatalf("subscriber has %q, want 2,3,4,5 (6 and 7 over the bound)", got)
	}
	if st := h.Stats().Sequence; st.Overflow != 2 || st.Waited != 3 {
		t.Errorf("Stats().Sequence = %+v, want 3 waited, 2 overflow", st)
	}
}

func TestSequencingDedupTTL(t *testing.T) {
	h, clock := newClockedHub(Config{Sequencing: SequenceConfig{IDTTL: time.Minute}})
	defer h.Close()
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	h.Deliver([]grip.Item{seqItem("c", "a", "")})
	clock.Add(59 * time.Second)
	h.Deliver([]grip.Item{noSeqItem("c", "a")})
	if got := drained(sub); got != "a" {
		t.Fatalf("within the TTL: %q, want the repeat dropped", got)
	}
	clock.Add(2 * time.Second)
	h.Deliver([]grip.Item{noSeqItem("c", "a")})
	if got := drained(sub); got != "a" {
		t.Fatalf("after the TTL: %q, want the item again", got)
	}
}

func noSeqItem(channel, id string) grip.Item {
	it := seqItem(channel, id, "")
	it.NoSeq = true
	return it
}

func TestSequencingDedupOff(t *testing.T) {
	h := NewHub(Config{Sequencing: SequenceConfig{IDTTL: -1}})
	defer h.Close()
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	h.Deliver([]grip.Item{noSeqItem("c", "a"), noSeqItem("c", "a")})
	if got := drained(sub); got != "a,a" {
		t.Fatalf("with de-duplication off: %q, want both", got)
	}
}

func TestSequencingRemembersBoundedIDs(t *testing.T) {
	// 16 per shard is the floor; with every id on one channel (one shard)
	// the 17th pushes out the first.
	h := NewHub(Config{Sequencing: SequenceConfig{MaxIDs: 1}})
	defer h.Close()
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	for i := range 17 {
		h.Deliver([]grip.Item{noSeqItem("c", fmt.Sprint(i))})
	}
	drained(sub)
	h.Deliver([]grip.Item{noSeqItem("c", "16"), noSeqItem("c", "0")})
	if got := drained(sub); got != "0" {
		t.Fatalf("got %q: want 16 still remembered (dropped) and 0 forgotten (delivered)", got)
	}
}

func TestSequencingOnlyWithSubscribers(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	// Nobody listens: nothing is ordered, no last id is kept.
	h.Deliver([]grip.Item{seqItem("c", "1", "")})
	if id, ok := h.LastID("c"); ok {
		t.Fatalf("LastID = %q without subscribers, want none", id)
	}
	sub := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(sub)
	h.Deliver([]grip.Item{seqItem("c", "3", "2")})
	if got := drained(sub); got != "3" {
		t.Fatalf("first item after subscribing: %q, want it at once", got)
	}
	if id, ok := h.LastID("c"); !ok || id != "3" {
		t.Fatalf("LastID = %q, %v; want 3", id, ok)
	}
}

func TestSequencingLastIDLingers(t *testing.T) {
	h, clock := newClockedHub(Config{Sequencing: SequenceConfig{LastIDLinger: time.Minute}})
	defer h.Close()
	sub := h.Subscribe(KindResponse, []string{"c"})
	h.Deliver([]grip.Item{{Channel: "c", ID: "1", HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionSend}}})
	h.Unsubscribe(sub)

	// Between two long-polls the channel has no subscriber; its last id
	// stays, and items are still followed.
	clock.Add(30 * time.Second)
	h.Deliver([]grip.Item{{Channel: "c", ID: "2", PrevID: "1", HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionSend}}})
	if id, ok := h.LastID("c"); !ok || id != "2" {
		t.Fatalf("LastID during the linger = %q, %v; want 2", id, ok)
	}
	clock.Add(61 * time.Second)
	if id, ok := h.LastID("c"); ok {
		t.Fatalf("LastID after the linger = %q, want none", id)
	}
}

func TestSequencingForgets(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	sub := h.Subscribe(KindStream, []string{"c", "d"})
	defer h.Unsubscribe(sub)
	h.Deliver([]grip.Item{seqItem("c", "1", ""), seqItem("d", "1", "")})
	drained(sub)

	h.ForgetChannel("c")
	h.Deliver([]grip.Item{seqItem("c", "9", "8"), seqItem("d", "9", "8")})
	if got := drained(sub); got != "9" {
		t.Fatalf("after ForgetChannel(c): %q, want c's 9 at once and d's waiting", got)
	}
	h.ForgetLastIDs()
	h.Deliver([]grip.Item{seqItem("d", "7", "6")})
	if got := drained(sub); got != "7" {
		t.Fatalf("after ForgetLastIDs: %q, want 7 at once", got)
	}
}

func TestSequencingSweepsIdleChannels(t *testing.T) {
	h, clock := newClockedHub(Config{Sequencing: SequenceConfig{MaxChannels: 1, LastIDLinger: time.Hour}})
	defer h.Close()
	// Many channels on one shard would need the hash; instead count what
	// every shard keeps: each sweeps down to its floor of 16.
	for i := range 2000 {
		ch := fmt.Sprint("ch", i)
		s := h.Subscribe(KindStream, []string{ch})
		h.Deliver([]grip.Item{seqItem(ch, "1", "")})
		h.Unsubscribe(s)
		clock.Add(time.Millisecond)
	}
	kept := 0
	for i := range h.shards {
		kept += len(h.shards[i].seq.chans)
	}
	if limit := shardCount * (16 + 16/2 + 1); kept > limit {
		t.Fatalf("%d idle channels kept, want at most %d", kept, limit)
	}
}

func TestSequencingCloseStopsWaiting(t *testing.T) {
	h := NewHub(Config{Sequencing: SequenceConfig{Wait: time.Hour}})
	sub := h.Subscribe(KindStream, []string{"c"})
	h.Deliver([]grip.Item{seqItem("c", "1", ""), seqItem("c", "3", "2")})
	h.Close()
	h.Unsubscribe(sub)
	sh := h.shardFor("c")
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if n := len(sh.seq.waitQueue); n != 0 {
		t.Fatalf("%d items still waiting after Close", n)
	}
}
