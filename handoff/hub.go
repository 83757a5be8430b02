package handoff

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gripd/gripd/grip"
)

// DefaultQueueSize is Config.QueueSize when none is given (Pushpin's
// per-session queue); gripd's subscriber_queue default refers to it.
const DefaultQueueSize = 100

// Config sets the hub's limits.
type Config struct {
	// QueueSize is how many items may wait for one subscriber; one more and
	// the subscriber is disconnected as too slow. Default 100 (Pushpin's
	// per-session queue).
	QueueSize int
	// Sequencing orders items by id/prev-id and drops repeated ids
	// (sequencer.go).
	Sequencing SequenceConfig
}

// shardCount spreads channels over independent locks so that fan-out on
// one channel does not wait for subscribes on another.
const shardCount = 64

// Hub is the channel index of parked connections on this instance. It is
// safe for concurrent use.
type Hub struct {
	queueSize atomic.Int64 // see SetQueueSize
	seed      maphash.Seed
	shards    [shardCount]shard

	subscribers atomic.Int64 // live subscriptions
	slow        atomic.Int64 // disconnected for a full queue, ever
	closed      atomic.Bool
	draining    atomic.Bool // Drain: no new subscriptions, but the sequencer runs on until Close

	byKind [kindCount]atomic.Int64 // live subscriptions per Kind

	// Item counters, ever, indexed by the Kind that takes the format
	// (KindResponse: http-response, and so on).
	received  [kindCount]atomic.Int64 // items handed to Deliver carrying the format
	delivered [kindCount]atomic.Int64 // items queued to subscribers
	dropped   [kindCount]atomic.Int64 // items not queued: the subscriber's queue was full

	// all holds every registered subscriber, so Close reaches those on no
	// channel too (a WebSocket that has not subscribed yet).
	allMu sync.Mutex
	all   map[*Subscriber]struct{}
	idle  chan struct{} // closed when all empties; see WaitIdle

	// onChannel is told when a channel gains its first subscriber or loses
	// its last (see OnChannelChange).
	onChannel atomic.Pointer[func(channel string)]

	// writers write to parked streams (writers.go); watch notices their
	// clients leaving (watch.go).
	writers streamWriters
	watch   clientWatch

	seqCfg   SequenceConfig
	seqStats struct{ duplicates, waited, timedOut, overflow atomic.Int64 }
	// now is the clock of sequencing (tests replace it).
	now func() time.Time
}

// OnChannelChange registers f to be called, outside the hub's locks,
// whenever channel gains its first subscriber or loses its last: how a
// NATS broker subscribes an instance only to the channels it has clients
// for. f may be called for one channel from several goroutines and in any
// order, so it should look at SubscriberCount rather than trust the order
// of calls. A Join returns only after f has returned, so a subscription
// elsewhere can be in place before the client is answered.
func (h *Hub) OnChannelChange(f func(channel string)) {
	h.onChannel.Store(&f)
}

func (h *Hub) channelChanged(channel string) {
	if f := h.onChannel.Load(); f != nil {
		(*f)(channel)
	}
}

type shard struct {
	// mu is held for the whole fan-out of an item so that every subscriber
	// of a channel sees the channel's items in the same order.
	mu       sync.Mutex
	channels map[string]map[*Subscriber]struct{}
	seq      sequencer
}

// NewHub returns an empty hub.
func NewHub(cfg Config) *Hub {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	h := &Hub{seed: maphash.MakeSeed(), all: map[*Subscriber]struct{}{},
		seqCfg: cfg.Sequencing.withDefaults(), now: time.Now}
	h.writers.init()
	h.queueSize.Store(int64(cfg.QueueSize))
	for i := range h.shards {
		h.shards[i].channels = map[string]map[*Subscriber]struct{}{}
	}
	return h
}

func (h *Hub) shardFor(channel string) *shard {
	return &h.shards[maphash.String(h.seed, channel)%shardCount]
}

// SetQueueSize changes Config.QueueSize for the subscriptions to come
// (a reload); those already made keep the queue they have. n <= 0 is
// ignored.
func (h *Hub) SetQueueSize(n int) {
	if n > 0 {
		h.queueSize.Store(int64(n))
	}
}

// Subscribe parks a new subscriber of the given kind on channels (none
// is fine: see Join). The caller must call Unsubscribe when it is done
// with it, whatever ended it.
func (h *Hub) Subscribe(kind Kind, channels []string) *Subscriber {
	s := h.newSubscriber(kind)
	h.register(s, channels)
	return s
}

func (h *Hub) newSubscriber(kind Kind) *Subscriber {
	return &Subscriber{
		kind:  kind,
		queue: make(chan *grip.Item, h.queueSize.Load()),
		done:  make(chan struct{}),
	}
}

// register counts s and joins it to channels.
func (h *Hub) register(s *Subscriber, channels []string) {
	if h.refusing() {
		s.end(ErrClosed)
		return
	}
	s.registered.Store(true)
	h.subscribers.Add(1)
	h.kindCounter(s.kind).Add(1)
	h.allMu.Lock()
	h.all[s] = struct{}{}
	h.allMu.Unlock()
	for _, ch := range channels {
		h.Join(s, ch)
	}
	if h.refusing() {
		// Close or Drain ran between the check above and the registration,
		// and may have missed s.
		s.end(ErrClosed)
	}
}

// Join adds channel to s's subscriptions (a WebSocket's subscribe control
// message). Joining a channel twice is the same as once.
func (h *Hub) Join(s *Subscriber, channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.registered.Load() || slices.Contains(s.channels, channel) {
		return
	}
	s.channels = append(s.channels, channel)
	sh := h.shardFor(channel)
	sh.mu.Lock()
	subs := sh.channels[channel]
	first := subs == nil
	if first {
		subs = map[*Subscriber]struct{}{}
		sh.channels[channel] = subs
		sh.seq.joined(channel, h.now().UnixNano(), h.seqCfg)
	}
	subs[s] = struct{}{}
	s.checkStep(channel, &sh.seq, h)
	sh.mu.Unlock()
	if first {
		h.channelChanged(channel)
	}
	if h.refusing() {
		s.end(ErrClosed)
	}
}

// Leave removes channel from s's subscriptions.
func (h *Hub) Leave(s *Subscriber, channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.Index(s.channels, channel)
	if i < 0 {
		return
	}
	s.channels = slices.Delete(s.channels, i, i+1)
	h.removeFromChannel(s, channel)
}

func (h *Hub) removeFromChannel(s *Subscriber, channel string) {
	sh := h.shardFor(channel)
	sh.mu.Lock()
	last := false
	if subs := sh.channels[channel]; subs != nil {
		delete(subs, s)
		if len(subs) == 0 {
			delete(sh.channels, channel)
			sh.seq.idle(channel, h.now().UnixNano(), h.seqCfg)
			last = true
		}
	}
	sh.mu.Unlock()
	if last {
		h.channelChanged(channel)
	}
}

// Unsubscribe removes s from all its channels at once. It is safe to call
// more than once.
func (h *Hub) Unsubscribe(s *Subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.registered.CompareAndSwap(true, false) {
		return
	}
	for _, ch := range s.channels {
		h.removeFromChannel(s, ch)
	}
	h.allMu.Lock()
	delete(h.all, s)
	h.signalIdle()
	h.allMu.Unlock()
	h.subscribers.Add(-1)
	h.kindCounter(s.kind).Add(-1)
}

// kindCounter is the live count for kind; an unknown kind shares the
// response slot so the counts still add up to Subscribers.
func (h *Hub) kindCounter(kind Kind) *atomic.Int64 {
	if kind < 0 || kind >= kindCount {
		kind = KindResponse
	}
	return &h.byKind[kind]
}

// Deliver hands published items, in order, to every subscriber of their
// channels that takes one of their formats, after sequencing
// (sequencer.go): a repeated id is dropped, an item that came before its
// predecessor waits for it. It never blocks: a subscriber whose queue is
// full is ended with ErrSlow.
func (h *Hub) Deliver(items []grip.Item) {
	for i := range items {
		it := &items[i]
		h.countReceived(it)
		sh := h.shardFor(it.Channel)
		sh.mu.Lock()
		if it.ID == "" && it.PrevID == "" {
			// Nothing to order or remember, the common case: such an item only
			// ends its channel's chain (Pushpin forgets the last id).
			if !it.NoSeq && len(sh.seq.chans) > 0 {
				sh.seq.endChain(it.Channel)
			}
			h.fanout(sh, it)
		} else {
			h.sequence(sh, it)
		}
		sh.mu.Unlock()
	}
}

// fanout queues it to every subscriber of its channel that takes one of
// its formats. The caller holds sh.mu, so every subscriber of a channel
// gets its items in the same order.
func (h *Hub) fanout(sh *shard, it *grip.Item) {
	// Counted here and added once per item: shared counters touched once
	// per delivery cost more than the delivery's own work.
	var delivered, dropped [kindCount]int64
	for s := range sh.channels[it.Channel] {
		if !s.wants(it) {
			continue
		}
		// wants is false for an unknown kind, so s.kind indexes safely.
		select {
		case s.queue <- it:
			delivered[s.kind]++
			s.wake()
		default:
			dropped[s.kind]++
			if s.end(ErrSlow) {
				h.slow.Add(1)
			}
		}
	}
	for k := range kindCount {
		if delivered[k] != 0 {
			h.delivered[k].Add(delivered[k])
		}
		if dropped[k] != 0 {
			h.dropped[k].Add(dropped[k])
		}
	}
}

// DeliveryLag is how long the oldest parked stream with something to
// write has waited for its writer: how far delivery runs behind what was
// published. It stays near the time a write to every busy stream takes;
// growing past that means the instance cannot keep up.
func (h *Hub) DeliveryLag() time.Duration { return h.writers.lag(time.Now()) }

// countReceived counts an item handed to Deliver once for each format it
// carries, whether or not anyone here takes it.
func (h *Hub) countReceived(it *grip.Item) {
	if it.HTTPResponse != nil {
		h.received[KindResponse].Add(1)
	}
	if it.HTTPStream != nil {
		h.received[KindStream].Add(1)
	}
	if it.WSMessage != nil {
		h.received[KindWebSocket].Add(1)
	}
}

// refusing reports whether new subscriptions end at once: after Close,
// or while (and after) Drain runs.
func (h *Hub) refusing() bool { return h.closed.Load() || h.draining.Load() }

// Close ends every subscription with ErrClosed; later subscriptions end at
// once. Owners still call Unsubscribe.
func (h *Hub) Close() {
	h.closed.Store(true)
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		sh.seq.stop()
		sh.mu.Unlock()
	}
	endAll(h.registered())
}

// Stats are the hub's counters.
type Stats struct {
	Subscribers int64 // live subscriptions now
	Channels    int   // channels with at least one subscriber now
	Slow        int64 // subscribers disconnected for a full queue, ever
	Delivered   int64 // items queued to subscribers, ever (the sum of DeliveredByFormat)

	// Responses, Streams and WebSockets split Subscribers by Kind.
	Responses  int64 // held long-polls now
	Streams    int64 // held streams now
	WebSockets int64 // WebSockets registered now

	// Items by format, ever.
	Received          FormatCounts // handed to Deliver (an item with two formats counts in both)
	DeliveredByFormat FormatCounts // queued to subscribers
	Dropped           FormatCounts // not queued because a subscriber's queue was full

	Sequence SequenceStats // what sequencing did, ever
}

// FormatCounts splits an item count by publish format.
type FormatCounts struct {
	HTTPResponse int64 // http-response, taken by held long-polls
	HTTPStream   int64 // http-stream, taken by held streams
	WSMessage    int64 // ws-message, taken by WebSockets
}

// loadFormatCounts reads counters indexed by the Kind that takes each format.
func loadFormatCounts(c *[kindCount]atomic.Int64) FormatCounts {
	return FormatCounts{
		HTTPResponse: c[KindResponse].Load(),
		HTTPStream:   c[KindStream].Load(),
		WSMessage:    c[KindWebSocket].Load(),
	}
}

// Stats reports the hub's counters.
func (h *Hub) Stats() Stats {
	st := Stats{
		Subscribers: h.subscribers.Load(), Slow: h.slow.Load(),
		Responses:         h.byKind[KindResponse].Load(),
		Streams:           h.byKind[KindStream].Load(),
		WebSockets:        h.byKind[KindWebSocket].Load(),
		Received:          loadFormatCounts(&h.received),
		DeliveredByFormat: loadFormatCounts(&h.delivered),
		Dropped:           loadFormatCounts(&h.dropped),
		Sequence: SequenceStats{
			Duplicates: h.seqStats.duplicates.Load(), Waited: h.seqStats.waited.Load(),
			TimedOut: h.seqStats.timedOut.Load(), Overflow: h.seqStats.overflow.Load(),
		},
	}
	d := st.DeliveredByFormat
	st.Delivered = d.HTTPResponse + d.HTTPStream + d.WSMessage
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		st.Channels += len(sh.channels)
		sh.mu.Unlock()
	}
	return st
}

// SubscriberCount reports how many subscribers channel has now.
func (h *Hub) SubscriberCount(channel string) int {
	sh := h.shardFor(channel)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return len(sh.channels[channel])
}
