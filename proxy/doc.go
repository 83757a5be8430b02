// Package proxy is the client side of gripd: the route table, forwarding
// requests to backends (signed with Grip-Sig), relaying plain responses,
// and turning a backend's GRIP instruction into a parked long-poll or
// stream on a handoff.Hub.
//
// It reports holds and backend requests to an optional Observer
// (metrics.go) and knows nothing of the metrics system behind it.
package proxy
