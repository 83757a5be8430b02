// Package publish gets published items into gripd: the HTTP control API
// (Pushpin's POST /publish/ and POST /recover, with optional auth) and the
// Broker that carries items (and recovers) to every instance's
// handoff.Hub. Over NATS, every instance also answers requests for its
// channel counts, so one instance can report the whole fleet's
// (clusterchannels.go).
package publish
