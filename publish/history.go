package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// This file reads the history stream back (handoff.History: After and
// AfterSeq; handoff pages through them for a replay or a catch-up) with
// JetStream's direct gets: plain requests any connection can make, one
// per batch of messages, that leave no consumer behind on the server.
//
// History has no index from an item id to its place (JetStream
// de-duplicates by Nats-Msg-Id but cannot be asked where one is), so
// After looks for the id from the channel's end backwards, in windows of
// stream positions each four times the last: a client back from a short
// disconnection missed few items, and the first window (or the check of
// the last item alone) finds its id. An id that is not there costs a
// walk, and any client can send one (a Last-Event-ID is the client's to
// choose), so the walk is bounded three ways:
//
//   - it stops once more than scanLimit items (twice this instance's
//     MaxItemsPerChannel plus the caller's limit) lie newer than the
//     window being read: an id older than that would give the caller
//     more items than it takes anyway;
//   - at most maxHistoryWalks walks run at once per instance; a lookup
//     that finds them all busy waits for one to end, and fails with
//     ErrHistoryBusy only when its deadline passes first; the caller then
//     goes on as when history is unavailable (the hold without a replay,
//     the catch-up through the backend's recovery).
//     The cheap start of every lookup, the check of the channel's last
//     item, needs no slot: a client that missed nothing is never turned
//     away;
//   - the caller's deadline (the proxy's HistoryTimeout) bounds it.
//
// A window is read in pages until it reaches its upper end, never cut at
// a count: the stream's limit per channel is whatever the last instance
// to start set (EnableHistory), possibly more than this instance's
// MaxItemsPerChannel, and the server also cuts a batch at its byte
// limit; trusting either count would leave a gap in a replay.

const (
	directGetPrefix = "$JS.API.DIRECT.GET."
	// firstWindow is the width, in stream positions, of the first window
	// After searches.
	firstWindow = 64
	// maxHistoryWalks is how many lookups of one instance may walk a
	// channel's history at once.
	maxHistoryWalks = 16
	// numPendingHeader is, on each message of a batched direct get, how
	// many messages of its subject follow it in the stream.
	numPendingHeader = "Nats-Num-Pending"
)

// ErrHistoryBusy is the error of a lookup that waited for one of the
// maxHistoryWalks walk slots until its deadline: the caller handles it
// as history being unavailable.
var ErrHistoryBusy = errors.New("history busy: too many lookups walking history at once")

// directRequest is JetStream's direct get request (a subset).
type directRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	Batch   int    `json:"batch,omitempty"`
}

var _ handoff.History = (*JetStreamHistory)(nil)

// After returns the items published on channel after the item whose id
// is lastID, oldest first, at most limit.
func (h *JetStreamHistory) After(ctx context.Context, channel, lastID string, limit int) (handoff.HistoryPage, error) {
	if err := h.b.awaitInterest(ctx, channel); err != nil {
		return handoff.HistoryPage{}, err
	}
	subject := HistorySubject(h.b.cfg.SubjectPrefix, channel)
	want := historyMsgID(channel, lastID)
	// The channel's last item first: a client that missed nothing costs
	// one request.
	last, err := h.direct(ctx, directRequest{LastFor: subject})
	if err != nil {
		return handoff.HistoryPage{}, err
	}
	if len(last) == 0 {
		return handoff.HistoryPage{Empty: true}, nil
	}
	lastSeq := historySeq(last[0])
	if last[0].Header.Get(jetstream.MsgIDHeader) == want {
		return handoff.HistoryPage{Found: true, At: lastSeq, Through: lastSeq}, nil
	}
	// Wait for a slot rather than fail: a reconnect storm (an instance
	// draining, its clients resuming here) is exactly when every lookup
	// matters, and a refused one would leave its client with a gap. The
	// caller's deadline bounds the wait.
	select {
	case h.walks <- struct{}{}:
		defer func() { <-h.walks }()
	case <-ctx.Done():
		return handoff.HistoryPage{}, fmt.Errorf("%w: %w", ErrHistoryBusy, ctx.Err())
	}
	newer := last // the channel's messages from hi on, oldest first
	hi := lastSeq
	var first uint64 // the channel's first position; looked up once needed
	scanLimit := 2 * (h.cfg.MaxItemsPerChannel + limit)
	for width := uint64(firstWindow); ; width *= 4 {
		lo := uint64(1)
		if hi > width {
			lo = hi - width
		}
		lo = max(lo, first)
		if lo >= hi {
			return handoff.HistoryPage{}, nil // nothing older
		}
		window, err := h.between(ctx, subject, lo, hi, scanLimit)
		if err != nil {
			return handoff.HistoryPage{}, err
		}
		for i := len(window) - 1; i >= 0; i-- {
			if window[i].Header.Get(jetstream.MsgIDHeader) == want {
				at := historySeq(window[i])
				return h.page(channel, slices.Concat(window[i+1:], newer), at, limit)
			}
		}
		newer = slices.Concat(window, newer)
		if lo == 1 || len(newer) > scanLimit {
			return handoff.HistoryPage{}, nil
		}
		if first == 0 {
			// Not in the first window: where does the channel begin, so that
			// the walk knows when to stop?
			f, err := h.direct(ctx, directRequest{Seq: 1, NextFor: subject})
			if err != nil {
				return handoff.HistoryPage{}, err
			}
			if len(f) == 0 {
				return handoff.HistoryPage{}, nil // trimmed meanwhile
			}
			first = historySeq(f[0])
		}
		if lo <= first {
			return handoff.HistoryPage{}, nil
		}
		hi = lo
	}
}

// between returns the messages of subject at stream positions lo to
// hi-1, oldest first, all of them: it asks for batches of at most batch
// messages until one reaches hi or the subject's end, so neither batch
// nor the server's byte limit on an answer can leave a gap.
func (h *JetStreamHistory) between(ctx context.Context, subject string, lo, hi uint64, batch int) ([]*nats.Msg, error) {
	var out []*nats.Msg
	for lo < hi {
		msgs, err := h.direct(ctx, directRequest{Seq: lo, NextFor: subject, Batch: int(min(hi-lo, uint64(max(batch, 1))))})
		if err != nil {
			return nil, err
		}
		if len(msgs) == 0 {
			break // none at lo or after
		}
		for _, m := range msgs {
			seq := historySeq(m)
			if seq >= hi {
				return out, nil // newer ones were in the batch too
			}
			out = append(out, m)
			lo = seq + 1
		}
		if msgs[len(msgs)-1].Header.Get(numPendingHeader) == "0" {
			break // the subject's last message
		}
	}
	return out, nil
}

// AfterSeq returns the items published on channel after position seq,
// oldest first, at most limit.
func (h *JetStreamHistory) AfterSeq(ctx context.Context, channel string, seq uint64, limit int) (handoff.HistoryPage, error) {
	if err := h.b.awaitInterest(ctx, channel); err != nil {
		return handoff.HistoryPage{}, err
	}
	subject := HistorySubject(h.b.cfg.SubjectPrefix, channel)
	msgs, err := h.direct(ctx, directRequest{Seq: seq + 1, NextFor: subject, Batch: limit + 1})
	if err != nil {
		return handoff.HistoryPage{}, err
	}
	p, err := h.page(channel, msgs, seq, limit)
	p.Found, p.At = false, 0
	return p, err
}

// page turns the stored messages after position from into a page of at
// most limit items.
func (h *JetStreamHistory) page(channel string, msgs []*nats.Msg, from uint64, limit int) (handoff.HistoryPage, error) {
	p := handoff.HistoryPage{Found: true, At: from, Through: from}
	if len(msgs) > limit {
		msgs, p.More = msgs[:limit], true
	}
	p.Items = make([]grip.Item, 0, len(msgs))
	for _, m := range msgs {
		it, err := grip.ParseItem(m.Data)
		if err != nil {
			return handoff.HistoryPage{}, fmt.Errorf("bad item at %d in history: %w", historySeq(m), err)
		}
		it.Channel = channel // the subject decides, as for live items
		it.Seq = historySeq(m)
		p.Items = append(p.Items, it)
		p.Through = it.Seq
	}
	return p, nil
}

// direct makes one direct get and returns the messages of its answer in
// order: none when there is no such message, one for a single get, up to
// Batch for a batch.
func (h *JetStreamHistory) direct(ctx context.Context, req directRequest) ([]*nats.Msg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("history request: %w", err)
	}
	nc := h.b.nc
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("history request: %w", err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(directGetPrefix+h.stream, inbox, body); err != nil {
		return nil, fmt.Errorf("history request: %w", err)
	}
	var out []*nats.Msg
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("history request to stream %s: %w", h.stream, err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
			out = append(out, m)
			if req.Batch == 0 {
				return out, nil
			}
		case "204", "404": // end of the batch; no (more) such message
			return out, nil
		default:
			return nil, fmt.Errorf("history request to stream %s: status %s %s", h.stream, status, m.Header.Get("Description"))
		}
	}
}

// awaitInterest waits until NATS has confirmed this instance's
// subscription to channel, when one is being made: a lookup made after
// that misses nothing, since what it does not find stored yet is
// republished to this instance.
func (b *NATSBroker) awaitInterest(ctx context.Context, channel string) error {
	b.mu.Lock()
	ready := b.ready[channel]
	b.mu.Unlock()
	if ready == nil {
		return nil
	}
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the NATS subscription to %q: %w", channel, ctx.Err())
	}
}
