package handoff

import (
	"maps"
	"slices"

	"github.com/gripd/gripd/grip"
)

// This file is what one connection does with the items the hub queues
// for it: follow its prev-id chain on each channel (GRIP.md §5, "per
// session"), run its filters over them (§6), and tell its owner to
// recover when it falls out of step. The hub's fan-out stays the same for
// every subscriber; this runs in the owner's goroutine, as it takes each
// item from C, so a filter's cost is paid by its connection only.

// Verdict says what the owner of a subscriber does with an item it took.
type Verdict int

// The verdicts of Take.
const (
	// Send: write the item out (for a close action, close).
	Send Verdict = iota
	// Skip: nothing to write. A filter dropped the item, its channel was
	// left, or it was stale after a recovery.
	Skip
	// Recover: the connection is out of step. The item broke the
	// connection's prev-id chain on its channel, or it is a hint. The owner
	// re-requests the backend (a long-poll) or fetches the next link (a
	// stream), after DiscardRecovered (a stream).
	Recover
)

// deliveryRules is what a connection asked of its items.
type deliveryRules struct {
	channels  map[string]*channelRule // by channel, for those with a prev-id or filters
	prevIDs   map[string]string       // channel -> prev-id, for the channels that have one
	meta      map[string]string       // subscription meta, read by filters
	stale     int                     // queued items a recovery made stale (see MarkStale)
	dropLeft  int                     // queued items DiscardRecovered still looks at
	dropping  map[string]bool         // channels whose items those are dropped (see DiscardRecovered)
	checkJoin bool                    // compare prev-ids with last ids while subscribing
	outOfStep bool                    // a prev-id differed from its channel's last id at subscribe

	// historyMarks is, per channel, how far a replay from history reached
	// (history.go).
	historyMarks map[string]uint64
}

// rulesLocked returns s's rules, making them if need be. s.mu is held.
func (s *Subscriber) rulesLocked() *deliveryRules {
	if s.rules == nil {
		s.rules = &deliveryRules{}
	}
	return s.rules
}

// channelRule is what a connection asked for on one channel.
type channelRule struct {
	prevID  string
	hasPrev bool
	filters []string
}

// HoldSpec is a held connection's subscription: its channels with their
// prev-ids and filters, and its meta.
type HoldSpec struct {
	Channels []grip.Channel
	Meta     map[string]string
	// Recoverable says the owner can recover the connection (a long-poll by
	// re-requesting, a stream with a next link by fetching it): hints,
	// items out of their chain and Hub.Recover then reach it. Without it
	// they are skipped.
	Recoverable bool
}

// SubscribeHold parks a held connection as Subscribe does, with its
// prev-ids, filters and meta. OutOfStep then reports whether a channel's
// prev-id differed from the channel's last id here as it subscribed.
func (h *Hub) SubscribeHold(kind Kind, spec HoldSpec) *Subscriber {
	s := h.newSubscriber(kind)
	s.setRules(spec.Channels, spec.Meta)
	if spec.Recoverable {
		s.recoverC = make(chan struct{}, 1)
	}
	s.rules.checkJoin = true
	h.register(s, channelNamesOf(spec.Channels))
	s.mu.Lock()
	s.rules.checkJoin = false
	s.mu.Unlock()
	return s
}

// UpdateHold replaces s's channels, prev-ids, filters and meta with those
// of a new instruction (a stream's next link answered with a new hold):
// channels no longer named are left, new ones joined. Items already
// queued are marked stale (see MarkStale).
func (h *Hub) UpdateHold(s *Subscriber, chans []grip.Channel, meta map[string]string) {
	names := channelNamesOf(chans)
	for _, ch := range s.Channels() {
		if !slices.Contains(names, ch) {
			h.Leave(s, ch)
		}
	}
	s.setRules(chans, meta)
	for _, ch := range names {
		h.Join(s, ch)
	}
	s.MarkStale()
}

func channelNamesOf(chans []grip.Channel) []string {
	names := make([]string, len(chans))
	for i, c := range chans {
		names[i] = c.Name
	}
	return names
}

// setRules records prev-ids, filters and meta.
func (s *Subscriber) setRules(chans []grip.Channel, meta map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rulesLocked()
	r.channels, r.prevIDs = nil, nil
	for _, c := range chans {
		if c.PrevID == "" && len(c.Filters) == 0 {
			continue
		}
		if r.channels == nil {
			r.channels = map[string]*channelRule{}
		}
		r.channels[c.Name] = &channelRule{prevID: c.PrevID, hasPrev: c.PrevID != "", filters: c.Filters}
		if c.PrevID != "" {
			if r.prevIDs == nil {
				r.prevIDs = map[string]string{}
			}
			r.prevIDs[c.Name] = c.PrevID
		}
	}
	r.meta = maps.Clone(meta)
}

// SetChannelFilters sets the filters of one channel (a WebSocket's
// subscribe control message), replacing those it had.
func (s *Subscriber) SetChannelFilters(channel string, filters []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(filters) == 0 && (s.rules == nil || s.rules.channels[channel] == nil) {
		return
	}
	rules := s.rulesLocked()
	r := rules.channels[channel]
	if r == nil {
		if rules.channels == nil {
			rules.channels = map[string]*channelRule{}
		}
		r = &channelRule{}
		rules.channels[channel] = r
	}
	r.filters = slices.Clone(filters)
}

// SetMeta replaces the subscription meta the filters read (a WebSocket's
// set-meta control message or Set-Meta-* headers). meta is copied.
func (s *Subscriber) SetMeta(meta map[string]string) {
	s.mu.Lock()
	s.rulesLocked().meta = maps.Clone(meta)
	s.mu.Unlock()
}

// LastIDs returns the connection's current prev-id of each channel that
// has one: what a re-request or a next-link fetch sends as Grip-Last.
func (s *Subscriber) LastIDs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rules == nil {
		return nil
	}
	return maps.Clone(s.rules.prevIDs)
}

// OutOfStep reports whether, as SubscribeHold joined its channels, one of
// them had a last id here that differed from the connection's prev-id:
// the client missed items, and the owner recovers at once.
func (s *Subscriber) OutOfStep() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rules != nil && s.rules.outOfStep
}

// checkStep, called by Join under s.mu and the channel's shard lock,
// notes a prev-id that differs from the channel's last id.
func (s *Subscriber) checkStep(channel string, sq *sequencer, h *Hub) {
	if s.rules == nil || !s.rules.checkJoin {
		return
	}
	r := s.rules.channels[channel]
	if r == nil || !r.hasPrev {
		return
	}
	if cs := sq.channel(channel, h.now().UnixNano(), h.seqCfg); cs != nil && cs.hasLast && cs.lastID != r.prevID {
		s.rules.outOfStep = true
	}
}

// MarkStale marks the items queued now as possibly stale: until one of
// them follows the connection's chain, those that do not are skipped
// rather than taken as a reason to recover. The owner calls it after a
// recovery (UpdateHold does), as Pushpin drops the items that the fetch
// made redundant.
func (s *Subscriber) MarkStale() {
	s.mu.Lock()
	s.rulesLocked().stale = len(s.queue)
	s.mu.Unlock()
}

// DiscardRecovered drops, of the items queued now, those that the
// recovery of a connection set off by it (an item out of its chain, or a
// hint) fetches again: the items of it's channel and of every channel with
// a prev-id (history catches those up, and a next-link fetch names them
// in Grip-Last). Items of the other channels stay queued, in order, for
// the owner to write after the recovery: nothing would fetch them again.
// The dropped items are skipped as HoldStreamWith takes them from C, so
// that items queued meanwhile keep their order.
func (s *Subscriber) DiscardRecovered(it *grip.Item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rulesLocked()
	drop := make(map[string]bool, len(r.prevIDs)+1)
	drop[it.Channel] = true
	for ch := range r.prevIDs {
		drop[ch] = true
	}
	r.dropping, r.dropLeft = drop, len(s.queue)
}

// takeQueued is Take for an item the owner received from C: one that
// DiscardRecovered dropped is skipped. Take itself also sees items that
// were never queued (history's), which must not count.
func (s *Subscriber) takeQueued(it *grip.Item) (Verdict, []byte) {
	s.mu.Lock()
	if r := s.rules; r != nil && r.dropLeft > 0 {
		r.dropLeft--
		if r.dropping[it.Channel] {
			// Queued before a recovery that fetches it again. MarkStale
			// counted it too.
			if r.stale > 0 {
				r.stale--
			}
			s.mu.Unlock()
			return Skip, nil
		}
	}
	s.mu.Unlock()
	return s.Take(it)
}

// Discard drops every item queued now: after a recovery they are
// redundant.
func (s *Subscriber) Discard() {
	for {
		select {
		case <-s.queue:
		default:
			return
		}
	}
}

// Recovering is signalled by Hub.Recover when the connection should be
// recovered (re-requested or its next link fetched). It is nil, and never
// ready, for a subscriber that is not recoverable.
func (s *Subscriber) Recovering() <-chan struct{} { return s.recoverC }

// Take decides what the owner does with an item it received from C, and
// returns the content to write: the item's body, stream content or
// WebSocket message, as the subscriber's filters left it (for a close, a
// hint or a refresh it is the format's unfiltered content).
func (s *Subscriber) Take(it *grip.Item) (Verdict, []byte) {
	return s.take(it, false)
}

// take is the one delivery rule of Take and TakeHistory (history.go).
// An item of a replay (replayed) comes in its channel's order and was
// never queued: it moves the prev-id chain on whatever its own prev-id
// says, and neither a replay's marks nor a recovery's stale count apply
// to it.
func (s *Subscriber) take(it *grip.Item, replayed bool) (Verdict, []byte) {
	content, action := s.formatOf(it)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.channels, it.Channel) {
		return Skip, nil // left while the item was queued
	}
	rules := s.rules
	if rules == nil { // a plain subscriber: nothing to follow or filter
		if action == grip.ActionHint {
			return s.recoverOrSkip(), nil
		}
		return Send, content
	}
	if !replayed && rules.coveredByHistory(it) {
		return Skip, nil // replayed from history already (history.go)
	}
	stale := !replayed && rules.stale > 0
	if stale {
		rules.stale--
	}
	r := rules.channels[it.Channel]
	if r != nil && r.hasPrev {
		if !replayed && it.PrevID != r.prevID {
			if stale {
				return Skip, nil
			}
			return s.recoverOrSkip(), nil
		}
		// The chain moves on even when a filter drops the item: the client
		// did not miss it, it was not meant for it.
		r.prevID, r.hasPrev = it.ID, it.ID != ""
		if r.hasPrev {
			rules.prevIDs[it.Channel] = it.ID
		} else {
			delete(rules.prevIDs, it.Channel)
		}
		// The first item that follows a chain ends the stale run; one of a
		// channel without a prev-id follows nothing, and an item kept
		// across a recovery (DiscardRecovered) may come before stale ones.
		if !replayed {
			rules.stale = 0
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
	if action == grip.ActionHint {
		return s.recoverOrSkip(), nil
	}
	return Send, content
}

func (s *Subscriber) recoverOrSkip() Verdict {
	if s.recoverC != nil {
		return Recover
	}
	return Skip
}

// formatOf returns the content and action of the item's format for this
// subscriber's kind.
func (s *Subscriber) formatOf(it *grip.Item) ([]byte, grip.Action) {
	switch s.kind {
	case KindResponse:
		if f := it.HTTPResponse; f != nil {
			return f.Body, f.Action
		}
	case KindStream:
		if f := it.HTTPStream; f != nil {
			return f.Content, f.Action
		}
	case KindWebSocket:
		if f := it.WSMessage; f != nil {
			return f.Content, f.Action
		}
	}
	return nil, grip.ActionSend
}
