// Package proxy is the client side of gripd: the route table, forwarding
// requests to backends (signed with Grip-Sig), relaying plain responses,
// and turning a backend's GRIP instruction into a parked long-poll or
// stream on a handoff.Hub.
//
// Held connections that fall out of step are recovered here: a long-poll
// is re-requested from its backend with Grip-Last (rerequest.go), a
// stream fetches its next link (nextlink.go), unless stored history can
// catch it up (history.go). An SSE client that comes back with
// Last-Event-ID, or a hold whose prev-id is behind on an instance that
// cannot tell, is resumed from that history (resume.go).
//
// It reports holds and backend requests to an optional Observer
// (metrics.go) and knows nothing of the metrics system behind it.
package proxy
