// Command sse-feed is a tiny GRIP backend to put behind gripd (or Pushpin).
// It uses only the standard library, so it is easy to copy and adapt.
//
// A GRIP backend never holds connections itself. It answers each request
// at once, and its response headers tell the proxy what to do with the
// client:
//
//	GET /feed?channel=news   Grip-Hold: stream   - the proxy sends the body
//	                         below, then keeps the connection open and appends
//	                         whatever is published to the channel (here:
//	                         Server-Sent Events)
//	GET /poll?channel=news   Grip-Hold: response - the proxy holds the request
//	                         until something is published to the channel (the
//	                         client gets that) or Grip-Timeout passes (the
//	                         client gets this response, the "timeout response")
//	GET /hello               no Grip-* headers   - an ordinary response, which
//	                         the proxy passes through unchanged
//
// Publishing goes to the proxy, not to this backend: for example
// `gripd publish news $'data: hello\n'`, or a POST to the proxy's control
// API (http://localhost:5561/publish/). See examples/README.md.
//
// Run it:
//
//	go run ./examples/sse-feed                     # listens on 127.0.0.1:8000
//	gripd --route '* 127.0.0.1:8000'               # clients use :7999
//	curl -N 'http://localhost:7999/feed?channel=news'
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"strings"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "address to listen on")
	sigKey := flag.String("sig-key", "", "if set, /feed and /poll require a valid Grip-Sig signed with this key (gripd --sig-key)")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /feed", feed)
	mux.HandleFunc("GET /poll", poll)
	mux.HandleFunc("GET /hello", hello)

	var handler http.Handler = mux
	if *sigKey != "" {
		handler = requireGripSig([]byte(*sigKey), mux)
	}
	log.Printf("sse-feed: listening on %s", *listen)
	log.Fatal(http.ListenAndServe(*listen, handler))
}

// feed starts a Server-Sent Events stream. The proxy sends this response
// to the client, then holds the connection open and appends every message
// published to the channel (each one should be a complete SSE event, such
// as "data: hello\n\n").
func feed(w http.ResponseWriter, r *http.Request) {
	channel, ok := channelParam(w, r)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Grip-Hold", "stream")
	h.Set("Grip-Channel", channel)
	// With nothing published for 20 s, the proxy sends ":\n\n" (an SSE
	// comment, which browsers ignore) so that idle connections are not cut
	// by intermediaries. format=cstring lets the header carry "\n".
	h.Set("Grip-Keep-Alive", `:\n\n; format=cstring; timeout=20`)
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	log.Printf("feed: stream on channel %q", channel)
	io.WriteString(w, ": connected\n\n")
}

// poll starts a long-poll. If something is published to the channel
// within 20 s the client gets that instead; otherwise it gets this
// response: an empty list of messages.
func poll(w http.ResponseWriter, r *http.Request) {
	channel, ok := channelParam(w, r)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Grip-Hold", "response")
	h.Set("Grip-Channel", channel)
	h.Set("Grip-Timeout", "20")
	h.Set("Content-Type", "application/json")
	log.Printf("poll: long-poll on channel %q", channel)
	io.WriteString(w, `{"messages":[]}`+"\n")
}

// hello is a plain response: no Grip-* headers, so the proxy simply
// passes it to the client.
func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "hello from the backend\n")
}

// channelParam returns the ?channel= query parameter. It keeps to letters,
// digits and "-_.:" so the name cannot break the Grip-Channel header
// (where ',' and ';' have a meaning).
func channelParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	channel := r.URL.Query().Get("channel")
	valid := channel != "" && len(channel) <= 64 && strings.Trim(channel,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == ""
	if !valid {
		http.Error(w, "want ?channel=NAME (letters, digits, - _ . :)", http.StatusBadRequest)
	}
	return channel, valid
}

// requireGripSig refuses GRIP requests that did not come through the proxy.
// gripd (started with --sig-key) signs every request it forwards with a
// Grip-Sig header: a JWT signed HS256 with the shared key. Without this
// check anyone who can reach the backend directly could see what it would
// tell the proxy. A production backend would rather use a GRIP library
// (js-grip, go-grip, ...), which does this and more.
func requireGripSig(key []byte, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hello" && !validGripSig(r.Header.Get("Grip-Sig"), key) {
			http.Error(w, "missing or invalid Grip-Sig: use the proxy", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// validGripSig reports whether token is a JWT signed HS256 with key whose
// exp claim has not passed.
func validGripSig(token string, key []byte) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	// The header must say HS256: never let the token pick the algorithm.
	var header struct {
		Alg string `json:"alg"`
	}
	if !decodeSegment(parts[0], &header) || header.Alg != "HS256" {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return false
	}
	var claims struct {
		Exp *float64 `json:"exp"` // seconds since 1970
	}
	if !decodeSegment(parts[1], &claims) || claims.Exp == nil {
		return false
	}
	return float64(time.Now().Unix()) < *claims.Exp
}

// decodeSegment decodes one base64url JSON part of a JWT into v.
func decodeSegment(segment string, v any) bool {
	data, err := base64.RawURLEncoding.DecodeString(segment)
	return err == nil && json.Unmarshal(data, v) == nil
}
