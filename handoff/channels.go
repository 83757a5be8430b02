package handoff

// ChannelCount is how many subscribers of each kind a channel has on this
// instance: what an operator's GET /channels shows.
type ChannelCount struct {
	Name       string
	Responses  int // held long-polls
	Streams    int // held streams
	WebSockets int // WebSockets
}

// Total is the channel's subscribers of every kind.
func (c ChannelCount) Total() int { return c.Responses + c.Streams + c.WebSockets }

// add counts one subscriber of kind.
func (c *ChannelCount) add(kind Kind) {
	switch kind {
	case KindStream:
		c.Streams++
	case KindWebSocket:
		c.WebSockets++
	default:
		c.Responses++ // as kindCounter does, so the counts add up
	}
}

// Channels returns every channel with at least one subscriber, with its
// counts, in no particular order. It locks one shard at a time, so
// delivery on the other shards goes on meanwhile; the result is a
// snapshot, and a channel joined or left during the walk may or may not
// be in it.
func (h *Hub) Channels() []ChannelCount {
	var out []ChannelCount
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for name, subs := range sh.channels {
			c := ChannelCount{Name: name}
			for s := range subs {
				c.add(s.kind)
			}
			out = append(out, c)
		}
		sh.mu.Unlock()
	}
	return out
}

// Channel returns the counts of one channel; ok is false when nobody on
// this instance is subscribed to it.
func (h *Hub) Channel(name string) (c ChannelCount, ok bool) {
	sh := h.shardFor(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	subs := sh.channels[name]
	if len(subs) == 0 {
		return ChannelCount{}, false
	}
	c.Name = name
	for s := range subs {
		c.add(s.kind)
	}
	return c, true
}
