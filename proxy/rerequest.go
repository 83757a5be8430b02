package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/time/rate"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// This file is the re-request of a long-poll (GRIP.md §5): when a held
// long-poll is out of step with its channel (its prev-id is not the
// channel's last id, or an item broke its chain), when a hint is
// published to it, or when /recover asks, gripd sends the client's
// original request to the backend again, with a Grip-Last header for
// each channel that has a prev-id, and answers the client with whatever
// comes back, GRIP applied again.

// maxRerequests bounds the re-requests of one client request, against a
// backend that keeps answering with a hold that is already out of step.
// Past it the long-poll gets its timeout response and the client polls
// again.
const maxRerequests = 10

// Recoveries that nobody asked for right now (a /recover, a link poll,
// an item out of step) are paced server-wide, about as Pushpin paces
// them, so that one /recover with many held connections does not fall
// on the backends all at once. Hints are the backend's own request and
// are not paced.
const (
	recoveriesPerSecond = 1000
	recoveryBurst       = 100
)

func newRecoveryPace() *rate.Limiter { return rate.NewLimiter(recoveriesPerSecond, recoveryBurst) }

// pace waits for the next recovery slot, or until ctx is done.
func (s *Server) pace(ctx context.Context) error { return s.recoveries.Wait(ctx) }

// recovery is what a client request's state knows of its re-requests.
type recovery struct {
	// pending is set by a hold that ends for a re-request; gripLast are the
	// channels' ids for it.
	pending  bool
	gripLast map[string]string
	// count is how many re-requests were made; lastOutOfStep says the last
	// one was made because the hold was out of step as it began, which is
	// not done twice in a row (the backend answered, stale or not, and
	// items will tell).
	count         int
	lastOutOfStep bool
}

// request asks for a re-request with gripLast, if the budget allows.
func (rc *recovery) request(gripLast map[string]string, outOfStep bool) bool {
	if rc.count >= maxRerequests || (outOfStep && rc.lastOutOfStep) {
		return false
	}
	rc.pending, rc.gripLast, rc.lastOutOfStep = true, gripLast, outOfStep
	rc.count++
	return true
}

// recoverLongPoll catches a long-poll up from history, or arranges its
// re-request. pub is the answer found in history; done says the hold is
// over (answered, to be re-requested, or the client left). With neither,
// the long-poll holds on: history brought it in step, or its budget of
// re-requests is spent.
func (s *Server) recoverLongPoll(ctx context.Context, st *requestState, sub *handoff.Subscriber, reason handoff.RecoverReason, atSubscribe bool) (pub *grip.HTTPResponseFormat, body []byte, done bool) {
	if reason == handoff.RecoverOutOfStep {
		caught := s.catchUp(ctx, st, sub, func(it *grip.Item, content []byte) bool {
			if f := it.HTTPResponse; f != nil && f.Action == grip.ActionSend {
				pub, body = f, content
				return false
			}
			return true
		})
		if caught {
			if pub != nil {
				st.end = "from history"
			}
			return pub, body, pub != nil
		}
	}
	// A hint is the backend's own request, and a stale prev-id as the hold
	// begins is re-requested at once, as Pushpin does; the rest is paced.
	if reason != handoff.RecoverHint && !atSubscribe {
		if err := s.pace(ctx); err != nil {
			st.end = "client gone"
			st.w.status = statusClientClosed
			return nil, nil, true
		}
	}
	return nil, nil, s.rerequest(st, sub.LastIDs(), atSubscribe)
}

// rerequest ends a long-poll hold so that ServeHTTP sends the request to
// the backend again with these Grip-Last ids; false when the budget of
// re-requests is spent (the hold then goes on as if nothing happened).
func (s *Server) rerequest(st *requestState, gripLast map[string]string, outOfStep bool) bool {
	if !st.recovery.request(gripLast, outOfStep) {
		return false
	}
	st.end = "re-request"
	st.log.Debug().Str("route", st.route.ID).Str("grip_last", gripLastLog(gripLast)).Bool("out_of_step", outOfStep).Msg("re-requesting a long-poll")
	return true
}

// addGripLast adds the Grip-Last headers of a re-request, in channel
// order, after the client's Grip-* headers have been removed.
func addGripLast(h http.Header, last map[string]string) {
	channels := make([]string, 0, len(last))
	for ch := range last {
		channels = append(channels, ch)
	}
	slices.Sort(channels)
	for _, ch := range channels {
		h.Add("Grip-Last", grip.GripLast(ch, last[ch]))
	}
}

// serveWithRerequests proxies r, and proxies it again for as long as a
// long-poll hold asks for a re-request (st.recovery.pending).
func (s *Server) serveWithRerequests(w http.ResponseWriter, r *http.Request, st *requestState) {
	if st.route.NoGrip {
		s.rp.ServeHTTP(w, r) // never held: nothing to send again
		return
	}
	body := recordBody(r)
	for {
		st.recovery.pending = false
		s.rp.ServeHTTP(w, r)
		if !st.recovery.pending {
			return
		}
		replay, ok := body.replay()
		if !ok {
			st.log.Error().Str("route", st.route.ID).Msg("cannot re-request a long-poll: its request body was over the limit")
			writeText(w, http.StatusBadGateway, "Error while proxying to origin.\n")
			return
		}
		r = r.Clone(r.Context())
		r.Body = replay
		body = recordBody(r)
	}
}

// bodyRecorder keeps the first bytes of a request body as the backend
// reads them, so that the request can be sent again.
type bodyRecorder struct {
	src  io.Reader // nil for a request without a body
	buf  []byte
	over bool // more than grip.MaxInstructBody was read: no replay
}

// recordBody puts a recorder around r's body.
func recordBody(r *http.Request) *bodyRecorder {
	if r.Body == nil || r.Body == http.NoBody {
		return &bodyRecorder{}
	}
	b := &bodyRecorder{src: r.Body}
	r.Body = b
	return b
}

func (b *bodyRecorder) Read(p []byte) (int, error) {
	n, err := b.src.Read(p)
	if !b.over {
		if len(b.buf)+n > grip.MaxInstructBody {
			b.over, b.buf = true, nil
		} else {
			b.buf = append(b.buf, p[:n]...)
		}
	}
	return n, err
}

// Close does nothing: the request body belongs to the HTTP server, which
// closes it when the handler returns, and a re-request still reads the
// rest of it.
func (b *bodyRecorder) Close() error { return nil }

// replay returns the body to send again: what was read, then the rest.
// ok is false when too much was read to keep.
func (b *bodyRecorder) replay() (io.ReadCloser, bool) {
	if b.src == nil {
		return http.NoBody, true
	}
	if b.over {
		return nil, false
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(b.buf), b.src)), true
}

// channelsWithPrevID reports whether any channel carries a prev-id.
func channelsWithPrevID(chans []grip.Channel) bool {
	return slices.ContainsFunc(chans, func(c grip.Channel) bool { return c.PrevID != "" })
}

// prevIDsOf returns the prev-ids of chans by channel.
func prevIDsOf(chans []grip.Channel) map[string]string {
	m := map[string]string{}
	for _, c := range chans {
		if c.PrevID != "" {
			m[c.Name] = c.PrevID
		}
	}
	return m
}

// gripLastLog is the Grip-Last of a re-request as one log field.
func gripLastLog(last map[string]string) string {
	var b strings.Builder
	h := http.Header{}
	addGripLast(h, last)
	for i, v := range h.Values("Grip-Last") {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v)
	}
	return b.String()
}
