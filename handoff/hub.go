package handoff

import "github.com/gripd/gripd/grip"

// Hub is the channel index of parked connections on this instance.
// (Work in progress: the real implementation lands shortly.)
type Hub struct{}

// Deliver hands published items to every subscriber of their channels.
// It never blocks on a slow subscriber.
func (h *Hub) Deliver(items []grip.Item) {}
