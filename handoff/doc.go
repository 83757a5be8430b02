// Package handoff owns parked connections: the channel index, subscribe
// and unsubscribe, fan-out of published items into each subscriber's
// bounded queue, and the loops that keep a held stream or long-poll until
// something ends it.
//
// Fan-out never blocks: a subscriber whose queue is full is disconnected
// (and counted) rather than allowed to hold up the others or grow memory
// without bound.
package handoff
