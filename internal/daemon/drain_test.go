package daemon

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/gripd/gripd/internal/testutil"
)

// TestDrainEndsWhenTheLastClientHasLeft: with an hour-long drain window,
// gripd exits as soon as its last held client has gone by itself, not
// when the window is over.
func TestDrainEndsWhenTheLastClientHasLeft(t *testing.T) {
	a := backend(t, "A")
	td := startTestDaemon(t, daemonYAML("drain: {duration: 1h}", a.URL))
	_, closeStream := openStream(t, td.url("/stream"))
	readyURL := td.admin("/readyz")
	td.signals <- syscall.SIGTERM
	testutil.WaitFor(t, "/readyz to fail once draining", func() bool { return readyz(t, readyURL) == http.StatusServiceUnavailable })
	closeStream() // the client leaves on its own
	select {
	case err := <-td.done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
		td.done <- nil // for the cleanup
	case <-time.After(failAfter):
		t.Fatalf("gripd still draining %v after its last client left", failAfter)
	}
}
