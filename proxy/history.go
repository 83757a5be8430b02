package proxy

import (
	"context"
	"slices"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// History is stored channel history that can catch up a connection that
// missed items (its prev-id is behind its channel, or an item broke its
// chain) without asking the backend. Issue 6's history over JetStream
// plugs in here; with none (Config.History nil), every recovery goes to
// the backend: a long-poll is re-requested, a stream fetches its next
// link. Hints and /recover always go to the backend: it asked for them.
type History interface {
	// Since returns the items published on channel after the one whose id
	// is after, oldest first. ok is false when history cannot tell (the id
	// is unknown or too old, the channel is not kept): the connection then
	// recovers through its backend.
	Since(ctx context.Context, channel, after string) (items []grip.Item, ok bool, err error)
}

// catchUp feeds the items sub missed on each channel with a prev-id,
// from history, through its prev-id chains and filters (Subscriber.Take),
// calling deliver with each item and its content to write, in order,
// until deliver returns false. It reports false when history cannot
// answer for every channel, or its items do not follow on: the caller
// then recovers through the backend. Items queued meanwhile are marked
// stale, as history may already hold them.
func (s *Server) catchUp(ctx context.Context, st *requestState, sub *handoff.Subscriber, deliver func(it *grip.Item, content []byte) bool) bool {
	h := s.cfg.History
	last := sub.LastIDs()
	if h == nil || len(last) == 0 {
		return false
	}
	channels := make([]string, 0, len(last))
	for ch := range last {
		channels = append(channels, ch)
	}
	slices.Sort(channels)
	missed := make([][]grip.Item, 0, len(channels))
	for _, ch := range channels {
		items, ok, err := h.Since(ctx, ch, last[ch])
		if err != nil {
			st.log.Warn().Str("route", st.route.ID).Str("channel", ch).Err(err).Msg("history failed; recovering through the backend")
		}
		if err != nil || !ok {
			return false
		}
		missed = append(missed, items)
	}
	sub.MarkStale()
	for _, items := range missed {
		for i := range items {
			switch v, content := sub.Take(&items[i]); v {
			case handoff.Recover:
				return false // history does not follow on from the connection
			case handoff.Send:
				if !deliver(&items[i], content) {
					return true
				}
			}
		}
	}
	return true
}
