package testutil

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Backend starts an HTTP backend serving h. When the test ends it drops
// the connections still open (held streams included) and closes.
func Backend(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	b := httptest.NewServer(h)
	t.Cleanup(func() { b.CloseClientConnections(); b.Close() })
	return b
}

// StreamBackend starts a GRIP backend that holds every request as an
// SSE stream on channel: Grip-Hold: stream, Content-Type
// text/event-stream, the extra headers (which may replace those), and
// the initial body ":held\n\n".
func StreamBackend(t testing.TB, channel string, extra http.Header) *httptest.Server {
	t.Helper()
	return Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Grip-Hold", "stream")
		w.Header().Set("Grip-Channel", channel)
		w.Header().Set("Content-Type", "text/event-stream")
		for k, vs := range extra {
			w.Header()[k] = vs
		}
		io.WriteString(w, ":held\n\n")
	})
}
