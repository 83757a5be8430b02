package handoff

import (
	"context"
	"time"

	"github.com/gripd/gripd/grip"
)

// ResponseOutcome is how a held long-poll ended, when it did not end in
// an error.
type ResponseOutcome struct {
	// Response is the published http-response to answer with; nil when the
	// timeout passed or the hub shut down (the caller then sends its
	// timeout response), and when Recover is set.
	Response *grip.HTTPResponseFormat
	// Body is Response's body as the connection's filters left it.
	Body []byte
	// Recover says the long-poll is to be re-requested from the backend: a
	// hint was published, an item broke the connection's prev-id chain, or
	// Hub.Recover asked for it.
	Recover bool
	// Hint is set with Recover when a hint caused it: the backend asked for
	// the re-request itself, so it need not be paced.
	Hint bool
}

// HoldResponse waits for the first http-response published to sub's
// channels that its prev-ids and filters let through (see Take). It
// returns an error only when the client went away (ctx.Err()) or was too
// slow (ErrSlow).
func HoldResponse(ctx context.Context, sub *Subscriber, timeout time.Duration) (ResponseOutcome, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case it := <-sub.C():
			switch v, body := sub.Take(it); v {
			case Send:
				return ResponseOutcome{Response: it.HTTPResponse, Body: body}, nil
			case Recover:
				return ResponseOutcome{Recover: true, Hint: it.HTTPResponse.Action == grip.ActionHint}, nil
			}
		case <-sub.Recovering():
			return ResponseOutcome{Recover: true}, nil
		case <-timer.C:
			return ResponseOutcome{}, nil
		case <-sub.Done():
			if sub.Err() == ErrSlow {
				return ResponseOutcome{}, ErrSlow
			}
			return ResponseOutcome{}, nil
		case <-ctx.Done():
			return ResponseOutcome{}, ctx.Err()
		}
	}
}
