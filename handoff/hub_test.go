package handoff

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gripd/gripd/grip"
)

// failAfter bounds every wait in these tests: a signal that has not come
// by then is a failure, not a reason to wait longer.
const failAfter = 2 * time.Second

func respItem(channel, body string) grip.Item {
	return grip.Item{Channel: channel, HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionSend, Code: 200, Body: []byte(body)}}
}

func streamItem(channel, content string) grip.Item {
	return grip.Item{Channel: channel, HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte(content)}}
}

func closeItem(channel string) grip.Item {
	return grip.Item{Channel: channel, HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionClose}}
}

// recv waits for the next item of sub.
func recv(t *testing.T, sub *Subscriber) *grip.Item {
	t.Helper()
	select {
	case it := <-sub.C():
		return it
	case <-time.After(failAfter):
		t.Fatalf("no item within %v", failAfter)
		return nil
	}
}

// assertNothingQueued checks that sub has no item waiting. Deliver queues
// synchronously, so after it returns there is nothing to wait for.
func assertNothingQueued(t *testing.T, sub *Subscriber) {
	t.Helper()
	select {
	case it := <-sub.C():
		t.Fatalf("unexpected item queued: %+v", *it)
	default:
	}
}

func assertDone(t *testing.T, sub *Subscriber, want error) {
	t.Helper()
	select {
	case <-sub.Done():
	case <-time.After(failAfter):
		t.Fatalf("subscriber not ended within %v", failAfter)
	}
	if !errors.Is(sub.Err(), want) {
		t.Fatalf("Err = %v, want %v", sub.Err(), want)
	}
}

func assertLive(t *testing.T, sub *Subscriber) {
	t.Helper()
	select {
	case <-sub.Done():
		t.Fatalf("subscriber ended: %v", sub.Err())
	default:
	}
	if sub.Err() != nil {
		t.Fatalf("Err = %v on a live subscriber", sub.Err())
	}
}

func TestHubSubscribeDeliverUnsubscribe(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindStream, []string{"news"})
	if sub.Kind() != KindStream || len(sub.Channels()) != 1 || sub.Channels()[0] != "news" {
		t.Fatalf("Kind, Channels = %v, %v", sub.Kind(), sub.Channels())
	}
	if n := h.SubscriberCount("news"); n != 1 {
		t.Fatalf("SubscriberCount = %d, want 1", n)
	}
	if st := h.Stats(); st.Subscribers != 1 || st.Channels != 1 {
		t.Fatalf("Stats = %+v, want 1 subscriber on 1 channel", st)
	}

	h.Deliver([]grip.Item{streamItem("news", "hello")})
	it := recv(t, sub)
	if it.Channel != "news" || string(it.HTTPStream.Content) != "hello" {
		t.Fatalf("got %+v, want the published content", *it)
	}
	h.Deliver([]grip.Item{streamItem("sports", "goal")})
	assertNothingQueued(t, sub)
	if st := h.Stats(); st.Delivered != 1 {
		t.Errorf("Delivered = %d, want 1", st.Delivered)
	}

	h.Unsubscribe(sub)
	h.Deliver([]grip.Item{streamItem("news", "after")})
	assertNothingQueued(t, sub)
	assertLive(t, sub) // unsubscribing is the owner's act, not an end by the hub
	if n := h.SubscriberCount("news"); n != 0 {
		t.Errorf("SubscriberCount after Unsubscribe = %d, want 0", n)
	}
	if st := h.Stats(); st.Subscribers != 0 || st.Channels != 0 || st.Delivered != 1 {
		t.Errorf("Stats after Unsubscribe = %+v, want no subscribers, no channels, 1 delivered", st)
	}
	h.Unsubscribe(sub) // a second call changes nothing
	if st := h.Stats(); st.Subscribers != 0 {
		t.Errorf("Subscribers after a second Unsubscribe = %d, want 0", st.Subscribers)
	}
}

func TestHubUnsubscribeKeepsOtherSubscribers(t *testing.T) {
	h := NewHub(Config{})
	a := h.Subscribe(KindStream, []string{"c"})
	b := h.Subscribe(KindStream, []string{"c"})
	h.Unsubscribe(a)
	if n := h.SubscriberCount("c"); n != 1 {
		t.Fatalf("SubscriberCount = %d, want 1", n)
	}
	h.Deliver([]grip.Item{streamItem("c", "x")})
	if it := recv(t, b); string(it.HTTPStream.Content) != "x" {
		t.Fatalf("b got %q", it.HTTPStream.Content)
	}
	assertNothingQueued(t, a)
	h.Unsubscribe(b)
	if st := h.Stats(); st.Subscribers != 0 || st.Channels != 0 {
		t.Errorf("Stats = %+v, want empty", st)
	}
}

func TestHubDeliversOnlyTheKindsFormat(t *testing.T) {
	resp := &grip.HTTPResponseFormat{Action: grip.ActionSend, Body: []byte("r")}
	respHint := &grip.HTTPResponseFormat{Action: grip.ActionHint}
	stream := &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte("s")}
	streamClose := &grip.HTTPStreamFormat{Action: grip.ActionClose}
	streamHint := &grip.HTTPStreamFormat{Action: grip.ActionHint}
	ws := &grip.WSMessageFormat{Action: grip.ActionSend, Type: "text", Content: []byte("w")}

	tests := []struct {
		name string
		item grip.Item
		// which kinds get the item
		response, stream, websocket bool
	}{
		{"http-response only", grip.Item{HTTPResponse: resp}, true, false, false},
		{"http-stream only", grip.Item{HTTPStream: stream}, false, true, false},
		{"ws-message only", grip.Item{WSMessage: ws}, false, false, true},
		{"all three formats", grip.Item{HTTPResponse: resp, HTTPStream: stream, WSMessage: ws}, true, true, true},
		{"stream close", grip.Item{HTTPStream: streamClose}, false, true, false},
		{"response hint is not queued", grip.Item{HTTPResponse: respHint}, false, false, false},
		{"stream hint is not queued", grip.Item{HTTPStream: streamHint}, false, false, false},
		{"hints with a ws message", grip.Item{HTTPResponse: respHint, HTTPStream: streamHint, WSMessage: ws}, false, false, true},
		{"no formats", grip.Item{}, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHub(Config{})
			subs := map[Kind]*Subscriber{
				KindResponse:  h.Subscribe(KindResponse, []string{"c"}),
				KindStream:    h.Subscribe(KindStream, []string{"c"}),
				KindWebSocket: h.Subscribe(KindWebSocket, []string{"c"}),
			}
			it := tt.item
			it.Channel = "c"
			h.Deliver([]grip.Item{it})
			want := map[Kind]bool{KindResponse: tt.response, KindStream: tt.stream, KindWebSocket: tt.websocket}
			for kind, sub := range subs {
				select {
				case got := <-sub.C():
					if !want[kind] {
						t.Errorf("%v subscriber got the item", kind)
					}
					if got.Channel != "c" || got.HTTPResponse != it.HTTPResponse || got.HTTPStream != it.HTTPStream || got.WSMessage != it.WSMessage {
						t.Errorf("%v subscriber got %+v, want the published item", kind, *got)
					}
				default:
					if want[kind] {
						t.Errorf("%v subscriber got nothing", kind)
					}
				}
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindResponse: "response", KindStream: "stream", KindWebSocket: "ws", Kind(42): "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

func TestHubPreservesPublishOrder(t *testing.T) {
	h := NewHub(Config{QueueSize: 64})
	a := h.Subscribe(KindStream, []string{"c"})
	b := h.Subscribe(KindStream, []string{"c"})
	var batch []grip.Item
	for i := range 30 {
		batch = append(batch, streamItem("c", fmt.Sprint(i)))
	}
	h.Deliver(batch) // one call, many items
	for i := 30; i < 60; i++ {
		h.Deliver([]grip.Item{streamItem("c", fmt.Sprint(i))}) // one call per item
	}
	for _, sub := range []*Subscriber{a, b} {
		for i := range 60 {
			if got := string(recv(t, sub).HTTPStream.Content); got != fmt.Sprint(i) {
				t.Fatalf("item %d = %q, want %d", i, got, i)
			}
		}
		assertNothingQueued(t, sub)
	}
}

func TestHubSubscriberOnTwoChannels(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindResponse, []string{"a", "b"})
	if h.SubscriberCount("a") != 1 || h.SubscriberCount("b") != 1 {
		t.Fatalf("counts a=%d b=%d, want 1 and 1", h.SubscriberCount("a"), h.SubscriberCount("b"))
	}
	if st := h.Stats(); st.Subscribers != 1 || st.Channels != 2 {
		t.Fatalf("Stats = %+v, want 1 subscriber on 2 channels", st)
	}
	h.Deliver([]grip.Item{respItem("a", "from a"), respItem("c", "from c"), respItem("b", "from b")})
	if got := recv(t, sub); got.Channel != "a" || string(got.HTTPResponse.Body) != "from a" {
		t.Errorf("first item %+v, want from a", *got)
	}
	if got := recv(t, sub); got.Channel != "b" || string(got.HTTPResponse.Body) != "from b" {
		t.Errorf("second item %+v, want from b", *got)
	}
	assertNothingQueued(t, sub)
	h.Unsubscribe(sub)
	if st := h.Stats(); st.Subscribers != 0 || st.Channels != 0 {
		t.Errorf("Stats after Unsubscribe = %+v, want empty", st)
	}
}

func TestHubSameChannelTwiceInOneSubscription(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindStream, []string{"a", "a"})
	h.Deliver([]grip.Item{streamItem("a", "once")})
	recv(t, sub)
	assertNothingQueued(t, sub)
	h.Unsubscribe(sub)
	if st := h.Stats(); st.Subscribers != 0 || st.Channels != 0 {
		t.Errorf("Stats = %+v, want empty", st)
	}
}

func TestHubSlowSubscriberIsEnded(t *testing.T) {
	h := NewHub(Config{QueueSize: 2})
	slow := h.Subscribe(KindStream, []string{"c"})
	fast := h.Subscribe(KindStream, []string{"c"})
	const n = 10
	for i := range n {
		h.Deliver([]grip.Item{streamItem("c", fmt.Sprint(i))})
		// fast keeps up: it takes each item before the next publish.
		if got := string(recv(t, fast).HTTPStream.Content); got != fmt.Sprint(i) {
			t.Fatalf("fast subscriber item %d = %q", i, got)
		}
		if i < 2 {
			assertLive(t, slow) // its queue holds 2
		}
	}
	assertDone(t, slow, ErrSlow)
	assertLive(t, fast)
	st := h.Stats()
	if st.Slow != 1 {
		t.Errorf("Stats.Slow = %d, want 1 (ended once, however many items it missed)", st.Slow)
	}
	if st.Delivered != n+2 {
		t.Errorf("Stats.Delivered = %d, want %d (all to fast, 2 to slow)", st.Delivered, n+2)
	}
	if want := (FormatCounts{HTTPStream: n - 2}); st.Dropped != want {
		t.Errorf("Stats.Dropped = %+v, want %+v (every item slow missed)", st.Dropped, want)
	}
	// What the slow subscriber had queued is still there, in order.
	for i := range 2 {
		if got := string(recv(t, slow).HTTPStream.Content); got != fmt.Sprint(i) {
			t.Errorf("slow subscriber item %d = %q", i, got)
		}
	}
	h.Unsubscribe(slow)
	if n := h.SubscriberCount("c"); n != 1 {
		t.Errorf("SubscriberCount = %d, want 1", n)
	}
}

func TestHubCloseEndsEverySubscriber(t *testing.T) {
	h := NewHub(Config{QueueSize: 1})
	a := h.Subscribe(KindStream, []string{"a"})
	b := h.Subscribe(KindResponse, []string{"b", "c"})
	slow := h.Subscribe(KindStream, []string{"a"})
	h.Deliver([]grip.Item{streamItem("a", "1")}) // slow's queue is full now
	recv(t, a)
	h.Deliver([]grip.Item{streamItem("a", "2")}) // ends slow
	recv(t, a)
	assertDone(t, slow, ErrSlow)
	assertLive(t, a)

	h.Close()
	assertDone(t, a, ErrClosed)
	assertDone(t, b, ErrClosed)
	assertDone(t, slow, ErrSlow) // the first reason stays

	late := h.Subscribe(KindStream, []string{"a"})
	assertDone(t, late, ErrClosed)
	for _, s := range []*Subscriber{a, b, slow, late} {
		h.Unsubscribe(s)
	}
	if st := h.Stats(); st.Subscribers != 0 || st.Channels != 0 {
		t.Errorf("Stats after unsubscribing all = %+v, want empty", st)
	}
	h.Close() // closing twice is harmless
}

// TestHubConcurrentUse runs subscribes, deliveries and unsubscribes at once
// (for the race detector) and checks that every subscriber that stayed
// subscribed through a delivery got it.
func TestHubConcurrentUse(t *testing.T) {
	h := NewHub(Config{QueueSize: 1000})
	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ch := fmt.Sprintf("c%d", w%3)
			for r := range rounds {
				sub := h.Subscribe(KindStream, []string{ch, "shared"})
				h.Deliver([]grip.Item{streamItem(ch, fmt.Sprint(r))})
				// sub was subscribed before its own Deliver, so it must see
				// that item among whatever others it got.
				found := false
				for !found {
					select {
					case it := <-sub.C():
						found = it.Channel == ch && string(it.HTTPStream.Content) == fmt.Sprint(r)
					default:
						t.Errorf("worker %d round %d: own item not queued", w, r)
						found = true
					}
				}
				h.Unsubscribe(sub)
				_ = h.Stats()
			}
		})
	}
	wg.Wait()
	if st := h.Stats(); st.Subscribers != 0 || st.Channels != 0 || st.Slow != 0 {
		t.Errorf("Stats = %+v, want no subscribers, channels or slow ones", st)
	}
}

// TestHubCloseRacingSubscribe checks that a subscription made while the
// hub is closing is ended too, whichever side wins.
func TestHubCloseRacingSubscribe(t *testing.T) {
	for range 50 {
		h := NewHub(Config{})
		subs := make(chan *Subscriber, 16)
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() { subs <- h.Subscribe(KindStream, []string{fmt.Sprint(i)}) })
		}
		h.Close()
		wg.Wait()
		close(subs)
		for s := range subs {
			assertDone(t, s, ErrClosed)
			h.Unsubscribe(s)
		}
	}
}
