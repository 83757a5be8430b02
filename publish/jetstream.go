package publish

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gripd/gripd/grip"
)

// This file stores every item the NATS broker publishes in a JetStream
// stream, the fleet's history (history.go reads it back).
//
// An item of channel C is published to <prefix>.hist.<token(C)>, which
// the stream captures; once it is stored, JetStream republishes it to
// <prefix>.ch.<token(C)>, the subject every instance already subscribes
// to for live items, with its stream sequence in the Nats-Sequence
// header (it becomes grip.Item.Seq). Letting the stream capture the
// channel subject itself would not do: NATS delivers a message to core
// subscribers whether or not the stream keeps it, so a retried publish
// that JetStream drops as a duplicate (same Nats-Msg-Id) would still
// reach every client twice (TestJetStreamDuplicatesReachCoreSubscribers),
// and an item could reach clients before it is stored, so a client
// resuming at that moment could miss it. Through RePublish only what was
// stored goes out, in the stream's order, carrying its place in it.

// Defaults of HistoryConfig; gripd's history: section refers to them.
const (
	DefaultHistoryMaxAge             = time.Hour
	DefaultHistoryMaxItemsPerChannel = 1000
	DefaultHistoryDuplicateWindow    = 2 * time.Minute
)

// HistoryConfig shapes the history stream. Zero fields take their
// defaults.
type HistoryConfig struct {
	// MaxAge is how long an item stays in history. Default 1h.
	MaxAge time.Duration
	// MaxItemsPerChannel is how many items of one channel history keeps;
	// past it the oldest go first. Default 1000.
	MaxItemsPerChannel int
	// DuplicateWindow is how long JetStream remembers item ids: a publish
	// repeated within it, with the same channel and id (a publisher
	// retrying after a timeout), is stored and delivered once. Default 2m,
	// and never more than MaxAge.
	DuplicateWindow time.Duration
}

func (c HistoryConfig) withDefaults() HistoryConfig {
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultHistoryMaxAge
	}
	if c.MaxItemsPerChannel <= 0 {
		c.MaxItemsPerChannel = DefaultHistoryMaxItemsPerChannel
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = DefaultHistoryDuplicateWindow
	}
	c.DuplicateWindow = min(c.DuplicateWindow, c.MaxAge)
	return c
}

// HistorySubject returns the subject an item of channel is stored under.
func HistorySubject(prefix, channel string) string {
	return prefix + ".hist." + ChannelToken(channel)
}

// HistoryStreamName returns the name of the history stream of a subject
// prefix: "gripd" gives "gripd_history".
func HistoryStreamName(prefix string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, prefix) + "_history"
}

// historyMsgID is the Nats-Msg-Id of an item. JetStream de-duplicates
// ids across the whole stream, while GRIP ids belong to one channel (a
// publisher may give the same id to the copies of an item it sends to
// several channels), so the channel's token comes first; it holds no ':'.
func historyMsgID(channel, id string) string {
	return ChannelToken(channel) + ":" + id
}

// The first nats-server that answers batched direct gets, which history
// lookups use: 2.11.
const (
	historyServerMajor = 2
	historyServerMinor = 11
)

// JetStreamHistory is the fleet's history in a JetStream stream: the
// NATS broker stores every item it publishes there, and After and
// AfterSeq (history.go) read it back. It is a handoff.History.
type JetStreamHistory struct {
	b      *NATSBroker
	js     jetstream.JetStream
	stream string
	cfg    HistoryConfig
	// walks holds a token per lookup walking a channel's history
	// (history.go), at most maxHistoryWalks.
	walks chan struct{}
}

// EnableHistory creates the history stream (or updates it to cfg) and
// makes b store every item it publishes there from now on. The NATS
// server must run JetStream. ctx bounds the setup. Every instance of a
// fleet should run with the same history settings: the last to start
// sets the stream's limits.
func (b *NATSBroker) EnableHistory(ctx context.Context, cfg HistoryConfig) (*JetStreamHistory, error) {
	cfg = cfg.withDefaults()
	if err := b.awaitConnected(ctx); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	if v := b.nc.ConnectedServerVersion(); !serverAtLeast(v, historyServerMajor, historyServerMinor) {
		return nil, fmt.Errorf("history needs nats-server %d.%d or later; %s runs %q",
			historyServerMajor, historyServerMinor, b.nc.ConnectedUrlRedacted(), v)
	}
	js, err := jetstream.New(b.nc, jetstream.WithPublishAsyncTimeout(b.cfg.FlushTimeout))
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	err = retryJetStream(ctx, func(ctx context.Context) error {
		_, err := js.AccountInfo(ctx)
		return err
	})
	if err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("history needs JetStream, which the NATS server at %s does not run "+
				"(start nats-server with -js and a store dir, -sd DIR)", b.nc.ConnectedUrlRedacted())
		}
		return nil, fmt.Errorf("history: asking NATS about JetStream: %w", err)
	}
	prefix := b.cfg.SubjectPrefix
	name := HistoryStreamName(prefix)
	source := prefix + ".hist.*"
	streamCfg := jetstream.StreamConfig{
		Name:              name,
		Description:       "gripd history: the latest items of each channel (" + prefix + ".hist.<channel>)",
		Subjects:          []string{source},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: int64(cfg.MaxItemsPerChannel),
		MaxAge:            cfg.MaxAge,
		Duplicates:        cfg.DuplicateWindow,
		Storage:           jetstream.FileStorage,
		// One replica: a direct get from a replica could lag behind what
		// the leader has already republished, and leave a resuming client
		// a gap.
		Replicas:    1,
		AllowDirect: true,
		RePublish:   &jetstream.RePublish{Source: source, Destination: prefix + ".ch.{{wildcard(1)}}"},
	}
	err = retryJetStream(ctx, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, streamCfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("history: creating stream %s: %w", name, err)
	}
	h := &JetStreamHistory{b: b, js: js, stream: name, cfg: cfg, walks: make(chan struct{}, maxHistoryWalks)}
	b.history.Store(h)
	return h, nil
}

// awaitConnected waits until the connection to NATS is up (it may still
// be trying when gripd starts), or ctx is done.
func (b *NATSBroker) awaitConnected(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !b.nc.IsConnected() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("NATS at %s is not connected (%s): %w", RedactURL(b.cfg.URL), b.nc.Status(), ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// retryJetStream runs a JetStream API call until it succeeds, fails for
// good, or ctx is done. A JetStream cluster that is still electing its
// leader (servers that started together, as embedded ones do) leaves
// requests unanswered for a few seconds, so each try gets a short time.
func retryJetStream(ctx context.Context, call func(ctx context.Context) error) error {
	const perTry, pause = 2 * time.Second, 200 * time.Millisecond
	for {
		tryCtx, cancel := context.WithTimeout(ctx, perTry)
		err := call(tryCtx)
		cancel()
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &apiErr) && apiErr.Code != 503:
			return err // answered, and refused: trying again will not help
		case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// Stream is the name of the history stream.
func (h *JetStreamHistory) Stream() string { return h.stream }

// publish stores items in history, in order, and returns once JetStream
// has acknowledged each (a duplicate's acknowledgement included): they
// are then stored and on their way to every instance.
func (h *JetStreamHistory) publish(ctx context.Context, items []grip.Item) error {
	ctx, cancel := context.WithTimeout(ctx, h.b.cfg.FlushTimeout)
	defer cancel()
	acks := make([]jetstream.PubAckFuture, 0, len(items))
	for _, it := range items {
		data, err := grip.MarshalItem(it)
		if err != nil {
			return fmt.Errorf("encoding item for channel %q: %w", it.Channel, err)
		}
		m := &nats.Msg{Subject: HistorySubject(h.b.cfg.SubjectPrefix, it.Channel), Data: data}
		if it.ID != "" {
			m.Header = nats.Header{jetstream.MsgIDHeader: []string{historyMsgID(it.Channel, it.ID)}}
		}
		ack, err := h.js.PublishMsgAsync(m)
		if err != nil {
			return fmt.Errorf("JetStream publish: %w", err)
		}
		acks = append(acks, ack)
	}
	for _, ack := range acks {
		select {
		case <-ack.Ok():
		case err := <-ack.Err():
			return fmt.Errorf("JetStream did not store the item: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("JetStream did not confirm the publish: %w", ctx.Err())
		}
	}
	return nil
}

// historySeq is the stream sequence JetStream put on a republished item
// or a direct get's answer, 0 for an item that did not come through
// history.
func historySeq(m *nats.Msg) uint64 {
	if m.Header == nil {
		return 0
	}
	seq, _ := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	return seq
}

// serverAtLeast reports whether a nats-server version ("2.11.3",
// "2.12.0-beta") is at least major.minor.
func serverAtLeast(version string, wantMajor, wantMinor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > wantMajor || major == wantMajor && minor >= wantMinor
}
