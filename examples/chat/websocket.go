package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"time"
)

const eventsType = "application/websocket-events"

// websocket handles one WebSocket-over-HTTP request: gripd terminates the
// browser's WebSocket and POSTs each burst of its events here; the events
// in the reply go back to the browser. Nothing is kept between requests:
//
//	OPEN        -> OPEN, c:{"type":"subscribe","channel":"room:R"},
//	               m:{"notice":"connected to R"}
//	TEXT <json> -> publish the message to room:R (every window in the
//	               room gets it, this one too); no events back, or a
//	               notice when it could not be sent
//	PING <data> -> PONG <data>
//	CLOSE       -> CLOSE with the same code (the close handshake)
//
// The reply header Sec-WebSocket-Extensions: grip turns on GRIP mode: a
// TEXT starting with "c:" is a control message for gripd, and other
// messages to the browser start with "m:", which gripd strips.
func (a *app) websocket(w http.ResponseWriter, r *http.Request) {
	room, ok := room(w, r)
	if !ok {
		return // on OPEN, gripd refuses the browser's handshake with this 400
	}
	if ct := r.Header.Get("Content-Type"); ct != eventsType {
		http.Error(w, "want Content-Type: "+eventsType+" (a WebSocket through gripd)", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	events, err := parseEvents(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	channel := channelFor(room)

	var reply []byte
	say := func(text string) {
		b, _ := json.Marshal(notice{Notice: text})
		reply = appendEvent(reply, "TEXT", append([]byte("m:"), b...))
	}
	for _, e := range events {
		switch e.typ {
		case "OPEN":
			sub, _ := json.Marshal(struct {
				Type    string `json:"type"`
				Channel string `json:"channel"`
			}{"subscribe", channel})
			reply = appendEvent(reply, "OPEN", nil)
			reply = appendEvent(reply, "TEXT", append([]byte("c:"), sub...))
			// gripd applies the subscribe before passing this on, so the
			// page takes it as "in the room".
			say("connected to " + room)
		case "TEXT":
			msg, err := parseMessage(e.content, "ws", time.Now())
			if err != nil {
				say("not sent: " + err.Error())
				continue
			}
			// Failing the request instead would make gripd drop the
			// socket: tell the sender only.
			if err := a.pub.publish(r.Context(), channel, msg); err != nil {
				log.Printf("ws message to %s: %v", room, err)
				say("not sent: the chat server could not publish")
			}
		case "PING":
			reply = appendEvent(reply, "PONG", e.content)
		case "CLOSE":
			// Echo the status code (the first 2 bytes); no content, no code.
			var code []byte
			if len(e.content) >= 2 {
				code = e.content[:2]
			}
			reply = appendEvent(reply, "CLOSE", code)
		default:
			// DISCONNECT (the browser is gone; gripd forgets its
			// subscriptions), BINARY, PONG: nothing to do.
		}
	}
	h := w.Header()
	h.Set("Content-Type", eventsType)         // exactly this: no parameters
	h.Set("Sec-WebSocket-Extensions", "grip") // GRIP mode: c: and m: prefixes
	w.Write(reply)
}
