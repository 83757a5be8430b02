package main

import (
	"io"
	"log"
	"net/http"
	"time"
)

// room returns the ?room= query parameter ("lobby" when absent), or
// answers 400 and returns false.
func room(w http.ResponseWriter, r *http.Request) (string, bool) {
	room := r.URL.Query().Get("room")
	if room == "" {
		room = "lobby"
	}
	if !validRoom(room) {
		http.Error(w, "want ?room=NAME (letters, digits, - _ .)", http.StatusBadRequest)
		return "", false
	}
	return room, true
}

// events starts a Server-Sent Events stream. gripd sends this response to
// the browser's EventSource, then keeps the connection open and appends
// every http-stream item published to the room's channel. gripd has
// subscribed the stream before the browser sees the response, so once
// EventSource fires "open" the window misses nothing.
func (a *app) events(w http.ResponseWriter, r *http.Request) {
	room, ok := room(w, r)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Grip-Hold", "stream")
	h.Set("Grip-Channel", channelFor(room))
	// With nothing published for 20 s gripd writes ":\n\n", an SSE comment
	// the browser ignores, so idle streams are not cut by intermediaries.
	h.Set("Grip-Keep-Alive", `:\n\n; format=cstring; timeout=20`)
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	// retry: how long EventSource waits before reconnecting (ms).
	io.WriteString(w, "retry: 2000\n: connected to "+room+"\n\n")
}

// pollTimeout is how long gripd holds a long-poll before answering it
// with this handler's own (empty) response; the page then polls again.
const pollTimeout = 25 * time.Second

// poll starts a long-poll: gripd holds the request until an http-response
// item is published to the room (the browser gets that) or pollTimeout
// passes (the browser gets this response, no messages).
func (a *app) poll(w http.ResponseWriter, r *http.Request) {
	room, ok := room(w, r)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Grip-Hold", "response")
	h.Set("Grip-Channel", channelFor(room))
	h.Set("Grip-Timeout", "25")
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	io.WriteString(w, `{"messages":[]}`+"\n")
}

// send publishes a message from an SSE or long-poll window (a WebSocket
// window sends on its socket instead). ?via= says how the sender listens.
func (a *app) send(w http.ResponseWriter, r *http.Request) {
	room, ok := room(w, r)
	if !ok {
		return
	}
	via := r.URL.Query().Get("via")
	if via != "sse" && via != "poll" {
		http.Error(w, "want ?via=sse or ?via=poll", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSendBytes+1))
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	msg, err := parseMessage(body, via, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := a.pub.publish(r.Context(), channelFor(room), msg); err != nil {
		log.Printf("send to %s: %v", room, err)
		http.Error(w, "could not publish: "+err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
