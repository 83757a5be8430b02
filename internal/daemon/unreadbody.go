package daemon

import (
	"io"
	"net/http"
	"time"
)

// closeUnread makes every answer given before the request body was read
// to its end close the connection. net/http otherwise reads (up to
// 256 KiB of) an unread body before it sends the answer, to keep the
// connection: a client without credentials that trickles its body would
// hold the connection before hearing its 401, with no deadline. Answers
// that read the whole body (a publish) keep the connection.
func closeUnread(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		orig := r.Body
		body := &eofBody{ReadCloser: orig}
		r.Body = body
		h.ServeHTTP(&unreadGuard{ResponseWriter: w, body: body}, r)
		// An answer given over an unread body: the client may still be
		// sending it. Closing with it unread makes the kernel send a reset,
		// which can destroy the answer before the client reads it (Node's
		// http client fails the request then), and net/http's own graceful
		// close does not happen when the client asked for "Connection:
		// close". So the answer goes out first, then what is left of the
		// body is read and dropped, bounded in time and size, before
		// net/http closes.
		r.Body = orig
		if !body.eof {
			rc := http.NewResponseController(w)
			_ = rc.Flush()
			_ = rc.SetReadDeadline(time.Now().Add(unreadBodyGrace))
			_, _ = io.CopyN(io.Discard, orig, unreadBodyDrain)
		}
	})
}

// unreadBodyGrace and unreadBodyDrain bound how long, and how much of, a
// body nobody wanted is read after the answer went out.
const (
	unreadBodyGrace = time.Second
	unreadBodyDrain = 4 << 20
)

// eofBody records whether a body was read to its end.
type eofBody struct {
	io.ReadCloser
	eof bool
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// unreadGuard adds "Connection: close" to an answer whose request body is
// not read to its end when the answer starts.
type unreadGuard struct {
	http.ResponseWriter
	body        *eofBody
	wroteHeader bool
}

func (g *unreadGuard) WriteHeader(code int) {
	if !g.wroteHeader {
		g.wroteHeader = true
		if !g.body.eof {
			g.Header().Set("Connection", "close")
		}
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *unreadGuard) Write(p []byte) (int, error) {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	return g.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines).
func (g *unreadGuard) Unwrap() http.ResponseWriter { return g.ResponseWriter }
