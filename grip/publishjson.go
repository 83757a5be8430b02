package grip

// The publish body's JSON, read one value at a time: objects whose values
// stay raw until each is checked, so that every error can name the key
// and the object it is in, in Pushpin's words (publish.go).

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jsonObject is a decoded JSON object whose values are left raw, so each can
// be type-checked with a message that names it. In its methods, owner is
// how such a message names the object itself, in Pushpin's words:
// "publish item object", "'http-stream'" and so on.
type jsonObject map[string]json.RawMessage

// decodeObject decodes raw when it is a JSON object.
func decodeObject(raw json.RawMessage) (jsonObject, bool) {
	if jsonKind(raw) != '{' {
		return nil, false
	}
	var obj jsonObject
	if json.Unmarshal(raw, &obj) != nil {
		return nil, false
	}
	return obj, true
}

// value returns the value at key. A null counts as absent, as it does in
// Pushpin, so a library that writes "id": null is not refused.
func (o jsonObject) value(key string) (json.RawMessage, bool) {
	v, ok := o[key]
	if !ok || jsonKind(v) == 0 {
		return nil, false
	}
	return v, true
}

// has reports whether key holds a non-null value.
func (o jsonObject) has(key string) bool {
	_, ok := o.value(key)
	return ok
}

// optString returns the string at key; present is false when the key is
// absent or null. Any other non-string is an error naming the key.
func (o jsonObject) optString(owner, key string) (s string, present bool, err error) {
	v, ok := o.value(key)
	if !ok {
		return "", false, nil
	}
	s, ok = decodeString(v)
	if !ok {
		return "", false, fmt.Errorf("%s contains '%s' with wrong type", owner, key)
	}
	return s, true, nil
}

// base64 returns the decoded base64 string at key (which must be there).
// Unlike Pushpin, which decodes what it can and drops the rest, gripd
// refuses invalid base64: a publisher's encoding bug should show up as a
// 400 naming the field, not as silently mangled content.
func (o jsonObject) base64(owner, key string) ([]byte, error) {
	s, _, err := o.optString(owner, key)
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Unpadded base64 is common enough to take as well.
		if b, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("%s contains '%s' with invalid base64", owner, key)
		}
	}
	return b, nil
}

// content returns "content-bin" (decoded) or else "content"; from names
// the key it came from, "" when neither is there.
func (o jsonObject) content(owner string) (content []byte, from string, err error) {
	if o.has("content-bin") {
		b, err := o.base64(owner, "content-bin")
		return b, "content-bin", err
	}
	s, present, err := o.optString(owner, "content")
	if err != nil || !present {
		return nil, "", err
	}
	return []byte(s), "content", nil
}

// decodeString decodes raw when it is a JSON string. A string without
// escapes (most are) is taken as it is, without the decoder's
// allocations.
func decodeString(raw json.RawMessage) (string, bool) {
	if jsonKind(raw) != '"' {
		return "", false
	}
	if plain, ok := plainJSONString(raw); ok {
		return plain, true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// plainJSONString returns the contents of raw, a JSON string, when it
// needs no decoding: no escapes, no control bytes, valid UTF-8 (which the
// decoder would change to U+FFFD).
func plainJSONString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

// parseWholeNumber reads a whole number given as a JSON number or, as Pushpin also
// takes it, as a string of digits ("201").
func parseWholeNumber(raw json.RawMessage) (int64, error) {
	if s, ok := decodeString(raw); ok {
		return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	}
	var f float64
	if jsonKind(raw) != '#' || json.Unmarshal(raw, &f) != nil {
		return 0, errors.New("not a number")
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, errors.New("not a whole number")
	}
	return int64(f), nil
}

// jsonKind tells the type of a JSON value from its first byte: '{' object,
// '[' array, '"' string, 'b' boolean, '#' number, and 0 for null or
// nothing.
func jsonKind(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	switch c := raw[0]; c {
	case '{', '[', '"':
		return c
	case 't', 'f':
		return 'b'
	case 'n':
		return 0
	default:
		return '#'
	}
}

// sortedJSONKeys returns the keys of obj in order, so that errors and header
// order do not depend on map iteration.
func sortedJSONKeys(obj jsonObject) []string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
