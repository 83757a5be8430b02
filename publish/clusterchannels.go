package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/gripd/gripd/handoff"
)

// The fleet's view of its channels: every instance answers requests on
// ChannelsSubject with the counts of its own hub, so an operator can ask
// one instance's admin listener about all of them (GET
// /channels?scope=cluster).
//
// Wire format, JSON:
//
//	request  {"channel":"news"}   one channel's counts
//	         {}                   every channel's counts
//	reply    {"instance":"9f2c41d07a3be815","part":1,"parts":1,
//	          "channels":[{"name":"news","response":0,"stream":2,"ws":1}]}
//
// Every instance answers, even with no channels (an empty list), so the
// asker can count who answered. An instance with more channels than fit
// in one NATS message (the server's max payload, 1 MB by default) answers
// with several parts; the asker counts an instance only once it has all
// its parts. instance is a random id an instance draws at start.

// ChannelsSubject returns the subject every instance answers channel
// count requests on.
func ChannelsSubject(prefix string) string { return prefix + ".admin.channels" }

type channelsRequest struct {
	// Channel, when set, asks for that channel only; absent asks for all.
	Channel *string `json:"channel,omitempty"`
}

type channelsReply struct {
	Instance string            `json:"instance"`
	Part     int               `json:"part"`  // 1 to Parts
	Parts    int               `json:"parts"` // how many replies this instance sends
	Channels []json.RawMessage `json:"channels"`
}

type wireChannel struct {
	Name      string `json:"name"`
	Responses int    `json:"response"`
	Streams   int    `json:"stream"`
	WS        int    `json:"ws"`
}

// replyHeadroom is kept free in every reply for the fields around the
// channel list.
const replyHeadroom = 256

// newInstanceID draws the random id an instance signs its replies with.
func newInstanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// answerChannels replies to a channel count request with this instance's
// counts.
func (b *NATSBroker) answerChannels(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	var req channelsRequest
	if len(m.Data) > 0 {
		if err := json.Unmarshal(m.Data, &req); err != nil {
			b.log.Debug().Err(err).Msg("bad channel count request on NATS")
			return
		}
	}
	var counts []handoff.ChannelCount
	if req.Channel != nil {
		if c, ok := b.hub.Channel(*req.Channel); ok {
			counts = append(counts, c)
		}
	} else {
		counts = b.hub.Channels()
	}
	parts := b.replyParts(counts, int(b.nc.MaxPayload())-replyHeadroom)
	for i, part := range parts {
		data, err := json.Marshal(channelsReply{Instance: b.instance, Part: i + 1, Parts: len(parts), Channels: part})
		if err == nil {
			err = m.Respond(data)
		}
		if err != nil {
			b.log.Warn().Err(err).Msg("answering a channel count request failed")
			return
		}
	}
}

// replyParts splits the encoded counts into lists of at most budget
// bytes each; there is always at least one list, maybe empty.
func (b *NATSBroker) replyParts(counts []handoff.ChannelCount, budget int) [][]json.RawMessage {
	parts := [][]json.RawMessage{nil}
	size := 0
	for _, c := range counts {
		enc, err := json.Marshal(wireChannel{Name: c.Name, Responses: c.Responses, Streams: c.Streams, WS: c.WebSockets})
		if err != nil {
			continue // cannot happen for strings and ints
		}
		if len(enc) > budget {
			// A name this long cannot travel in a NATS message at all.
			b.log.Warn().Int("bytes", len(enc)).Msg("channel name too long for a channel count reply; left out")
			continue
		}
		if size+len(enc)+1 > budget {
			parts = append(parts, nil)
			size = 0
		}
		last := len(parts) - 1
		parts[last] = append(parts[last], enc)
		size += len(enc) + 1 // and a comma
	}
	return parts
}

// ClusterChannels is the fleet's view of its channels.
type ClusterChannels struct {
	// Instances is how many instances answered in full, this one included.
	Instances int
	// Channels are summed over those instances, in no particular order.
	Channels []handoff.ChannelCount
}

// ClusterChannels asks every instance for its channel counts and sums
// them. It gathers answers until ctx is done (its deadline is the normal
// end: nobody knows how many instances there are), or until expect
// instances have answered when expect > 0.
func (b *NATSBroker) ClusterChannels(ctx context.Context, expect int) (ClusterChannels, error) {
	return b.gather(ctx, channelsRequest{}, expect)
}

// ClusterChannel is ClusterChannels for one channel: Channels holds it,
// or nothing when no instance that answered has subscribers for it.
func (b *NATSBroker) ClusterChannel(ctx context.Context, name string, expect int) (ClusterChannels, error) {
	return b.gather(ctx, channelsRequest{Channel: &name}, expect)
}

// gather publishes req and sums the complete answers that come back.
func (b *NATSBroker) gather(ctx context.Context, req channelsRequest, expect int) (ClusterChannels, error) {
	if !b.nc.IsConnected() {
		return ClusterChannels{}, fmt.Errorf("NATS is not connected (%s)", b.nc.Status())
	}
	data, err := json.Marshal(req)
	if err != nil {
		return ClusterChannels{}, fmt.Errorf("encoding channel count request: %w", err)
	}
	inbox := b.nc.NewRespInbox()
	sub, err := b.nc.SubscribeSync(inbox)
	if err != nil {
		return ClusterChannels{}, fmt.Errorf("NATS subscribe for channel counts: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// The subscription goes to the server before the request on the same
	// connection, so no answer can come before anyone listens for it.
	if err := b.nc.PublishRequest(ChannelsSubject(b.cfg.SubjectPrefix), inbox, data); err != nil {
		return ClusterChannels{}, fmt.Errorf("NATS publish of channel count request: %w", err)
	}

	type pending struct {
		got      map[int]bool
		channels []json.RawMessage
	}
	byInstance := map[string]*pending{}
	sums := map[string]*handoff.ChannelCount{}
	var out ClusterChannels
	for expect <= 0 || out.Instances < expect {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break // the time to answer is over
			}
			return ClusterChannels{}, fmt.Errorf("gathering channel counts: %w", err)
		}
		var r channelsReply
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Instance == "" || r.Part < 1 || r.Part > r.Parts {
			b.log.Debug().Err(err).Msg("bad channel count reply on NATS")
			continue
		}
		p := byInstance[r.Instance]
		if p == nil {
			p = &pending{got: map[int]bool{}}
			byInstance[r.Instance] = p
		}
		if p.got[r.Part] || len(p.got) == r.Parts {
			continue // a duplicate, or an instance already counted
		}
		p.got[r.Part] = true
		p.channels = append(p.channels, r.Channels...)
		if len(p.got) < r.Parts {
			continue
		}
		out.Instances++
		for _, raw := range p.channels {
			var c wireChannel
			if err := json.Unmarshal(raw, &c); err != nil {
				b.log.Debug().Err(err).Msg("bad channel in a channel count reply")
				continue
			}
			sum := sums[c.Name]
			if sum == nil {
				sum = &handoff.ChannelCount{Name: c.Name}
				sums[c.Name] = sum
			}
			sum.Responses += c.Responses
			sum.Streams += c.Streams
			sum.WebSockets += c.WS
		}
		p.channels = nil
	}
	for _, c := range sums {
		out.Channels = append(out.Channels, *c)
	}
	return out, nil
}
