package proxy

import (
	"context"
	"errors"
	"time"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// This file is the proxy's side of the fleet's history (Config.History,
// a handoff.History such as package publish's JetStreamHistory): the
// catch-up of a connection the hub saw fall behind (its prev-id is behind
// its channel, or an item broke its chain), before its backend is asked;
// resume.go replays history to a connection that comes back where the hub
// cannot see it is behind. With no history (Config.History nil), every
// recovery goes to the backend: a long-poll is re-requested, a stream
// fetches its next link. Hints and /recover always go to the backend: it
// asked for them.

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

// catchUp feeds sub what it missed from history (Subscriber.CatchUp),
// calling deliver with each item and its content to write, in order,
// until deliver returns false. It reports false when history cannot
// catch sub up: the caller then recovers through the backend.
func (s *Server) catchUp(ctx context.Context, st *requestState, sub *handoff.Subscriber, deliver func(it *grip.Item, content []byte) bool) bool {
	if s.cfg.History == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, s.historyTimeout())
	defer cancel()
	caught, err := sub.CatchUp(ctx, s.cfg.History, s.historyLimit(), deliver)
	if err != nil {
		ev := st.log.Warn().Str("route", st.route.ID)
		var he *handoff.HistoryError
		if errors.As(err, &he) {
			ev, err = ev.Str("channel", he.Channel), he.Err
		}
		ev.Err(err).Msg("history failed; recovering through the backend")
	}
	return caught
}
