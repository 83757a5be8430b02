package publish

import (
	"context"
	"errors"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// Broker carries published items to the hub of every gripd instance: the
// local hub alone, or every instance of a cluster.
type Broker interface {
	// Publish hands items over for delivery, in order. The control API
	// answers the publisher only after Publish returns, so a nil error means
	// "accepted for delivery" (the items will reach every hub), and an error
	// means the publisher should retry. Publish must not wait for the
	// subscribers themselves.
	Publish(ctx context.Context, items []grip.Item) error
}

// LocalBroker delivers to this instance's hub only: the broker of a gripd
// that runs alone, with nothing to install.
type LocalBroker struct {
	Hub *handoff.Hub
}

// Publish gives items to the hub. Hub.Deliver never blocks on a slow
// subscriber, so once it returns the items are handed over and there is
// nothing left to fail; ctx is not needed.
func (b LocalBroker) Publish(ctx context.Context, items []grip.Item) error {
	if b.Hub == nil {
		return errors.New("local broker: no hub")
	}
	b.Hub.Deliver(items)
	return nil
}
