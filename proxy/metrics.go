package proxy

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// Observer is told what the proxy does, so that metrics can be kept
// without this package knowing how (internal/admin's ProxyMetrics turns
// the calls into Prometheus series). route is always a route ID, never
// anything a client chose. The methods are called from request
// goroutines, many at once and on hot paths: they must be safe for
// concurrent use and must not block.
type Observer interface {
	// HoldStarted and HoldEnded bracket every connection the proxy hands to
	// the hub: a held long-poll (handoff.KindResponse), a held stream
	// (KindStream) or a WebSocket (KindWebSocket). Each HoldStarted is
	// followed by exactly one HoldEnded with the same route and kind.
	HoldStarted(route string, kind handoff.Kind)
	HoldEnded(route string, kind handoff.Kind)

	// BackendRequest reports one request to a route's backends (after any
	// failover between them): code is the status of the response headers,
	// or 0 when none came, and then failure says why (one of the Failure*
	// values). d is the time until the response headers or the failure.
	// WebSocket-over-HTTP requests and WebSocket handshakes with a backend
	// count too.
	BackendRequest(route string, code int, failure string, d time.Duration)

	// WebSocketOverHTTP reports one WebSocket-over-HTTP request and its
	// result, one of the WSResult* values.
	WebSocketOverHTTP(route string, result string)

	// NextLink reports what became of one next link (Grip-Link rel=next)
	// of a stream on route: one of the Link* values.
	NextLink(route string, result string)

	// WebSocketLimit reports a client WebSocket on route closed by a
	// limit: one of the WSLimit* values.
	WebSocketLimit(route string, limit string)
}

// What became of a next link.
const (
	LinkFollowed = "followed" // fetched
	LinkRefused  = "refused"  // its host is neither in the route table nor in links.allow_hosts
	LinkCapped   = "capped"   // limits.max_links_without_hold links in a row held nothing: the stream ended
)

// Why a backend request got no response: a small fixed set, so a metric
// labelled with it stays small.
const (
	FailureTimeout     = "timeout"     // no response headers within BackendTimeout
	FailureUnreachable = "unreachable" // no backend of the route took the connection
	FailureCanceled    = "canceled"    // the client (or the session) went away first
	FailureBusy        = "busy"        // every connection to the backend stayed in use (backend_queue_timeout)
	FailureClient      = "client"      // the client's request body failed: too slow or malformed
	FailureError       = "error"       // anything else: a reset, a malformed response
)

// The results of a WebSocket-over-HTTP request.
const (
	WSResultOK       = "ok"       // 200 with application/websocket-events
	WSResultRejected = "rejected" // another status or content type
	WSResultError    = "error"    // no usable reply: unreachable, reset, malformed
	WSResultCanceled = "canceled" // the session ended first
)

// nopObserver is the Observer of a Server configured without one.
type nopObserver struct{}

func (nopObserver) HoldStarted(string, handoff.Kind)                  {}
func (nopObserver) HoldEnded(string, handoff.Kind)                    {}
func (nopObserver) BackendRequest(string, int, string, time.Duration) {}
func (nopObserver) WebSocketOverHTTP(string, string)                  {}
func (nopObserver) NextLink(string, string)                           {}
func (nopObserver) WebSocketLimit(string, string)                     {}

// observeBackend reports a backend request that started at start and
// ended with resp (its headers) or err.
func observeBackend(ctx context.Context, obs Observer, route string, start time.Time, resp *http.Response, err error) {
	if resp != nil {
		obs.BackendRequest(route, resp.StatusCode, "", time.Since(start))
		return
	}
	obs.BackendRequest(route, 0, backendFailure(ctx, err), time.Since(start))
}

// backendFailure sorts an error without a response into a Failure* value.
func backendFailure(ctx context.Context, err error) string {
	switch {
	case errors.As(err, new(*clientBodyError)):
		return FailureClient
	case ctx.Err() != nil:
		return FailureCanceled
	case errors.Is(err, errBackendBusy):
		return FailureBusy
	case errors.Is(err, errNoBackend):
		return FailureUnreachable
	case isTimeout(err):
		return FailureTimeout
	}
	return FailureError
}

// wsResult sorts the outcome of one WebSocket-over-HTTP request.
func wsResult(ctx context.Context, resp *wsResponse, err error) string {
	switch {
	case err != nil && ctx.Err() != nil:
		return WSResultCanceled
	case err != nil:
		return WSResultError
	case resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != grip.WSEventsContentType:
		return WSResultRejected
	}
	return WSResultOK
}
