package grip_test

import (
	"fmt"
	"net/http"

	"github.com/gripd/gripd/grip"
)

// A backend answers with Grip-* headers: hold the client's request as a
// stream on channel "news", resuming after the item with id "41".
func ExampleParseInstruction() {
	h := http.Header{}
	h.Set("Content-Type", "text/event-stream")
	h.Set("Grip-Hold", "stream")
	h.Add("Grip-Channel", "news; prev-id=41")
	h.Set("Grip-Keep-Alive", `:\n\n; format=cstring; timeout=20`)

	inst, err := grip.ParseInstruction(http.StatusOK, h, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("hold:", inst.Hold)
	for _, c := range inst.Channels {
		fmt.Printf("channel %q after %q\n", c.Name, c.PrevID)
	}
	fmt.Printf("keep-alive %q every %v\n", inst.KeepAlive.Data, inst.KeepAlive.Timeout)
	// The Grip-* headers are the proxy's; the client gets the others.
	fmt.Println("client headers:", inst.Response.Header)
	// Output:
	// hold: stream
	// channel "news" after "41"
	// keep-alive ":\n\n" every 20s
	// client headers: map[Content-Type:[text/event-stream]]
}

// The same can be said in an application/grip-instruct body; a response
// hold also names what the client gets when nothing is published in time.
func ExampleParseInstruction_instructBody() {
	h := http.Header{}
	h.Set("Content-Type", grip.InstructContentType)
	body := []byte(`{
		"hold": {"mode": "response", "channels": [{"name": "inbox-7"}], "timeout": 30},
		"response": {"code": 204}
	}`)

	inst, err := grip.ParseInstruction(http.StatusOK, h, body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("hold:", inst.Hold, inst.Channels[0].Name, inst.Timeout)
	fmt.Println("on timeout:", inst.Response.Code)
	// Output:
	// hold: response inbox-7 30s
	// on timeout: 204
}

// An instruction that cannot be followed is an error, never a panic.
func ExampleParseInstruction_error() {
	h := http.Header{}
	h.Set("Grip-Hold", "response") // but no Grip-Channel
	_, err := grip.ParseInstruction(http.StatusOK, h, nil)
	fmt.Println(err)
	// Output:
	// Grip-Hold: response hold without any Grip-Channel
}
