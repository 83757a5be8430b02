package proxy

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// This file replays history (Config.History, beyond Pushpin) to a held
// connection whose client is behind:
//
//   - an SSE client that reconnects with Last-Event-ID (the header, or a
//     lastEventId query parameter) gets the items after that id, then
//     live ones;
//   - a stream hold or long-poll whose channel prev-id is not the
//     channel's last id is answered from history at once (a long-poll
//     with the next item after its prev-id), without asking the backend.
//
// The hold is subscribed before history is read, and the replay tells
// the subscriber how far it reached, so live items continue it with no
// gap and none twice (handoff/history.go). When the client's position is
// no longer in history (aged out, trimmed, or never seen), the backend's
// recovery takes over: a long-poll is re-requested with Grip-Last (as
// rerequest.go does for one that is out of step).

// Defaults of the history settings in Config.
const (
	defaultHistoryLimit   = 1000
	defaultHistoryTimeout = 5 * time.Second
)

func (s *Server) historyLimit() int {
	if s.cfg.HistoryLimit > 0 {
		return s.cfg.HistoryLimit
	}
	return defaultHistoryLimit
}

func (s *Server) historyTimeout() time.Duration {
	if s.cfg.HistoryTimeout > 0 {
		return s.cfg.HistoryTimeout
	}
	return defaultHistoryTimeout
}

// lastEventID is the SSE Last-Event-ID the client sent: the header, or
// the lastEventId query parameter, which EventSource polyfills that
// cannot set headers use.
func lastEventID(r *http.Request) string {
	if id := strings.TrimSpace(r.Header.Get("Last-Event-ID")); id != "" {
		return id
	}
	return r.URL.Query().Get("lastEventId")
}

// historyPositions returns, per channel, the id of the last item the
// client has: the channel's prev-id when the backend gave one, else (when
// eventID) the client's Last-Event-ID. nil when there is none.
func historyPositions(r *http.Request, inst *grip.Instruction, eventID bool) map[string]string {
	var pos map[string]string
	last := ""
	if eventID {
		last = lastEventID(r)
	}
	for _, c := range inst.Channels {
		id := c.PrevID
		if id == "" {
			id = last
		}
		if id == "" {
			continue
		}
		if pos == nil {
			pos = map[string]string{}
		}
		pos[c.Name] = id
	}
	return pos
}

// planReplay reads history for positions, bounded by HistoryTimeout. ok
// is false when history could not answer: the hold then goes on as if
// history were off.
func (s *Server) planReplay(st *requestState, r *http.Request, positions map[string]string) (handoff.Replay, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), s.historyTimeout())
	defer cancel()
	rp, err := handoff.PlanReplay(ctx, s.cfg.History, positions, s.historyLimit())
	if err != nil {
		if r.Context().Err() == nil {
			st.log.Warn().Str("route", st.route.ID).Err(err).Msg("history lookup failed; holding without a replay")
		}
		return handoff.Replay{}, false
	}
	return rp, true
}

// replayStream sends a stream hold, after its initial body, what its
// client missed, from history. It reports false when the stream is over:
// a replayed item closed it, or the client went away.
func (s *Server) replayStream(st *requestState, r *http.Request, sub *handoff.Subscriber, sw *streamWriter, inst *grip.Instruction) bool {
	if s.cfg.History == nil {
		return true
	}
	positions := historyPositions(r, inst, true)
	if len(positions) == 0 {
		return true
	}
	rp, ok := s.planReplay(st, r, positions)
	if !ok {
		return true
	}
	sent := 0
	for i := range rp.Items {
		it := &rp.Items[i]
		v, content := sub.TakeHistory(it)
		switch {
		case v == handoff.Recover:
			s.streamNeedsRecovery(st, []string{it.Channel}, "a hint in history")
		case v == handoff.Skip:
		case it.HTTPStream.Action == grip.ActionClose:
			st.end = "closed (history)"
			_ = sw.Flush()
			return false
		default:
			if _, err := sw.Write(content); err != nil {
				st.end = "client gone"
				return false
			}
			sent++
		}
	}
	sub.CoverHistory(rp.Through)
	if err := sw.Flush(); err != nil {
		st.end = "client gone"
		return false
	}
	st.log.Debug().Str("route", st.route.ID).Int("items", sent).Strs("missing", rp.Missing).Msg("stream resumed from history")
	if len(rp.Missing) > 0 {
		s.streamNeedsRecovery(st, rp.Missing, "position not in history")
	}
	return true
}

// streamNeedsRecovery is where a stream whose client may have missed
// items that history cannot give goes to the backend's recovery (GRIP.md
// §5: a stream fetches its next link, with Grip-Last). The proxy has no
// such recovery for streams yet; until it has, the gap is logged, and
// the backend, which saw the client's Last-Event-ID with the request, is
// the one to fill it in the initial body.
func (s *Server) streamNeedsRecovery(st *requestState, channels []string, why string) {
	st.log.Warn().Str("route", st.route.ID).Strs("channels", channels).Str("why", why).
		Msg("stream client may have missed items history cannot give; left to the backend")
}

// historyOutcome is what replayResponse did.
type historyOutcome int

const (
	// historyNone: history had nothing to say; hold as without it.
	historyNone historyOutcome = iota
	// historyCurrent: the client is up to date on every channel with a
	// prev-id, so there is nothing to recover.
	historyCurrent
	// historyAnswered: the long-poll was answered from history, or ended
	// for a re-request.
	historyAnswered
)

// replayResponse answers a long-poll whose channel prev-id is behind
// with the next item after it, from history. A prev-id that history
// does not hold, though it holds the channel's items, means the client
// may have missed what history no longer has: the long-poll is
// re-requested with Grip-Last.
func (s *Server) replayResponse(st *requestState, r *http.Request, sub *handoff.Subscriber, inst *grip.Instruction) historyOutcome {
	if s.cfg.History == nil {
		return historyNone
	}
	positions := historyPositions(r, inst, false)
	if len(positions) == 0 {
		return historyNone
	}
	rp, ok := s.planReplay(st, r, positions)
	if !ok {
		return historyNone
	}
	if len(rp.Missing) > 0 {
		st.log.Debug().Str("route", st.route.ID).Strs("channels", rp.Missing).Msg("prev-id not in history; re-requesting")
		if s.rerequest(st, sub.LastIDs(), true) {
			return historyAnswered
		}
		return historyNone
	}
	for i := range rp.Items {
		it := &rp.Items[i]
		switch v, body := sub.TakeHistory(it); v {
		case handoff.Send:
			st.end = "history"
			writePublished(st, inst, it.HTTPResponse, body)
			return historyAnswered
		case handoff.Recover: // a hint: the backend asked for a re-request
			if s.rerequest(st, sub.LastIDs(), false) {
				return historyAnswered
			}
		}
	}
	sub.CoverHistory(rp.Through)
	if len(rp.Unknown) > 0 {
		return historyNone
	}
	return historyCurrent
}

// writePublished answers a long-poll with a published http-response over
// the hold's own response, as holdResponse does for a live one.
func writePublished(st *requestState, inst *grip.Instruction, pub *grip.HTTPResponseFormat, body []byte) {
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
