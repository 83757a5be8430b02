package grip

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzParsePublish checks that no body makes ParsePublish panic, that a
// refusal is always a *PublishError in Pushpin's words, and that an
// accepted body gives one item per input item, each with the channel it
// named and formats the hub can act on. The seed corpus is in
// testdata/fuzz/FuzzParsePublish.
func FuzzParsePublish(f *testing.F) {
	f.Add([]byte(`{"items": [{"channel": "c", "http-stream": {"content": "x"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		items, ignored, err := ParsePublish(body)
		if err != nil {
			var pe *PublishError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *PublishError: %v", err, err)
			}
			if !strings.HasPrefix(pe.Message, "Invalid format") && pe.Message != "Body is not valid JSON." {
				t.Fatalf("unexpected message %q", pe.Message)
			}
			if items != nil || ignored != nil {
				t.Fatalf("items or ignored returned with an error")
			}
			return
		}

		// Decode the body independently (maps, not structs: struct fields
		// match keys case-insensitively) to compare.
		var top map[string]json.RawMessage
		var list []map[string]json.RawMessage
		if err := json.Unmarshal(body, &top); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %v", err)
		}
		if err := json.Unmarshal(top["items"], &list); err != nil {
			t.Fatalf("accepted items encoding/json refuses: %v", err)
		}
		if len(items) != len(list) {
			t.Fatalf("%d items, body has %d", len(items), len(list))
		}
		for i, it := range items {
			var channel string
			if err := json.Unmarshal(list[i]["channel"], &channel); err != nil {
				t.Fatalf("item %d: accepted channel encoding/json refuses: %v", i, err)
			}
			if it.Channel != channel {
				t.Fatalf("item %d channel %q, body says %q", i, it.Channel, channel)
			}
			if r := it.HTTPResponse; r != nil {
				if r.Action != ActionSend && r.Action != ActionHint {
					t.Fatalf("http-response action %q", r.Action)
				}
				if r.Action == ActionSend && (r.Code < 100 || r.Code > 999) {
					t.Fatalf("http-response code %d", r.Code)
				}
			}
			if s := it.HTTPStream; s != nil {
				if s.Action != ActionSend && s.Action != ActionHint && s.Action != ActionClose {
					t.Fatalf("http-stream action %q", s.Action)
				}
			}
			if w := it.WSMessage; w != nil {
				switch w.Action {
				case ActionSend:
					if w.Type != "text" && w.Type != "binary" && w.Type != "ping" && w.Type != "pong" {
						t.Fatalf("ws-message type %q", w.Type)
					}
				case ActionClose:
					if w.Code < 0 || w.Code > 65535 {
						t.Fatalf("ws-message close code %d", w.Code)
					}
				case ActionRefresh:
				default:
					t.Fatalf("ws-message action %q", w.Action)
				}
			}
		}
		for _, name := range ignored {
			if name == formatHTTPResponse || name == formatHTTPStream || name == formatWSMessage {
				t.Fatalf("known format %q listed as ignored", name)
			}
		}
	})
}
