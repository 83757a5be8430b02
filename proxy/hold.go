package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// modifyResponse acts on a backend response that carries GRIP
// instructions. A response without a hold is rewritten in place and left
// to the reverse proxy to send; a hold is served here, to the end, and
// errHandled tells the reverse proxy that the client has been answered.
func (s *Server) modifyResponse(resp *http.Response) error {
	st := stateFrom(resp.Request.Context())
	// The client gets gripd's request id (set in ServeHTTP), not a second one.
	resp.Header.Del(requestIDHeader)
	if st.route.NoGrip || !grip.HasInstruction(resp.Header) {
		return sizeSmallBody(resp)
	}
	var body []byte
	if grip.IsInstruct(resp.Header) {
		b, err := readLimited(resp.Body, st.limits.MaxInstructBody)
		if err != nil {
			return s.instructionFailed(st, resp, err)
		}
		body = b
	}
	inst, err := grip.ParseInstruction(resp.StatusCode, resp.Header, body)
	if err != nil {
		return s.instructionFailed(st, resp, err)
	}
	if inst.Hold != grip.HoldNone && len(inst.Channels) > st.limits.MaxChannels {
		return s.instructionFailed(st, resp, channelLimitError(len(inst.Channels), st.limits.MaxChannels))
	}
	st.hold, st.chans = inst.Hold, inst.Channels
	switch {
	case inst.Hold == grip.HoldResponse:
		if body == nil {
			b, err := readLimited(resp.Body, st.limits.MaxInstructBody)
			if err != nil {
				return s.instructionFailed(st, resp, err)
			}
			inst.Response.Body = b
		}
		resp.Body.Close()
		s.holdResponse(st, resp.Request, inst)
		return errHandled
	case inst.Hold == grip.HoldStream || inst.NextLink() != nil: // no hold with a link streams too (nextlink.go)
		var initial io.Reader = resp.Body
		if body != nil {
			initial = bytes.NewReader(inst.Response.Body)
		}
		s.holdStream(st, resp.Request, inst, initial)
		resp.Body.Close()
		return errHandled
	}
	// No hold: the client gets the response itself, without Grip-* headers.
	if body != nil {
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(inst.Response.Body))
		resp.ContentLength = int64(len(inst.Response.Body))
		inst.Response.Header.Set("Content-Length", strconv.Itoa(len(inst.Response.Body)))
	}
	resp.StatusCode = inst.Response.Code
	resp.Status = ""
	resp.Header = inst.Response.Header
	return nil
}

// sizeSmallBody gives an unknown-length response a Content-Length when
// its whole body arrives with the first read, as Pushpin does for small
// chunked responses: clients and caches handle a sized response better.
// Streaming content types are left alone so their headers go out at once.
func sizeSmallBody(resp *http.Response) error {
	if resp.ContentLength != -1 || resp.Body == nil || resp.Body == http.NoBody ||
		resp.Request.Method == http.MethodHead || isStreamingType(resp.Header.Get("Content-Type")) {
		return nil
	}
	buf := make([]byte, 4096)
	n, err := resp.Body.Read(buf)
	for n == 0 && err == nil {
		n, err = resp.Body.Read(buf)
	}
	switch {
	case err == io.EOF:
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(buf[:n]))
		resp.ContentLength = int64(n)
		resp.Header.Set("Content-Length", strconv.Itoa(n))
		resp.TransferEncoding = nil
	case err != nil:
		return fmt.Errorf("reading backend body: %w", err)
	default:
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(buf[:n]), resp.Body), resp.Body}
	}
	return nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// isStreamingType reports content types whose responses are streams of
// events, never to be held back waiting for a body.
func isStreamingType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "text/event-stream", "application/x-ndjson", "application/stream+json",
		"application/json-seq", "multipart/x-mixed-replace", "application/grpc":
		return true
	}
	return false
}

// instructionFailed answers 502 for an instruction gripd cannot act on,
// and logs what was wrong with it: the backend's developer needs that.
func (s *Server) instructionFailed(st *requestState, resp *http.Response, err error) error {
	resp.Body.Close()
	st.log.Error().Str("route", st.route.ID).Str("backend", st.backend).Err(err).Msg("bad GRIP instruction from backend")
	writeText(st.w, http.StatusBadGateway, "Error while proxying to origin.\n")
	return errHandled
}

// readLimited reads all of r, failing if it holds more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading backend body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("backend body over %d bytes (limits.max_instruct_body) cannot carry a GRIP instruction", limit)
	}
	return b, nil
}

func channelNames(chans []grip.Channel) []string {
	names := make([]string, len(chans))
	for i, c := range chans {
		names[i] = c.Name
	}
	return names
}

// holdResponse parks a long-poll until a publish or its timeout. A
// long-poll that is to be recovered is caught up from history when it
// missed items and history can tell, else it ends for a re-request
// (rerequest.go).
func (s *Server) holdResponse(st *requestState, r *http.Request, inst *grip.Instruction) {
	hub := s.cfg.Hub
	sub := hub.SubscribeHold(handoff.KindResponse, handoff.HoldSpec{Channels: inst.Channels, Meta: inst.Meta, Recoverable: true})
	defer hub.Unsubscribe(sub)
	s.cfg.Observer.HoldStarted(st.route.ID, handoff.KindResponse)
	defer s.cfg.Observer.HoldEnded(st.route.ID, handoff.KindResponse)
	if s.replayResponse(st, r, sub, inst) { // history (resume.go)
		return
	}
	ctx := r.Context()
	deadline := time.Now().Add(inst.Timeout)
	reason, atSubscribe := handoff.RecoverNone, sub.OutOfStep()
	if atSubscribe {
		reason = handoff.RecoverOutOfStep
	}
	for {
		if reason != handoff.RecoverNone {
			pub, body, done := s.recoverLongPoll(ctx, st, sub, reason, atSubscribe)
			if pub != nil {
				s.writePublished(st, inst, pub, body)
			}
			if done {
				return
			}
		}
		out, err := handoff.HoldResponse(ctx, sub, time.Until(deadline))
		if err == nil && out.Recover != handoff.RecoverNone {
			reason, atSubscribe = out.Recover, false
			continue
		}
		switch {
		case errors.Is(err, handoff.ErrSlow):
			st.end = "slow"
			writeText(st.w, http.StatusServiceUnavailable, "Subscriber queue overflow.\n")
		case err != nil:
			st.end = "client gone"
			st.w.status = statusClientClosed
		case out.Response == nil:
			st.end = "timeout"
			writeResponse(st, inst.Response.Code, inst.Response.Header, inst.Response.Body)
		default:
			st.end = "published"
			s.writePublished(st, inst, out.Response, out.Body)
		}
		return
	}
}

// writePublished answers a long-poll with a published http-response: its
// code and headers over the timeout response's headers, and body.
func (s *Server) writePublished(st *requestState, inst *grip.Instruction, pub *grip.HTTPResponseFormat, body []byte) {
	header := inst.Response.Header.Clone()
	for k, vs := range pub.Header {
		header[http.CanonicalHeaderKey(k)] = vs
	}
	if expose := header.Values("Grip-Expose-Headers"); len(expose) > 0 {
		header = grip.KeepHeaders(header, expose)
	}
	grip.StripGripHeaders(header)
	code := pub.Code
	if code == 0 {
		code = http.StatusOK
	}
	writeResponse(st, code, header, body)
}

// writeResponse sends a complete response whose body is in memory.
func writeResponse(st *requestState, code int, header http.Header, body []byte) {
	if code < 100 || code > 999 {
		st.log.Error().Str("route", st.route.ID).Int("code", code).Msg("invalid status code in GRIP response")
		writeText(st.w, http.StatusBadGateway, "Error while proxying to origin.\n")
		return
	}
	h := st.w.Header()
	for k, vs := range header {
		h[k] = vs
	}
	h.Del("Transfer-Encoding")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	setRequestID(h, st.requestID)
	st.w.WriteHeader(code)
	_, _ = st.w.Write(body)
}

// holdStream sends a stream hold's initial response, then parks it and
// appends what is published until something ends it.
func (s *Server) holdStream(st *requestState, r *http.Request, inst *grip.Instruction, initial io.Reader) {
	hub := s.cfg.Hub
	// Subscribe before the client sees anything, so nothing published after
	// the backend answered is missed. A stream with a next link can recover
	// (nextlink.go); one without a hold has no channels until its link says.
	linked := inst.NextLink() != nil || inst.Hold != grip.HoldStream || channelsWithPrevID(inst.Channels)
	spec := handoff.HoldSpec{Channels: inst.Channels, Meta: inst.Meta, Recoverable: inst.NextLink() != nil}
	if inst.Hold != grip.HoldStream {
		spec.Channels = nil
	}
	sub := hub.SubscribeHold(handoff.KindStream, spec)
	s.cfg.Observer.HoldStarted(st.route.ID, handoff.KindStream)
	parked := false
	defer func() {
		if !parked { // else the parked stream's OnEnd says it ended
			hub.Unsubscribe(sub)
			s.cfg.Observer.HoldEnded(st.route.ID, handoff.KindStream)
		}
	}()

	code := inst.Response.Code
	if code < 100 || code > 999 {
		writeResponse(st, code, nil, nil) // answers 502 and logs
		return
	}
	h := st.w.Header()
	for k, vs := range inst.Response.Header {
		h[k] = vs
	}
	h.Del("Content-Length")
	setRequestID(h, st.requestID)
	st.w.WriteHeader(code)
	sw := &streamWriter{w: st.w, rc: http.NewResponseController(st.w), timeout: s.cfg.WriteTimeout}
	initial, err := filterBody(inst, initial, st.limits.MaxInstructBody)
	if err != nil {
		// Pushpin too ends the stream, cleanly, after the headers.
		st.end = "filter error"
		st.log.Warn().Str("route", st.route.ID).Err(err).Msg("stream hold: filtering the initial body failed")
		return
	}
	if err := copyInitial(sw, initial); err != nil {
		st.end = "initial body: " + err.Error()
		abort(sw.rc) // the client must not take a cut body for a whole one
		return
	}
	if err := sw.Flush(); err != nil {
		st.end = "client gone"
		return
	}
	if !s.replayStream(st, r, sub, sw, inst) { // history (resume.go)
		return
	}
	var end handoff.StreamEnd
	if linked {
		end, err = s.followLinks(st, r, sw, sub, inst)
		if err != nil && end != handoff.EndSlow && end != handoff.EndWrite {
			st.log.Warn().Str("route", st.route.ID).Str("end", string(end)).Err(err).Msg("linked stream ended")
		}
	} else {
		if parked = s.park(st, r, sw, sub, inst.KeepAlive); parked {
			return
		}
		end, err = handoff.HoldStream(r.Context(), sub, sw, inst.KeepAlive)
	}
	st.end = string(end)
	switch end {
	case handoff.EndSlow, handoff.EndWrite:
		st.log.Warn().Str("route", st.route.ID).Str("remote", r.RemoteAddr).Err(err).Msg("stream client dropped")
		abort(sw.rc)
	}
	_ = sw.rc.SetWriteDeadline(time.Time{})
}

// park hands an HTTP/1.1 chunked stream to the hub (see handoff.Park), so
// an idle held stream costs no goroutine stack of its own. HTTP/1.0, HEAD
// and HTTP/2 streams stay in the goroutine-per-hold loop.
func (s *Server) park(st *requestState, r *http.Request, sw *streamWriter, sub *handoff.Subscriber, ka *grip.KeepAlive) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 || r.Method == http.MethodHead {
		return false
	}
	conn, _, err := sw.rc.Hijack()
	if err != nil {
		return false
	}
	_ = conn.SetWriteDeadline(time.Time{})
	st.parked = true
	entry := newAccessEntry(r, st, st.start)
	log := st.log
	s.cfg.Hub.Park(conn, sub, handoff.ParkConfig{
		KeepAlive:    ka,
		WriteTimeout: s.cfg.WriteTimeout,
		OnEnd: func(end handoff.StreamEnd, n int64, err error) {
			s.cfg.Observer.HoldEnded(entry.route, handoff.KindStream)
			entry.end = string(end)
			entry.bytes += n
			if end == handoff.EndSlow || end == handoff.EndWrite {
				log.Warn().Str("route", entry.route).Str("remote", entry.remote).Err(err).Msg("stream client dropped")
			}
			s.logAccess(entry)
		},
	})
	return true
}

// copyInitial writes a stream hold's initial body without the 32 KiB
// buffer io.Copy would allocate for every held stream.
func copyInitial(w io.Writer, r io.Reader) error {
	var buf [2048]byte
	_, err := io.CopyBuffer(writerOnly{w}, readerOnly{r}, buf[:])
	return err
}

type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }

// abort drops a client connection without ending the response cleanly,
// so the client can tell it missed data.
func abort(rc *http.ResponseController) {
	if conn, _, err := rc.Hijack(); err == nil {
		conn.Close()
	}
}

// streamWriter writes to a held stream with a deadline on every write, so
// a client that stops reading is dropped instead of pinning its goroutine.
type streamWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func (sw *streamWriter) Write(p []byte) (int, error) {
	_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout))
	return sw.w.Write(p)
}

func (sw *streamWriter) Flush() error {
	_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout))
	return sw.rc.Flush()
}
