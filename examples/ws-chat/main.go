// Command ws-chat is a WebSocket chat whose backend is one stateless HTTP
// handler, the way a serverless function would be written. It uses only
// the standard library, so it is easy to copy and adapt.
//
// The backend never holds a socket. gripd (or Pushpin) terminates the
// client's WebSocket and speaks WebSocket-over-HTTP to the backend: each
// burst of client events becomes one POST with
// Content-Type: application/websocket-events, and the events in the
// response body go back to the client. The only state - which sockets are
// in which room - lives in gripd as channel subscriptions:
//
//	OPEN            -> OPEN, TEXT c:{"type":"subscribe","channel":"chat-<room>"},
//	                   TEXT m:welcome to <room>
//	TEXT <msg>      -> publish <msg> to chat-<room> through gripd's control
//	                   API (every socket in the room gets it, the sender too);
//	                   reply with no events
//	PING <data>     -> PONG <data>
//	CLOSE <code>    -> CLOSE <code> (the close handshake, echoed)
//	DISCONNECT      -> nothing (the client is gone)
//
// The reply carries Sec-WebSocket-Extensions: grip, which turns on GRIP
// mode for the connection: a TEXT starting with "c:" is a control message
// for gripd (here: subscribe), and every other message to the client must
// start with "m:", which the proxy strips (Pushpin drops messages without
// it). Published messages need no prefix: they go from the proxy to the
// clients directly.
//
// Run it:
//
//	go run ./examples/ws-chat                        # listens on 127.0.0.1:8001
//	gripd --route '* 127.0.0.1:8001,over_http'       # clients use :7999
//	open http://localhost:7999/                      # a chat page, room "lobby"
//
// A backend reachable by anyone should also check the Grip-Sig header
// gripd adds to each request (see examples/sse-feed).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8001", "address to listen on")
	publishURL := flag.String("publish-url", "http://127.0.0.1:5561/publish/", "gripd's control API publish endpoint")
	flag.Parse()

	log.Printf("ws-chat: listening on %s, publishing to %s", *listen, *publishURL)
	log.Fatal(http.ListenAndServe(*listen, handler(*publishURL)))
}

// handler returns the whole backend: POST /chat/<room> (WebSocket-over-HTTP
// from gripd) and GET / (the chat page). publishURL is configuration, not
// state: nothing is remembered between requests.
func handler(publishURL string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		room, isChat := strings.CutPrefix(r.URL.Path, "/chat/")
		switch {
		case isChat && r.Method == http.MethodPost:
			chat(w, r, room, publishURL)
		case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page)
		default:
			http.NotFound(w, r)
		}
	}
}

const eventsType = "application/websocket-events"

// chat handles one WebSocket-over-HTTP request: the events of one burst.
func chat(w http.ResponseWriter, r *http.Request, room, publishURL string) {
	if !validRoom(room) {
		// On the first request (OPEN) a non-200 reply makes gripd refuse
		// the client's handshake with this status.
		http.Error(w, "want /chat/ROOM (letters, digits, - _ .)", http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != eventsType {
		http.Error(w, "want Content-Type: "+eventsType, http.StatusUnsupportedMediaType)
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
	channel := "chat-" + room

	var reply []byte  // the events for the client, in order
	var chat []string // this burst's chat messages, published together
	for _, e := range events {
		switch e.typ {
		case "OPEN":
			sub, _ := json.Marshal(struct {
				Type    string `json:"type"`
				Channel string `json:"channel"`
			}{"subscribe", channel})
			reply = appendEvent(reply, "OPEN", nil)
			reply = appendEvent(reply, "TEXT", append([]byte("c:"), sub...))
			reply = appendEvent(reply, "TEXT", []byte("m:welcome to "+room))
		case "TEXT":
			chat = append(chat, string(e.content))
		case "PING":
			reply = appendEvent(reply, "PONG", e.content)
		case "CLOSE":
			// Echo the status code (the first 2 bytes), completing the
			// close handshake; no content means no code.
			var code []byte
			if len(e.content) >= 2 {
				code = e.content[:2]
			}
			reply = appendEvent(reply, "CLOSE", code)
		case "DISCONNECT":
			// The client is gone; gripd forgets its subscriptions.
		default:
			// BINARY and PONG: nothing to do.
		}
	}
	if len(chat) > 0 {
		if err := publish(r.Context(), publishURL, channel, chat); err != nil {
			// Tell the sender only. Failing the request instead would make
			// gripd drop the connection.
			log.Printf("chat-%s: publish: %v", room, err)
			reply = appendEvent(reply, "TEXT", []byte("m:(not delivered: the chat server could not publish)"))
		}
	}

	h := w.Header()
	h.Set("Content-Type", eventsType)         // exactly this: no parameters
	h.Set("Sec-WebSocket-Extensions", "grip") // GRIP mode: c: and m: prefixes
	w.Write(reply)
}

// validRoom keeps room names to letters, digits and "-_." so that the
// channel name is simple.
func validRoom(room string) bool {
	return room != "" && len(room) <= 64 && strings.Trim(room,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == ""
}

var publishClient = &http.Client{Timeout: 5 * time.Second}

// publish sends the messages to everyone subscribed to channel, as
// ws-message items, in one POST to gripd's control API. A GRIP library
// (go-grip, js-grip, ...) does the same.
func publish(ctx context.Context, publishURL, channel string, messages []string) error {
	type wsMessage struct {
		Content string `json:"content"`
	}
	type item struct {
		Channel string `json:"channel"`
		Formats struct {
			WSMessage wsMessage `json:"ws-message"`
		} `json:"formats"`
	}
	var req struct {
		Items []item `json:"items"`
	}
	for _, m := range messages {
		it := item{Channel: channel}
		it.Formats.WSMessage.Content = m
		req.Items = append(req.Items, it)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, publishURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := publishClient.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s %s", publishURL, resp.Status, bytes.TrimSpace(b))
	}
	io.Copy(io.Discard, resp.Body)
	return nil
}

// ---------------------------------------------------------------------------
// The application/websocket-events codec. Each event is
//
//	TYPE <content length in hex>\r\n<content>\r\n     or, with no content,
//	TYPE\r\n
//
// Types: OPEN, TEXT, BINARY, PING, PONG, CLOSE, DISCONNECT. CLOSE content is
// a 2-byte big-endian status code followed by a UTF-8 reason.

type event struct {
	typ     string
	content []byte // nil: no content
}

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

// ---------------------------------------------------------------------------
// The chat page. It must be loaded through gripd: the backend itself speaks
// no WebSocket.

const page = `<!doctype html>
<meta charset="utf-8">
<title>ws-chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
  #log { height: 20em; overflow-y: auto; border: 1px solid #ccc; padding: .5em; white-space: pre-wrap; }
  #log .note { color: #888; }
  form { display: flex; gap: .5em; margin-top: .5em; }
  #msg { flex: 1; }
</style>
<h1>ws-chat: lobby</h1>
<div id="log"></div>
<form id="form"><input id="msg" autocomplete="off" placeholder="say something" autofocus><button>Send</button></form>
<script>
const log = document.getElementById("log");
function show(text, cls) {
  const line = document.createElement("div");
  line.textContent = text; // never innerHTML: messages come from anyone
  if (cls) line.className = cls;
  log.append(line);
  log.scrollTop = log.scrollHeight;
}
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/chat/lobby");
ws.onopen = () => show("connected", "note");
ws.onmessage = (ev) => show(ev.data);
ws.onclose = (ev) => show("disconnected (" + ev.code + ")", "note");
document.getElementById("form").onsubmit = (ev) => {
  ev.preventDefault();
  const input = document.getElementById("msg");
  if (input.value && ws.readyState === WebSocket.OPEN) ws.send(input.value);
  input.value = "";
};
</script>
`
