package handoff

import (
	"context"
	"time"

	"github.com/gripd/gripd/grip"
)

// RecoverReason says why a held connection is to be recovered.
type RecoverReason int

// The reasons to recover.
const (
	RecoverNone      RecoverReason = iota
	RecoverOutOfStep               // an item broke the connection's prev-id chain: it missed items
	RecoverHint                    // a hint was published: the backend wants the connection updated now
	RecoverRequested               // Hub.Recover (POST /recover) asked for it
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
	// Recover, when set, says the long-poll is to be recovered (re-requested
	// from the backend), and why.
	Recover RecoverReason
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
				if it.HTTPResponse.Action == grip.ActionHint {
					return ResponseOutcome{Recover: RecoverHint}, nil
				}
				return ResponseOutcome{Recover: RecoverOutOfStep}, nil
			}
		case <-sub.Recovering():
			return ResponseOutcome{Recover: RecoverRequested}, nil
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
