package admin

import (
	"encoding/json"
	"net/http"
	"runtime"
	"time"
)

// statusWriteTimeout bounds each write of the status stream, so a viewer
// whose connection stalls does not keep its handler forever.
const statusWriteTimeout = 10 * time.Second

// statusInfo is the stream's first event (event: info): what the page
// shows in its header and how to lay out its charts.
type statusInfo struct {
	Version       string `json:"version"`
	GoVersion     string `json:"go_version"`
	IntervalMS    int64  `json:"interval_ms"`
	WindowSeconds int64  `json:"window_seconds"`
}

// serveStatusEvents answers GET /status/events: a Server-Sent Events
// stream of one JSON sample a second (see statusfeed.go). It starts with
// an "info" event, then the samples of the last few minutes, then a
// sample a second as they are taken:
//
//	retry: 2000
//
//	event: info
//	data: {"version":"...","go_version":"...","interval_ms":1000,"window_seconds":300}
//
//	data: {"t":...,"held":{"response":0,"stream":2,"ws":1},"channels":2,...}
//
// It ends when the viewer leaves, falls too far behind, or gripd shuts
// down; EventSource then reconnects by itself.
func (a *Handler) serveStatusEvents(w http.ResponseWriter, r *http.Request) {
	history, samples, leave, err := a.status.watch()
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorReply{Reason: err.Error()})
		return
	}
	defer leave()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)

	info, _ := json.Marshal(statusInfo{
		Version: a.version, GoVersion: runtime.Version(),
		IntervalMS: a.status.every.Milliseconds(), WindowSeconds: int64(statusWindow / time.Second),
	})
	buf := append([]byte("retry: 2000\n\nevent: info\ndata: "), info...)
	buf = append(buf, "\n\n"...)
	for _, s := range history {
		buf = appendSampleEvent(buf, s)
	}
	if !writeStatus(rc, w, buf) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case s, ok := <-samples:
			if !ok {
				return
			}
			if !writeStatus(rc, w, appendSampleEvent(buf[:0], s)) {
				return
			}
		}
	}
}

// appendSampleEvent appends one sample as an SSE event (JSON holds no
// newline, so one data line).
func appendSampleEvent(dst, sample []byte) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, sample...)
	return append(dst, "\n\n"...)
}

// writeStatus writes and flushes b within statusWriteTimeout; false when
// the viewer is gone.
func writeStatus(rc *http.ResponseController, w http.ResponseWriter, b []byte) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(statusWriteTimeout))
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}
