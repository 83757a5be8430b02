// Package testutil is the test harness that the tests of proxy, publish,
// internal/daemon, internal/admin and integration share instead of
// keeping copies:
//
//   - GRIP backends: Backend (any handler) and StreamBackend (holds every
//     request as an SSE stream on a channel), httptest servers closed
//     with the test;
//   - a client for held streams: OpenStream, then Stream.ReadLine,
//     ReadToEnd or ReadRest, every read bounded;
//   - bounded waits: WaitFor (a condition), WaitSubscribers (a hub's
//     subscriber count), Buffer.WaitLogLine (a JSON log line), and
//     Context for calls that take one;
//   - FreeAddr and FreePort, for servers and processes started later;
//   - StartNATS and StartNATSWith, an in-process NATS server;
//   - Buffer, a log or a process's output the test reads while it is
//     written.
//
// It is imported by tests only, and imports none of gripd's packages, so
// any package's tests can use it. Every helper takes a testing.TB, bounds
// every wait by WaitTimeout, and leaves no goroutine running once the
// test's cleanup is done, so the packages' leak checks stay meaningful.
package testutil
