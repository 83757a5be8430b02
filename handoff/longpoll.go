package handoff

import (
	"context"
	"time"

	"github.com/gripd/gripd/grip"
)

// HoldResponse waits for the first http-response published to sub's
// channels. It returns that response; or nil and a nil error when the
// timeout passes or the hub shuts down (the caller then sends its timeout
// response); or nil and an error when the client went away (ctx.Err()) or
// was too slow (ErrSlow).
func HoldResponse(ctx context.Context, sub *Subscriber, timeout time.Duration) (*grip.HTTPResponseFormat, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case it := <-sub.C():
		return it.HTTPResponse, nil
	case <-timer.C:
		return nil, nil
	case <-sub.Done():
		if sub.Err() == ErrSlow {
			return nil, ErrSlow
		}
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
