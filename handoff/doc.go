// Package handoff owns parked connections: the channel index, subscribe
// and unsubscribe, fan-out of published items into each subscriber's
// bounded queue, and the loops that keep a held stream or long-poll until
// something ends it.
//
// Fan-out never blocks: a subscriber whose queue is full is disconnected
// (and counted) rather than allowed to hold up the others or grow memory
// without bound.
//
// A held HTTP/1.1 stream is parked (parked.go): taken off the HTTP server
// and kept by the hub with no goroutine of its own. One writer per CPU
// (writers.go) writes to the parked streams that have something to send,
// each in one write of every item waiting for it (wire.go), so that under
// load items share writes rather than queueing for a write each; one
// epoll set (watch.go) notices their clients leaving.
//
// Delivery is sequenced per channel (sequencer.go: an item waits for its
// prev-id's item, a repeated id is dropped), and each connection follows
// its own prev-id chain and filters as it takes items (take.go), telling
// its owner when it fell out of step and must be recovered.
//
// History (history.go) is the fleet's record of what was published on
// each channel, behind one interface that package publish implements over
// JetStream: a connection that resumes is replayed what it missed before
// its live items, which then skip what the replay covered, and one that
// fell out of step is caught up from it before its backend is asked.
package handoff
