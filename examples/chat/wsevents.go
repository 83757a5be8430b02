package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// The application/websocket-events codec. Each event is
//
//	TYPE <content length in hex>\r\n<content>\r\n     or, with no content,
//	TYPE\r\n
//
// Types: OPEN, TEXT, BINARY, PING, PONG, CLOSE, DISCONNECT. CLOSE content is
// a 2-byte big-endian status code followed by a UTF-8 reason.

// event is one WebSocket event: a frame, the connection opening, or its end.
type event struct {
	typ     string
	content []byte // nil: no content
}

// appendEvent appends one event to dst.
func appendEvent(dst []byte, typ string, content []byte) []byte {
	dst = append(dst, typ...)
	if content != nil {
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(len(content)), 16)
		dst = append(dst, "\r\n"...)
		dst = append(dst, content...)
	}
	return append(dst, "\r\n"...)
}

// parseEvents splits a request body into its events.
func parseEvents(body []byte) ([]event, error) {
	var events []event
	for len(body) > 0 {
		line, rest, ok := bytes.Cut(body, []byte("\r\n"))
		if !ok {
			return nil, errors.New("event line without CRLF")
		}
		typ, size, hasSize := bytes.Cut(line, []byte(" "))
		if len(typ) == 0 || len(bytes.Trim(typ, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")) > 0 {
			return nil, fmt.Errorf("bad event type %q", typ)
		}
		e := event{typ: string(typ)}
		if hasSize {
			n, err := strconv.ParseUint(string(size), 16, 31)
			if err != nil {
				return nil, fmt.Errorf("%s: bad content length %q", typ, size)
			}
			if uint64(len(rest)) < n+2 || string(rest[n:n+2]) != "\r\n" {
				return nil, fmt.Errorf("%s: content of %d bytes is cut short or lacks its CRLF", typ, n)
			}
			e.content, rest = rest[:n:n], rest[n+2:]
		}
		events = append(events, e)
		body = rest
	}
	return events, nil
}
