// Package publish gets published items into gripd: the HTTP control API
// (Pushpin's POST /publish/ with optional auth) and the Broker that carries
// items to every instance's handoff.Hub. Over NATS, every instance also
// answers requests for its channel counts, so one instance can report the
// whole fleet's (clusterchannels.go).
package publish
