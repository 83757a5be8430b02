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

// settle waits until gripd holds nothing and its goroutines and file
// descriptors are back at base, then asks for two collections (the admin
// listener's profiler runs runtime.GC for ?gc=1; the second empties the
// sync.Pools' victim caches), and reads the figures. An idle process would otherwise
// not collect for minutes, and freed memory would not show.
func settle(t *testing.T, g *lifecycleGripd, base churnFigures, what string) churnFigures {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m, err := g.metrics()
		if err != nil {
			t.Fatal(err)
		}
		f := readFigures(t, g)
		if held(m) == 0 && f.goroutines <= base.goroutines+10 && f.fds <= base.fds+10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %.0f held connections, %v; baseline %v", what, held(m), f, base)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for range 2 {
		if code, body := httpGet("http://" + g.admin + "/debug/pprof/heap?gc=1&debug=1"); code != 200 {
			t.Fatalf("GET /debug/pprof/heap?gc=1: %d %.200s", code, body)
		}
	}
	return readFigures(t, g)
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
	var firstPubErr error
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
					if pubErrs == 0 {
						firstPubErr = err
					}
					pubErrs++
				} else {
					published++
				}
			}
		}
	})

	var peak, warm churnFigures
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
		if waves == 1 {
			// After one full wave the runtime has grown what it never
			// gives back (goroutine descriptors, maps sized for the peak):
			// the figures to compare the end with.
			warm = settle(t, g, base, "after the first wave")
		}
	}
	close(stopPub)
	pubWG.Wait()
	if withItems != connected {
		t.Errorf("%d of %d clients got no published item while held", connected-withItems, connected)
	}
	if pubErrs > 0 {
		t.Errorf("%d publishes failed (%d ok); the first: %v", pubErrs, published, firstPubErr)
	}

	after := settle(t, g, base, "after the churn")
	t.Logf("churn: %d waves of %d SSE clients over %v (%d connections), %d items published", waves, clients, time.Since(start).Round(time.Second), connected, published)
	t.Logf("baseline (cold):        %v", base)
	t.Logf("peak (a wave held):     %v", peak)
	t.Logf("after the first wave:   %v", warm)
	t.Logf("after the last wave:    %v", after)
	if path := os.Getenv("GRIPD_CHURN_HEAP_PROFILE"); path != "" {
		// For a closer look: go tool pprof -top -inuse_space PATH
		if code, body := httpGet("http://" + g.admin + "/debug/pprof/heap"); code == 200 {
			_ = os.WriteFile(path, []byte(body), 0o644)
		}
	}
	// Per-connection leaks grow with every wave; what the runtime keeps
	// after the first is sized by the peak and stays put.
	if after.heapMiB > warm.heapMiB+4 {
		t.Errorf("heap in use %.1f MiB after %d waves, %.1f MiB after the first: memory kept per departed client", after.heapMiB, waves, warm.heapMiB)
	}
	// RSS is printed, not asserted: how soon the runtime hands freed pages
	// back to the OS (its background scavenger) is its own business, and
	// the heap above already tells whether anything is kept.
}
