package handoff

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gripd/gripd/grip"
)

// take takes the next queued item of sub and returns the verdict and the
// content; the item must be there (Deliver queues synchronously).
func take(t *testing.T, sub *Subscriber) (Verdict, string) {
	t.Helper()
	select {
	case it := <-sub.C():
		v, content := sub.Take(it)
		return v, string(content)
	default:
		t.Fatal("nothing queued")
		return 0, ""
	}
}

func holdOn(h *Hub, kind Kind, recoverable bool, meta map[string]string, chans ...grip.Channel) *Subscriber {
	return h.SubscribeHold(kind, HoldSpec{Channels: chans, Meta: meta, Recoverable: recoverable})
}

func TestTakeFollowsThePrevIDChain(t *testing.T) {
	tests := []struct {
		name        string
		recoverable bool
		items       []grip.Item
		want        []Verdict
		lastIDs     map[string]string
	}{
		{"follows and advances", true,
			[]grip.Item{seqItem("c", "2", "1"), seqItem("c", "3", "2")},
			[]Verdict{Send, Send}, map[string]string{"c": "3"}},
		{"a gap asks to recover", true,
			[]grip.Item{seqItem("c", "2", "1"), seqItem("c", "4", "3")},
			[]Verdict{Send, Recover}, map[string]string{"c": "2"}},
		{"an item without prev-id is out of the chain", true,
			[]grip.Item{streamItem("c", "x")},
			[]Verdict{Recover}, map[string]string{"c": "1"}},
		{"an item without id ends the chain", true,
			[]grip.Item{seqItem("c", "", "1"), seqItem("c", "9", "8")},
			[]Verdict{Send, Send}, nil},
		{"not recoverable: a gap is skipped", false,
			[]grip.Item{seqItem("c", "4", "3")},
			[]Verdict{Skip}, map[string]string{"c": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHub(Config{Sequencing: SequenceConfig{IDTTL: -1}})
			defer h.Close()
			sub := holdOn(h, KindStream, tt.recoverable, nil, grip.Channel{Name: "c", PrevID: "1"})
			defer h.Unsubscribe(sub)
			for i, it := range tt.items {
				// no-seq: this test is about the connection's chain, not the hub's order.
				it.NoSeq = true
				h.Deliver([]grip.Item{it})
				if v, _ := take(t, sub); v != tt.want[i] {
					t.Fatalf("item %d: verdict %v, want %v", i, v, tt.want[i])
				}
			}
			if got := sub.LastIDs(); len(got) != len(tt.lastIDs) || got["c"] != tt.lastIDs["c"] {
				t.Fatalf("LastIDs = %v, want %v", got, tt.lastIDs)
			}
		})
	}
}

func TestSubscribeHoldOutOfStep(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	watcher := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(watcher)
	h.Deliver([]grip.Item{seqItem("c", "2", "")})

	current := holdOn(h, KindResponse, true, nil, grip.Channel{Name: "c", PrevID: "2"})
	defer h.Unsubscribe(current)
	if current.OutOfStep() {
		t.Fatal("prev-id equal to the last id reported out of step")
	}
	stale := holdOn(h, KindResponse, true, nil, grip.Channel{Name: "other"}, grip.Channel{Name: "c", PrevID: "1"})
	defer h.Unsubscribe(stale)
	if !stale.OutOfStep() {
		t.Fatal("prev-id 1 with last id 2 not reported out of step")
	}
	unknown := holdOn(h, KindResponse, true, nil, grip.Channel{Name: "fresh", PrevID: "1"})
	defer h.Unsubscribe(unknown)
	if unknown.OutOfStep() {
		t.Fatal("a channel with no known last id reported out of step")
	}
	// Later joins (a next link's new hold) are not checked.
	h.UpdateHold(unknown, []grip.Channel{{Name: "c", PrevID: "0"}}, nil)
	if unknown.OutOfStep() {
		t.Fatal("UpdateHold checked prev-ids against last ids")
	}
}

func TestTakeAppliesFilters(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	sub := holdOn(h, KindStream, false, map[string]string{"user": "alice"},
		grip.Channel{Name: "chat", Filters: []string{grip.FilterSkipSelf, grip.FilterVarSubst}},
		grip.Channel{Name: "plain"})
	defer h.Unsubscribe(sub)
	mine := streamItem("chat", "mine")
	mine.Meta = map[string]string{"sender": "alice"}
	h.Deliver([]grip.Item{mine, streamItem("chat", "hi %(user)s"), streamItem("chat", "%(nope)s"), streamItem("plain", "%(user)s")})
	for i, want := range []struct {
		v       Verdict
		content string
	}{{Skip, ""}, {Send, "hi alice"}, {Skip, ""}, {Send, "%(user)s"}} {
		if v, c := take(t, sub); v != want.v || c != want.content {
			t.Fatalf("item %d: %v %q, want %v %q", i, v, c, want.v, want.content)
		}
	}
	sub.SetMeta(map[string]string{"user": "bob"})
	h.Deliver([]grip.Item{mine, streamItem("chat", "hi %(user)s")})
	if v, _ := take(t, sub); v != Send {
		t.Fatal("after SetMeta(user=bob) alice's line was skipped")
	}
	if _, c := take(t, sub); c != "hi bob" {
		t.Fatalf("var-subst after SetMeta: %q", c)
	}
}

func TestTakeBuildIDUsesTheItemsID(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	sub := holdOn(h, KindStream, true, map[string]string{"id_format": "<%(c)s>"},
		grip.Channel{Name: "c", PrevID: "1", Filters: []string{grip.FilterBuildID}})
	defer h.Unsubscribe(sub)
	h.Deliver([]grip.Item{seqItem("c", "2", "1")})
	// Pushpin 1.36 renders %I from the prev-ids after the item: its own id.
	h.Deliver([]grip.Item{{Channel: "c", ID: "3", PrevID: "2", HTTPStream: &grip.HTTPStreamFormat{Content: []byte("id: %I")}}})
	take(t, sub)
	if v, c := take(t, sub); v != Send || c != "id: <3>" {
		t.Fatalf("build-id: %v %q, want id: <3>", v, c)
	}
}

func TestTakeSkipsLeftChannelsAndHints(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	plain := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(plain)
	linked := holdOn(h, KindStream, true, nil, grip.Channel{Name: "c"})
	defer h.Unsubscribe(linked)
	hint := grip.Item{Channel: "c", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionHint}}
	h.Deliver([]grip.Item{hint})
	assertNothingQueued(t, plain) // a hint means nothing without a link
	if v, _ := take(t, linked); v != Recover {
		t.Fatalf("hint to a linked stream: %v, want Recover", v)
	}
	h.Deliver([]grip.Item{streamItem("c", "x")})
	h.Leave(linked, "c")
	if v, _ := take(t, linked); v != Skip {
		t.Fatalf("item of a channel left while queued: %v, want Skip", v)
	}
}

func TestUpdateHoldMarksQueuedItemsStale(t *testing.T) {
	h := NewHub(Config{Sequencing: SequenceConfig{IDTTL: -1}})
	defer h.Close()
	sub := holdOn(h, KindStream, true, nil, grip.Channel{Name: "a", PrevID: "1"})
	defer h.Unsubscribe(sub)
	// Queued while a next link was being fetched: 2 and 3 on a, which the
	// link's answer already covered (it says a is at 3), then 4.
	items := []grip.Item{seqItem("a", "2", "1"), seqItem("a", "3", "2"), seqItem("a", "4", "3"), seqItem("a", "6", "5")}
	for i := range items {
		items[i].NoSeq = true
	}
	h.Deliver(items)
	h.UpdateHold(sub, []grip.Channel{{Name: "a", PrevID: "3"}, {Name: "b"}}, map[string]string{"x": "y"})
	if got := sub.Channels(); len(got) != 2 {
		t.Fatalf("Channels after UpdateHold = %v, want a and b", got)
	}
	for i, want := range []Verdict{Skip, Skip, Send, Recover} {
		if v, _ := take(t, sub); v != want {
			t.Fatalf("queued item %d: %v, want %v", i, v, want)
		}
	}
	h.UpdateHold(sub, []grip.Channel{{Name: "b"}}, nil)
	if got := sub.Channels(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("Channels after the second UpdateHold = %v, want only b", got)
	}
}

func TestHoldResponseRecovers(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	for _, tc := range []struct {
		name string
		act  func()
		want RecoverReason
	}{
		{"hint", func() {
			h.Deliver([]grip.Item{{Channel: "c", HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionHint}}})
		}, RecoverHint},
		{"out of step", func() {
			h.Deliver([]grip.Item{{Channel: "c", ID: "9", PrevID: "8", NoSeq: true, HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionSend}}})
		}, RecoverOutOfStep},
		{"Hub.Recover", h.Recover, RecoverRequested},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := holdOn(h, KindResponse, true, nil, grip.Channel{Name: "c", PrevID: "1"})
			defer h.Unsubscribe(sub)
			res := startHoldResponse(context.Background(), sub, time.Hour)
			tc.act()
			if r := waitResp(t, res); r.recover != tc.want || r.resp != nil || r.err != nil {
				t.Fatalf("HoldResponse = %+v, want Recover %v", r, tc.want)
			}
		})
	}
}

func TestHoldResponseFiltersAndSkips(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	sub := holdOn(h, KindResponse, true, map[string]string{"user": "alice"},
		grip.Channel{Name: "c", Filters: []string{grip.FilterSkipSelf, grip.FilterVarSubst}})
	defer h.Unsubscribe(sub)
	res := startHoldResponse(context.Background(), sub, time.Hour)
	own := respItem("c", "own")
	own.Meta = map[string]string{"sender": "alice"}
	h.Deliver([]grip.Item{own, respItem("c", "for %(user)s")})
	if r := waitResp(t, res); r.resp == nil || string(r.body) != "for alice" {
		t.Fatalf("HoldResponse = %+v, want the second response, filtered", r)
	}
}

func startHoldWith(sub *Subscriber, w StreamWriter, cfg StreamConfig) <-chan streamResult {
	res := make(chan streamResult, 1)
	go func() {
		end, err := HoldStreamWith(context.Background(), sub, w, cfg)
		res <- streamResult{end, err}
	}()
	return res
}

func TestHoldStreamWithEndsForTheLink(t *testing.T) {
	h := NewHub(Config{Sequencing: SequenceConfig{IDTTL: -1}})
	defer h.Close()

	t.Run("out of step: written so far, rest discarded", func(t *testing.T) {
		sub := holdOn(h, KindStream, true, nil, grip.Channel{Name: "c", PrevID: "1"})
		defer h.Unsubscribe(sub)
		w := newFakeStream()
		items := []grip.Item{seqItem("c", "2", "1"), seqItem("c", "5", "4"), seqItem("c", "6", "5")}
		for i := range items {
			items[i].NoSeq = true
		}
		h.Deliver(items)
		res := startHoldWith(sub, w, StreamConfig{})
		if r := waitEnd(t, res); r.end != EndOutOfStep || r.err != nil {
			t.Fatalf("HoldStreamWith = %+v, want EndOutOfStep", r)
		}
		w.waitFlushed(t, "2")
		assertNothingToSend(t, sub)
	})
	t.Run("hint", func(t *testing.T) {
		sub := holdOn(h, KindStream, true, nil, grip.Channel{Name: "c"})
		defer h.Unsubscribe(sub)
		h.Deliver([]grip.Item{{Channel: "c", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionHint}}, streamItem("c", "redundant")})
		if r := waitEnd(t, startHoldWith(sub, newFakeStream(), StreamConfig{})); r.end != EndHint {
			t.Fatalf("HoldStreamWith = %+v, want EndHint", r)
		}
		assertNothingToSend(t, sub)
	})
	t.Run("Hub.Recover", func(t *testing.T) {
		sub := holdOn(h, KindStream, true, nil, grip.Channel{Name: "c"})
		defer h.Unsubscribe(sub)
		res := startHoldWith(sub, newFakeStream(), StreamConfig{})
		h.Recover()
		if r := waitEnd(t, res); r.end != EndLink {
			t.Fatalf("HoldStreamWith = %+v, want EndLink", r)
		}
	})
	t.Run("link timeout with no traffic", func(t *testing.T) {
		sub := holdOn(h, KindStream, true, nil, grip.Channel{Name: "quiet"})
		defer h.Unsubscribe(sub)
		res := startHoldWith(sub, newFakeStream(), StreamConfig{LinkTimeout: 20 * time.Millisecond})
		if r := waitEnd(t, res); r.end != EndLink {
			t.Fatalf("HoldStreamWith = %+v, want EndLink", r)
		}
	})
}

func TestParkedStreamAppliesFilters(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	server, client := net.Pipe()
	defer client.Close()
	sub := holdOn(h, KindStream, false, map[string]string{"user": "bob"},
		grip.Channel{Name: "p", Filters: []string{grip.FilterSkipUsers, grip.FilterVarSubst}})
	ended := make(chan struct{})
	h.Park(server, sub, ParkConfig{OnEnd: func(StreamEnd, int64, error) { close(ended) }})
	skip := streamItem("p", "not for bob")
	skip.Meta = map[string]string{"skip_users": "bob"}
	h.Deliver([]grip.Item{skip, streamItem("p", "hi %(user)s"), closeItem("p")})
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if want := "6\r\nhi bob\r\n0\r\n\r\n"; string(got) != want {
		t.Fatalf("client read %q, want %q", got, want)
	}
	<-ended
}

// assertNothingToSend checks that whatever is queued for sub is skipped
// as the owner takes it.
func assertNothingToSend(t *testing.T, sub *Subscriber) {
	t.Helper()
	for {
		select {
		case it := <-sub.C():
			if v, _ := sub.takeQueued(it); v != Skip {
				t.Fatalf("takeQueued(%+v) = %v, want Skip", *it, v)
			}
		default:
			return
		}
	}
}

// TestRecoveryKeepsOtherChannelsItems: a recovery drops the queued items
// it fetches again (the channels with a prev-id, and the one of the item
// that set it off) and keeps the others, in order, for after it.
func TestRecoveryKeepsOtherChannelsItems(t *testing.T) {
	hint := func(ch string) grip.Item {
		return grip.Item{Channel: ch, HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionHint}}
	}
	chained := func(ch, id, prev string) grip.Item {
		it := seqItem(ch, id, prev)
		it.NoSeq = true
		return it
	}
	tests := []struct {
		name    string
		chans   []grip.Channel
		queued  []grip.Item
		wantEnd StreamEnd
		history []grip.Item // what the owner catches up with (a link fetch or history)
		want    string      // the client's stream at the end
	}{{
		name:    "out of step on a keeps b",
		chans:   []grip.Channel{{Name: "a", PrevID: "a0"}, {Name: "b"}},
		queued:  []grip.Item{chained("a", "a2", "a1"), streamItem("b", "b-important,"), chained("a", "a3", "a2"), streamItem("b", "b-later")},
		wantEnd: EndOutOfStep,
		history: []grip.Item{chained("a", "a1", "a0"), chained("a", "a2", "a1"), chained("a", "a3", "a2")},
		want:    "a1a2a3b-important,b-later",
	}, {
		name:    "hint on b drops b and a, keeps c",
		chans:   []grip.Channel{{Name: "a", PrevID: "a0"}, {Name: "b"}, {Name: "c"}},
		queued:  []grip.Item{hint("b"), streamItem("c", "c1,"), streamItem("b", "b-fetched"), chained("a", "a1", "a0"), streamItem("c", "c2")},
		wantEnd: EndHint,
		history: []grip.Item{chained("a", "a1", "a0")},
		want:    "a1c1,c2",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHub(Config{Sequencing: SequenceConfig{IDTTL: -1}})
			defer h.Close()
			sub := holdOn(h, KindStream, true, nil, tc.chans...)
			defer h.Unsubscribe(sub)
			h.Deliver(tc.queued)
			w := newFakeStream()
			if r := waitEnd(t, startHoldWith(sub, w, StreamConfig{})); r.end != tc.wantEnd || r.err != nil {
				t.Fatalf("HoldStreamWith = %+v, want %v", r, tc.wantEnd)
			}
			// The owner catches up as proxy's history does: the queue is
			// marked stale, the missed items go through Take.
			sub.MarkStale()
			for i := range tc.history {
				if v, content := sub.Take(&tc.history[i]); v == Send {
					_, _ = w.Write(content)
				}
			}
			_ = w.Flush()
			ctx, cancel := context.WithCancel(context.Background())
			res := make(chan streamResult, 1)
			go func() {
				end, err := HoldStreamWith(ctx, sub, w, StreamConfig{})
				res <- streamResult{end, err}
			}()
			w.waitFlushed(t, tc.want)
			cancel()
			waitEnd(t, res)
			assertNothingToSend(t, sub)
		})
	}
}
