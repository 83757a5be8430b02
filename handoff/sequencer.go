package handoff

import (
	"time"

	"github.com/gripd/gripd/grip"
)

// This file is per-channel sequencing (GRIP.md §5): an item whose prev-id
// is not its channel's last id waits for its predecessor, a repeated id
// is dropped. It runs inside Deliver, under the shard lock, on every
// instance of a fleet alike: each instance sees the same items in the same
// order (from its control API, or from NATS) and comes to the same
// decisions, so no instance has to speak for the others.

// SequenceConfig tunes sequencing. Zero fields take their defaults.
type SequenceConfig struct {
	// Wait is how long an item whose prev-id is not its channel's last id
	// waits for its predecessor before it goes out anyway. Default 5s
	// (Pushpin's message_wait).
	Wait time.Duration
	// MaxWaiting is how many items may wait on one channel; one more is
	// dropped, as in Pushpin. Default 100.
	MaxWaiting int
	// IDTTL is how long an item id is remembered: a repeat of (channel, id)
	// within it is dropped. Default 60s (Pushpin's id_cache_ttl); negative
	// turns de-duplication off.
	IDTTL time.Duration
	// MaxIDs caps the ids remembered; past it the oldest are forgotten
	// first, shortening the de-duplication window. Default 100,000.
	MaxIDs int
	// LastIDLinger is how long a channel's last id is kept once its last
	// subscriber here left (Pushpin keeps long-poll subscriptions as long),
	// so a client polling again with a stale prev-id is still caught.
	// Default 60s.
	LastIDLinger time.Duration
	// MaxChannels caps the channels whose last id is kept without a
	// subscriber; past it the idle ones are forgotten. Default 100,000.
	MaxChannels int
}

func (c SequenceConfig) withDefaults() SequenceConfig {
	if c.Wait <= 0 {
		c.Wait = 5 * time.Second
	}
	if c.MaxWaiting <= 0 {
		c.MaxWaiting = 100
	}
	if c.IDTTL == 0 {
		c.IDTTL = 60 * time.Second
	}
	if c.MaxIDs <= 0 {
		c.MaxIDs = 100000
	}
	if c.LastIDLinger <= 0 {
		c.LastIDLinger = 60 * time.Second
	}
	if c.MaxChannels <= 0 {
		c.MaxChannels = 100000
	}
	return c
}

// SequenceStats counts what sequencing did, ever.
type SequenceStats struct {
	Duplicates int64 // items dropped: their id was seen on the channel within IDTTL
	Waited     int64 // items that waited for their predecessor
	TimedOut   int64 // of those, sent after Wait without it
	Overflow   int64 // items dropped: MaxWaiting reached, or another item already waited for the same prev-id
}

// sequencer is one shard's sequencing state, guarded by the shard's lock.
type sequencer struct {
	chans map[string]*channelSeq

	// ids remembers (channel, id) pairs for de-duplication; idQueue holds
	// them oldest first (expiry is monotonic, as IDTTL is fixed).
	ids     map[idKey]struct{}
	idQueue []idEntry
	idHead  int

	// waitQueue holds the waiting items by deadline (Wait is fixed, so
	// arrival order is deadline order); released ones stay until they
	// reach the head, marked done.
	waitQueue []*waitingItem
	waitHead  int
	timer     *time.Timer // fires at the head's deadline; nil until needed

	// sweepAbove is the size of chans that triggers forgetting idle
	// channels.
	sweepAbove int
}

// channelSeq is what sequencing knows of one channel.
type channelSeq struct {
	lastID  string
	hasLast bool
	// idleSince is when the channel's last subscriber here left (unix
	// nanoseconds); 0 while it has subscribers.
	idleSince int64
	waiting   map[string]*waitingItem // by prev-id
}

type waitingItem struct {
	item     grip.Item
	deadline int64
	done     bool // released (its predecessor came) or dropped
}

type idKey struct{ channel, id string }

type idEntry struct {
	key     idKey
	expires int64
}

// perShard divides a fleet-wide cap between the shards, keeping a floor
// so that small caps still work.
func perShard(n int) int { return max(n/shardCount, 16) }

// sequence is Deliver for an item that has an id or a prev-id, or whose
// channel has sequencing state: it drops repeats, holds items that came
// before their predecessor, and sends the rest. The caller holds sh.mu.
func (h *Hub) sequence(sh *shard, it *grip.Item) {
	sq := &sh.seq
	now := h.now().UnixNano()
	if it.ID != "" && h.seqCfg.IDTTL > 0 && !sq.firstSighting(it.Channel, it.ID, now, h.seqCfg) {
		h.seqStats.duplicates.Add(1)
		return
	}
	cs := sq.channel(it.Channel, now, h.seqCfg)
	// Only a channel someone listens to (or did a moment ago) is sequenced:
	// without listeners this instance may not see all of its items, so its
	// idea of the last id would be stale (Pushpin does the same).
	if it.NoSeq || (cs == nil && len(sh.channels[it.Channel]) == 0) {
		h.fanout(sh, it)
		return
	}
	if cs != nil && cs.hasLast && it.PrevID != "" && it.PrevID != cs.lastID {
		h.wait(sh, cs, it, now)
		return
	}
	h.release(sh, cs, it)
}

// release sends it, makes its id the channel's last id, and sends the
// items that were waiting for it, in chain order. cs may be nil.
func (h *Hub) release(sh *shard, cs *channelSeq, it *grip.Item) {
	for {
		if it.ID != "" {
			if cs == nil {
				cs = sh.seq.newChannel(it.Channel)
			}
			cs.lastID, cs.hasLast = it.ID, true
		} else if cs != nil {
			cs.lastID, cs.hasLast = "", false
		}
		h.fanout(sh, it)
		if cs == nil || !cs.hasLast || len(cs.waiting) == 0 {
			return
		}
		next := cs.waiting[cs.lastID]
		if next == nil {
			return
		}
		delete(cs.waiting, cs.lastID)
		next.done = true
		it = &next.item
	}
}

// wait holds it until its predecessor comes or Wait passes.
func (h *Hub) wait(sh *shard, cs *channelSeq, it *grip.Item, now int64) {
	if cs.waiting[it.PrevID] != nil || len(cs.waiting) >= h.seqCfg.MaxWaiting {
		h.seqStats.overflow.Add(1)
		return
	}
	if cs.waiting == nil {
		cs.waiting = map[string]*waitingItem{}
	}
	w := &waitingItem{item: *it, deadline: now + int64(h.seqCfg.Wait)}
	cs.waiting[it.PrevID] = w
	sq := &sh.seq
	sq.waitQueue = append(sq.waitQueue, w)
	h.seqStats.waited.Add(1)
	if sq.timer == nil {
		sq.timer = time.AfterFunc(h.seqCfg.Wait, func() { h.releaseExpired(sh) })
	} else if len(sq.waitQueue)-sq.waitHead == 1 {
		sq.timer.Reset(h.seqCfg.Wait) // it is the only one waiting: nothing armed the timer
	}
}

// releaseExpired sends the items whose wait is over, each followed by the
// items waiting for it, then re-arms the timer for the next deadline.
func (h *Hub) releaseExpired(sh *shard) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if h.closed.Load() {
		return
	}
	sq := &sh.seq
	now := h.now().UnixNano()
	for sq.waitHead < len(sq.waitQueue) {
		w := sq.waitQueue[sq.waitHead]
		if !w.done && w.deadline > now {
			sq.timer.Reset(time.Duration(w.deadline - now))
			break
		}
		sq.waitQueue[sq.waitHead] = nil
		sq.waitHead++
		if w.done {
			continue
		}
		w.done = true
		cs := sq.chans[w.item.Channel]
		if cs != nil {
			delete(cs.waiting, w.item.PrevID)
		}
		h.seqStats.timedOut.Add(1)
		h.release(sh, cs, &w.item)
	}
	sq.waitQueue, sq.waitHead = compact(sq.waitQueue, sq.waitHead)
}

// compact drops the consumed head of a queue once it is most of it, so a
// queue's memory follows what it holds.
func compact[T any](q []T, head int) ([]T, int) {
	if head == len(q) {
		return q[:0], 0
	}
	if head > 64 && head > len(q)/2 {
		n := copy(q, q[head:])
		clear(q[n:])
		return q[:n], 0
	}
	return q, head
}

// firstSighting records (channel, id) and reports whether it is new
// within IDTTL.
func (sq *sequencer) firstSighting(channel, id string, now int64, cfg SequenceConfig) bool {
	for sq.idHead < len(sq.idQueue) && sq.idQueue[sq.idHead].expires <= now {
		sq.forgetOldestID()
	}
	k := idKey{channel, id}
	if _, seen := sq.ids[k]; seen {
		return false
	}
	if len(sq.idQueue)-sq.idHead >= perShard(cfg.MaxIDs) {
		sq.forgetOldestID()
	}
	if sq.ids == nil {
		sq.ids = map[idKey]struct{}{}
	}
	sq.ids[k] = struct{}{}
	sq.idQueue = append(sq.idQueue, idEntry{key: k, expires: now + int64(cfg.IDTTL)})
	return true
}

func (sq *sequencer) forgetOldestID() {
	delete(sq.ids, sq.idQueue[sq.idHead].key)
	sq.idQueue[sq.idHead] = idEntry{}
	sq.idHead++
	sq.idQueue, sq.idHead = compact(sq.idQueue, sq.idHead)
}

// channel returns the state of channel, or nil; state that lingered past
// LastIDLinger without a subscriber is forgotten first.
func (sq *sequencer) channel(channel string, now int64, cfg SequenceConfig) *channelSeq {
	cs := sq.chans[channel]
	if cs != nil && cs.idleSince != 0 && now-cs.idleSince > int64(cfg.LastIDLinger) && len(cs.waiting) == 0 {
		delete(sq.chans, channel)
		return nil
	}
	return cs
}

func (sq *sequencer) newChannel(channel string) *channelSeq {
	if sq.chans == nil {
		sq.chans = map[string]*channelSeq{}
	}
	cs := &channelSeq{}
	sq.chans[channel] = cs
	return cs
}

// endChain forgets channel's last id: an item without an id went out.
func (sq *sequencer) endChain(channel string) {
	if cs := sq.chans[channel]; cs != nil {
		cs.lastID, cs.hasLast = "", false
	}
}

// joined is told that channel has a subscriber here again. It returns
// the channel's last id, if known.
func (sq *sequencer) joined(channel string, now int64, cfg SequenceConfig) (lastID string, known bool) {
	cs := sq.channel(channel, now, cfg)
	if cs == nil {
		return "", false
	}
	cs.idleSince = 0
	return cs.lastID, cs.hasLast
}

// idle is told that channel lost its last subscriber here.
func (sq *sequencer) idle(channel string, now int64, cfg SequenceConfig) {
	cs := sq.chans[channel]
	if cs == nil {
		return
	}
	cs.idleSince = max(now, 1)
	if len(sq.chans) > max(sq.sweepAbove, perShard(cfg.MaxChannels)) {
		sq.sweep(now, cfg)
	}
}

// sweep forgets idle channels: those idle past LastIDLinger, then, while
// still over MaxChannels, any idle one. Channels with subscribers are
// kept (they are bounded by the connections); the next sweep then waits
// until the map has grown by half again.
func (sq *sequencer) sweep(now int64, cfg SequenceConfig) {
	limit := perShard(cfg.MaxChannels)
	for name, cs := range sq.chans {
		if cs.idleSince != 0 && len(cs.waiting) == 0 && now-cs.idleSince > int64(cfg.LastIDLinger) {
			delete(sq.chans, name)
		}
	}
	for name, cs := range sq.chans {
		if len(sq.chans) <= limit {
			break
		}
		if cs.idleSince != 0 && len(cs.waiting) == 0 {
			delete(sq.chans, name)
		}
	}
	sq.sweepAbove = len(sq.chans) + len(sq.chans)/2
}

// forget drops what sequencing knows of channel, waiting items included.
func (sq *sequencer) forget(channel string) {
	cs := sq.chans[channel]
	if cs == nil {
		return
	}
	for _, w := range cs.waiting {
		w.done = true
	}
	delete(sq.chans, channel)
}

// stop drops every waiting item and stops the timer (Close).
func (sq *sequencer) stop() {
	if sq.timer != nil {
		sq.timer.Stop()
	}
	for _, w := range sq.waitQueue[sq.waitHead:] {
		w.done = true
	}
	sq.waitQueue, sq.waitHead = nil, 0
	for _, cs := range sq.chans {
		cs.waiting = nil
	}
}

// LastID returns channel's last id as sequencing knows it on this
// instance; ok is false when it knows none (no item with an id since the
// channel got subscribers, or the last item had none).
func (h *Hub) LastID(channel string) (id string, ok bool) {
	sh := h.shardFor(channel)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cs := sh.seq.channel(channel, h.now().UnixNano(), h.seqCfg)
	if cs == nil {
		return "", false
	}
	return cs.lastID, cs.hasLast
}

// ForgetChannel drops what sequencing knows of channel: its last id and
// the items waiting on it. A broker calls it when this instance stops
// receiving the channel's items (a NATS unsubscribe), so that a stale last
// id never holds back the items that come once it receives them again.
func (h *Hub) ForgetChannel(channel string) {
	sh := h.shardFor(channel)
	sh.mu.Lock()
	sh.seq.forget(channel)
	sh.mu.Unlock()
}

// ForgetLastIDs drops every channel's last id (a /recover, or a broker
// that may have missed items while disconnected); waiting items stay.
func (h *Hub) ForgetLastIDs() {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for _, cs := range sh.seq.chans {
			cs.lastID, cs.hasLast = "", false
		}
		sh.mu.Unlock()
	}
}
