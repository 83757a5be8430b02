package grip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// WSEventsContentType is the content type of WebSocket-over-HTTP bodies.
const WSEventsContentType = "application/websocket-events"

// The WebSocket-over-HTTP event types.
const (
	WSOpen       = "OPEN"
	WSText       = "TEXT"
	WSBinary     = "BINARY"
	WSPing       = "PING"
	WSPong       = "PONG"
	WSClose      = "CLOSE"
	WSDisconnect = "DISCONNECT"
)

// WSEvent is one event of a WebSocket-over-HTTP body. Content is nil for
// an event without content (written "TYPE\r\n").
type WSEvent struct {
	Type    string
	Content []byte
}

// AppendWSEvents encodes events onto dst: `TYPE <hexlen>\r\n<bytes>\r\n`,
// or `TYPE\r\n` when an event has no content.
func AppendWSEvents(dst []byte, events ...WSEvent) []byte {
	for _, e := range events {
		dst = append(dst, e.Type...)
		if e.Content != nil {
			dst = append(dst, ' ')
			dst = strconv.AppendInt(dst, int64(len(e.Content)), 16)
			dst = append(dst, '\r', '\n')
			dst = append(dst, e.Content...)
		}
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// ParseWSEvents decodes a WebSocket-over-HTTP body. Event types are
// checked only for form (upper-case letters); the caller decides what it
// knows.
func ParseWSEvents(body []byte) ([]WSEvent, error) {
	var events []WSEvent
	for len(body) > 0 {
		eol := bytes.Index(body, []byte("\r\n"))
		if eol < 0 {
			return nil, fmt.Errorf("event %d: no CRLF after the event line", len(events))
		}
		line := body[:eol]
		body = body[eol+2:]
		typ, size, hasSize := bytes.Cut(line, []byte(" "))
		if len(typ) == 0 {
			return nil, fmt.Errorf("event %d: empty event type", len(events))
		}
		for _, c := range typ {
			if c < 'A' || c > 'Z' {
				return nil, fmt.Errorf("event %d: bad event type %q", len(events), typ)
			}
		}
		e := WSEvent{Type: string(typ)}
		if hasSize {
			n, err := strconv.ParseUint(string(size), 16, 31)
			if err != nil {
				return nil, fmt.Errorf("event %d (%s): bad content length %q", len(events), typ, size)
			}
			if uint64(len(body)) < n+2 {
				return nil, fmt.Errorf("event %d (%s): content of %d bytes is cut short", len(events), typ, n)
			}
			if body[n] != '\r' || body[n+1] != '\n' {
				return nil, fmt.Errorf("event %d (%s): no CRLF after the content", len(events), typ)
			}
			e.Content = body[:n:n]
			body = body[n+2:]
		}
		events = append(events, e)
	}
	return events, nil
}

// WSCloseContent encodes a CLOSE event's content: the 2-byte big-endian
// code and the UTF-8 reason. Code 0 with no reason means no content.
func WSCloseContent(code int, reason string) []byte {
	if code == 0 && reason == "" {
		return nil
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(b, reason...)
}

// ParseWSClose decodes a CLOSE event's content. No content means no code
// (0).
func ParseWSClose(content []byte) (code int, reason string, err error) {
	switch {
	case len(content) == 0:
		return 0, "", nil
	case len(content) == 1:
		return 0, "", errors.New("close content of 1 byte: want a 2-byte code")
	}
	reason = string(content[2:])
	if !utf8.ValidString(reason) {
		return 0, "", errors.New("close reason is not UTF-8")
	}
	return int(binary.BigEndian.Uint16(content)), reason, nil
}
