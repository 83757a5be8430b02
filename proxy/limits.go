package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gripd/gripd/grip"
)

// Defaults of Limits.
const (
	// DefaultMaxRequestBody is 10 MiB: far above what an API call or a form
	// posts, low enough that a client cannot stream gigabytes into a
	// backend through gripd unnoticed.
	DefaultMaxRequestBody = 10 << 20
	// DefaultMaxInstructBody is Pushpin's limit on a body gripd reads to act
	// on an instruction.
	DefaultMaxInstructBody = grip.MaxInstructBody
	// DefaultMaxChannels is five times Pushpin's 20, so backends written for
	// Pushpin keep every channel they ask for; beyond it gripd refuses
	// rather than dropping channels silently as Pushpin does.
	DefaultMaxChannels = 100
	// DefaultMaxWSMessage is Pushpin's limit on one client WebSocket
	// message (1,000,000 bytes).
	DefaultMaxWSMessage = 1_000_000
	// DefaultReadBodyTimeout is enough for a body of max_request_body
	// (10 MiB) at 1.5 Mbit/s, and keeps a client that sends a byte now and
	// then no longer than a minute.
	DefaultReadBodyTimeout = 60 * time.Second
	// DefaultMaxLinksWithoutHold lets a backend page through a large
	// answer with next links, and stops a loop of links that never holds.
	DefaultMaxLinksWithoutHold = 1000
	// DefaultLinkInterval holds a stream that follows links without a hold
	// to ten backend requests a second, after the first linkBurst.
	DefaultLinkInterval = 100 * time.Millisecond
)

// Limits are the limits the proxy checks while it serves a request. They
// can change while gripd runs: Server.SetLimits swaps them at once, a
// request in progress keeps the set it started with, and a WebSocket reads
// MaxWSMessage when it opens and MaxChannels at each subscribe. A zero
// field takes its default.
type Limits struct {
	// MaxRequestBody is the largest request body forwarded to a backend, in
	// bytes. A request whose Content-Length is larger is answered 413 at
	// once, without contacting the backend; a chunked body is cut off where
	// it passes the limit, the backend request is aborted and the client
	// gets 413 (the connection is then closed). WebSocket upgrades carry no
	// body and are not affected. YAML limits.max_request_body. Default
	// 10 MiB.
	MaxRequestBody int64
	// MaxInstructBody is the most gripd reads of a backend's body to act on
	// it: an application/grip-instruct body, or the timeout body of a
	// long-poll hold. A larger one answers the client 502 and logs "bad
	// GRIP instruction from backend". Stream holds and plain responses are
	// streamed and not limited. YAML limits.max_instruct_body. Default
	// 100,000 bytes (Pushpin's).
	MaxInstructBody int64
	// MaxChannels is the most channels one hold or one WebSocket may
	// subscribe to. A hold instruction with more answers the client 502
	// and logs the instruction as bad; a WebSocket subscribe control
	// message beyond it is refused and logged, and the connection stays
	// open. YAML limits.max_channels. Default 100 (Pushpin: 20, extra
	// channels dropped silently).
	MaxChannels int
	// MaxWSMessage is the largest message a WebSocket client may send, in
	// bytes; a larger one closes the connection with 1009 (message too
	// big). YAML limits.max_ws_message. Default 1,000,000 (Pushpin's).
	MaxWSMessage int64
	// ReadBodyTimeout is how long a client may take to send its whole
	// request body, counted from when gripd starts on the request. A body
	// still arriving then is cut off: the backend request is aborted
	// (freeing its backend connection) and the client gets 408 and a
	// closed connection. It keeps a client that trickles a body from
	// holding one of a backend's backend_max_conns connections for as
	// long as it likes. YAML limits.read_body_timeout. Default 60s.
	ReadBodyTimeout time.Duration
	// BackendQueueTimeout is how long a request waits for a connection to
	// its backend when all backend_max_conns of them are in use; then the
	// next backend of the route is tried, and with none left the client
	// gets 503 with Retry-After: 1. YAML limits.backend_queue_timeout.
	// Default 5s.
	BackendQueueTimeout time.Duration
	// MaxLinksWithoutHold is the most next links one stream follows in a
	// row whose answers hold nothing (no Grip-Hold, only another link);
	// one more ends the stream, logged and counted. YAML
	// limits.max_links_without_hold. Default 1000.
	MaxLinksWithoutHold int
	// LinkInterval paces the next links a stream follows in a row without
	// a hold: after a burst of linkBurst, one per interval. YAML
	// limits.link_interval. Default 100ms.
	LinkInterval time.Duration
	// WSMessageTimeout is how long a client WebSocket message may take to
	// arrive, from its first frame to its last; a message not finished by
	// then closes the connection with 1008 (policy violation), counted.
	// Waiting for a message has no deadline. YAML
	// limits.ws_message_timeout. Default 30s.
	WSMessageTimeout time.Duration
	// WSPartialBudget caps the memory held by unfinished client WebSocket
	// messages, all connections together, in bytes; a message that would
	// pass it closes its connection with 1009 (message too big), counted.
	// YAML limits.ws_partial_budget. Default 64 MiB.
	WSPartialBudget int64
}

// DefaultLimits returns the limits a Server has when none are given.
func DefaultLimits() Limits { return Limits{}.WithDefaults() }

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxRequestBody <= 0 {
		l.MaxRequestBody = DefaultMaxRequestBody
	}
	if l.MaxInstructBody <= 0 {
		l.MaxInstructBody = DefaultMaxInstructBody
	}
	if l.MaxChannels <= 0 {
		l.MaxChannels = DefaultMaxChannels
	}
	if l.MaxWSMessage <= 0 {
		l.MaxWSMessage = DefaultMaxWSMessage
	}
	if l.ReadBodyTimeout <= 0 {
		l.ReadBodyTimeout = DefaultReadBodyTimeout
	}
	if l.BackendQueueTimeout <= 0 {
		l.BackendQueueTimeout = DefaultBackendQueueTimeout
	}
	if l.MaxLinksWithoutHold <= 0 {
		l.MaxLinksWithoutHold = DefaultMaxLinksWithoutHold
	}
	if l.LinkInterval <= 0 {
		l.LinkInterval = DefaultLinkInterval
	}
	if l.WSMessageTimeout <= 0 {
		l.WSMessageTimeout = DefaultWSMessageTimeout
	}
	if l.WSPartialBudget <= 0 {
		l.WSPartialBudget = DefaultWSPartialBudget
	}
	return l
}

// SetLimits swaps the limits requests are checked against; requests under
// way keep the set they started with. Zero fields take their defaults.
// Safe to call at any time, from any goroutine (a config reload).
func (s *Server) SetLimits(l Limits) {
	l = l.WithDefaults()
	s.limits.Store(&l)
}

// Limits returns the limits in force, defaults filled in.
func (s *Server) Limits() Limits { return *s.limits.Load() }

// channelLimitError is the reason a hold instruction with too many
// channels is refused.
func channelLimitError(n, limit int) error {
	return fmt.Errorf("%d channels in one hold, more than limits.max_channels (%d)", n, limit)
}

// limitRequestBody applies MaxRequestBody to r. It reports false when the
// declared Content-Length is already over the limit: the caller answers
// 413 at once and the backend is never contacted. Otherwise the body is
// capped: reading past the limit fails with *http.MaxBytesError, which
// aborts the backend request, and w (the server's own ResponseWriter, which
// http.MaxBytesReader needs) closes the connection after the answer.
func limitRequestBody(w http.ResponseWriter, r *http.Request, limit int64) bool {
	if r.ContentLength > limit {
		return false
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	return true
}

// writeBodyTooLarge answers 413 with the limit, so the client's developer
// knows what to change.
func writeBodyTooLarge(w http.ResponseWriter, limit int64) {
	writeText(w, http.StatusRequestEntityTooLarge,
		"Request body must not exceed "+strconv.FormatInt(limit, 10)+" bytes.\n")
}
