package integration

// Churn: thousands of SSE clients connect and leave in waves for a minute
// while items are published; afterwards gripd's goroutines, open file
// descriptors and memory must come back near where they started. Leaks
// that one test connection cannot show (a goroutine, a timer or a map
// entry per connection left behind) add up to a visible figure here.
//
// GRIPD_CHURN_CLIENTS (default 5000) and GRIPD_CHURN_SECONDS (default 60)
// change the size for a quick local run.

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// churnFigures are the process figures compared before and after.
type churnFigures struct {
	goroutines, fds, rssMiB, heapMiB float64
}

func readFigures(t *testing.T, g *lifecycleGripd) churnFigures {
	t.Helper()
	m, err := g.metrics()
	if err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	return churnFigures{
		goroutines: m["go_goroutines"],
		fds:        m["process_open_fds"],
		rssMiB:     m["process_resident_memory_bytes"] / (1 << 20),
		heapMiB:    m["go_memstats_heap_inuse_bytes"] / (1 << 20),
	}
}

func (f churnFigures) String() string {
	return fmt.Sprintf("goroutines %.0f, open fds %.0f, RSS %.1f MiB, heap in use %.1f MiB", f.goroutines, f.fds, f.rssMiB, f.heapMiB)
}

func TestChurn(t *testing.T) {
	clients := envInt("GRIPD_CHURN_CLIENTS", 5000)
	duration := time.Duration(envInt("GRIPD_CHURN_SECONDS", 60)) * time.Second
	g := startLifecycleGripd(t, "--drain-duration", "0", "--log-level", "warn")
	addr := g.listen

	base := readFigures(t, g)
	t.Logf("baseline: %v", base)

	// A publisher sends an item to every channel every 50 ms for the
	// whole run, so clients are joining and leaving channels while items
	// are being delivered to them.
	const channels = 10
	stopPub := make(chan struct{})
	var pubWG sync.WaitGroup
	var published, pubErrs int
	pubWG.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-stopPub:
				return
			case <-tick.C:
			}
			for ch := range channels {
				if err := g.publish(fmt.Sprintf("churn-%d", ch), fmt.Sprintf("data: %d\n\n", seq)); err != nil {
					pubErrs++
				} else {
					published++
				}
			}
		}
	})

	var peak churnFigures
	start := time.Now()
	waves, connected, withItems := 0, 0, 0
	for time.Since(start) < duration {
		waves++
		// Connect the wave, a few hundred at a time.
		wave := make([]*sseClient, 0, clients)
		for i := range clients {
			c, err := dialSSE(addr, fmt.Sprintf("/sse/churn-%d", i%channels))
			if err != nil {
				t.Fatalf("wave %d: client %d: %v", waves, i, err)
			}
			wave = append(wave, c)
		}
		waitAll(t, wave, 60*time.Second, fmt.Sprintf("wave %d: the held stream's first bytes", waves), func(c *sseClient) chan struct{} { return c.held })
		connected += len(wave)
		if f := readFigures(t, g); f.goroutines > peak.goroutines {
			peak = f
		}
		// Hold until every client has had a published item, then leave:
		// half abruptly, the rest after the other half, as tabs close.
		deadline := time.Now().Add(30 * time.Second)
		for _, c := range wave {
			for c.items.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if c.items.Load() > 0 {
				withItems++
			}
		}
		for _, c := range wave {
			c.close()
		}
		waitAll(t, wave, 30*time.Second, fmt.Sprintf("wave %d: the readers to end", waves), func(c *sseClient) chan struct{} { return c.ended })
	}
	close(stopPub)
	pubWG.Wait()
	if withItems != connected {
		t.Errorf("%d of %d clients got no published item while held", connected-withItems, connected)
	}
	if pubErrs > 0 {
		t.Errorf("%d publishes failed (%d ok)", pubErrs, published)
	}

	// gripd notices each departure (its reader sees EOF); wait for the
	// held count to reach zero, then for the figures to settle.
	var after churnFigures
	settle := time.Now().Add(60 * time.Second)
	for {
		m, err := g.metrics()
		if err != nil {
			t.Fatal(err)
		}
		after = readFigures(t, g)
		backHome := held(m) == 0 && after.goroutines <= base.goroutines+10 && after.fds <= base.fds+10
		if backHome || time.Now().After(settle) {
			if !backHome {
				t.Errorf("after the churn: %.0f held connections, %v; baseline %v", held(m), after, base)
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("churn: %d waves of %d SSE clients over %v (%d connections), %d items published", waves, clients, time.Since(start).Round(time.Second), connected, published)
	t.Logf("peak (wave held): %v", peak)
	t.Logf("after:            %v", after)
	t.Logf("baseline:         %v", base)
	// Goroutines and descriptors are checked above. Memory is printed,
	// not asserted: the runtime keeps freed heap until its next collection
	// and returns pages to the OS lazily, so RSS only says that the peak
	// did not keep growing from wave to wave.
}
