package grip

import (
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"
)

// MarshalItem encodes an item in Pushpin's publish item format, the
// inverse of what ParsePublish reads: what gripd instances send each
// other over NATS. Content that is valid UTF-8 goes as text ("content",
// "body"), so the messages stay readable in `nats sub`; anything else as
// base64 ("content-bin", "body-bin").
func MarshalItem(it Item) ([]byte, error) {
	out := map[string]any{"channel": it.Channel}
	if it.ID != "" {
		out["id"] = it.ID
	}
	if it.PrevID != "" {
		out["prev-id"] = it.PrevID
	}
	if it.NoSeq {
		out["no-seq"] = true
	}
	if len(it.Meta) > 0 {
		out["meta"] = it.Meta
	}
	formats := map[string]any{}
	if f := it.HTTPResponse; f != nil {
		m := map[string]any{"action": string(f.Action), "code": f.Code}
		if f.Code == 0 {
			m["code"] = 200
		}
		if f.Reason != "" {
			m["reason"] = f.Reason
		}
		if len(f.Header) > 0 {
			var pairs [][2]string
			for k, vs := range f.Header {
				for _, v := range vs {
					pairs = append(pairs, [2]string{k, v})
				}
			}
			m["headers"] = pairs
		}
		if f.BodyPatch != nil {
			m["body-patch"] = json.RawMessage(f.BodyPatch)
		} else {
			putContent(m, "body", f.Body)
		}
		formats[formatHTTPResponse] = m
	}
	if f := it.HTTPStream; f != nil {
		m := map[string]any{"action": string(f.Action)}
		if f.Action == ActionSend || f.Action == "" {
			putContent(m, "content", f.Content)
		}
		formats[formatHTTPStream] = m
	}
	if f := it.WSMessage; f != nil {
		m := map[string]any{"action": string(f.Action)}
		switch f.Action {
		case ActionClose:
			if f.Code != 0 {
				m["code"] = f.Code
			}
			if f.Reason != "" {
				m["reason"] = f.Reason
			}
		case ActionSend, "":
			if f.Type != "" {
				m["type"] = f.Type
			}
			putContent(m, "content", f.Content)
		}
		formats[formatWSMessage] = m
	}
	out["formats"] = formats
	return json.Marshal(out)
}

// putContent sets key (text) or key-bin (base64) to content.
func putContent(m map[string]any, key string, content []byte) {
	if utf8.Valid(content) {
		m[key] = string(content)
	} else {
		m[key+"-bin"] = base64.StdEncoding.EncodeToString(content)
	}
}

// ParseItem reads one item in Pushpin's item format (one element of a
// publish body's "items").
func ParseItem(data []byte) (Item, error) {
	body := make([]byte, 0, len(data)+12)
	body = append(body, `{"items":[`...)
	body = append(body, data...)
	body = append(body, "]}"...)
	items, _, err := ParsePublish(body)
	if err != nil {
		return Item{}, err
	}
	if len(items) != 1 {
		return Item{}, &PublishError{Item: -1, Message: "Invalid format: want exactly one item"}
	}
	return items[0], nil
}
