package handoff

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestMain fails the run if the tests leave goroutines behind: every hold
// loop and helper a test starts must have returned by the end.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if err := waitGoroutines(before, 2*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// waitGoroutines polls until at most want goroutines are left, or fails
// with the stacks of all of them when the deadline passes. Goroutines that
// have been told to stop may still be on their way out, so it waits a
// little; there is no signal to wait for instead.
func waitGoroutines(want int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Errorf("goroutine leak: %d goroutines at the start, %d after the tests:\n\n%s", want, n, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
