// Package publish gets published items into gripd: the HTTP control API
// (Pushpin's POST /publish/ with optional auth) and the Broker that carries
// items to every instance's handoff.Hub.
package publish
