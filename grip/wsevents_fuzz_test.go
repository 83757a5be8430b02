package grip

import (
	"reflect"
	"testing"
	"time"
)

func FuzzParseWSEvents(f *testing.F) {
	f.Add([]byte("OPEN\r\n"))
	f.Add([]byte("TEXT 5\r\nhello\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := ParseWSEvents(body)
		if err != nil {
			if events != nil {
				t.Fatalf("events %v returned with error %v", events, err)
			}
			return
		}
		for i, e := range events {
			if e.Type == "" {
				t.Fatalf("event %d has an empty type", i)
			}
			for _, c := range []byte(e.Type) {
				if c < 'A' || c > 'Z' {
					t.Fatalf("event %d has type %q", i, e.Type)
				}
			}
		}
		wire := AppendWSEvents(nil, events...)
		if len(wire) > len(body) {
			// The encoder writes the shortest hex, so it is never longer.
			t.Fatalf("re-encoding %q gave the longer %q", body, wire)
		}
		again, err := ParseWSEvents(wire)
		if err != nil {
			t.Fatalf("re-encoded %q does not parse: %v", wire, err)
		}
		// DeepEqual keeps nil content (TYPE\r\n) apart from empty content.
		if !reflect.DeepEqual(again, events) {
			t.Fatalf("round trip changed the events\nbody %q\n got %v\nwant %v", body, again, events)
		}
	})
}

func FuzzParseWSControl(f *testing.F) {
	f.Add([]byte(`{"type":"subscribe","channel":"c"}`))
	f.Add([]byte(`{"type":"keep-alive","content":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseWSControl(data)
		if err != nil {
			if c != nil {
				t.Fatalf("control %#v returned with error %v", c, err)
			}
			return
		}
		if c.Type == "" {
			t.Fatal("accepted a control message without a type")
		}
		if len(c.Filters) > MaxFiltersPerChannel {
			t.Fatalf("%d filters, more than %d", len(c.Filters), MaxFiltersPerChannel)
		}
		switch c.Type {
		case "subscribe", "unsubscribe":
			if c.Channel == "" {
				t.Fatalf("%s without a channel", c.Type)
			}
		case "set-meta":
			if c.Name == "" {
				t.Fatal("set-meta without a name")
			}
			if !c.HasValue && c.Value != "" {
				t.Fatalf("set-meta value %q without HasValue", c.Value)
			}
		case "keep-alive":
			switch c.MessageType {
			case "text", "binary", "ping", "pong":
			default:
				t.Fatalf("keep-alive message-type %q", c.MessageType)
			}
			if c.Timeout < time.Second || c.Timeout > 24*time.Hour {
				t.Fatalf("keep-alive timeout %v", c.Timeout)
			}
			if c.Mode != KeepAliveIdle && c.Mode != KeepAliveInterval {
				t.Fatalf("keep-alive mode %q", c.Mode)
			}
		}
	})
}
