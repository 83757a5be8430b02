package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// message is one chat message, as every client gets it: the JSON of an
// SSE event's data, of a long-poll answer's messages, and of a WebSocket
// text message.
type message struct {
	From string `json:"from"`
	Text string `json:"text"`
	// Via is how the sender's window listens: sse, ws or poll. Shown next
	// to the message, so the demo shows all three reaching each other.
	Via string `json:"via"`
	// At is when the backend published it (RFC 3339, UTC).
	At string `json:"at"`
}

// notice is a line from the backend to one WebSocket client, not a chat
// message: the welcome, or why a message was not sent.
type notice struct {
	Notice string `json:"notice"`
}

// Limits on what a client may send. A name is shown next to every
// message, so it stays short.
const (
	maxNameRunes = 32
	maxTextRunes = 500
	maxSendBytes = 4096 // a /send body or a WebSocket message
)

// parseMessage reads {"from": ..., "text": ...} as a client sends it and
// returns the message to publish, stamped with via and the time.
func parseMessage(body []byte, via string, now time.Time) (message, error) {
	if len(body) > maxSendBytes {
		return message{}, fmt.Errorf("a message is at most %d bytes", maxSendBytes)
	}
	var in struct {
		From string `json:"from"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return message{}, errors.New(`want JSON {"from": "your name", "text": "..."}`)
	}
	from, text := strings.TrimSpace(in.From), strings.TrimSpace(in.Text)
	switch {
	case from == "" || utf8.RuneCountInString(from) > maxNameRunes:
		return message{}, fmt.Errorf("from: want a name of 1 to %d characters", maxNameRunes)
	case text == "" || utf8.RuneCountInString(text) > maxTextRunes:
		return message{}, fmt.Errorf("text: want 1 to %d characters", maxTextRunes)
	}
	// json.Unmarshal replaced invalid UTF-8 with U+FFFD, so what is
	// published is valid JSON text for every client.
	return message{From: from, Text: text, Via: via, At: now.UTC().Format(time.RFC3339)}, nil
}

// validRoom keeps room names to letters, digits and "-_." so that the
// channel name room:<room> is safe in a Grip-Channel header (where ","
// and ";" have a meaning).
func validRoom(room string) bool {
	return room != "" && len(room) <= 64 && strings.Trim(room,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == ""
}

// channelFor is the GRIP channel of a room.
func channelFor(room string) string { return "room:" + room }
