package testutil

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// WaitLogLine waits for a JSON log line (as zerolog writes them) whose
// message is msg, and returns its fields. It fails the test, showing the
// whole log, when none comes within WaitTimeout.
func (b *Buffer) WaitLogLine(t testing.TB, msg string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for {
		text := b.String()
		for _, line := range strings.Split(text, "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["message"] == msg {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q log line within %v in:\n%s", msg, WaitTimeout, text)
		}
		time.Sleep(pollEvery)
	}
}
