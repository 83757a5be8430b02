package publish

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// NATSConfig connects an instance to the fleet's NATS.
type NATSConfig struct {
	// URL of the NATS server(s), comma-separated. Required unless
	// InProcess is set.
	URL string
	// InProcess, when set, connects to this server (an embedded
	// nats-server) inside the process instead of through URL.
	InProcess nats.InProcessConnProvider
	// Name is this instance's connection name, shown by NATS monitoring.
	// Default "gripd".
	Name string
	// Creds is a NATS credentials file (JWT + seed). Default none.
	Creds string
	// NKey is an nkey seed file. Default none.
	NKey string
	// User and Password log in with a user name and password; Token with
	// a token. Default none.
	User, Password, Token string
	// TLSCA, TLSCert and TLSKey turn on TLS: the CA file to trust and the
	// client certificate and key. Default none.
	TLSCA, TLSCert, TLSKey string
	// SubjectPrefix starts every subject gripd uses. Default
	// DefaultSubjectPrefix.
	SubjectPrefix string
	// Linger is how long an instance stays subscribed to a channel after
	// its last local subscriber left, so a client that reconnects at once
	// does not churn NATS subscriptions. Default 5s.
	Linger time.Duration
	// FlushTimeout bounds how long a publish waits for NATS to take its
	// items before the control API answers 503. Default 2s.
	FlushTimeout time.Duration
	// MaxBodyBytes is the largest publish body taken from the publish
	// subject, as on the control API. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// DefaultSubjectPrefix is the first token of every subject gripd uses
// when nats.subject_prefix is not set.
const DefaultSubjectPrefix = "gripd"

// InboxPrefix returns the prefix of the reply subjects gripd's own
// requests use (channel counts, JetStream). It is under the subject
// prefix rather than NATS's usual _INBOX, so a publisher allowed to
// subscribe to _INBOX.> for the answers to its publishes cannot read
// what other instances answer gripd (history items, channel names).
func InboxPrefix(prefix string) string { return prefix + ".inbox" }

// natsInboxSize is the buffer between NATS and the hub for all channel
// subscriptions of an instance. Deliver only queues (the hub's writers
// write), so the buffer fills only when the instance cannot even queue
// what NATS brings; NATS then drops what does not fit and reports a slow
// consumer, which the broker counts and logs (SlowConsumers), rather than
// letting items wait here for minutes.
const natsInboxSize = 8192

// NATSBroker carries published items through NATS, so that every
// instance of a fleet delivers them to its own clients. An instance
// subscribes to a channel's subject only while it has local subscribers
// for the channel (plus the linger).
type NATSBroker struct {
	cfg NATSConfig
	nc  *nats.Conn
	hub *handoff.Hub
	log zerolog.Logger

	inbox chan *nats.Msg
	done  chan struct{}
	wg    sync.WaitGroup // deliverLoop and the subscribe confirmations (ensureInterest)

	instance      string       // random id in channel count replies (clusterchannels.go)
	reconnects    atomic.Int64 // times the connection to NATS came back
	slowConsumers atomic.Int64 // times NATS dropped messages for this instance: it fell behind
	refused       atomic.Int64 // messages refused: a body too large, an item on another channel's subject
	refusedLog    atomic.Int64 // unix ns of the last refusal logged (at most one a second)

	// history, once EnableHistory has run, stores every published item
	// (jetstream.go).
	history atomic.Pointer[JetStreamHistory]

	mu      sync.Mutex
	subs    map[string]*nats.Subscription // by channel
	ready   map[string]chan struct{}      // closed once NATS confirmed subs[channel]
	lingers map[string]*linger
	direct  *nats.Subscription
}

// NewNATSBroker connects to NATS and starts taking items for hub. Close
// stops it.
func NewNATSBroker(cfg NATSConfig, hub *handoff.Hub, log zerolog.Logger) (*NATSBroker, error) {
	if cfg.URL == "" && cfg.InProcess == nil {
		return nil, errors.New("nats: no url")
	}
	if cfg.Name == "" {
		cfg.Name = "gripd"
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = DefaultSubjectPrefix
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 5 * time.Second
	}
	if cfg.FlushTimeout <= 0 {
		cfg.FlushTimeout = 2 * time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	b := &NATSBroker{
		cfg: cfg, hub: hub, log: log,
		inbox: make(chan *nats.Msg, natsInboxSize), done: make(chan struct{}),
		subs: map[string]*nats.Subscription{}, ready: map[string]chan struct{}{}, lingers: map[string]*linger{},
		instance: newInstanceID(),
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.CustomInboxPrefix(InboxPrefix(cfg.SubjectPrefix)),
		nats.MaxReconnects(-1), // a fleet outlives NATS restarts
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		// No buffering while disconnected: a publish then fails at once
		// and the publisher gets a 503, instead of an ack for items that
		// may never be sent.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn().Err(err).Msg("NATS disconnected; publishes answer 503 until it is back")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.reconnects.Add(1)
			// Items published meanwhile were missed: the last ids sequencing
			// knows may be stale, and must not hold back what comes now.
			hub.ForgetLastIDs()
			log.Info().Str("server", nc.ConnectedUrlRedacted()).Msg("NATS reconnected; subscriptions restored")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				// NATS reports this once until the subscription catches up,
				// not for every message dropped.
				b.slowConsumers.Add(1)
				ev := log.Error().Err(err).Int64("slow_consumer_total", b.slowConsumers.Load())
				if sub != nil {
					ev = ev.Str("subject", sub.Subject)
				}
				ev.Msg("NATS dropped messages for this instance: it fell behind (items were lost for its clients)")
				return
			}
			ev := log.Error().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("NATS error")
		}),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKey)
		if err != nil {
			return nil, fmt.Errorf("nats nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.InProcess != nil {
		opts = append(opts, nats.InProcessServer(cfg.InProcess))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if cfg.TLSCert != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	url := cfg.URL
	if url == "" {
		url = "in-process" // only named in errors: InProcess connects
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats connect %s: %w", RedactURL(url), err)
	}
	b.nc = nc
	direct, err := nc.QueueSubscribe(PublishSubject(cfg.SubjectPrefix), "gripd", b.publishFromNATS)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats subscribe %s: %w", PublishSubject(cfg.SubjectPrefix), err)
	}
	b.direct = direct
	if _, err := nc.Subscribe(ChannelsSubject(cfg.SubjectPrefix), b.answerChannels); err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats subscribe %s: %w", ChannelsSubject(cfg.SubjectPrefix), err)
	}
	if _, err := nc.Subscribe(RecoverSubject(cfg.SubjectPrefix), b.recoverFromNATS); err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats subscribe %s: %w", RecoverSubject(cfg.SubjectPrefix), err)
	}
	b.wg.Add(1)
	go b.deliverLoop()
	hub.OnChannelChange(b.channelChanged)
	return b, nil
}

// Connected reports whether the NATS connection is up, for health checks.
func (b *NATSBroker) Connected() bool { return b.nc.IsConnected() }

// Reconnects reports how many times the connection to NATS was lost and
// came back since start, for metrics.
func (b *NATSBroker) Reconnects() int64 { return b.reconnects.Load() }

// Publish puts each item on its channel's subject and returns once NATS
// has taken them all (a flush), or an error the publisher should retry on.
func (b *NATSBroker) Publish(ctx context.Context, items []grip.Item) error {
	if !b.nc.IsConnected() {
		return fmt.Errorf("NATS is not connected (%s)", b.nc.Status())
	}
	if h := b.history.Load(); h != nil {
		return h.publish(ctx, items) // stored, then republished to the channel subjects
	}
	for _, it := range items {
		data, err := grip.MarshalItem(it)
		if err != nil {
			return fmt.Errorf("encoding item for channel %q: %w", it.Channel, err)
		}
		if err := b.nc.Publish(ChannelSubject(b.cfg.SubjectPrefix, it.Channel), data); err != nil {
			return fmt.Errorf("NATS publish: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.FlushTimeout)
	defer cancel()
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("NATS did not confirm the publish: %w", err)
	}
	return nil
}

// publishFromNATS takes a publish body sent straight to the publish
// subject (one instance of the fleet gets each, through the queue group).
func (b *NATSBroker) publishFromNATS(m *nats.Msg) {
	if int64(len(m.Data)) > b.cfg.MaxBodyBytes {
		// The control API's limit; the embedded server's max_payload
		// stops far bigger ones before they reach any instance.
		if b.countRefused() {
			b.log.Warn().Int("bytes", len(m.Data)).Int64("max", b.cfg.MaxBodyBytes).Int64("refused_total", b.refused.Load()).
				Msg("publish body on NATS refused: too large")
		}
		if m.Reply != "" {
			_ = m.Respond([]byte("Request body too large."))
		}
		return
	}
	items, ignored, err := grip.ParsePublish(m.Data)
	reply := "Published"
	switch {
	case err != nil:
		reply = err.Error()
		b.log.Warn().Err(err).Msg("bad publish body on NATS")
	default:
		if len(ignored) > 0 {
			b.log.Warn().Strs("formats", ignored).Msg("ignored unknown publish formats")
		}
		if err := b.Publish(context.Background(), items); err != nil {
			reply = "Publish failed: " + err.Error()
			b.log.Error().Err(err).Msg("publish from NATS failed")
		}
	}
	if m.Reply != "" {
		_ = m.Respond([]byte(reply))
	}
}

// channelChanged keeps this instance subscribed to exactly the channels
// it has clients for, lingering a little after the last one leaves.
func (b *NATSBroker) channelChanged(channel string) {
	ready := b.ensureInterest(channel)
	if ready == nil {
		return
	}
	// Wait (outside the broker's lock) until NATS has the interest, so a
	// publish made after the client saw its hold answered cannot pass it
	// by. Every joiner of a new channel waits for the same flush.
	select {
	case <-ready:
	case <-time.After(b.cfg.FlushTimeout):
		b.log.Warn().Str("channel", channel).Msg("NATS subscribe not confirmed in time")
	}
}

// ensureInterest subscribes to or schedules the unsubscribe of channel's
// subject, as its local subscribers say. For a subscription it returns a
// channel closed once NATS has confirmed it; nil otherwise.
func (b *NATSBroker) ensureInterest(channel string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.done:
		return nil
	default:
	}
	if b.hub.SubscriberCount(channel) > 0 {
		if l := b.lingers[channel]; l != nil {
			l.timer.Stop()
			delete(b.lingers, channel)
		}
		if ready, ok := b.ready[channel]; ok {
			return ready
		}
		sub, err := b.nc.ChanSubscribe(ChannelSubject(b.cfg.SubjectPrefix, channel), b.inbox)
		if err != nil {
			b.log.Error().Err(err).Str("channel", channel).Msg("NATS subscribe failed")
			return nil
		}
		_ = sub.SetPendingLimits(-1, -1) // the inbox bounds what is pending
		b.subs[channel] = sub
		ready := make(chan struct{})
		b.ready[channel] = ready
		// Close waits for it: b.done is open (checked above, under b.mu,
		// which Close holds to close it), so this Add comes before Close's
		// Wait.
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer close(ready)
			if !b.nc.IsConnected() {
				return // restored by the client library when NATS is back
			}
			if err := b.nc.FlushTimeout(b.cfg.FlushTimeout); err != nil {
				b.log.Warn().Err(err).Str("channel", channel).Msg("NATS subscribe not confirmed")
			}
		}()
		return ready
	}
	if b.subs[channel] == nil || b.lingers[channel] != nil {
		return nil
	}
	l := &linger{}
	l.timer = time.AfterFunc(b.cfg.Linger, func() { b.lingerEnded(channel, l) })
	b.lingers[channel] = l
	return nil
}

// linger is a pending unsubscribe; its identity tells a late timer from
// the current one.
type linger struct{ timer *time.Timer }

func (b *NATSBroker) lingerEnded(channel string, l *linger) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lingers[channel] != l {
		return // a newer linger replaced this one
	}
	delete(b.lingers, channel)
	if b.hub.SubscriberCount(channel) > 0 {
		return
	}
	if sub := b.subs[channel]; sub != nil {
		_ = sub.Unsubscribe()
		delete(b.subs, channel)
		delete(b.ready, channel)
		// From now on this instance misses the channel's items: what
		// sequencing knows of it would go stale.
		b.hub.ForgetChannel(channel)
	}
}

// NATSSubscriptions reports how many channel subjects this instance is
// subscribed to now.
func (b *NATSBroker) NATSSubscriptions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// countRefused counts a refused message and reports whether to log it: at
// most one line a second, so a flood of bad messages does not flood the
// log (refused_total in the line says how many there were).
func (b *NATSBroker) countRefused() bool {
	b.refused.Add(1)
	now := time.Now().UnixNano()
	last := b.refusedLog.Load()
	return now-last >= int64(time.Second) && b.refusedLog.CompareAndSwap(last, now)
}

// RefusedMessages reports how many messages from NATS this instance
// refused: publish bodies over the limit, items whose channel is not
// their subject's.
func (b *NATSBroker) RefusedMessages() int64 { return b.refused.Load() }

// SlowConsumers reports how many times NATS dropped messages for this
// instance because it fell behind.
func (b *NATSBroker) SlowConsumers() int64 { return b.slowConsumers.Load() }

// deliverLoop hands what NATS brings to the hub, one message at a time,
// in the order NATS delivered them.
func (b *NATSBroker) deliverLoop() {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case m := <-b.inbox:
			channel, ok := ChannelFromSubject(b.cfg.SubjectPrefix, m.Subject)
			if !ok {
				continue
			}
			it, err := grip.ParseItem(m.Data)
			if err != nil {
				b.log.Warn().Err(err).Str("subject", m.Subject).Msg("bad item on NATS")
				continue
			}
			if it.Channel != channel {
				// The subject is what NATS permissions are written for; an
				// item claiming another channel is refused, not rerouted.
				if b.countRefused() {
					b.log.Warn().Str("subject", m.Subject).Str("item_channel", it.Channel).Int64("refused_total", b.refused.Load()).
						Msg("item on NATS refused: its channel is not its subject's")
				}
				continue
			}
			// Its place in history, when it came through it (jetstream.go).
			it.Seq = historySeq(m)
			b.hub.Deliver([]grip.Item{it})
		}
	}
}

// Close stops taking items, closes the NATS connection and waits for
// the broker's goroutines to end.
func (b *NATSBroker) Close() {
	b.mu.Lock()
	select {
	case <-b.done:
		b.mu.Unlock()
		return
	default:
	}
	close(b.done)
	for _, l := range b.lingers {
		l.timer.Stop()
	}
	b.mu.Unlock()
	b.nc.Close()
	b.wg.Wait()
}
