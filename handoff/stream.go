package handoff

import (
	"context"
	"fmt"
	"time"

	"github.com/gripd/gripd/grip"
)

// StreamWriter is the client side of a held stream. Write should give up
// (with an error) on a client that stops reading, so that a stalled
// client cannot pin its goroutine forever.
type StreamWriter interface {
	Write(p []byte) (int, error)
	Flush() error
}

// StreamEnd says why a held stream ended.
type StreamEnd string

// The ways a held stream ends.
const (
	EndClosed   StreamEnd = "closed"   // a publish asked to close it
	EndClient   StreamEnd = "client"   // the client went away (ctx done)
	EndSlow     StreamEnd = "slow"     // the client could not keep up
	EndShutdown StreamEnd = "shutdown" // the hub was closed
	EndWrite    StreamEnd = "write"    // writing to the client failed
)

// EndLink, EndHint and EndOutOfStep are not ends: HoldStreamWith returns
// them when the stream is to be recovered through its next link. The
// owner fetches the link (or, for EndOutOfStep, may first catch up from
// stored history) and holds again.
const (
	EndLink      StreamEnd = "link"        // the link's poll timeout, or Hub.Recover
	EndHint      StreamEnd = "hint"        // a published hint: the backend wants it now
	EndOutOfStep StreamEnd = "out of step" // an item broke the connection's prev-id chain
)

// StreamConfig tunes HoldStreamWith.
type StreamConfig struct {
	// KeepAlive, when set, is written whenever the stream has been idle
	// (or, in interval mode, every) KeepAlive.Timeout.
	KeepAlive *grip.KeepAlive
	// LinkTimeout, when set, ends the hold with EndLink after that long
	// unless every channel of the subscriber had an item meanwhile
	// (Pushpin's next-link polling).
	LinkTimeout time.Duration
}

// HoldStream writes the items sub receives to w until a publish closes
// the stream, the client goes away (ctx), the hub ends the subscription,
// or a write fails. Keep-alive data, when ka is set, goes out whenever the
// stream has been idle (or, in interval mode, every) ka.Timeout.
func HoldStream(ctx context.Context, sub *Subscriber, w StreamWriter, ka *grip.KeepAlive) (StreamEnd, error) {
	return HoldStreamWith(ctx, sub, w, StreamConfig{KeepAlive: ka})
}

// HoldStreamWith is HoldStream for a stream that may have a next link:
// besides the ends of HoldStream it returns EndLink when the link is due
// (LinkTimeout, or Hub.Recover for a recoverable subscriber), EndHint for
// a hint and EndOutOfStep for an item out of the connection's prev-id
// chain. After a hint or an item out of step the queued items of the
// channels the recovery fetches again (that item's, and those with a
// prev-id) are dropped; the others are written by the next hold.
func HoldStreamWith(ctx context.Context, sub *Subscriber, w StreamWriter, cfg StreamConfig) (StreamEnd, error) {
	ka := cfg.KeepAlive
	var kaC <-chan time.Time
	var kaTimer *time.Timer
	if ka != nil {
		kaTimer = time.NewTimer(ka.Timeout)
		defer kaTimer.Stop()
		kaC = kaTimer.C
	}
	var linkC <-chan time.Time
	var linkTimer *time.Timer
	var active map[string]bool // channels with an item since the link timer was last set
	if cfg.LinkTimeout > 0 {
		linkTimer = time.NewTimer(cfg.LinkTimeout)
		defer linkTimer.Stop()
		linkC = linkTimer.C
		active = map[string]bool{}
	}
	for {
		select {
		case <-ctx.Done():
			return EndClient, nil
		case <-sub.Done():
			if sub.Err() == ErrSlow {
				return EndSlow, sub.Err()
			}
			return EndShutdown, nil
		case <-kaC:
			if err := writeFlush(w, ka.Data); err != nil {
				return EndWrite, err
			}
			kaTimer.Reset(ka.Timeout)
		case <-linkC:
			return EndLink, nil
		case <-sub.Recovering():
			return EndLink, nil
		case it := <-sub.C():
			end, wrote, err := writeQueued(w, it, sub, active)
			if err != nil {
				return EndWrite, err
			}
			if end != "" {
				return end, nil
			}
			if wrote && ka != nil && ka.Mode == grip.KeepAliveIdle {
				kaTimer.Reset(ka.Timeout)
			}
			if active != nil && len(active) >= sub.channelCount() {
				// Every channel is live: no need to poll the link this window.
				clear(active)
				linkTimer.Reset(cfg.LinkTimeout)
			}
		}
	}
}

// writeQueued writes it and whatever else is already queued, then flushes
// once: under load this turns many small writes into one. end is
// EndClosed after a close, EndHint or EndOutOfStep when an item calls for
// a recovery (the queued items it fetches again are then dropped, see
// DiscardRecovered), else "". active, when not
// nil, collects the channels written to.
func writeQueued(w StreamWriter, it *grip.Item, sub *Subscriber, active map[string]bool) (end StreamEnd, wrote bool, err error) {
	for {
		v, content := sub.takeQueued(it)
		switch {
		case v == Recover:
			// Only what the recovery fetches again: the items of other
			// channels are written after it.
			sub.DiscardRecovered(it)
			if it.HTTPStream.Action == grip.ActionHint {
				return EndHint, wrote, flush(w)
			}
			return EndOutOfStep, wrote, flush(w)
		case v == Skip:
		case it.HTTPStream.Action == grip.ActionClose:
			return EndClosed, wrote, flush(w)
		default:
			if _, err := w.Write(content); err != nil {
				return "", wrote, fmt.Errorf("writing to stream: %w", err)
			}
			wrote = true
			if active != nil {
				active[it.Channel] = true
			}
		}
		select {
		case it = <-sub.C():
		default:
			return "", wrote, flush(w)
		}
	}
}

func writeFlush(w StreamWriter, p []byte) error {
	if _, err := w.Write(p); err != nil {
		return fmt.Errorf("writing to stream: %w", err)
	}
	return flush(w)
}

func flush(w StreamWriter) error {
	if err := w.Flush(); err != nil {
		return fmt.Errorf("flushing stream: %w", err)
	}
	return nil
}
