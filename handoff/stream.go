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

// HoldStream writes the items sub receives to w until a publish closes
// the stream, the client goes away (ctx), the hub ends the subscription,
// or a write fails. Keep-alive data, when ka is set, goes out whenever the
// stream has been idle (or, in interval mode, every) ka.Timeout.
func HoldStream(ctx context.Context, sub *Subscriber, w StreamWriter, ka *grip.KeepAlive) (StreamEnd, error) {
	var kaC <-chan time.Time
	var kaTimer *time.Timer
	if ka != nil {
		kaTimer = time.NewTimer(ka.Timeout)
		defer kaTimer.Stop()
		kaC = kaTimer.C
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
		case it := <-sub.C():
			closed, err := writeQueued(w, it, sub)
			if err != nil {
				return EndWrite, err
			}
			if closed {
				return EndClosed, nil
			}
			if ka != nil && ka.Mode == grip.KeepAliveIdle {
				kaTimer.Reset(ka.Timeout)
			}
		}
	}
}

// writeQueued writes it and whatever else is already queued, then flushes
// once: under load this turns many small writes into one.
func writeQueued(w StreamWriter, it *grip.Item, sub *Subscriber) (closed bool, err error) {
	for {
		f := it.HTTPStream
		if f.Action == grip.ActionClose {
			return true, flush(w)
		}
		if _, err := w.Write(f.Content); err != nil {
			return false, fmt.Errorf("writing to stream: %w", err)
		}
		select {
		case it = <-sub.C():
		default:
			return false, flush(w)
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
