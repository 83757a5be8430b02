package handoff

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/gripd/gripd/grip"
)

// This file is the fleet's history (beyond Pushpin): the items published
// lately on each channel, kept outside any one instance (in JetStream, by
// package publish), so that a client that reconnects to any instance of a
// fleet gets what it missed. The owner of a connection uses it two ways:
//
//   - a replay, for a connection that resumes where the hub cannot see
//     it is behind (an SSE Last-Event-ID; a prev-id on an instance that
//     had no subscriber of the channel): the owner subscribes first (live
//     items then queue up), plans a replay (PlanReplay), sends what it
//     holds through TakeHistory, and tells the subscriber how far it
//     reached (CoverHistory); Take then skips the live items at or before
//     that point. Subscribing before looking is what leaves no gap: an
//     item reaches the instances only once it is stored, so whatever
//     history does not show yet arrives live;
//   - a catch-up (CatchUp), for a connection the hub saw fall behind (its
//     prev-id differed from its channel's last id, or an item broke its
//     chain): what it missed goes through Take, as live items do, before
//     its backend is asked to recover it.
//
// Both read a channel's history with one paging loop (readOn), and both
// give up on a channel with more than a limit of items to send: they are
// held in memory, and the backend's recovery can do it instead.

// History is the fleet's record of what was published on each channel,
// in one order for all channels (an item's Seq): what a replay or a
// catch-up needs to place a client by the id of its last item and to
// continue it live without a gap or a repeat. Implementations bound their
// own work; ctx bounds the time.
type History interface {
	// After returns the items published on channel after the item whose id
	// is lastID, oldest first, at most max (More says there are others).
	After(ctx context.Context, channel, lastID string, max int) (HistoryPage, error)
	// AfterSeq returns the items published on channel after the position
	// seq (an Item.Seq), oldest first, at most max.
	AfterSeq(ctx context.Context, channel string, seq uint64, max int) (HistoryPage, error)
}

// HistoryPage is one answer of a History.
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

// HistoryError is a lookup in history that failed (History returned an
// error), with the channel it was for.
type HistoryError struct {
	Channel string
	Err     error
}

func (e *HistoryError) Error() string {
	return fmt.Sprintf("history of channel %q: %v", e.Channel, e.Err)
}

func (e *HistoryError) Unwrap() error { return e.Err }

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
// more counts as Missing. A failed lookup is a *HistoryError.
func PlanReplay(ctx context.Context, h History, positions map[string]string, limit int) (Replay, error) {
	rp := Replay{Through: map[string]uint64{}}
	channels := slices.Sorted(maps.Keys(positions))
	pages := make(map[string]HistoryPage, len(channels))
	atByID := map[string]uint64{}
	for _, ch := range channels {
		p, err := h.After(ctx, ch, positions[ch], limit)
		if err != nil {
			return Replay{}, &HistoryError{ch, fmt.Errorf("after %q: %w", positions[ch], err)}
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
				return Replay{}, &HistoryError{ch, fmt.Errorf("since %d: %w", at, err)}
			}
		}
		items, through, ok, err := readOn(ctx, h, ch, p, limit)
		if err != nil {
			return Replay{}, &HistoryError{ch, err}
		}
		if !ok {
			rp.Missing = append(rp.Missing, ch)
			continue
		}
		rp.Items = append(rp.Items, items...)
		rp.Through[ch] = through
	}
	sort.SliceStable(rp.Items, func(i, j int) bool { return rp.Items[i].Seq < rp.Items[j].Seq })
	return rp, nil
}

// CatchUp feeds s, from h, the items it missed on each channel with a
// prev-id (LastIDs), through its prev-id chains and filters (Take),
// calling deliver with each item and its content to write, channel by
// channel in order, until deliver returns false. It reports false when
// history cannot answer for every channel (an id it does not hold, more
// than limit items after one, a failed lookup: a *HistoryError), or its
// items do not follow on: the owner then recovers s through its backend.
// Items queued meanwhile are marked stale (MarkStale), as history may
// already hold them.
func (s *Subscriber) CatchUp(ctx context.Context, h History, limit int, deliver func(it *grip.Item, content []byte) bool) (bool, error) {
	last := s.LastIDs()
	if h == nil || len(last) == 0 {
		return false, nil
	}
	missed := make([][]grip.Item, 0, len(last))
	for _, ch := range slices.Sorted(maps.Keys(last)) {
		p, err := h.After(ctx, ch, last[ch], limit)
		if err != nil {
			return false, &HistoryError{ch, err}
		}
		if !p.Found {
			return false, nil
		}
		items, _, ok, err := readOn(ctx, h, ch, p, limit)
		if err != nil {
			return false, &HistoryError{ch, err}
		}
		if !ok {
			return false, nil
		}
		missed = append(missed, items)
	}
	s.MarkStale()
	for _, items := range missed {
		for i := range items {
			switch v, content := s.Take(&items[i]); v {
			case Recover:
				return false, nil // history does not follow on from the connection
			case Send:
				if !deliver(&items[i], content) {
					return true, nil
				}
			}
		}
	}
	return true, nil
}

// readOn reads a channel's history on from its first page p, asking h
// for the pages that follow while there are more, and returns all the
// items, oldest first, with the position they reach. ok is false when
// there are more than limit.
func readOn(ctx context.Context, h History, channel string, p HistoryPage, limit int) (items []grip.Item, through uint64, ok bool, err error) {
	items = p.Items
	for p.More && len(items) <= limit {
		from := p.Through
		if p, err = h.AfterSeq(ctx, channel, from, limit); err != nil {
			return nil, 0, false, fmt.Errorf("since %d: %w", from, err)
		}
		items = append(items, p.Items...)
	}
	if len(items) > limit {
		return nil, 0, false, nil
	}
	return items, p.Through, true, nil
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

// TakeHistory is Take for an item of a replay (PlanReplay). History's
// order is the channel's order, so the item moves the connection's
// prev-id chain on whatever its own prev-id says; filters apply as to
// live items. Items without the subscriber's format are skipped, as the
// hub would not have queued them.
func (s *Subscriber) TakeHistory(it *grip.Item) (Verdict, []byte) {
	if !s.wants(it) {
		return Skip, nil
	}
	return s.take(it, true)
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
