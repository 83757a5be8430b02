package integration

// Drain: SIGTERM makes gripd a lame duck. /readyz fails at once, the
// client port stops accepting, and the held connections end spread over
// the drain window (streams with a clean end, long-polls with their
// timeout response) rather than all in the same instant; then the process
// exits 0. The test prints how many ended in each slice of the window.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDrainSpreadsCloses(t *testing.T) {
	const (
		streams = 400
		polls   = 100
		window  = 4 * time.Second
		slices  = 8
	)
	g := startLifecycleGripd(t, "--drain-duration", window.String())

	sse := make([]*sseClient, streams)
	for i := range sse {
		c, err := dialSSE(g.listen, fmt.Sprintf("/sse/drain-%d", i%10))
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		sse[i] = c
	}
	waitAll(t, sse, 30*time.Second, "streams held", func(c *sseClient) chan struct{} { return c.held })
	type pollResult struct {
		status int
		body   string
		at     time.Time
	}
	pollDone := make(chan pollResult, polls)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range polls {
		go func() {
			resp, err := client.Get(fmt.Sprintf("http://%s/poll/poll-%d", g.listen, i%10))
			if err != nil {
				pollDone <- pollResult{body: err.Error(), at: time.Now()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			pollDone <- pollResult{status: resp.StatusCode, body: string(b), at: time.Now()}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := g.metrics()
		if err != nil {
			t.Fatal(err)
		}
		if held(m) == streams+polls {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%.0f held, want %d", held(m), streams+polls)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Published items still reach the connections being drained.
	if err := g.publish("drain-0", "data: before\n\n"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := g.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	g.proc.intended.Store(true)
	for code, _ := httpGet("http://" + g.admin + "/readyz"); code != http.StatusServiceUnavailable; code, _ = httpGet("http://" + g.admin + "/readyz") {
		if time.Since(start) > window/2 {
			t.Fatalf("/readyz answered %d half-way through the drain, want 503", code)
		}
		time.Sleep(5 * time.Millisecond)
	}
	readyzAfter := time.Since(start)
	if conn, err := net.DialTimeout("tcp", g.listen, time.Second); err == nil {
		conn.Close()
		t.Error("the client port still accepts connections while draining")
	}

	var ends []time.Duration
	waitAll(t, sse, window+20*time.Second, "streams ended", func(c *sseClient) chan struct{} { return c.ended })
	if sse[0].items.Load() != 1 {
		t.Errorf("a stream on drain-0 got %d items, want the one published before the drain", sse[0].items.Load())
	}
	unclean := 0
	for _, c := range sse {
		ends = append(ends, time.Unix(0, c.endedAt.Load()).Sub(start))
		if !c.cleanly.Load() {
			unclean++
		}
	}
	badPolls := 0
	for range polls {
		r := <-pollDone
		ends = append(ends, r.at.Sub(start))
		if r.status != 200 || r.body != "timeout\n" {
			badPolls++
			if badPolls == 1 {
				t.Errorf("a long-poll got %d %q, want its timeout response", r.status, r.body)
			}
		}
	}
	if unclean > 0 {
		t.Errorf("%d of %d streams ended without the last chunk", unclean, streams)
	}
	select {
	case <-g.proc.done:
		if g.proc.waitErr != nil {
			t.Errorf("gripd exited with %v after the drain, want 0", g.proc.waitErr)
		}
	case <-time.After(window + 20*time.Second):
		t.Fatal("gripd did not exit after the drain")
	}
	exited := time.Since(start)

	// Closes per slice of the window.
	slice := window / slices
	counts := make([]int, slices+1) // the last counts those after the window
	for _, e := range ends {
		counts[min(int(e/slice), slices)]++
	}
	var b strings.Builder
	for i, n := range counts[:slices] {
		fmt.Fprintf(&b, "  %4.1fs-%4.1fs %4d %s\n", (time.Duration(i) * slice).Seconds(), (time.Duration(i+1) * slice).Seconds(), n, strings.Repeat("#", n/5))
	}
	fmt.Fprintf(&b, "  after       %4d\n", counts[slices])
	t.Logf("drain of %d streams and %d long-polls over %v: /readyz 503 after %v, exit after %v; ends per %v:\n%s",
		streams, polls, window, readyzAfter.Round(time.Millisecond), exited.Round(time.Millisecond), slice, b.String())

	total, even := streams+polls, (streams+polls)/slices
	for i, n := range counts[:slices] {
		if n > 3*even {
			t.Errorf("slice %d: %d of %d ended in it; an even spread puts %d in each", i, n, total, even)
		}
	}
	if late := counts[slices]; late > total/10 {
		t.Errorf("%d of %d ended after the window", late, total)
	}
}
