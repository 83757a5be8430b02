package handoff

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/gripd/gripd/grip"
)

// This file is the replay of history (beyond Pushpin): the items
// published lately on each channel, kept outside any one instance (in
// JetStream, by package publish), so that a client that reconnects to any
// instance of a fleet gets what it missed. The owner of a connection subscribes first (live
// items then queue up), plans a replay from history (PlanReplay), sends
// what the replay holds, and tells the subscriber how far the replay
// reached (CoverHistory); Take then skips the live items at or before
// that point. Subscribing before looking is what leaves no gap: an item
// reaches the instances only once it is stored, so whatever history does
// not show yet arrives live.

// Replayable is the fleet's record of what was published on each
// channel, in one order for all channels (an item's Seq): what a replay
// needs to place a client by the id of its last item and to continue it
// live without a gap or a repeat. Implementations bound their own work;
// ctx bounds the time.
type Replayable interface {
	// After returns the items published on channel after the item whose id
	// is lastID, oldest first, at most max (More says there are others).
	After(ctx context.Context, channel, lastID string, max int) (HistoryPage, error)
	// AfterSeq returns the items published on channel after the position
	// seq (an Item.Seq), oldest first, at most max.
	AfterSeq(ctx context.Context, channel string, seq uint64, max int) (HistoryPage, error)
}

// HistoryPage is one answer of a Replayable.
type HistoryPage struct {
	// Items are in history order, each with its Channel and Seq set.
	Items []grip.Item
	// Found (After) says lastID is in the channel's history. When it is
	// not, the client may have missed items that history no longer holds.
	Found bool
	// Empty (After) says the channel has no history at all: nothing can be
	// told about lastID.
	Empty bool
	// At (After, when Found) is the position of lastID's item.
	At uint64
	// Through is the position the page reaches: the Seq of its last item,
	// or At (After) or seq (AfterSeq) when it has none. Items of the channel
	// at or before it need not be sent again.
	Through uint64
	// More says items follow Through that did not fit in max: ask
	// AfterSeq(Through).
	More bool
}

// Replay is what a reconnecting connection is to be sent from history.
type Replay struct {
	// Items are the items after the client's positions, in history order
	// across its channels.
	Items []grip.Item
	// Through is, per channel, the position the replay reaches: hand it to
	// CoverHistory once Items are sent.
	Through map[string]uint64
	// Missing are the channels whose position history does not hold,
	// though it holds items of theirs: the client may have missed items,
	// so the owner falls back on the backend's recovery.
	Missing []string
	// Unknown are the channels without any history: nothing to replay,
	// and nothing known of the position.
	Unknown []string
}

// PlanReplay looks up in h what came after each channel's position:
// positions maps a channel to the id of the last item the client has of
// it. A channel whose id is not in its own history takes the position of
// the same id found on another channel, as an SSE Last-Event-ID names one
// item of one channel while history orders all channels alike. limit caps
// the items of one channel, as a replay is held in memory; a channel with
// more counts as Missing.
func PlanReplay(ctx context.Context, h Replayable, positions map[string]string, limit int) (Replay, error) {
	rp := Replay{Through: map[string]uint64{}}
	channels := slices.Sorted(maps.Keys(positions))
	pages := make(map[string]HistoryPage, len(channels))
	atByID := map[string]uint64{}
	for _, ch := range channels {
		p, err := h.After(ctx, ch, positions[ch], limit)
		if err != nil {
			return Replay{}, fmt.Errorf("history of channel %q after %q: %w", ch, positions[ch], err)
		}
		pages[ch] = p
		if p.Found {
			atByID[positions[ch]] = p.At
		}
	}
	for _, ch := range channels {
		p := pages[ch]
		if !p.Found {
			at, ok := atByID[positions[ch]]
			if !ok {
				if p.Empty {
					rp.Unknown = append(rp.Unknown, ch)
				} else {
					rp.Missing = append(rp.Missing, ch)
				}
				continue
			}
			var err error
			if p, err = h.AfterSeq(ctx, ch, at, limit); err != nil {
				return Replay{}, fmt.Errorf("history of channel %q since %d: %w", ch, at, err)
			}
		}
		items := p.Items
		for p.More && len(items) <= limit {
			from := p.Through
			var err error
			if p, err = h.AfterSeq(ctx, ch, from, limit); err != nil {
				return Replay{}, fmt.Errorf("history of channel %q since %d: %w", ch, from, err)
			}
			items = append(items, p.Items...)
		}
		if len(items) > limit {
			rp.Missing = append(rp.Missing, ch)
			continue
		}
		rp.Items = append(rp.Items, items...)
		rp.Through[ch] = p.Through
	}
	sort.SliceStable(rp.Items, func(i, j int) bool { return rp.Items[i].Seq < rp.Items[j].Seq })
	return rp, nil
}

// CoverHistory records how far a replay reached on each channel. Take
// then skips the live items at or before it: they were replayed, or they
// come before the client's position (an instance whose feed lags behind
// the one the client left may still be delivering them).
func (s *Subscriber) CoverHistory(through map[string]uint64) {
	if len(through) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rulesLocked()
	if r.historyMarks == nil {
		r.historyMarks = make(map[string]uint64, len(through))
	}
	for ch, seq := range through {
		r.historyMarks[ch] = max(r.historyMarks[ch], seq)
	}
}

// coveredByHistory reports whether a replay already covered it. The
// subscriber's mu is held.
func (r *deliveryRules) coveredByHistory(it *grip.Item) bool {
	return it.Seq != 0 && it.Seq <= r.historyMarks[it.Channel]
}

// TakeHistory is Take for an item replayed from history. History's order
// is the channel's order, so the item moves the connection's prev-id
// chain on whatever its own prev-id says; filters apply as to live
// items. Items without the subscriber's format are skipped, as the hub
// would not have queued them.
func (s *Subscriber) TakeHistory(it *grip.Item) (Verdict, []byte) {
	if !s.wants(it) {
		return Skip, nil
	}
	content, action := s.formatOf(it)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.channels, it.Channel) {
		return Skip, nil
	}
	if rules := s.rules; rules != nil {
		r := rules.channels[it.Channel]
		if r != nil && r.hasPrev {
			r.prevID, r.hasPrev = it.ID, it.ID != ""
			if r.hasPrev {
				rules.prevIDs[it.Channel] = it.ID
			} else {
				delete(rules.prevIDs, it.Channel)
			}
		}
		if r != nil && len(r.filters) > 0 {
			fc := grip.FilterContext{SubMeta: rules.meta, PubMeta: it.Meta, Channels: s.channels, PrevIDs: rules.prevIDs}
			out, send, err := grip.FilterMessage(r.filters, fc, content)
			if err != nil || !send {
				return Skip, nil
			}
			content = out
		}
	}
	if action == grip.ActionHint {
		return s.recoverOrSkip(), nil
	}
	return Send, content
}

// RequestRecovery asks the owner of a recoverable subscriber to recover
// it now (Recovering fires), as Hub.Recover does for every subscriber: a
// replay found the client may have missed items history no longer holds.
// It reports false for a subscriber that cannot be recovered.
func (s *Subscriber) RequestRecovery() bool {
	if s.recoverC == nil {
		return false
	}
	select {
	case s.recoverC <- struct{}{}:
	default: // already signalled
	}
	s.wake()
	return true
}
