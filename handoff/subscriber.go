package handoff

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gripd/gripd/grip"
)

// Kind is what a subscriber is; it decides which format of an item it
// takes.
type Kind int

// The kinds of subscriber.
const (
	KindResponse  Kind = iota // a held long-poll: takes http-response
	KindStream                // an open HTTP stream: takes http-stream
	KindWebSocket             // a WebSocket: takes ws-message

	kindCount // how many kinds there are
)

func (k Kind) String() string {
	switch k {
	case KindResponse:
		return "response"
	case KindStream:
		return "stream"
	case KindWebSocket:
		return "ws"
	}
	return "unknown"
}

// Why a subscriber was ended by the hub rather than by its owner.
var (
	ErrSlow   = errors.New("subscriber too slow: its queue was full")
	ErrClosed = errors.New("hub closed")
)

// Subscriber is one parked connection's subscription to some channels.
// Its owner reads items from C until Done is closed or it unsubscribes.
type Subscriber struct {
	kind  Kind
	queue chan *grip.Item

	mu         sync.Mutex // guards channels and the delivery rules
	channels   []string
	registered atomic.Bool // between Subscribe and Unsubscribe

	// rules are what the connection asked of its items (take.go), guarded
	// by mu; nil for a plain subscriber, so that one costs nothing more.
	rules *deliveryRules
	// recoverC is Hub.Recover's signal; non-nil makes the subscriber
	// recoverable (see Take). Set before the subscriber is registered.
	recoverC chan struct{}

	// notify, when set (SetNotify), is called after every item queued and
	// when the subscription ends, so a parked stream needs no goroutine
	// waiting on C.
	notify atomic.Pointer[func()]

	endOnce sync.Once
	done    chan struct{}
	ended   atomic.Bool // set with err, just before done is closed
	err     error       // set before done is closed
}

// Kind reports what the subscriber is.
func (s *Subscriber) Kind() Kind { return s.kind }

// Channels reports the channels the subscriber is on.
func (s *Subscriber) Channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.channels)
}

func (s *Subscriber) channelCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.channels)
}

// C delivers the items published to the subscriber's channels, in the
// order they were published on each channel. Each item carries the
// subscriber's format (the hub does not queue items that lack it).
func (s *Subscriber) C() <-chan *grip.Item { return s.queue }

// Done is closed when the hub ended the subscription; Err says why.
func (s *Subscriber) Done() <-chan struct{} { return s.done }

// Err is ErrSlow or ErrClosed once Done is closed, else nil.
func (s *Subscriber) Err() error {
	// A flag rather than a look at done: writers ask for every write.
	if !s.ended.Load() {
		return nil
	}
	return s.err
}

// end closes done once, recording why.
func (s *Subscriber) end(err error) bool {
	ended := false
	s.endOnce.Do(func() {
		s.err = err
		s.ended.Store(true)
		close(s.done)
		ended = true
	})
	if ended {
		s.wake()
	}
	return ended
}

// SetNotify makes the hub call f after every item it queues for s and
// when s ends, so that an owner can drain C from a goroutine started on
// demand instead of keeping one waiting. f must not block.
func (s *Subscriber) SetNotify(f func()) {
	s.notify.Store(&f)
}

// wake calls the notify hook, if any.
func (s *Subscriber) wake() {
	if f := s.notify.Load(); f != nil {
		(*f)()
	}
}

// wants reports whether the subscriber takes a format of the item. A
// hint is taken by recoverable subscribers only; to others it means
// nothing.
func (s *Subscriber) wants(it *grip.Item) bool {
	switch s.kind {
	case KindResponse:
		return it.HTTPResponse != nil && (it.HTTPResponse.Action != grip.ActionHint || s.recoverC != nil)
	case KindStream:
		return it.HTTPStream != nil && (it.HTTPStream.Action != grip.ActionHint || s.recoverC != nil)
	case KindWebSocket:
		return it.WSMessage != nil
	}
	return false
}
