package grip_test

import (
	"errors"
	"fmt"

	"github.com/gripd/gripd/grip"
)

// A body of Pushpin's publish API (POST /publish/) gives one item per
// channel, each with the formats of the subscribers it is for.
func ExampleParsePublish() {
	body := []byte(`{"items": [
		{"channel": "news", "id": "42", "prev-id": "41", "formats": {
			"http-stream": {"content": "data: hello\n\n"},
			"http-response": {"body": "hello\n"},
			"apns": {"alert": "hello"}
		}},
		{"channel": "news", "formats": {"http-stream": {"action": "close"}}}
	]}`)

	items, ignored, err := grip.ParsePublish(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, it := range items {
		fmt.Printf("%s id=%q prev-id=%q stream=%s %q\n",
			it.Channel, it.ID, it.PrevID, it.HTTPStream.Action, it.HTTPStream.Content)
	}
	fmt.Println("ignored formats:", ignored)
	// Output:
	// news id="42" prev-id="41" stream=send "data: hello\n\n"
	// news id="" prev-id="" stream=close ""
	// ignored formats: [apns]
}

// One bad item refuses the whole body, with Pushpin's words.
func ExampleParsePublish_error() {
	_, _, err := grip.ParsePublish([]byte(`{"items": [
		{"channel": "a", "formats": {"http-stream": {"content": "x"}}},
		{"formats": {"http-stream": {"content": "y"}}}
	]}`))
	var pe *grip.PublishError
	if errors.As(err, &pe) {
		fmt.Printf("item %d: %s\n", pe.Item, pe.Message)
	}
	// Output:
	// item 1: Invalid format: publish item object does not contain 'channel'
}
