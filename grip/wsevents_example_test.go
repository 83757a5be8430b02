package grip_test

import (
	"fmt"

	"github.com/gripd/gripd/grip"
)

// gripd speaks WebSocket-over-HTTP to backends: each request and response
// body is a list of events, "TYPE <hex length>\r\n<content>\r\n", or
// "TYPE\r\n" for an event without content.
func ExampleAppendWSEvents() {
	body := grip.AppendWSEvents(nil,
		grip.WSEvent{Type: grip.WSOpen},
		grip.WSEvent{Type: grip.WSText, Content: []byte("hello")},
		grip.WSEvent{Type: grip.WSClose, Content: grip.WSCloseContent(1000, "bye")},
	)
	fmt.Printf("%q\n", body)
	// Output:
	// "OPEN\r\nTEXT 5\r\nhello\r\nCLOSE 5\r\n\x03\xe8bye\r\n"
}

// A backend's answer, read back into events; a CLOSE event's content is
// its code and reason.
func ExampleParseWSEvents() {
	body := []byte("TEXT 2\r\nhi\r\nTEXT 9\r\nc:{\"a\":1}\r\nCLOSE 2\r\n\x03\xe8\r\n")
	events, err := grip.ParseWSEvents(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range events {
		if e.Type == grip.WSClose {
			code, reason, err := grip.ParseWSClose(e.Content)
			fmt.Println(e.Type, code, reason, err)
			continue
		}
		fmt.Printf("%s %q\n", e.Type, e.Content)
	}
	// Output:
	// TEXT "hi"
	// TEXT "c:{\"a\":1}"
	// CLOSE 1000  <nil>
}

// A body cut short is an error that says where.
func ExampleParseWSEvents_error() {
	_, err := grip.ParseWSEvents([]byte("OPEN\r\nTEXT 5\r\nhi\r\n"))
	fmt.Println(err)
	// Output:
	// event 1 (TEXT): content of 5 bytes is cut short
}
