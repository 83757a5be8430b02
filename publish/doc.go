// Package publish gets published items into gripd: the HTTP control API
// (Pushpin's POST /publish/ and POST /recover, with optional auth) and the
// Broker that carries items (and recovers) to every instance's
// handoff.Hub. Over NATS, every instance also answers requests for its
// channel counts, so one instance can report the whole fleet's
// (clusterchannels.go).
//
// With history on, the NATS broker stores every item in a JetStream
// stream that republishes it to the instances once stored (jetstream.go),
// and reads it back, as a handoff.History, for clients that resume or
// fell behind (history.go).
package publish
