package grip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// PublishError says why a publish body was refused. Message is the text
// Pushpin answers with (without its trailing newline), so a publisher sees
// the same words from gripd as from Pushpin, e.g.
// "Invalid format: publish item object does not contain 'channel'".
// Every PublishError is the publisher's fault: the control API answers it
// with 400.
type PublishError struct {
	// Item is the index of the item at fault, or -1 when the body as a
	// whole is wrong. Pushpin does not name the item; it is here for logs.
	Item    int
	Message string
}

func (e *PublishError) Error() string { return e.Message }

// The format names of a publish item, in the order Pushpin reads them.
const (
	formatHTTPResponse = "http-response"
	formatHTTPStream   = "http-stream"
	formatWSMessage    = "ws-message"
)

// ParsePublish parses a body of Pushpin's HTTP publish API,
// {"items": [item, ...]}, into items.
//
// It is all-or-nothing, as Pushpin is: one bad item refuses the whole
// body, so a publisher never has to guess which items went out. The error
// is then a *PublishError.
//
// Formats other than http-response, http-stream and ws-message inside an
// item's "formats" are skipped, not refused (Pushpin accepts them and
// delivers nothing for them); their names are returned in ignored, each
// once, so the caller can log them. An item whose only format is unknown
// is returned with no format at all.
//
// Where gripd is stricter than Pushpin, it is so to keep nonsense out of
// the hub: invalid base64 in body-bin / content-bin (Pushpin silently
// decodes what it can), an http-response code that is not a number from
// 100 to 999 (Pushpin takes "abc" as 0, which Go's HTTP server cannot
// write), header names and values that cannot go on the wire, and actions
// a format cannot carry (a "close" on an http-response). A ws-message
// "hint" is accepted and dropped, as Pushpin ignores it.
func ParsePublish(body []byte) (items []Item, ignored []string, err error) {
	// Pushpin's JSON parser (Qt's) only takes an object or an array at the
	// top level; a bare scalar is "not valid JSON" there too.
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if !json.Valid(body) || len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
		return nil, nil, &PublishError{Item: -1, Message: "Body is not valid JSON."}
	}
	if trimmed[0] != '{' {
		return nil, nil, &PublishError{Item: -1, Message: "Invalid format."}
	}
	if countElements(trimmed, maxObjectKeys) > maxObjectKeys {
		return nil, nil, &PublishError{Item: -1, Message: fmt.Sprintf("Invalid format: object has more than %d keys", maxObjectKeys)}
	}
	top, _ := decodeObject(body)
	rawItems, ok := top["items"]
	if !ok {
		return nil, nil, &PublishError{Item: -1, Message: "Invalid format: object does not contain 'items'"}
	}
	if jsonKind(rawItems) != '[' {
		return nil, nil, &PublishError{Item: -1, Message: "Invalid format: object contains 'items' with wrong type"}
	}
	if countElements(rawItems, MaxPublishItems) > MaxPublishItems {
		return nil, nil, &PublishError{Item: -1, Message: fmt.Sprintf("Invalid format: object contains 'items' with more than %d items (send several publishes)", MaxPublishItems)}
	}
	var list []json.RawMessage
	if json.Unmarshal(rawItems, &list) != nil {
		return nil, nil, &PublishError{Item: -1, Message: "Invalid format: object contains 'items' with wrong type"}
	}

	items = make([]Item, 0, len(list))
	for i, raw := range list {
		item, unknown, err := parseItem(raw)
		if err != nil {
			return nil, nil, &PublishError{Item: i, Message: "Invalid format: " + err.Error()}
		}
		items = append(items, item)
		for _, name := range unknown {
			if !slices.Contains(ignored, name) {
				ignored = append(ignored, name)
			}
		}
	}
	return items, ignored, nil
}

// parseItem parses one publish item. unknown lists the names of the
// formats it skipped.
func parseItem(raw json.RawMessage) (item Item, unknown []string, err error) {
	const owner = "publish item object"
	if err := checkCount(raw, maxObjectKeys, owner, "", "keys"); err != nil {
		return Item{}, nil, err
	}
	obj, ok := decodeObject(raw)
	if !ok {
		return Item{}, nil, fmt.Errorf("%s is not an object", owner)
	}

	// channel is required, and null is not a string.
	rawChannel, ok := obj["channel"]
	if !ok {
		return Item{}, nil, fmt.Errorf("%s does not contain 'channel'", owner)
	}
	if item.Channel, ok = decodeString(rawChannel); !ok {
		return Item{}, nil, fmt.Errorf("%s contains 'channel' with wrong type", owner)
	}
	if item.ID, _, err = obj.optString(owner, "id"); err != nil {
		return Item{}, nil, err
	}
	if item.PrevID, _, err = obj.optString(owner, "prev-id"); err != nil {
		return Item{}, nil, err
	}

	// The formats sit in "formats", or (the legacy form) directly on the
	// item. In the legacy form only the known names can be told apart from
	// the item's other keys.
	var formats jsonObject
	if rawFormats, ok := obj.value("formats"); ok {
		if err := checkCount(rawFormats, maxObjectKeys, owner, "formats", "formats"); err != nil {
			return Item{}, nil, err
		}
		if formats, ok = decodeObject(rawFormats); !ok {
			return Item{}, nil, fmt.Errorf("%s contains 'formats' with wrong type", owner)
		}
	} else {
		formats = jsonObject{}
		for _, name := range []string{formatHTTPResponse, formatHTTPStream, formatWSMessage} {
			if v, ok := obj.value(name); ok {
				formats[name] = v
			}
		}
	}
	if len(formats) == 0 {
		return Item{}, nil, errors.New("no formats specified")
	}
	for name := range formats {
		if name != formatHTTPResponse && name != formatHTTPStream && name != formatWSMessage {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)

	if v, ok := formats[formatHTTPResponse]; ok {
		if item.HTTPResponse, err = parseHTTPResponse(v); err != nil {
			return Item{}, nil, err
		}
	}
	if v, ok := formats[formatHTTPStream]; ok {
		if item.HTTPStream, err = parseHTTPStream(v); err != nil {
			return Item{}, nil, err
		}
	}
	if v, ok := formats[formatWSMessage]; ok {
		if item.WSMessage, err = parseWSMessage(v); err != nil {
			return Item{}, nil, err
		}
	}

	if item.Meta, err = parseItemMeta(obj); err != nil {
		return Item{}, nil, err
	}
	// size is checked as Pushpin checks it, so a body Pushpin refuses is
	// refused here too, but gripd does not use it.
	if v, ok := obj.value("size"); ok {
		var size float64
		if jsonKind(v) != '#' || json.Unmarshal(v, &size) != nil {
			return Item{}, nil, fmt.Errorf("%s contains 'size' with wrong type", owner)
		}
		if size < 0 {
			return Item{}, nil, fmt.Errorf("%s contains 'size' with invalid value", owner)
		}
	}
	if v, ok := obj.value("no-seq"); ok {
		if jsonKind(v) != 'b' {
			return Item{}, nil, fmt.Errorf("%s contains 'no-seq' with wrong type", owner)
		}
		_ = json.Unmarshal(v, &item.NoSeq) // a JSON boolean: cannot fail
	}
	return item, unknown, nil
}

// parseItemMeta reads the item's "meta", an object of strings.
func parseItemMeta(obj jsonObject) (map[string]string, error) {
	raw, ok := obj.value("meta")
	if !ok {
		return nil, nil
	}
	if err := checkCount(raw, MaxItemMeta, "publish item object", "meta", "keys"); err != nil {
		return nil, err
	}
	m, ok := decodeObject(raw)
	if !ok {
		return nil, errors.New("publish item object contains 'meta' with wrong type")
	}
	meta := make(map[string]string, len(m))
	for _, key := range sortedJSONKeys(m) {
		s, ok := decodeString(m[key])
		if !ok {
			return nil, fmt.Errorf("'meta' contains '%s' with wrong type", key)
		}
		meta[key] = s
	}
	return meta, nil
}

// parseHTTPResponse reads an "http-response" format: the answer to a held
// long-poll.
func parseHTTPResponse(raw json.RawMessage) (*HTTPResponseFormat, error) {
	const owner = "'http-response'"
	if err := checkCount(raw, maxObjectKeys, owner, "", "keys"); err != nil {
		return nil, err
	}
	obj, ok := decodeObject(raw)
	if !ok {
		return nil, fmt.Errorf("%s is not an object", owner)
	}
	action, err := parseFormatAction(obj, owner, ActionSend, ActionHint)
	if err != nil {
		return nil, err
	}
	f := &HTTPResponseFormat{Action: action}
	if action != ActionSend {
		return f, nil
	}

	f.Code = 200
	if v, ok := obj.value("code"); ok {
		code, err := parseWholeNumber(v)
		if err != nil {
			return nil, fmt.Errorf("%s contains 'code' with wrong type", owner)
		}
		// Pushpin allows 0-999; Go's HTTP server cannot write a status
		// below 100, so gripd refuses those here rather than fail later.
		// A 1xx is not an answer at all (101 would claim a protocol
		// switch on the client's connection).
		if code < 200 || code > 999 {
			return nil, fmt.Errorf("%s contains 'code' with invalid value", owner)
		}
		f.Code = int(code)
	}
	if f.Reason, _, err = obj.optString(owner, "reason"); err != nil {
		return nil, err
	}
	if v, ok := obj.value("headers"); ok {
		if f.Header, err = parsePublishedHeaders(owner, v); err != nil {
			return nil, err
		}
	}
	if err := checkContentFilters(obj, owner); err != nil {
		return nil, err
	}

	// Pushpin takes the first of body-bin, body, body-patch that is there.
	switch {
	case obj.has("body-bin"):
		if f.Body, err = obj.base64(owner, "body-bin"); err != nil {
			return nil, err
		}
	case obj.has("body"):
		s, _, err := obj.optString(owner, "body")
		if err != nil {
			return nil, err
		}
		f.Body = []byte(s)
	case obj.has("body-patch"):
		v, _ := obj.value("body-patch")
		if jsonKind(v) != '[' {
			return nil, fmt.Errorf("%s contains 'body-patch' with wrong type", owner)
		}
		f.BodyPatch = bytes.Clone(v)
	default:
		return nil, fmt.Errorf("%s does not contain 'body', 'body-bin', or 'body-patch'", owner)
	}
	return f, nil
}

// parsePublishedHeaders reads the headers of an http-response: either an object of
// strings or a list of [name, value] pairs (the list keeps repeated names).
func parsePublishedHeaders(owner string, raw json.RawMessage) (http.Header, error) {
	if err := checkCount(raw, MaxPublishedHeaders, owner, "headers", "headers"); err != nil {
		return nil, err
	}
	h := http.Header{}
	switch jsonKind(raw) {
	case '{':
		obj, _ := decodeObject(raw)
		for _, name := range sortedJSONKeys(obj) {
			value, ok := decodeString(obj[name])
			if !ok {
				return nil, fmt.Errorf("headers contains '%s' with wrong type", name)
			}
			if err := addPublishedHeader(h, name, value); err != nil {
				return nil, err
			}
		}
	case '[':
		var pairs []json.RawMessage
		_ = json.Unmarshal(raw, &pairs) // raw is a valid array: cannot fail
		for _, p := range pairs {
			var pair []json.RawMessage
			if jsonKind(p) != '[' || json.Unmarshal(p, &pair) != nil {
				return nil, errors.New("headers contains element with wrong type")
			}
			if len(pair) != 2 {
				return nil, errors.New("headers contains list with wrong number of elements")
			}
			name, ok := decodeString(pair[0])
			if !ok {
				return nil, errors.New("header contains name element with wrong type")
			}
			value, ok := decodeString(pair[1])
			if !ok {
				return nil, errors.New("header contains value element with wrong type")
			}
			if err := addPublishedHeader(h, name, value); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%s contains 'headers' with wrong type", owner)
	}
	return h, nil
}

// addPublishedHeader adds one published header after checking it can go on the
// wire. Pushpin passes anything on; a name with a space or a value with a
// line break would corrupt the response gripd writes, so gripd refuses
// them here, where the publisher still gets told.
//
// Control bytes (other than tab) are refused in values, and so are the
// hop-by-hop headers, which describe one connection, not the answer: a
// published "Connection: close" or "Transfer-Encoding" would speak for
// gripd's connection with the client.
func addPublishedHeader(h http.Header, name, value string) error {
	if !isHeaderToken(name) {
		return fmt.Errorf("headers contains invalid name '%s'", name)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return fmt.Errorf("headers contains '%s' with invalid value", name)
		}
	}
	if hopByHopHeaders[http.CanonicalHeaderKey(name)] {
		return fmt.Errorf("headers contains hop-by-hop header '%s'", name)
	}
	h.Add(name, value)
	return nil
}

// hopByHopHeaders are the connection-specific headers of RFC 9110 7.6.1
// (and Keep-Alive and Proxy-Connection, which older peers send).
var hopByHopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// isHeaderToken reports whether name is an HTTP token (RFC 9110 5.1).
func isHeaderToken(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		isAlnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !isAlnum && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// parseHTTPStream reads an "http-stream" format: content for open streams.
func parseHTTPStream(raw json.RawMessage) (*HTTPStreamFormat, error) {
	const owner = "'http-stream'"
	if err := checkCount(raw, maxObjectKeys, owner, "", "keys"); err != nil {
		return nil, err
	}
	obj, ok := decodeObject(raw)
	if !ok {
		return nil, fmt.Errorf("%s is not an object", owner)
	}
	action, err := parseFormatAction(obj, owner, ActionSend, ActionHint, ActionClose)
	if err != nil {
		return nil, err
	}
	f := &HTTPStreamFormat{Action: action}
	if action != ActionSend {
		return f, nil
	}
	if err := checkContentFilters(obj, owner); err != nil {
		return nil, err
	}
	content, from, err := obj.content(owner)
	if err != nil {
		return nil, err
	}
	if from == "" {
		return nil, fmt.Errorf("%s does not contain 'content' or 'content-bin'", owner)
	}
	f.Content = content
	return f, nil
}

// parseWSMessage reads a "ws-message" format. A "hint" means nothing to a
// WebSocket (Pushpin ignores it), so it gives a nil format: the hub never
// sees it, yet a publisher that fills every format with a hint, as
// pushpin-publish --hint does, is not refused.
func parseWSMessage(raw json.RawMessage) (*WSMessageFormat, error) {
	const owner = "'ws-message'"
	if err := checkCount(raw, maxObjectKeys, owner, "", "keys"); err != nil {
		return nil, err
	}
	obj, ok := decodeObject(raw)
	if !ok {
		return nil, fmt.Errorf("%s is not an object", owner)
	}
	action, err := parseFormatAction(obj, owner, ActionSend, ActionHint, ActionClose, ActionRefresh)
	if err != nil {
		return nil, err
	}
	f := &WSMessageFormat{Action: action}
	switch action {
	case ActionHint:
		return nil, nil
	case ActionRefresh:
		return f, nil
	case ActionClose:
		if v, ok := obj.value("code"); ok {
			code, err := parseWholeNumber(v)
			if err != nil {
				return nil, fmt.Errorf("%s contains 'code' with wrong type", owner)
			}
			if !sendableCloseCode(code) {
				return nil, fmt.Errorf("%s contains 'code' with invalid value", owner)
			}
			f.Code = int(code)
		}
		if f.Reason, _, err = obj.optString(owner, "reason"); err != nil {
			return nil, err
		}
		// A close frame's payload is at most 125 bytes, two of them the
		// code.
		if len(f.Reason) > maxCloseReason {
			return nil, fmt.Errorf("%s contains 'reason' longer than %d bytes", owner, maxCloseReason)
		}
		return f, nil
	}

	// ActionSend.
	typ, hasType, err := obj.optString(owner, "type")
	if err != nil {
		return nil, err
	}
	if hasType && typ != "text" && typ != "binary" && typ != "ping" && typ != "pong" {
		return nil, fmt.Errorf("%s contains 'type' with unknown value", owner)
	}
	if err := checkContentFilters(obj, owner); err != nil {
		return nil, err
	}
	content, from, err := obj.content(owner)
	if err != nil {
		return nil, err
	}
	switch {
	case from == "" && (typ == "ping" || typ == "pong"):
		// A ping or pong may be empty.
	case from == "":
		return nil, fmt.Errorf("%s does not contain 'content' or 'content-bin'", owner)
	case !hasType && from == "content-bin":
		typ = "binary"
	case !hasType:
		typ = "text"
	}
	f.Type = typ
	f.Content = content
	return f, nil
}

// maxCloseReason is the longest reason a WebSocket close frame carries.
const maxCloseReason = 123

// sendableCloseCode reports whether a WebSocket close frame may carry
// code (RFC 6455 7.4): 1000-4999, except 1004 (reserved), 1005 (no code),
// 1006 (closed without a frame) and 1015 (TLS failure), which only
// describe a close and must not be sent.
func sendableCloseCode(code int64) bool {
	switch {
	case code < 1000 || code > 4999:
		return false
	case code == 1004 || code == 1005 || code == 1006 || code == 1015:
		return false
	}
	return true
}

// parseFormatAction reads a format's "action" (send when absent) and checks that
// this format can carry it.
func parseFormatAction(obj jsonObject, owner string, allowed ...Action) (Action, error) {
	s, present, err := obj.optString(owner, "action")
	if err != nil {
		return "", err
	}
	if !present {
		return ActionSend, nil
	}
	if !slices.Contains(allowed, Action(s)) {
		return "", fmt.Errorf("%s contains unknown action '%s'", owner, s)
	}
	return Action(s), nil
}

// checkContentFilters checks the optional "content-filters", a list of
// strings. gripd does not apply content filters yet; the check keeps a body
// that Pushpin refuses from being accepted here.
func checkContentFilters(obj jsonObject, owner string) error {
	v, ok := obj.value("content-filters")
	if !ok {
		return nil
	}
	if jsonKind(v) != '[' {
		return fmt.Errorf("%s contains 'content-filters' with wrong type", owner)
	}
	if err := checkCount(v, MaxContentFilters, owner, "content-filters", "filters"); err != nil {
		return err
	}
	// Only checked, never used: the elements are not decoded.
	if !elementsAreStrings(v) {
		return errors.New("content-filters contains element with wrong type")
	}
	return nil
}

// checkCount refuses an array or object (raw) of more than max elements,
// counted without decoding it (publishlimits.go). The message names the
// object, the key it is at ("" for the object itself) and what it counts.
func checkCount(raw json.RawMessage, max int, owner, key, what string) error {
	if k := jsonKind(raw); k != '[' && k != '{' {
		return nil // the caller reports the wrong type
	}
	if countElements(raw, max) <= max {
		return nil
	}
	if key == "" {
		return fmt.Errorf("%s has more than %d %s", owner, max, what)
	}
	return fmt.Errorf("%s contains '%s' with more than %d %s", owner, key, max, what)
}
