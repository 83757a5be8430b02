// Package leakcheck fails a test binary that leaves goroutines behind:
// every hold loop, parked stream and helper a test starts must have
// returned by the end of the run.
package leakcheck

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// Main runs the tests, then checks for leaked goroutines; call it from
// TestMain.
func Main(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	// The fuzzing engine leaves its own signal goroutine running.
	fuzzing := flag.Lookup("test.fuzz") != nil && flag.Lookup("test.fuzz").Value.String() != ""
	if code == 0 && !fuzzing {
		if err := wait(before, 5*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// wait polls until at most want goroutines are left, or fails with the
// stacks of all of them when the deadline passes. Goroutines that have
// been told to stop may still be on their way out, so it waits a little;
// there is no signal to wait for instead.
func wait(want int, within time.Duration) error {
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
