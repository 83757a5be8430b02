package handoff

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/gripd/gripd/grip"
)

// memHistory is a History over a slice: items in publish order, each
// given the next Seq. pageSize, when set, makes answers shorter than max
// (as a real history bounds its own work).
type memHistory struct {
	items    []grip.Item
	pageSize int
	err      error
}

func (m *memHistory) add(items ...grip.Item) {
	for _, it := range items {
		it.Seq = uint64(len(m.items) + 1)
		m.items = append(m.items, it)
	}
}

func (m *memHistory) of(channel string) []grip.Item {
	var out []grip.Item
	for _, it := range m.items {
		if it.Channel == channel {
			out = append(out, it)
		}
	}
	return out
}

func (m *memHistory) After(_ context.Context, channel, lastID string, max int) (HistoryPage, error) {
	if m.err != nil {
		return HistoryPage{}, m.err
	}
	items := m.of(channel)
	if len(items) == 0 {
		return HistoryPage{Empty: true}, nil
	}
	i := slices.IndexFunc(items, func(it grip.Item) bool { return it.ID == lastID })
	if i < 0 {
		return HistoryPage{}, nil
	}
	p := m.page(items[i+1:], items[i].Seq, max)
	p.Found, p.At = true, items[i].Seq
	return p, nil
}

func (m *memHistory) AfterSeq(_ context.Context, channel string, seq uint64, max int) (HistoryPage, error) {
	if m.err != nil {
		return HistoryPage{}, m.err
	}
	var after []grip.Item
	for _, it := range m.of(channel) {
		if it.Seq > seq {
			after = append(after, it)
		}
	}
	return m.page(after, seq, max), nil
}

func (m *memHistory) page(after []grip.Item, from uint64, max int) HistoryPage {
	n := max
	if m.pageSize > 0 {
		n = min(n, m.pageSize)
	}
	p := HistoryPage{Through: from}
	if len(after) > n {
		after, p.More = after[:n], true
	}
	p.Items = after
	if len(after) > 0 {
		p.Through = after[len(after)-1].Seq
	}
	return p
}

func idItem(channel, id string) grip.Item {
	it := streamItem(channel, channel+id)
	it.ID = id
	return it
}

func contents(items []grip.Item) string {
	var s []string
	for _, it := range items {
		s = append(s, string(it.HTTPStream.Content))
	}
	return strings.Join(s, ",")
}

func TestPlanReplay(t *testing.T) {
	// History: a1 b1 a2 b2 a3 b3 (Seq 1..6); "z" has none.
	h := &memHistory{}
	for _, id := range []string{"1", "2", "3"} {
		h.add(idItem("a", id), idItem("b", id+"b"))
	}
	tests := []struct {
		name      string
		positions map[string]string
		pageSize  int
		limit     int
		items     string
		through   map[string]uint64
		missing   []string
		unknown   []string
	}{
		{"after an id", map[string]string{"a": "1"}, 0, 100,
			"a2,a3", map[string]uint64{"a": 5}, nil, nil},
		{"up to date", map[string]string{"a": "3"}, 0, 100,
			"", map[string]uint64{"a": 5}, nil, nil},
		{"paged by the history", map[string]string{"a": "1", "b": "1b"}, 1, 100,
			"a2,b2b,a3,b3b", map[string]uint64{"a": 5, "b": 6}, nil, nil},
		{"an event id of one channel places the others", map[string]string{"a": "2", "b": "2", "z": "2"}, 0, 100,
			"b2b,a3,b3b", map[string]uint64{"a": 5, "b": 6, "z": 3}, nil, nil},
		{"an id not in history", map[string]string{"a": "0"}, 0, 100,
			"", map[string]uint64{}, []string{"a"}, nil},
		{"a channel without history", map[string]string{"z": "1"}, 0, 100,
			"", map[string]uint64{}, nil, []string{"z"}},
		{"more than the limit", map[string]string{"a": "1", "b": "3b"}, 1, 1,
			"", map[string]uint64{"b": 6}, []string{"a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.pageSize = tt.pageSize
			rp, err := PlanReplay(context.Background(), h, tt.positions, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := contents(rp.Items); got != tt.items {
				t.Errorf("items %q, want %q", got, tt.items)
			}
			if !mapsEqual(rp.Through, tt.through) {
				t.Errorf("through %v, want %v", rp.Through, tt.through)
			}
			if !slices.Equal(rp.Missing, tt.missing) || !slices.Equal(rp.Unknown, tt.unknown) {
				t.Errorf("missing %v unknown %v, want %v and %v", rp.Missing, rp.Unknown, tt.missing, tt.unknown)
			}
		})
	}
}

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestPlanReplayError(t *testing.T) {
	boom := errors.New("boom")
	_, err := PlanReplay(context.Background(), &memHistory{err: boom}, map[string]string{"a": "1"}, 10)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), `channel "a"`) {
		t.Fatalf("err %v", err)
	}
}

// chained is an item of channel with an id and a prev-id.
func chained(channel, id, prev string) grip.Item {
	it := idItem(channel, id)
	it.PrevID = prev
	return it
}

// A connection that fell behind gets what it missed on each channel,
// through its chains and filters, or is left to its backend when
// history cannot answer for every channel.
func TestCatchUp(t *testing.T) {
	mine := chained("a", "2", "1")
	mine.Meta = map[string]string{"sender": "me"}
	h := &memHistory{}
	h.add(chained("a", "1", ""), chained("b", "1", ""), mine, chained("b", "2", "1"),
		chained("a", "3", "2"), chained("b", "2x", "9")) // b's last item does not follow on
	tests := []struct {
		name     string
		chans    []grip.Channel
		pageSize int
		limit    int
		stopAt   int // deliver returns false at this item, counting from 1
		caught   bool
		sent     string
		lastIDs  map[string]string
	}{
		{"all after the prev-id", []grip.Channel{{Name: "a", PrevID: "1"}}, 0, 100, 0,
			true, "a2,a3", map[string]string{"a": "3"}},
		{"paged by the history", []grip.Channel{{Name: "a", PrevID: "1"}}, 1, 100, 0,
			true, "a2,a3", map[string]string{"a": "3"}},
		{"until deliver has enough", []grip.Channel{{Name: "a", PrevID: "1"}}, 0, 100, 1,
			true, "a2", map[string]string{"a": "2"}},
		{"in step", []grip.Channel{{Name: "a", PrevID: "3"}}, 0, 100, 0,
			true, "", map[string]string{"a": "3"}},
		{"a filter", []grip.Channel{{Name: "a", PrevID: "1", Filters: []string{"skip-self"}}}, 0, 100, 0,
			true, "a3", map[string]string{"a": "3"}},
		{"an id not in history", []grip.Channel{{Name: "a", PrevID: "0"}}, 0, 100, 0,
			false, "", map[string]string{"a": "0"}},
		{"a channel without history", []grip.Channel{{Name: "z", PrevID: "1"}}, 0, 100, 0,
			false, "", map[string]string{"z": "1"}},
		{"more than the limit", []grip.Channel{{Name: "a", PrevID: "1"}}, 1, 1, 0,
			false, "", map[string]string{"a": "1"}},
		{"one channel of two cannot tell", []grip.Channel{{Name: "a", PrevID: "1"}, {Name: "z", PrevID: "1"}}, 0, 100, 0,
			false, "", map[string]string{"a": "1", "z": "1"}},
		{"history does not follow on", []grip.Channel{{Name: "b", PrevID: "1"}}, 0, 100, 0,
			false, "b2", map[string]string{"b": "2"}},
		{"no prev-id", []grip.Channel{{Name: "a"}}, 0, 100, 0,
			false, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.pageSize = tt.pageSize
			hub := NewHub(Config{})
			defer hub.Close()
			sub := holdOn(hub, KindStream, true, map[string]string{"user": "me"}, tt.chans...)
			defer hub.Unsubscribe(sub)
			var sent []string
			caught, err := sub.CatchUp(context.Background(), h, tt.limit, func(it *grip.Item, content []byte) bool {
				sent = append(sent, string(content))
				return len(sent) != tt.stopAt
			})
			if err != nil || caught != tt.caught {
				t.Fatalf("caught %v err %v, want %v", caught, err, tt.caught)
			}
			if got := strings.Join(sent, ","); got != tt.sent {
				t.Errorf("sent %q, want %q", got, tt.sent)
			}
			if got := sub.LastIDs(); !maps.Equal(got, tt.lastIDs) {
				t.Errorf("last ids %v, want %v", got, tt.lastIDs)
			}
		})
	}
}

func TestCatchUpError(t *testing.T) {
	hub := NewHub(Config{})
	defer hub.Close()
	sub := holdOn(hub, KindStream, true, nil, grip.Channel{Name: "a", PrevID: "1"})
	defer hub.Unsubscribe(sub)
	boom := errors.New("boom")
	caught, err := sub.CatchUp(context.Background(), &memHistory{err: boom}, 10, func(*grip.Item, []byte) bool { return true })
	var he *HistoryError
	if caught || !errors.As(err, &he) || he.Channel != "a" || he.Err != boom {
		t.Fatalf("caught %v err %#v", caught, err)
	}
}

// Live items the replay covered (replayed, or before the client's
// position) are skipped; later ones and those without a Seq are sent.
func TestCoverHistorySkipsLiveItemsItCovered(t *testing.T) {
	h := NewHub(Config{Sequencing: SequenceConfig{IDTTL: -1}})
	defer h.Close()
	sub := h.Subscribe(KindStream, []string{"a", "b"})
	defer h.Unsubscribe(sub)
	sub.CoverHistory(map[string]uint64{"a": 5})
	sub.CoverHistory(map[string]uint64{"a": 3}) // never moves back
	var items []grip.Item
	for i, seq := range []uint64{4, 5, 6, 0} {
		it := streamItem("a", string(rune('w'+i)))
		it.Seq = seq
		items = append(items, it)
	}
	other := streamItem("b", "b")
	other.Seq = 2
	items = append(items, other)
	h.Deliver(items)
	var got []string
	for range items {
		if v, content := take(t, sub); v == Send {
			got = append(got, content)
		}
	}
	if want := []string{"y", "z", "b"}; !slices.Equal(got, want) {
		t.Fatalf("sent %q, want %q", got, want)
	}
}

// A replayed item moves the prev-id chain on, goes through the filters,
// and is skipped when it lacks the subscriber's format.
func TestTakeHistory(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	sub := holdOn(h, KindStream, true, map[string]string{"user": "me"},
		grip.Channel{Name: "c", PrevID: "1", Filters: []string{"skip-self"}})
	defer h.Unsubscribe(sub)

	noPrev := idItem("c", "2") // no prev-id: live, it would break the chain
	if v, content := sub.TakeHistory(&noPrev); v != Send || string(content) != "c2" {
		t.Fatalf("got %v %q", v, content)
	}
	self := idItem("c", "3")
	self.Meta = map[string]string{"sender": "me"}
	if v, _ := sub.TakeHistory(&self); v != Skip {
		t.Fatalf("skip-self: got %v", v)
	}
	resp := respItem("c", "r")
	resp.ID = "4"
	if v, _ := sub.TakeHistory(&resp); v != Skip {
		t.Fatalf("an item without http-stream: got %v", v)
	}
	if got := sub.LastIDs(); got["c"] != "3" {
		t.Fatalf("last ids %v, want c:3 (the filtered item still moves the chain)", got)
	}
	hint := grip.Item{Channel: "c", ID: "5", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionHint}}
	if v, _ := sub.TakeHistory(&hint); v != Recover {
		t.Fatalf("a hint: got %v, want Recover", v)
	}
}

// A replay that finds its client missed items history no longer holds
// asks a recoverable subscriber's owner to recover it.
func TestRequestRecovery(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	plain := h.Subscribe(KindStream, []string{"c"})
	defer h.Unsubscribe(plain)
	if plain.RequestRecovery() {
		t.Fatal("a subscriber that cannot recover said it would")
	}
	linked := holdOn(h, KindStream, true, nil, grip.Channel{Name: "c", PrevID: "1"})
	defer h.Unsubscribe(linked)
	if !linked.RequestRecovery() || !linked.RequestRecovery() {
		t.Fatal("a recoverable subscriber refused")
	}
	select {
	case <-linked.Recovering():
	default:
		t.Fatal("Recovering did not fire")
	}
}
