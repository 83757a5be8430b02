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
		// net/http looks at the request's own body type after the handler
		// to decide how to close: with it back, an answer given over a
		// large unread body closes gracefully (FIN, then a pause before the
		// close), so the client reads the answer instead of a reset while
		// it is still sending. What it still reads of a small unread body
		// is bounded in time.
		r.Body = orig
		if !body.eof {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(unreadBodyGrace))
		}
	})
}

// unreadBodyGrace bounds how long net/http may read the rest of a small
// body nobody wanted, after the answer went out.
const unreadBodyGrace = time.Second

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
