// Command chat is the demo app (`make demo`): a chat room in the browser
// whose backend is one small stateless Go program behind gripd. It uses
// only the standard library, so it is easy to copy and adapt.
//
// Every browser window picks how it listens: Server-Sent Events
// (EventSource), a WebSocket, or long-polling. Whatever one window sends
// reaches every window in the room at once, whichever way each listens,
// because the backend publishes each message once, in all three formats
// at the same time, to gripd's control API:
//
//	GET  /                     the page (static/, embedded in the binary)
//	GET  /favicon.ico          its icon (static/favicon.svg)
//	GET  /events?room=R        SSE: Grip-Hold: stream on channel room:R
//	GET  /poll?room=R          long-poll: Grip-Hold: response on room:R
//	POST /send?room=R          {"from","text","via"} from an SSE or long-poll
//	                           window: published to room:R
//	POST /ws?room=R            WebSocket-over-HTTP (gripd's over_http
//	                           routes): the socket subscribes to room:R;
//	                           what it sends is published to room:R
//
// The backend holds no connection and remembers nothing between requests:
// which client listens on which room lives in gripd, as channel
// subscriptions. (So a long-poll client can miss a message published in
// the moment between two polls: a real app would keep the last messages
// and send them with ids. This demo keeps no state on purpose.)
//
// Run it:
//
//	go run ./examples/chat                           # listens on 127.0.0.1:8000
//	gripd --route '* 127.0.0.1:8000,over_http'       # clients use :7999
//	open http://localhost:7999/                      # in two windows
//
// A backend reachable by anyone should also check the Grip-Sig header
// gripd adds to each request (see examples/sse-feed).
package main

import (
	"embed"
	"flag"
	"io/fs"
	"log"
	"net/http"
	"time"
)

// static holds the page: index.html, chat.js, chat.css and favicon.svg.
// Embedded, so the binary is the whole app.
//
//go:embed static
var static embed.FS

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "address to listen on")
	publishURL := flag.String("publish-url", "http://127.0.0.1:5561/publish/", "gripd's control API publish endpoint")
	flag.Parse()

	srv := &http.Server{
		Addr:              *listen,
		Handler:           newApp(*publishURL).routes(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("chat: listening on %s, publishing to %s", *listen, *publishURL)
	log.Fatal(srv.ListenAndServe())
}

// app is the whole backend. publishURL is configuration, not state.
type app struct {
	pub *publisher
}

func newApp(publishURL string) *app {
	return &app{pub: newPublisher(publishURL)}
}

// routes returns the backend's handler.
func (a *app) routes() http.Handler {
	page, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(page))
	// The page links favicon.svg; this is for what asks the conventional
	// place (a bookmark, a tool) instead of a 404.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, page, "favicon.svg")
	})
	mux.HandleFunc("GET /events", a.events)
	mux.HandleFunc("GET /poll", a.poll)
	mux.HandleFunc("POST /send", a.send)
	mux.HandleFunc("POST /ws", a.websocket)
	return mux
}
