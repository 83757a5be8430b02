// Package testutil is the test harness the packages' tests share instead
// of keeping copies: GRIP backends (httptest servers that answer with
// Grip-Hold), a client for held streams, bounded waits (for a condition,
// for a hub's subscribers), free loopback ports, an in-process NATS
// server and a buffer for logs and process output.
//
// It is imported by tests only. Every helper takes a testing.TB, bounds
// every wait by WaitTimeout, and leaves no goroutine running once the
// test's cleanup is done, so the packages' leak checks stay meaningful.
package testutil
