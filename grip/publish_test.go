package grip

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestParsePublishErrors covers every refusal in the control-API table of
// conformance/NOTES.md, with Pushpin's exact text, and the refusals gripd
// adds.
func TestParsePublishErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
		item int // index in PublishError.Item
	}{
		// The rows of NOTES.md, section "Control API (09-control-api)".
		{"malformed JSON", `{"items": [`, "Body is not valid JSON.", -1},
		{"empty body", ``, "Body is not valid JSON.", -1},
		{"top level array", `[{"items": []}]`, "Invalid format.", -1},
		{"empty object", `{}`, "Invalid format: object does not contain 'items'", -1},
		{"items not an array", `{"items": {}}`, "Invalid format: object contains 'items' with wrong type", -1},
		{"items null", `{"items": null}`, "Invalid format: object contains 'items' with wrong type", -1},
		{"item without channel", `{"items": [{"formats": {"http-stream": {"content": "x"}}}]}`,
			"Invalid format: publish item object does not contain 'channel'", 0},
		{"channel not a string", `{"items": [{"channel": 5, "formats": {"http-stream": {"content": "x"}}}]}`,
			"Invalid format: publish item object contains 'channel' with wrong type", 0},
		{"channel null", `{"items": [{"channel": null, "formats": {"http-stream": {"content": "x"}}}]}`,
			"Invalid format: publish item object contains 'channel' with wrong type", 0},
		{"id not a string", `{"items": [{"channel": "c", "id": 1, "formats": {"http-stream": {"content": "x"}}}]}`,
			"Invalid format: publish item object contains 'id' with wrong type", 0},
		{"item with no format", `{"items": [{"channel": "c"}]}`, "Invalid format: no formats specified", 0},
		{"empty formats", `{"items": [{"channel": "c", "formats": {}}]}`, "Invalid format: no formats specified", 0},
		{"http-stream without content", `{"items": [{"channel": "c", "formats": {"http-stream": {}}}]}`,
			"Invalid format: 'http-stream' does not contain 'content' or 'content-bin'", 0},
		{"http-stream content not a string", `{"items": [{"channel": "c", "formats": {"http-stream": {"content": 5}}}]}`,
			"Invalid format: 'http-stream' contains 'content' with wrong type", 0},
		{"http-response without body", `{"items": [{"channel": "c", "formats": {"http-response": {"code": 200}}}]}`,
			"Invalid format: 'http-response' does not contain 'body', 'body-bin', or 'body-patch'", 0},
		{"http-response headers a string", `{"items": [{"channel": "c", "formats": {"http-response": {"headers": "X: y", "body": "b"}}}]}`,
			"Invalid format: 'http-response' contains 'headers' with wrong type", 0},
		{"ws-message without content", `{"items": [{"channel": "c", "formats": {"ws-message": {}}}]}`,
			"Invalid format: 'ws-message' does not contain 'content' or 'content-bin'", 0},

		// More of Pushpin's messages.
		{"scalar top level", `5`, "Body is not valid JSON.", -1},
		{"trailing garbage", `{"items": []} x`, "Body is not valid JSON.", -1},
		{"item not an object", `{"items": ["c"]}`, "Invalid format: publish item object is not an object", 0},
		{"prev-id not a string", `{"items": [{"channel": "c", "prev-id": true, "http-stream": {"content": "x"}}]}`,
			"Invalid format: publish item object contains 'prev-id' with wrong type", 0},
		{"formats not an object", `{"items": [{"channel": "c", "formats": []}]}`,
			"Invalid format: publish item object contains 'formats' with wrong type", 0},
		{"format not an object", `{"items": [{"channel": "c", "formats": {"http-stream": "x"}}]}`,
			"Invalid format: 'http-stream' is not an object", 0},
		{"format null inside formats", `{"items": [{"channel": "c", "formats": {"ws-message": null}}]}`,
			"Invalid format: 'ws-message' is not an object", 0},
		{"meta not an object", `{"items": [{"channel": "c", "meta": "x", "http-stream": {"content": "x"}}]}`,
			"Invalid format: publish item object contains 'meta' with wrong type", 0},
		{"meta value not a string", `{"items": [{"channel": "c", "meta": {"a": 1}, "http-stream": {"content": "x"}}]}`,
			"Invalid format: 'meta' contains 'a' with wrong type", 0},
		{"size wrong type", `{"items": [{"channel": "c", "size": "x", "http-stream": {"content": "x"}}]}`,
			"Invalid format: publish item object contains 'size' with wrong type", 0},
		{"size negative", `{"items": [{"channel": "c", "size": -1, "http-stream": {"content": "x"}}]}`,
			"Invalid format: publish item object contains 'size' with invalid value", 0},
		{"no-seq wrong type", `{"items": [{"channel": "c", "no-seq": "yes", "http-stream": {"content": "x"}}]}`,
			"Invalid format: publish item object contains 'no-seq' with wrong type", 0},
		{"action wrong type", `{"items": [{"channel": "c", "http-stream": {"action": 1}}]}`,
			"Invalid format: 'http-stream' contains 'action' with wrong type", 0},
		{"code wrong type", `{"items": [{"channel": "c", "http-response": {"code": [], "body": ""}}]}`,
			"Invalid format: 'http-response' contains 'code' with wrong type", 0},
		{"code over 999", `{"items": [{"channel": "c", "http-response": {"code": 1000, "body": ""}}]}`,
			"Invalid format: 'http-response' contains 'code' with invalid value", 0},
		{"reason wrong type", `{"items": [{"channel": "c", "http-response": {"reason": 1, "body": ""}}]}`,
			"Invalid format: 'http-response' contains 'reason' with wrong type", 0},
		{"body wrong type", `{"items": [{"channel": "c", "http-response": {"body": {}}}]}`,
			"Invalid format: 'http-response' contains 'body' with wrong type", 0},
		{"body-patch wrong type", `{"items": [{"channel": "c", "http-response": {"body-patch": {}}}]}`,
			"Invalid format: 'http-response' contains 'body-patch' with wrong type", 0},
		{"header value wrong type", `{"items": [{"channel": "c", "http-response": {"headers": {"X-A": 1}, "body": ""}}]}`,
			"Invalid format: headers contains 'X-A' with wrong type", 0},
		{"header pair not a list", `{"items": [{"channel": "c", "http-response": {"headers": ["X-A"], "body": ""}}]}`,
			"Invalid format: headers contains element with wrong type", 0},
		{"header pair of three", `{"items": [{"channel": "c", "http-response": {"headers": [["a", "b", "c"]], "body": ""}}]}`,
			"Invalid format: headers contains list with wrong number of elements", 0},
		{"header pair name wrong type", `{"items": [{"channel": "c", "http-response": {"headers": [[1, "b"]], "body": ""}}]}`,
			"Invalid format: header contains name element with wrong type", 0},
		{"header pair value wrong type", `{"items": [{"channel": "c", "http-response": {"headers": [["a", 2]], "body": ""}}]}`,
			"Invalid format: header contains value element with wrong type", 0},
		{"content-filters wrong type", `{"items": [{"channel": "c", "http-stream": {"content": "x", "content-filters": "f"}}]}`,
			"Invalid format: 'http-stream' contains 'content-filters' with wrong type", 0},
		{"content-filters element wrong type", `{"items": [{"channel": "c", "http-stream": {"content": "x", "content-filters": [1]}}]}`,
			"Invalid format: content-filters contains element with wrong type", 0},
		{"content-bin wrong type", `{"items": [{"channel": "c", "http-stream": {"content-bin": 1}}]}`,
			"Invalid format: 'http-stream' contains 'content-bin' with wrong type", 0},
		{"ws type unknown", `{"items": [{"channel": "c", "ws-message": {"type": "blob", "content": "x"}}]}`,
			"Invalid format: 'ws-message' contains 'type' with unknown value", 0},
		{"ws text without content", `{"items": [{"channel": "c", "ws-message": {"type": "text"}}]}`,
			"Invalid format: 'ws-message' does not contain 'content' or 'content-bin'", 0},
		{"ws close code wrong type", `{"items": [{"channel": "c", "ws-message": {"action": "close", "code": "x"}}]}`,
			"Invalid format: 'ws-message' contains 'code' with wrong type", 0},
		{"ws close code negative", `{"items": [{"channel": "c", "ws-message": {"action": "close", "code": -1}}]}`,
			"Invalid format: 'ws-message' contains 'code' with invalid value", 0},

		// Where gripd is stricter than Pushpin (Pushpin answers an unknown
		// action with an empty message and accepts the rest).
		{"unknown action", `{"items": [{"channel": "c", "http-stream": {"action": "x"}}]}`,
			"Invalid format: 'http-stream' contains unknown action 'x'", 0},
		{"empty action", `{"items": [{"channel": "c", "http-stream": {"action": ""}}]}`,
			"Invalid format: 'http-stream' contains unknown action ''", 0},
		{"close on http-response", `{"items": [{"channel": "c", "http-response": {"action": "close"}}]}`,
			"Invalid format: 'http-response' contains unknown action 'close'", 0},
		{"refresh on http-stream", `{"items": [{"channel": "c", "http-stream": {"action": "refresh"}}]}`,
			"Invalid format: 'http-stream' contains unknown action 'refresh'", 0},
		{"code not digits", `{"items": [{"channel": "c", "http-response": {"code": "abc", "body": ""}}]}`,
			"Invalid format: 'http-response' contains 'code' with wrong type", 0},
		{"code fractional", `{"items": [{"channel": "c", "http-response": {"code": 200.5, "body": ""}}]}`,
			"Invalid format: 'http-response' contains 'code' with wrong type", 0},
		{"code below 100", `{"items": [{"channel": "c", "http-response": {"code": 0, "body": ""}}]}`,
			"Invalid format: 'http-response' contains 'code' with invalid value", 0},
		{"body-bin invalid base64", `{"items": [{"channel": "c", "http-response": {"body-bin": "%%%"}}]}`,
			"Invalid format: 'http-response' contains 'body-bin' with invalid base64", 0},
		{"content-bin invalid base64", `{"items": [{"channel": "c", "ws-message": {"content-bin": "a"}}]}`,
			"Invalid format: 'ws-message' contains 'content-bin' with invalid base64", 0},
		{"header name with a space", `{"items": [{"channel": "c", "http-response": {"headers": {"X A": "b"}, "body": ""}}]}`,
			"Invalid format: headers contains invalid name 'X A'", 0},
		{"header value with a line break", `{"items": [{"channel": "c", "http-response": {"headers": [["X-A", "b\r\nSet-Cookie: x"]], "body": ""}}]}`,
			"Invalid format: headers contains 'X-A' with invalid value", 0},
		{"ws close code too big", `{"items": [{"channel": "c", "ws-message": {"action": "close", "code": 70000}}]}`,
			"Invalid format: 'ws-message' contains 'code' with invalid value", 0},

		// What cannot go on the client's connection as published (a
		// hostile or buggy publisher).
		{"header value with a control byte", `{"items": [{"channel": "c", "http-response": {"headers": {"X-A": "b\u0001"}, "body": ""}}]}`,
			"Invalid format: headers contains 'X-A' with invalid value", 0},
		{"header value with DEL", `{"items": [{"channel": "c", "http-response": {"headers": {"X-A": "b\u007f"}, "body": ""}}]}`,
			"Invalid format: headers contains 'X-A' with invalid value", 0},
		{"hop-by-hop Connection", `{"items": [{"channel": "c", "http-response": {"headers": {"Connection": "close"}, "body": ""}}]}`,
			"Invalid format: headers contains hop-by-hop header 'Connection'", 0},
		{"hop-by-hop upgrade", `{"items": [{"channel": "c", "http-response": {"headers": [["upgrade", "h2c"]], "body": ""}}]}`,
			"Invalid format: headers contains hop-by-hop header 'upgrade'", 0},
		{"hop-by-hop Keep-Alive", `{"items": [{"channel": "c", "http-response": {"headers": {"Keep-Alive": "timeout=5"}, "body": ""}}]}`,
			"Invalid format: headers contains hop-by-hop header 'Keep-Alive'", 0},
		{"hop-by-hop Trailer", `{"items": [{"channel": "c", "http-response": {"headers": {"Trailer": "X"}, "body": ""}}]}`,
			"Invalid format: headers contains hop-by-hop header 'Trailer'", 0},
		{"code 101", `{"items": [{"channel": "c", "http-response": {"code": 101, "body": ""}}]}`,
			"Invalid format: 'http-response' contains 'code' with invalid value", 0},
		{"ws close code 1006", `{"items": [{"channel": "c", "ws-message": {"action": "close", "code": 1006}}]}`,
			"Invalid format: 'ws-message' contains 'code' with invalid value", 0},
		{"ws close code 65535", `{"items": [{"channel": "c", "ws-message": {"action": "close", "code": 65535}}]}`,
			"Invalid format: 'ws-message' contains 'code' with invalid value", 0},
		{"ws close reason over 123 bytes", `{"items": [{"channel": "c", "ws-message": {"action": "close", "code": 1000, "reason": "` + strings.Repeat("r", 124) + `"}}]}`,
			"Invalid format: 'ws-message' contains 'reason' longer than 123 bytes", 0},

		// All or nothing: the second item is at fault, the first is fine.
		{"second item bad", `{"items": [{"channel": "a", "http-stream": {"content": "x"}}, {"channel": "b", "http-stream": {}}]}`,
			"Invalid format: 'http-stream' does not contain 'content' or 'content-bin'", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, ignored, err := ParsePublish([]byte(tt.body))
			if err == nil {
				t.Fatalf("no error; items %+v", items)
			}
			if items != nil || ignored != nil {
				t.Errorf("items %v, ignored %v returned with the error", items, ignored)
			}
			var pe *PublishError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *PublishError", err)
			}
			if pe.Message != tt.want || err.Error() != tt.want {
				t.Errorf("message %q, want %q", err.Error(), tt.want)
			}
			if pe.Item != tt.item {
				t.Errorf("Item %d, want %d", pe.Item, tt.item)
			}
		})
	}
}

// TestParsePublishAccepts checks what accepted bodies turn into.
func TestParsePublishAccepts(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		want        []Item
		wantIgnored []string
	}{
		{"no items", `{"items": []}`, []Item{}, nil},
		{
			"all three formats",
			`{"items": [{"channel": "news", "id": "2", "prev-id": "1", "formats": {
				"http-response": {"body": "hi\n"},
				"http-stream": {"content": "hi\n"},
				"ws-message": {"content": "hi"}}}]}`,
			[]Item{{
				Channel: "news", ID: "2", PrevID: "1",
				HTTPResponse: &HTTPResponseFormat{Action: ActionSend, Code: 200, Body: []byte("hi\n")},
				HTTPStream:   &HTTPStreamFormat{Action: ActionSend, Content: []byte("hi\n")},
				WSMessage:    &WSMessageFormat{Action: ActionSend, Type: "text", Content: []byte("hi")},
			}},
			nil,
		},
		{
			"legacy formats on the item",
			`{"items": [{"channel": "c", "http-stream": {"content": "x"}, "ws-message": {"content-bin": "AAE="}}]}`,
			[]Item{{
				Channel:    "c",
				HTTPStream: &HTTPStreamFormat{Action: ActionSend, Content: []byte("x")},
				WSMessage:  &WSMessageFormat{Action: ActionSend, Type: "binary", Content: []byte{0, 1}},
			}},
			nil,
		},
		{
			"formats wins over legacy keys",
			`{"items": [{"channel": "c", "formats": {"http-stream": {"content": "in"}}, "ws-message": {"content": "out"}}]}`,
			[]Item{{Channel: "c", HTTPStream: &HTTPStreamFormat{Action: ActionSend, Content: []byte("in")}}},
			nil,
		},
		{
			"headers as an object, code as a number, reason",
			`{"items": [{"channel": "c", "http-response": {"code": 404, "reason": "Nope", "headers": {"content-type": "text/plain", "X-P": "pub"}, "body": "gone"}}]}`,
			[]Item{{Channel: "c", HTTPResponse: &HTTPResponseFormat{
				Action: ActionSend, Code: 404, Reason: "Nope",
				Header: http.Header{"Content-Type": {"text/plain"}, "X-P": {"pub"}},
				Body:   []byte("gone"),
			}}},
			nil,
		},
		{
			"headers as pairs keep repeats",
			`{"items": [{"channel": "c", "http-response": {"headers": [["Set-Cookie", "a=1"], ["Set-Cookie", "b=2"], ["X-Empty", ""]], "body": ""}}]}`,
			[]Item{{Channel: "c", HTTPResponse: &HTTPResponseFormat{
				Action: ActionSend, Code: 200,
				Header: http.Header{"Set-Cookie": {"a=1", "b=2"}, "X-Empty": {""}},
				Body:   []byte(""),
			}}},
			nil,
		},
		{
			"code as a string",
			`{"items": [{"channel": "c", "http-response": {"code": "201", "body": "made"}}]}`,
			[]Item{{Channel: "c", HTTPResponse: &HTTPResponseFormat{Action: ActionSend, Code: 201, Body: []byte("made")}}},
			nil,
		},
		{
			"body-bin is decoded and wins over body",
			`{"items": [{"channel": "c", "http-response": {"body-bin": "aGk=", "body": "ignored"}}]}`,
			[]Item{{Channel: "c", HTTPResponse: &HTTPResponseFormat{Action: ActionSend, Code: 200, Body: []byte("hi")}}},
			nil,
		},
		{
			"unpadded base64",
			`{"items": [{"channel": "c", "http-stream": {"content-bin": "aGk"}}]}`,
			[]Item{{Channel: "c", HTTPStream: &HTTPStreamFormat{Action: ActionSend, Content: []byte("hi")}}},
			nil,
		},
		{
			"body-patch kept raw",
			`{"items": [{"channel": "c", "http-response": {"body-patch": [{"op": "add", "path": "/a", "value": 1}]}}]}`,
			[]Item{{Channel: "c", HTTPResponse: &HTTPResponseFormat{
				Action: ActionSend, Code: 200,
				BodyPatch: []byte(`[{"op": "add", "path": "/a", "value": 1}]`),
			}}},
			nil,
		},
		{
			"hint and close need no content",
			`{"items": [{"channel": "c", "http-response": {"action": "hint"}, "http-stream": {"action": "close"}, "ws-message": {"action": "refresh"}}]}`,
			[]Item{{
				Channel:      "c",
				HTTPResponse: &HTTPResponseFormat{Action: ActionHint},
				HTTPStream:   &HTTPStreamFormat{Action: ActionClose},
				WSMessage:    &WSMessageFormat{Action: ActionRefresh},
			}},
			nil,
		},
		{
			"ws hint is dropped",
			`{"items": [{"channel": "c", "http-stream": {"action": "hint"}, "ws-message": {"action": "hint"}}]}`,
			[]Item{{Channel: "c", HTTPStream: &HTTPStreamFormat{Action: ActionHint}}},
			nil,
		},
		{
			"ws close with code and reason",
			`{"items": [{"channel": "c", "ws-message": {"action": "close", "code": 4001, "reason": "bye"}}]}`,
			[]Item{{Channel: "c", WSMessage: &WSMessageFormat{Action: ActionClose, Code: 4001, Reason: "bye"}}},
			nil,
		},
		{
			"ws close without code",
			`{"items": [{"channel": "c", "ws-message": {"action": "close"}}]}`,
			[]Item{{Channel: "c", WSMessage: &WSMessageFormat{Action: ActionClose}}},
			nil,
		},
		{
			"ws explicit type, empty ping",
			`{"items": [{"channel": "a", "ws-message": {"type": "binary", "content": "x"}}, {"channel": "b", "ws-message": {"type": "ping"}}]}`,
			[]Item{
				{Channel: "a", WSMessage: &WSMessageFormat{Action: ActionSend, Type: "binary", Content: []byte("x")}},
				{Channel: "b", WSMessage: &WSMessageFormat{Action: ActionSend, Type: "ping"}},
			},
			nil,
		},
		{
			"meta",
			`{"items": [{"channel": "c", "meta": {"sender": "alice", "x": ""}, "http-stream": {"content": "x"}}]}`,
			[]Item{{
				Channel:    "c",
				Meta:       map[string]string{"sender": "alice", "x": ""},
				HTTPStream: &HTTPStreamFormat{Action: ActionSend, Content: []byte("x")},
			}},
			nil,
		},
		{
			"nulls count as absent",
			`{"items": [{"channel": "c", "id": null, "meta": null, "formats": null, "http-stream": {"action": null, "content": "x", "content-bin": null}}]}`,
			[]Item{{Channel: "c", HTTPStream: &HTTPStreamFormat{Action: ActionSend, Content: []byte("x")}}},
			nil,
		},
		{
			"only an unknown format",
			`{"items": [{"channel": "c", "formats": {"sse": {"x": 1}}}]}`,
			[]Item{{Channel: "c"}},
			[]string{"sse"},
		},
		{
			"unknown formats beside known ones, listed once",
			`{"items": [{"channel": "a", "formats": {"zz": {}, "http-stream": {"content": "x"}, "aa": 1}}, {"channel": "b", "formats": {"zz": {}}}]}`,
			[]Item{
				{Channel: "a", HTTPStream: &HTTPStreamFormat{Action: ActionSend, Content: []byte("x")}},
				{Channel: "b"},
			},
			[]string{"aa", "zz"},
		},
		{
			"empty channel, size, no-seq and content-filters are accepted",
			`{"items": [{"channel": "", "size": 3, "no-seq": true, "http-stream": {"content": "", "content-filters": ["f"]}}]}`,
			[]Item{{Channel: "", NoSeq: true, HTTPStream: &HTTPStreamFormat{Action: ActionSend, Content: []byte("")}}},
			nil,
		},
		{
			"content-type of the body is irrelevant, whitespace around it too",
			" \n{\"items\": [{\"channel\": \"c\", \"http-stream\": {\"content\": \"x\"}}]}\n ",
			[]Item{{Channel: "c", HTTPStream: &HTTPStreamFormat{Action: ActionSend, Content: []byte("x")}}},
			nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, ignored, err := ParsePublish([]byte(tt.body))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !reflect.DeepEqual(items, tt.want) {
				t.Errorf("items\n got %s\nwant %s", dumpItems(items), dumpItems(tt.want))
			}
			if !reflect.DeepEqual(ignored, tt.wantIgnored) {
				t.Errorf("ignored %q, want %q", ignored, tt.wantIgnored)
			}
		})
	}
}

// dumpItems prints items with their formats spelled out, for failures.
func dumpItems(items []Item) string {
	var b strings.Builder
	for _, it := range items {
		b.WriteString("{" + it.Channel)
		if it.HTTPResponse != nil {
			r := it.HTTPResponse
			b.WriteString(" resp:" + string(r.Action) + " " + http.StatusText(r.Code) + " " + r.Reason + " body=" + string(r.Body) + " patch=" + string(r.BodyPatch))
			for k, v := range r.Header {
				b.WriteString(" " + k + "=" + strings.Join(v, "|"))
			}
		}
		if it.HTTPStream != nil {
			b.WriteString(" stream:" + string(it.HTTPStream.Action) + " " + string(it.HTTPStream.Content))
		}
		if it.WSMessage != nil {
			w := it.WSMessage
			b.WriteString(" ws:" + string(w.Action) + " " + w.Type + " " + string(w.Content) + " " + w.Reason)
		}
		b.WriteString("} ")
	}
	return b.String()
}
