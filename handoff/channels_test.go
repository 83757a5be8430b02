package handoff

import (
	"slices"
	"strings"
	"testing"
)

func TestChannelsCountsByKind(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close()
	odd := "a/b c%d"
	subs := []*Subscriber{
		h.Subscribe(KindResponse, []string{"news"}),
		h.Subscribe(KindStream, []string{"news", odd}),
		h.Subscribe(KindStream, []string{"news"}),
		h.Subscribe(KindWebSocket, []string{odd}),
		h.Subscribe(KindWebSocket, nil), // on no channel: in no count
	}
	got := h.Channels()
	slices.SortFunc(got, func(a, b ChannelCount) int { return strings.Compare(a.Name, b.Name) })
	want := []ChannelCount{
		{Name: odd, Streams: 1, WebSockets: 1},
		{Name: "news", Responses: 1, Streams: 2},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Channels() = %+v, want %+v", got, want)
	}
	if c, ok := h.Channel("news"); !ok || c != want[1] || c.Total() != 3 {
		t.Errorf("Channel(news) = %+v %v, want %+v (total 3)", c, ok, want[1])
	}
	if c, ok := h.Channel("nope"); ok {
		t.Errorf("Channel(nope) = %+v, want not found", c)
	}

	for _, s := range subs {
		h.Unsubscribe(s)
	}
	if got := h.Channels(); len(got) != 0 {
		t.Errorf("after unsubscribing: Channels() = %+v, want none", got)
	}
	if _, ok := h.Channel("news"); ok {
		t.Error("Channel(news) found after everyone left")
	}
}
