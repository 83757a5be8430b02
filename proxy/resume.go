package proxy

import (
	"context"
	"net/http"
	"strings"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// This file resumes a held connection from history (Config.History)
// when its client is behind in a way the hub cannot see:
//
//   - an SSE client that reconnects with Last-Event-ID (the header, or a
//     lastEventId query parameter) gets the items after that id, then
//     live ones;
//   - a stream hold or long-poll whose channel prev-id is behind, on an
//     instance that does not know the channel's last id (it had no
//     subscriber there), is answered from history at once: a long-poll
//     with the next item after its prev-id, without asking the backend.
//
// When the hub does know a prev-id is behind, history.go's catch-up
// handles it. The hold is subscribed before history is read, and the
// replay tells the subscriber how far it reached (CoverHistory), so live
// items continue it with no gap and none twice, even from an instance
// whose feed lags behind the one the client left. When the client's
// position is no longer in history (aged out, trimmed, never seen), the
// backend's recovery takes over: a long-poll is re-requested with
// Grip-Last, a stream with a next link fetches it.

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
// client has: the channel's prev-id when the backend gave one and the hub
// cannot tell whether it is behind, else (when eventID) the client's
// Last-Event-ID. nil when there is none.
func (s *Server) historyPositions(r *http.Request, inst *grip.Instruction, eventID bool) map[string]string {
	var pos map[string]string
	last := ""
	if eventID {
		last = lastEventID(r)
	}
	for _, c := range inst.Channels {
		id := c.PrevID
		if id != "" {
			if known, ok := s.cfg.Hub.LastID(c.Name); ok && known == id {
				continue // in step: nothing to replay
			}
		} else {
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
	if s.cfg.History == nil || inst.Hold != grip.HoldStream || sub.OutOfStep() {
		return true // nothing to replay, or history.go's catch-up's to do
	}
	positions := s.historyPositions(r, inst, true)
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
		case v == handoff.Recover: // a hint: the backend asked for a recovery
			s.streamNeedsRecovery(st, sub, []string{it.Channel}, "a hint in history")
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
		s.streamNeedsRecovery(st, sub, rp.Missing, "position not in history")
	}
	return true
}

// streamNeedsRecovery hands a stream whose client may have missed items
// that history cannot give to the backend's recovery: a stream with a
// next link fetches it (with Grip-Last, nextlink.go). A stream without
// one has no way to ask; the gap is logged, and the backend, which saw
// the client's Last-Event-ID with the request, is the one to fill it.
func (s *Server) streamNeedsRecovery(st *requestState, sub *handoff.Subscriber, channels []string, why string) {
	if sub.RequestRecovery() {
		st.log.Debug().Str("route", st.route.ID).Strs("channels", channels).Str("why", why).Msg("stream recovers through its next link")
		return
	}
	st.log.Warn().Str("route", st.route.ID).Strs("channels", channels).Str("why", why).
		Msg("stream client may have missed items history cannot give; left to the backend")
}

// replayResponse answers a long-poll whose channel prev-id is behind,
// on an instance that cannot tell, with the next item after it from
// history, and reports true when the hold is over: answered, or ended for
// a re-request. A prev-id that history does not hold, though it holds the
// channel's items, means the client may have missed what history no
// longer has: the long-poll is re-requested with Grip-Last.
func (s *Server) replayResponse(st *requestState, r *http.Request, sub *handoff.Subscriber, inst *grip.Instruction) bool {
	if s.cfg.History == nil || sub.OutOfStep() {
		return false // nothing to replay, or history.go's catch-up's to do
	}
	positions := s.historyPositions(r, inst, false)
	if len(positions) == 0 {
		return false
	}
	rp, ok := s.planReplay(st, r, positions)
	if !ok {
		return false
	}
	if len(rp.Missing) > 0 {
		st.log.Debug().Str("route", st.route.ID).Strs("channels", rp.Missing).Msg("prev-id not in history; re-requesting")
		return s.rerequest(st, sub.LastIDs(), true)
	}
	for i := range rp.Items {
		it := &rp.Items[i]
		switch v, body := sub.TakeHistory(it); v {
		case handoff.Send:
			st.end = "from history"
			s.writePublished(st, inst, it.HTTPResponse, body)
			return true
		case handoff.Recover: // a hint: the backend asked for a re-request
			if s.rerequest(st, sub.LastIDs(), false) {
				return true
			}
		}
	}
	sub.CoverHistory(rp.Through)
	return false
}
