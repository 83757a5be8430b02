package proxy

import (
	"net/http"
	"net/url"
	"sync"
)

// responseLog records the status and body size sent to a client, for the
// access log. Unwrap lets http.ResponseController reach the connection
// (flushes, write deadlines).
type responseLog struct {
	http.ResponseWriter
	status int
	bytes  int64
	// corsRequest, on an auto_cross_origin route, is the request's header:
	// CORS headers are added to the response from it as the final status
	// goes out, whoever wrote the response (see applyCORS).
	corsRequest http.Header
}

func (w *responseLog) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if w.corsRequest != nil {
			applyCORS(w.corsRequest, w.Header())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseLog) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *responseLog) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK) // what flushing commits anyway, with CORS
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseLog) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bufferPool lends the 32 KiB buffers the reverse proxy copies bodies
// through, so passthrough traffic does not allocate one per request.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}}
}

func (bp *bufferPool) Get() []byte  { return *(bp.p.Get().(*[]byte)) }
func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }

// unescapePath returns the decoded form of an escaped path, or the path
// as it is when it does not decode.
func unescapePath(p string) string {
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}
