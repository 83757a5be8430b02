// Package grip is the GRIP protocol as pure functions and types: the
// instructions a backend gives in its response (Grip-* headers or an
// application/grip-instruct body, next links, subscription meta), the
// Grip-Sig token gripd signs requests with, the publish format (items
// with their http-response, http-stream and ws-message formats, ids and
// prev-ids), and the filters a subscription runs on what is published to
// it (filter.go).
//
// It imports nothing else of gripd's and does no I/O, so every parser here
// can be table-tested and fuzzed on its own.
package grip
