package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// DefaultBackendQueueTimeout is how long a request waits for a connection
// to a backend whose backend_max_conns are all in use before it is
// answered 503: long enough to ride out a burst, short enough that clients
// are told to come back instead of hanging while slow requests hold the
// connections.
const DefaultBackendQueueTimeout = 5 * time.Second

// backendBusyRetryAfter is the Retry-After, in seconds, of the 503 sent
// when no backend connection came free in time.
const backendBusyRetryAfter = "1"

// errBackendBusy is the error of a request that found every connection to
// its backend in use for longer than Limits.BackendQueueTimeout.
var errBackendBusy = errors.New("every connection to the backend stayed in use (backend_max_conns)")

// sendQueued sends req through t, waiting at most wait for one of the
// backend's connections (the transport's MaxConnsPerHost queue, which has
// no bound of its own). The wait ends when the transport starts resolving
// or dialling a new connection or takes an idle one; after that only the
// dial and backend timeouts apply. A request that waited too long fails
// with errBackendBusy without having been sent.
func sendQueued(t http.RoundTripper, req *http.Request, wait time.Duration) (*http.Response, error) {
	const (
		waiting int32 = iota
		gotSlot
		gaveUp
	)
	var state atomic.Int32
	got := func() { state.CompareAndSwap(waiting, gotSlot) }
	trace := &httptrace.ClientTrace{
		DNSStart:     func(httptrace.DNSStartInfo) { got() },
		ConnectStart: func(string, string) { got() },
		GotConn:      func(httptrace.GotConnInfo) { got() },
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(wait, func() {
		if state.CompareAndSwap(waiting, gaveUp) {
			cancel(errBackendBusy)
		}
	})
	resp, err := t.RoundTrip(req.WithContext(httptrace.WithClientTrace(ctx, trace)))
	timer.Stop()
	if err != nil {
		cancel(nil)
		if state.Load() == gaveUp && req.Context().Err() == nil {
			return nil, errBackendBusy
		}
		return nil, err
	}
	// The wait's context lives as long as the response body: release it
	// with the body (a 101's body is the connection, and stays writable).
	// What reads the response afterwards (a hold) sees the caller's
	// request and context, not the one released.
	resp.Request = req
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = cancelOnCloseRW{rwc, cancel}
	} else {
		resp.Body = cancelOnClose{resp.Body, cancel}
	}
	return resp, nil
}

// cancelOnClose ends a request's context once its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel(nil)
	return err
}

type cancelOnCloseRW struct {
	io.ReadWriteCloser
	cancel context.CancelCauseFunc
}

func (c cancelOnCloseRW) Close() error {
	err := c.ReadWriteCloser.Close()
	c.cancel(nil)
	return err
}

// queuedTransport is a RoundTripper whose requests wait at most wait for
// a backend connection (sendQueued).
type queuedTransport struct {
	base http.RoundTripper
	wait time.Duration
}

func (q queuedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return sendQueued(q.base, req, q.wait)
}
