package handoff_test

import (
	"fmt"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// The proxy subscribes a held connection to its channels, the publish
// side delivers items, and the connection's owner takes from its queue
// what is for it: a stream subscriber gets the http-stream format of the
// items of its channels, and nothing else.
func ExampleHub() {
	hub := handoff.NewHub(handoff.Config{})
	defer hub.Close()

	sub := hub.Subscribe(handoff.KindStream, []string{"news"})
	defer hub.Unsubscribe(sub)

	hub.Deliver([]grip.Item{
		{Channel: "news", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte("data: one\n\n")}},
		{Channel: "news", HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionSend, Code: 200, Body: []byte("for long-polls")}},
		{Channel: "sports", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte("data: other\n\n")}},
		{Channel: "news", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend, Content: []byte("data: two\n\n")}},
	})

	// Deliver never blocks: it queued the items. An owner waits on C (and
	// on sub.Done, which says the subscription ended) in its own goroutine.
	for len(sub.C()) > 0 {
		it := <-sub.C()
		if v, content := sub.Take(it); v == handoff.Send {
			fmt.Printf("write %q\n", content)
		}
	}
	fmt.Println("subscribers of news:", hub.SubscriberCount("news"))
	// Output:
	// write "data: one\n\n"
	// write "data: two\n\n"
	// subscribers of news: 1
}

// A held connection with a prev-id follows its channel's chain of ids:
// an item that comes after the one it has is written, and moves the
// chain on.
func ExampleHub_SubscribeHold() {
	hub := handoff.NewHub(handoff.Config{})
	defer hub.Close()

	sub := hub.SubscribeHold(handoff.KindResponse, handoff.HoldSpec{
		Channels:    []grip.Channel{{Name: "counter", PrevID: "7"}},
		Recoverable: true, // a long-poll can be re-requested
	})
	defer hub.Unsubscribe(sub)

	hub.Deliver([]grip.Item{{Channel: "counter", ID: "8", PrevID: "7",
		HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionSend, Code: 200, Body: []byte("8")}}})

	v, body := sub.Take(<-sub.C())
	fmt.Println(v == handoff.Send, string(body))
	fmt.Println("last ids:", sub.LastIDs())
	// Output:
	// true 8
	// last ids: map[counter:8]
}
