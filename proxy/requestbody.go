package proxy

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// errReadBodyTimeout is the error of a request body the client did not
// finish sending within Limits.ReadBodyTimeout.
var errReadBodyTimeout = errors.New("client did not send its request body in time (limits.read_body_timeout)")

// clientBodyError is a failure reading the client's request body (a
// malformed chunked encoding, a connection that broke, a body sent too
// slowly): the client's fault, not the backend's, and logged and counted
// as such.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string {
	return "reading the client's request body: " + e.err.Error()
}
func (e *clientBodyError) Unwrap() error { return e.err }

// clientBody is a client's request body on its way to a backend. When it
// is first read (the backend connection is there: waiting for one does
// not count) the connection's read deadline is set to when the whole body
// must have arrived, and it is cleared as soon as it has, so that the
// server's own reads of the connection do not inherit it.
type clientBody struct {
	rc      io.ReadCloser
	ctl     *http.ResponseController // nil when deadlines are not supported
	timeout time.Duration
	started bool
	eof     bool
	err     atomic.Pointer[clientBodyError] // the read error, once there is one
}

// newClientBody wraps r's body (nil when it has none); w is the server's
// own ResponseWriter, whose connection the deadline is set on.
func newClientBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) *clientBody {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b := &clientBody{rc: r.Body, ctl: http.NewResponseController(w), timeout: timeout}
	r.Body = b
	return b
}

func (b *clientBody) Read(p []byte) (int, error) {
	if !b.started {
		b.started = true
		if b.ctl.SetReadDeadline(time.Now().Add(b.timeout)) != nil {
			b.ctl = nil // not supported: no deadline
		}
	}
	n, err := b.rc.Read(p)
	switch {
	case err == nil:
	case err == io.EOF:
		if !b.eof && b.ctl != nil {
			_ = b.ctl.SetReadDeadline(time.Time{})
		}
		b.eof = true
	default:
		if isTimeout(err) {
			err = errReadBodyTimeout
		}
		ce := &clientBodyError{err}
		b.err.CompareAndSwap(nil, ce)
		err = ce
	}
	return n, err
}

func (b *clientBody) Close() error { return b.rc.Close() }

// failed returns the error reading the body failed with, or nil.
func (b *clientBody) failed() error {
	if b == nil {
		return nil
	}
	if e := b.err.Load(); e != nil {
		return e
	}
	return nil
}
