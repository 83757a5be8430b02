package admin

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/gripd/gripd/handoff"
)

// The status page's data: one sample a second of what the hub, the
// control API and the proxy already count, computed by one sampler
// goroutine that runs only while someone watches (GET /status/events, see
// statusevents.go). Nothing here touches the delivery path: a sample is a
// handful of atomic loads, hub.Stats (one lock per shard) and, every few
// samples, the hub's channel snapshot for the busiest channels.

const (
	// statusEvery is how often a sample is taken.
	statusEvery = time.Second
	// statusWindow is how far back the page's charts look; the feed keeps
	// that much history, so a new viewer sees the recent past at once.
	statusWindow = 5 * time.Minute
	// statusTopEvery is how many samples the busiest channels are kept
	// for before the snapshot is taken again: the snapshot visits every
	// subscription, so it is not taken every second.
	statusTopEvery = 5
	// statusTopN is how many of the busiest channels a sample lists.
	statusTopN = 10
	// statusWatcherBuffer is how many samples may wait for one viewer; a
	// viewer that falls this far behind is disconnected (its browser
	// reconnects and gets the history again).
	statusWatcherBuffer = 16
)

// errStatusClosed is what watch returns once the admin listener is shutting down.
var errStatusClosed = errors.New("the status feed is shut down")

// statusSources are the counters a sample is computed from.
type statusSources struct {
	hub *handoff.Hub
	// publishes is how many publishes the control API accepted, ever.
	publishes func() int64
	// backendErrors is how many backend requests failed or answered 5xx, ever.
	backendErrors func() int64
}

// statusReading is the raw counters at one moment.
type statusReading struct {
	at            time.Time
	stats         handoff.Stats
	publishes     int64
	backendErrors int64
}

func (src statusSources) read(now time.Time) statusReading {
	return statusReading{at: now, stats: src.hub.Stats(), publishes: src.publishes(), backendErrors: src.backendErrors()}
}

// statusSample is one sample as the page gets it (JSON, one per event).
type statusSample struct {
	// Time is when the sample was taken, in milliseconds since 1970.
	Time int64 `json:"t"`
	// Held is the connections held now, by kind.
	Held heldJSON `json:"held"`
	// Channels is how many channels have at least one held connection.
	Channels int `json:"channels"`
	// Rates per second over the last interval.
	PublishesPerSec     float64 `json:"publishes_per_s"`      // publishes accepted by this instance's control API
	DeliveriesPerSec    float64 `json:"deliveries_per_s"`     // items queued to held connections
	DroppedPerSec       float64 `json:"dropped_per_s"`        // items not queued: the connection's queue was full
	SlowPerSec          float64 `json:"slow_per_s"`           // connections disconnected as too slow
	BackendErrorsPerSec float64 `json:"backend_errors_per_s"` // backend requests failed or 5xx
	// Totals since gripd started.
	Totals statusTotals `json:"totals"`
	// Top is the busiest channels, most subscribers first (refreshed
	// every statusTopEvery samples).
	Top []channelJSON `json:"top"`
}

// heldJSON is held connections by kind.
type heldJSON struct {
	Response int64 `json:"response"` // long-polls
	Stream   int64 `json:"stream"`   // streams (SSE and other HTTP streaming)
	WS       int64 `json:"ws"`       // WebSockets
}

// statusTotals are the counters behind the rates.
type statusTotals struct {
	Publishes     int64 `json:"publishes"`
	Deliveries    int64 `json:"deliveries"`
	Dropped       int64 `json:"dropped"`
	Slow          int64 `json:"slow"`
	BackendErrors int64 `json:"backend_errors"`
}

// makeSample computes a sample from two readings. Rates are over the
// time between them; counters never go down, but a rate is never shown
// below zero all the same.
func makeSample(prev, cur statusReading, top []channelJSON) statusSample {
	secs := cur.at.Sub(prev.at).Seconds()
	rate := func(a, b int64) float64 {
		if secs <= 0 || b <= a {
			return 0
		}
		return float64(b-a) / secs
	}
	dropped := func(st handoff.Stats) int64 {
		d := st.Dropped
		return d.HTTPResponse + d.HTTPStream + d.WSMessage
	}
	st := cur.stats
	return statusSample{
		Time:                cur.at.UnixMilli(),
		Held:                heldJSON{Response: st.Responses, Stream: st.Streams, WS: st.WebSockets},
		Channels:            st.Channels,
		PublishesPerSec:     rate(prev.publishes, cur.publishes),
		DeliveriesPerSec:    rate(prev.stats.Delivered, st.Delivered),
		DroppedPerSec:       rate(dropped(prev.stats), dropped(st)),
		SlowPerSec:          rate(prev.stats.Slow, st.Slow),
		BackendErrorsPerSec: rate(prev.backendErrors, cur.backendErrors),
		Totals: statusTotals{
			Publishes: cur.publishes, Deliveries: st.Delivered, Dropped: dropped(st),
			Slow: st.Slow, BackendErrors: cur.backendErrors,
		},
		Top: top,
	}
}

// busiest returns the n channels with the most subscribers, most first,
// then by name.
func busiest(counts []handoff.ChannelCount, n int) []channelJSON {
	sortBusiestFirst(counts)
	out := make([]channelJSON, 0, min(n, len(counts)))
	for _, c := range counts[:min(n, len(counts))] {
		out = append(out, toChannelJSON(c))
	}
	return out
}

// statusFeed runs the sampler and hands its samples to the viewers. It is
// owned by the admin handler: Close stops the sampler and ends every
// viewer's stream.
type statusFeed struct {
	src   statusSources
	every time.Duration
	now   func() time.Time

	mu       sync.Mutex
	watchers map[chan []byte]struct{}
	history  []timedSample  // oldest first, at most statusWindow old
	stop     func()         // stops the running sampler; nil when none runs
	closed   bool           // Close was called
	running  sync.WaitGroup // samplers not yet returned
}

// timedSample is an encoded sample and when it was taken.
type timedSample struct {
	at   time.Time
	data []byte
}

func newStatusFeed(src statusSources) *statusFeed {
	return &statusFeed{src: src, every: statusEvery, now: time.Now, watchers: map[chan []byte]struct{}{}}
}

// watch registers a viewer. It returns the samples of the last
// statusWindow (oldest first), the channel the next ones arrive on (closed
// when the viewer falls behind or the feed shuts down) and the function to
// call when the viewer leaves. The first viewer starts the sampler; the
// last one to leave stops it.
func (f *statusFeed) watch() (history [][]byte, samples <-chan []byte, leave func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, nil, nil, errStatusClosed
	}
	f.trimHistory(f.now())
	for _, s := range f.history {
		history = append(history, s.data)
	}
	ch := make(chan []byte, statusWatcherBuffer)
	f.watchers[ch] = struct{}{}
	if f.stop == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f.stop = cancel
		f.running.Add(1)
		go f.sample(ctx)
	}
	var once sync.Once
	leave = func() { once.Do(func() { f.leave(ch) }) }
	return history, ch, leave, nil
}

// leave forgets a viewer, and stops the sampler when it was the last.
func (f *statusFeed) leave(ch chan []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.watchers[ch]; ok {
		delete(f.watchers, ch)
		close(ch)
	}
	if len(f.watchers) == 0 && f.stop != nil {
		f.stop()
		f.stop = nil
	}
}

// Close stops the sampler, ends every viewer's stream and waits until the
// sampler has returned. Later viewers are refused.
func (f *statusFeed) Close() {
	f.mu.Lock()
	f.closed = true
	for ch := range f.watchers {
		delete(f.watchers, ch)
		close(ch)
	}
	if f.stop != nil {
		f.stop()
		f.stop = nil
	}
	f.mu.Unlock()
	f.running.Wait()
}

// sample is the sampler: every f.every it reads the counters, turns the
// difference from the last reading into a sample and hands it to every
// viewer, until ctx is cancelled (always under f.mu, so a stopped sampler
// never publishes: a new one may already own the history).
func (f *statusFeed) sample(ctx context.Context) {
	defer f.running.Done()
	ticker := time.NewTicker(f.every)
	defer ticker.Stop()
	prev := f.src.read(f.now())
	var top []channelJSON
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		cur := f.src.read(f.now())
		if n%statusTopEvery == 0 {
			top = busiest(f.src.hub.Channels(), statusTopN)
		}
		data, err := json.Marshal(makeSample(prev, cur, top))
		prev = cur
		if err != nil {
			continue // cannot happen with these types; never stop the feed for it
		}
		f.mu.Lock()
		if ctx.Err() != nil {
			f.mu.Unlock()
			return
		}
		f.history = append(f.history, timedSample{at: cur.at, data: data})
		f.trimHistory(cur.at)
		for ch := range f.watchers {
			select {
			case ch <- data:
			default: // too far behind: let it go rather than wait for it
				delete(f.watchers, ch)
				close(ch)
			}
		}
		f.mu.Unlock()
	}
}

// trimHistory drops samples older than statusWindow. Called with f.mu held.
func (f *statusFeed) trimHistory(now time.Time) {
	i := 0
	if limit := int(statusWindow/f.every) + 1; len(f.history) > limit {
		i = len(f.history) - limit // bounded even when samples come faster (tests)
	}
	for i < len(f.history) && now.Sub(f.history[i].at) > statusWindow {
		i++
	}
	if i > 0 {
		f.history = slices.Delete(f.history, 0, i)
	}
}
